"""SHA-256 git repositories (``git init --object-format=sha256``), served as git daemon serves them.

Over git://, SSH and smart HTTP, in protocol v0 and v2: clones and fetches
whose packs git indexes and fscks, pushes (fast-forward, forced, new branches
and tags, deletions) that leave the repository passing ``git fsck --full
--strict``, shallow and partial clones; the advertisements equal git's own
``upload-pack``'s; a client of the other format is told the formats differ.
"""

from __future__ import annotations

import re
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from protocols import pktline
from tests.conftest import LOOPBACK, Client, RunningServer, SshKeys
from tests.integration.test_git_daemon import BINARY, NON_ASCII, PROTOCOLS, commit, git, remote_refs
from tests.integration.test_git_hooks import _server
from tests.integration.test_git_signed_push import _install, _ssh_signer, _told
from tests.integration.test_git_transports import TRANSPORTS, TransportServer
from tests.integration.test_hg_http import raw


def _git_daemon(make_server: Callable[..., RunningServer], backend: str, client: Client, keys: SshKeys,
                tmp: Path) -> TransportServer:
    server = make_server(backend, git=[LOOPBACK])
    return TransportServer(server, server.git_url)


ALL_TRANSPORTS = {"git": _git_daemon, **TRANSPORTS}


@pytest.fixture(params=list(ALL_TRANSPORTS))
def served(request: pytest.FixtureRequest, make_server: Callable[..., RunningServer], client: Client,
           ssh_keys: SshKeys, tmp_path: Path) -> TransportServer:
    return ALL_TRANSPORTS[request.param](make_server, "fs", client, ssh_keys, tmp_path)


def _sha256_history(client: Client, server: TransportServer, name: str) -> Path:
    """A SHA-256 repository ``name`` on the server holding branches, a merge, tags, a binary and a
    non-ASCII file and a file's versions as deltas, partly packed, partly loose; the work clone."""
    bare = server.root / f"{name}.git"
    client.git("init", "-q", "--bare", "--object-format=sha256", str(bare))
    work = client.cwd / f"{name}-origin"
    client.git("init", "-q", "--object-format=sha256", str(work))
    for i in range(6):
        commit(client, work, "grows.txt", "".join(f"line {n}\n" for n in range(40 * (i + 1))), f"grow {i}")
    client.git("checkout", "-q", "-b", "topic", cwd=work)
    commit(client, work, "data.bin", BINARY, "binary")
    commit(client, work, NON_ASCII, "ünï\n", "non-ascii")
    client.git("checkout", "-q", "main", cwd=work)
    commit(client, work, "README", "hello\n", "readme")
    client.git("merge", "-q", "--no-edit", "topic", cwd=work)
    client.git("tag", "-a", "v1.0", "-m", "release", cwd=work)
    client.git("tag", "light", "HEAD~2", cwd=work)
    client.git("push", "-q", str(bare), "main", "topic", "--tags", cwd=work)
    client.git("--git-dir", str(bare), "repack", "-adq")
    commit(client, work, "loose.txt", "loose\n", "loose objects")
    client.git("push", "-q", str(bare), "main", cwd=work)
    return work


def _fsck(client: Client, git_dir: Path) -> None:
    assert client.git("--git-dir", str(git_dir), "rev-parse", "--show-object-format").stdout.strip() == "sha256"
    client.git("--git-dir", str(git_dir), "fsck", "--full", "--strict")


@pytest.mark.parametrize("proto", list(PROTOCOLS))
def test_clone_fetch_and_push_a_sha256_repository(served: TransportServer, client: Client, proto: str) -> None:
    origin = _sha256_history(client, served, "proj")
    bare = served.root / "proj.git"
    url = served.git_url("proj")

    served_refs = remote_refs(client, proto, url)
    assert served_refs == remote_refs(client, proto, str(bare))
    assert all(len(oid) == 64 for oid in served_refs.values())

    clone = client.cwd / "clone"
    git(client, proto, "clone", "-q", url, str(clone))
    _fsck(client, clone / ".git")
    assert (clone / "data.bin").read_bytes() == BINARY
    assert client.git("rev-parse", "HEAD", cwd=clone).stdout == client.git("rev-parse", "HEAD", cwd=origin).stdout

    # an incremental fetch: a thin pack against what the clone has
    newer = commit(client, origin, "grows.txt", "changed\n" + (origin / "grows.txt").read_text(), "edit")
    client.git("push", "-q", str(bare), "main", cwd=origin)
    git(client, proto, "fetch", "-q", "origin", cwd=clone)
    assert client.git("rev-parse", "origin/main", cwd=clone).stdout.strip() == newer
    _fsck(client, clone / ".git")

    # pushes through the server: fast-forward (a thin pack), a new branch and tag, forced, deletion
    client.git("merge", "-q", "--ff-only", "origin/main", cwd=clone)
    ff = commit(client, clone, "grows.txt", (clone / "grows.txt").read_text() + "appended\n", "append")
    client.git("checkout", "-q", "-b", "feature", cwd=clone)
    feature = commit(client, clone, "new/file.txt", "new\n", "feature")
    client.git("tag", "-a", "v2.0", "-m", "second", cwd=clone)
    git(client, proto, "push", "-q", "origin", "main", "feature", "v2.0", cwd=clone)
    refs = remote_refs(client, proto, url)
    assert (refs["refs/heads/main"], refs["refs/heads/feature"], refs["refs/tags/v2.0^{}"]) == (ff, feature, feature)
    _fsck(client, bare)

    rewritten = client.git("commit-tree", "-m", "rewritten", "-p", newer, "HEAD^{tree}", cwd=clone).stdout.strip()
    refused = client.git(*PROTOCOLS[proto], "push", "origin", f"{rewritten}:refs/heads/main", cwd=clone, check=False)
    assert refused.returncode != 0 and "rejected" in refused.stderr
    git(client, proto, "push", "-q", "--force", "origin", f"{rewritten}:refs/heads/main", cwd=clone)
    git(client, proto, "push", "-q", "origin", ":feature", ":topic", cwd=clone)
    refs = remote_refs(client, proto, url)
    assert refs["refs/heads/main"] == rewritten
    assert "refs/heads/feature" not in refs and "refs/heads/topic" not in refs
    _fsck(client, bare)

    mirror = client.cwd / "mirror.git"
    git(client, proto, "clone", "-q", "--mirror", url, str(mirror))
    _fsck(client, mirror)


@pytest.mark.parametrize("proto", list(PROTOCOLS))
def test_shallow_and_partial_clones_of_a_sha256_repository(served: TransportServer, client: Client,
                                                           proto: str) -> None:
    _sha256_history(client, served, "proj")
    url = served.git_url("proj")
    shallow = client.cwd / "shallow"
    git(client, proto, "clone", "-q", "--depth", "1", "--no-single-branch", url, str(shallow))
    assert client.git("rev-list", "--count", "HEAD", cwd=shallow).stdout.strip() == "1"
    assert len((shallow / ".git" / "shallow").read_text().split()[0]) == 64
    git(client, proto, "fetch", "-q", "--unshallow", cwd=shallow)
    _fsck(client, shallow / ".git")

    if proto == "default":  # a partial clone needs protocol v2's filter
        partial = client.cwd / "partial"
        git(client, proto, "clone", "-q", "--filter=blob:none", url, str(partial))
        assert (partial / "data.bin").read_bytes() == BINARY  # the checkout fetched its blobs lazily
        client.git("fsck", "--full", cwd=partial)


def test_an_empty_sha256_repository_takes_a_first_push_from_a_sha256_repository(
        served: TransportServer, client: Client) -> None:
    """git 2.39 clones an empty repository as SHA-1 whatever the server's format (with git daemon
    too), and that clone cannot push to it; a SHA-256 repository of the client's can."""
    bare = served.root / "empty.git"
    client.git("init", "-q", "--bare", "--object-format=sha256", str(bare))
    cloned = client.cwd / "cloned"
    client.git("clone", "-q", served.git_url("empty"), str(cloned))
    commit(client, cloned, "README", "sha-1\n", "sha-1")
    refused = client.git("push", "origin", "main", cwd=cloned, check=False)
    assert refused.returncode != 0 and "does not support this repository's hash algorithm" in refused.stderr

    work = client.cwd / "empty"
    client.git("init", "-q", "--object-format=sha256", str(work))
    first = commit(client, work, "README", "first\n", "first")
    client.git("push", "-q", served.git_url("empty"), "main", cwd=work)
    assert client.git("--git-dir", str(bare), "rev-parse", "main").stdout.strip() == first
    _fsck(client, bare)


def test_a_client_of_the_other_object_format_is_told_the_formats_differ(
        make_server: Callable[..., RunningServer], client: Client) -> None:
    server = make_server("fs", git=[LOOPBACK])
    _sha256_history(client, TransportServer(server, server.git_url), "proj")
    bare = server.root / "proj.git"
    before = sorted(p.name for p in (bare / "objects" / "pack").iterdir())

    sha1 = client.cwd / "sha1"
    client.git("init", "-q", str(sha1))
    commit(client, sha1, "a.txt", "a\n", "sha-1 commit")
    # the client's own words, as with git daemon
    for proto, refusal in (("v0", "Server does not support this repository's object format"),
                           ("default", "mismatched algorithms: client sha1; server sha256")):
        fetched = client.git(*PROTOCOLS[proto], "fetch", server.git_url("proj"), cwd=sha1, check=False)
        assert fetched.returncode != 0 and refusal in fetched.stderr
        pushed = client.git(*PROTOCOLS[proto], "push", server.git_url("proj"), "main:sha1", cwd=sha1, check=False)
        assert pushed.returncode != 0 and "does not support this repository's hash algorithm" in pushed.stderr
    assert sorted(p.name for p in (bare / "objects" / "pack").iterdir()) == before

    # a v2 request that names no object format speaks SHA-1: refused as git's serve.c refuses it
    port = server.port("git")
    path = b"/proj.git"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(pktline.encode(b"git-upload-pack " + path + b"\0host=127.0.0.1\0\0version=2\0")
                     + pktline.encode(b"command=ls-refs\n") + pktline.FLUSH)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert b"object-format=sha256" in answer
    assert b"ERR mismatched object format: server sha256; client sha1" in answer


def test_hooks_and_a_signed_push_see_what_git_shows_them(make_server: Callable[..., RunningServer],
                                                         client: Client) -> None:
    """The hooks' standard input (64-digit ids, 64 zeros for a new ref) and a signed push's
    certificate (a blob of the repository's format), against git's own receive-pack."""
    server = make_server("fs", git=[LOOPBACK])
    origin = _sha256_history(client, TransportServer(server, server.git_url), "proj")
    bare = server.root / "proj.git"
    copy = client.cwd / "copy.git"
    client.run("cp", "-a", str(bare), str(copy))
    key = _ssh_signer(client, "known", "alice@example.com")
    signers = client.cwd / "allowed_signers"
    signers.write_text("alice@example.com " + (key.parent / f"{key.name}.pub").read_text())
    for git_dir in (bare, copy):
        _install(git_dir, signers)

    commit(client, origin, "signed.txt", "signed\n", "signed")
    signing = ["-c", "gpg.format=ssh", "-c", f"user.signingKey={key}"]
    # first a plain push that creates a branch, then a signed one that deletes it
    for push, refspecs in ((["push"], ["HEAD:main", "HEAD:refs/heads/new"]),
                           ([*signing, "push", "--signed"], ["HEAD~1:main", ":refs/heads/new"])):
        ours = client.git(*push, "--force", server.git_url("proj"), *refspecs, cwd=origin, check=False)
        theirs = client.git(*push, "--force", f"file://{copy}", *refspecs, cwd=origin, check=False)
        assert ours.returncode == theirs.returncode == 0, (ours.stderr, theirs.stderr)
        told = _told(bare)
        assert told == _told(copy)
        zero_line = [line for line in told if line.endswith(" refs/heads/new")]
        assert zero_line and "0" * 64 in zero_line[0]
    assert "GIT_PUSH_CERT_STATUS=G" in told and "GIT_PUSH_CERT_SIGNER=alice@example.com" in told
    _fsck(client, bare)


@pytest.mark.parametrize("transport", ["git", "http"])
def test_a_signed_push_to_a_sha256_repository_gets_an_hmac_sha256_nonce(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, tmp_path: Path,
        transport: str) -> None:
    """git's receive-pack makes a SHA-256 repository's nonce with SHA-256 (64 hex digits after the
    time); the hooks are told it and that it is OK, over a connection of its own (git://) and
    when it comes back in a later request (HTTP, within ``receive.certNonceSlop``)."""
    server = _server(make_server, transport, client, ssh_keys, tmp_path)
    origin = _sha256_history(client, server, "proj")
    bare = server.root / "proj.git"
    key = _ssh_signer(client, "known", "alice@example.com")
    signers = client.cwd / "allowed_signers"
    signers.write_text("alice@example.com " + (key.parent / f"{key.name}.pub").read_text())
    _install(bare, signers, slop="60")
    commit(client, origin, "signed.txt", "signed\n", "signed")
    client.git("-c", "gpg.format=ssh", "-c", f"user.signingKey={key}", "push", "-q", "--signed",
               server.git_url("proj"), "HEAD:main", cwd=origin)
    told = (bare / "cert.log").read_text().splitlines()
    nonces = [line.split("=", 1)[1] for line in told if line.startswith("GIT_PUSH_CERT_NONCE=")]
    assert nonces and all(re.fullmatch(r"[1-9][0-9]*-[0-9a-f]{64}", n) for n in nonces), told
    assert "GIT_PUSH_CERT_NONCE_STATUS=OK" in told and "GIT_PUSH_CERT_STATUS=G" in told
    _fsck(client, bare)


@pytest.mark.parametrize("args", [("--format=tar", "main"), ("--format=zip", "v1.0", "README"),
                                  ("--format=tar.gz", "--prefix=p/", "topic")])
def test_git_archive_remote_of_a_sha256_repository_is_git_archives(
        make_server: Callable[..., RunningServer], client: Client, args: tuple[str, ...]) -> None:
    """``git archive --remote`` over git:// (the repository turns it on): byte for byte the archive
    git makes of the repository itself (the commit id in a tar's header is 64 digits)."""
    server = make_server("fs", git=[LOOPBACK])
    _sha256_history(client, TransportServer(server, server.git_url), "proj")
    bare = server.root / "proj.git"
    client.git("--git-dir", str(bare), "config", "daemon.uploadarch", "true")
    ours, theirs = client.cwd / "ours", client.cwd / "theirs"
    client.git("archive", f"--remote={server.git_url('proj')}", f"--output={ours}", *args)
    client.git("--git-dir", str(bare), "archive", f"--output={theirs}", *args)
    assert ours.read_bytes() == theirs.read_bytes()
    if args[0] == "--format=tar":
        told = subprocess.run(["git", "get-tar-commit-id"], input=ours.read_bytes(), capture_output=True, check=True)
        assert len(told.stdout.strip()) == 64


def test_web_pages_of_a_sha256_repository(make_server: Callable[..., RunningServer], client: Client) -> None:
    """The log lists every commit by its 64-digit id, a commit's page answers to its id or an
    abbreviation of it, its files and their history follow."""
    server = make_server("fs", http=[LOOPBACK])
    origin = _sha256_history(client, TransportServer(server, lambda name: ""), "proj")
    port = server.port("http")
    commits = client.git("rev-list", "--all", cwd=origin).stdout.split()
    log = raw(port, "GET", "/proj.git/log?revcount=100")
    assert log.status == 200 and all(oid.encode() in log.body for oid in commits)
    head = client.git("rev-parse", "HEAD", cwd=origin).stdout.strip()
    for target in (head, head[:12]):
        page = raw(port, "GET", f"/proj.git/rev/{target}")
        assert page.status == 200 and head.encode() in page.body
    assert raw(port, "GET", f"/proj.git/rev/{head[:40]}x").status == 404
    readme = raw(port, "GET", f"/proj.git/raw-file/{head}/README")
    assert readme.status == 200 and readme.body == b"hello\n"
    history = raw(port, "GET", "/proj.git/log/main/grows.txt")
    grows = client.git("log", "--format=%H", "--", "grows.txt", cwd=origin).stdout.split()
    assert history.status == 200 and all(oid.encode() in history.body for oid in grows)


def test_an_empty_sha256_repository_s_summary_says_how_to_start_it(make_server: Callable[..., RunningServer],
                                                                    client: Client) -> None:
    """git 2.39 clones an empty SHA-256 repository as SHA-1, and that clone cannot push to it: the
    summary page says to start from ``git init --object-format=sha256``; an empty SHA-1 one does not."""
    server = make_server("fs", http=[LOOPBACK])
    for name, object_format in (("new256", "sha256"), ("new1", "sha1")):
        client.git("init", "-q", "--bare", f"--object-format={object_format}", str(server.root / f"{name}.git"))
    port = server.port("http")
    page = raw(port, "GET", "/new256.git/summary")
    assert page.status == 200 and b"keeps SHA-256 objects: start with git init --object-format=sha256" in page.body
    plain = raw(port, "GET", "/new1.git/summary")
    assert plain.status == 200 and b"no commits yet" in plain.body and b"SHA-256" not in plain.body


def test_a_push_to_a_new_name_makes_a_sha256_repository_where_git_default_hash_says_so(
        make_server: Callable[..., RunningServer], client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``--create-on-push``, the repository a first push makes follows ``GIT_DEFAULT_HASH`` in
    the server's environment, as ``git init`` does: a SHA-256 repository pushes its history into
    it; a value git does not know is refused in a sentence, nothing made."""
    server = make_server("fs", git=[LOOPBACK], create_on_push=True)
    work = client.cwd / "new"
    client.git("init", "-q", "--object-format=sha256", str(work))
    first = commit(client, work, "README", "first\n", "first")
    monkeypatch.setenv("GIT_DEFAULT_HASH", "sha256")
    client.git("push", "-q", server.git_url("made"), "main", cwd=work)
    made = server.root / "made.git"
    assert client.git("--git-dir", str(made), "rev-parse", "main").stdout.strip() == first
    _fsck(client, made)

    for unknown in ("sha512", "SHA256"):  # as git init: "unknown hash algorithm 'SHA256'"
        monkeypatch.setenv("GIT_DEFAULT_HASH", unknown)
        refused = client.git("push", server.git_url("other"), "main", cwd=work, check=False)
        assert refused.returncode != 0 and f"GIT_DEFAULT_HASH in the server's environment is '{unknown}'" \
            in refused.stderr, refused.stderr
        assert not (server.root / "other.git").exists()
