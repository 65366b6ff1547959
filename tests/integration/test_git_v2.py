"""Protocol v2 over git://: proof that v2 is negotiated, partial clone with lazy blob fetches, object-info."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from backends.interfaces import Kind
from protocols import pktline
from tests.conftest import LOOPBACK, Client, RunningServer


def make_history(server: RunningServer, client: Client, name: str) -> str:
    server.backend.create(name, Kind.GIT)
    work = client.cwd / f"src-{name}"
    client.git("clone", "-q", server.git_url(name), str(work))
    for i in range(3):
        (work / "big.bin").write_bytes(bytes([i]) * 5000)
        (work / "small.txt").write_text(f"{i}\n")
        client.git("add", ".", cwd=work)
        client.git("commit", "-q", "-m", f"c{i}", cwd=work)
    client.git("push", "-q", "origin", "main", cwd=work)
    return client.git("rev-parse", "HEAD", cwd=work).stdout.strip()


def test_trace_shows_v2_was_negotiated(server: RunningServer, client: Client) -> None:
    make_history(server, client, "traced")
    result = client.git("-c", "protocol.version=2", "clone", server.git_url("traced"), str(client.cwd / "t"),
                        env={"GIT_TRACE_PACKET": "1"})
    assert "clone< version 2" in result.stderr
    assert "clone> command=ls-refs" in result.stderr and "clone> command=fetch" in result.stderr
    assert "clone< packfile" in result.stderr


def test_partial_clone_fetches_missing_blobs_lazily(server: RunningServer, client: Client) -> None:
    make_history(server, client, "partial")
    target = client.cwd / "partial"
    client.git("-c", "protocol.version=2", "clone", "-q", "--filter=blob:none", "--no-checkout",
               server.git_url("partial"), str(target))
    missing = client.git("rev-list", "--objects", "--all", "--missing=print", cwd=target).stdout
    assert sum(line.startswith("?") for line in missing.splitlines()) == 6
    client.git("checkout", "-q", "main", cwd=target)
    client.git("checkout", "-q", "HEAD~2", cwd=target)
    assert (target / "big.bin").read_bytes() == bytes([0]) * 5000
    client.git("fsck", cwd=target)


@pytest.mark.parametrize("version", ["0", "2"])
def test_treeless_clone_fetches_trees_and_blobs_as_they_are_needed(server: RunningServer, client: Client,
                                                                     version: str) -> None:
    """``--filter=tree:0``: only the commits come; a checkout fetches its trees and blobs lazily."""
    make_history(server, client, f"treeless{version}")
    target = client.cwd / f"treeless{version}"
    config = ("-c", f"protocol.version={version}")
    client.git(*config, "clone", "-q", "--filter=tree:0", "--no-checkout", server.git_url(f"treeless{version}"),
               str(target))
    listed = client.git("rev-list", "--objects", "--all", "--missing=print", cwd=target).stdout.splitlines()
    assert sum(line.startswith("?") for line in listed) == 3 and len(listed) == 6  # three commits, three root trees
    client.git(*config, "checkout", "-q", "main", cwd=target)
    assert (target / "small.txt").read_text() == "2\n"
    client.git(*config, "checkout", "-q", "HEAD~2", cwd=target)
    assert (target / "big.bin").read_bytes() == bytes([0]) * 5000
    client.git("fsck", cwd=target)


def test_blob_limit_keeps_small_blobs(server: RunningServer, client: Client) -> None:
    make_history(server, client, "limit")
    target = client.cwd / "limit"
    client.git("clone", "-q", "--filter=blob:limit=1k", "--no-checkout", server.git_url("limit"), str(target))
    missing = client.git("rev-list", "--objects", "--all", "--missing=print", cwd=target).stdout
    assert sum(line.startswith("?") for line in missing.splitlines()) == 3  # the three big.bin versions


def test_object_info(server: RunningServer, client: Client) -> None:
    """Each object's size; one the repository lacks with an empty size, as git 2.39 answers it."""
    tip = make_history(server, client, "info")
    unknown = b"0" * 39 + b"1"
    body = (pktline.encode(b"command=object-info\n") + pktline.DELIM + pktline.encode(b"size\n")
            + pktline.encode(b"oid " + tip.encode() + b"\n") + pktline.encode(b"oid " + unknown + b"\n")
            + pktline.FLUSH + pktline.FLUSH)
    first = pktline.encode(b"git-upload-pack /info.git\0host=x\0\0version=2\0")
    with socket.create_connection(("127.0.0.1", server.port("git")), timeout=10) as sock:
        sock.sendall(first + body)
        sock.shutdown(socket.SHUT_WR)
        reply = b""
        while data := sock.recv(65536):
            reply += data
    size = len(client.git("cat-file", "commit", tip, cwd=client.cwd / "src-info").stdout.encode())
    assert reply.endswith(pktline.encode(b"size\n") + pktline.encode(tip.encode() + b" %d\n" % size)
                          + pktline.encode(unknown + b" \n") + b"0000"), reply[-200:]


def test_progress_on_band_two_unless_quiet(server: RunningServer, client: Client) -> None:
    make_history(server, client, "progress")
    for version in ("0", "2"):
        loud = client.git("-c", f"protocol.version={version}", "clone", "--progress", server.git_url("progress"),
                          str(client.cwd / f"loud{version}"))
        assert "remote: Enumerating objects: 12, done." in loud.stderr
        quiet = client.git("-c", f"protocol.version={version}", "clone", "-q", server.git_url("progress"),
                           str(client.cwd / f"quiet{version}"))
        assert "remote:" not in quiet.stderr


def test_partial_clone_over_v0(server: RunningServer, client: Client) -> None:
    make_history(server, client, "partial0")
    target = client.cwd / "partial0"
    client.git("-c", "protocol.version=0", "clone", "-q", "--filter=blob:none", "--no-checkout",
               server.git_url("partial0"), str(target))
    missing = client.git("rev-list", "--objects", "--all", "--missing=print", cwd=target).stdout
    assert sum(line.startswith("?") for line in missing.splitlines()) == 6
    client.git("-c", "protocol.version=0", "checkout", "-q", "main", cwd=target)
    assert (target / "small.txt").read_text() == "2\n"


def test_ls_refs_names_every_symbolic_ref_as_git_does(server: RunningServer, client: Client) -> None:
    """Protocol v2 gives each symbolic ref its target; v0 names HEAD's only (git daemon alike)."""
    repo = server.backend.create("sym", Kind.GIT)
    repo.dulwich_repo.refs.set_symbolic_ref(b"refs/heads/alias", b"refs/heads/main")  # type: ignore[attr-defined]
    work = client.cwd / "src-sym"
    client.git("init", "-q", "-b", "main", str(work))
    (work / "f").write_text("f\n")
    client.git("add", "f", cwd=work)
    client.git("commit", "-q", "-m", "one", cwd=work)
    client.git("push", "-q", server.git_url("sym"), "main", cwd=work)
    v2 = client.git("-c", "protocol.version=2", "ls-remote", "--symref", server.git_url("sym")).stdout
    assert "ref: refs/heads/main\tHEAD" in v2 and "ref: refs/heads/main\trefs/heads/alias" in v2
    v0 = client.git("-c", "protocol.version=0", "ls-remote", "--symref", server.git_url("sym")).stdout
    assert "ref: refs/heads/main\tHEAD" in v0 and "refs/heads/alias" in v0 and "\trefs/heads/alias\n" in v0
    assert "ref: refs/heads/main\trefs/heads/alias" not in v0


def test_fetch_by_object_id_and_symref_listing(server: RunningServer, client: Client) -> None:
    """allow-reachable-sha1-in-want: a commit that no ref names directly can be fetched by id."""
    make_history(server, client, "byid")
    older = client.git("rev-parse", "HEAD~2", cwd=client.cwd / "src-byid").stdout.strip()
    for version in ("0", "2"):
        target = client.cwd / f"byid{version}"
        client.git("init", "-q", str(target))
        client.git("-c", f"protocol.version={version}", "fetch", "-q", server.git_url("byid"), older, cwd=target)
        assert client.git("rev-parse", "FETCH_HEAD", cwd=target).stdout.strip() == older
        listed = client.git("-c", f"protocol.version={version}", "ls-remote", "--symref", server.git_url("byid"))
        assert "ref: refs/heads/main\tHEAD" in listed.stdout


@pytest.mark.parametrize("service", ["upload-pack", "receive-pack"])
def test_protocol_v1_gets_its_version_line_first(server: RunningServer, client: Client, service: str) -> None:
    """A client asking for protocol v1 (``-c protocol.version=1``) gets ``version 1`` before the
    advertisement, as git's upload-pack and receive-pack send it; clone and push work."""
    make_history(server, client, "v1")
    traced = client.git("-c", "protocol.version=1", "ls-remote", server.git_url("v1"),
                        env={"GIT_TRACE_PACKET": "1"}) if service == "upload-pack" else None
    if traced is not None:
        assert "ls-remote< version 1" in traced.stderr, traced.stderr
    work = client.cwd / f"v1-{service}"
    client.git("-c", "protocol.version=1", "clone", "-q", server.git_url("v1"), str(work))
    if service == "receive-pack":
        (work / "v1.txt").write_text("v1\n")
        client.git("add", ".", cwd=work)
        client.git("commit", "-qm", "v1", cwd=work)
        pushed = client.git("-c", "protocol.version=1", "push", "origin", "HEAD", cwd=work,
                            env={"GIT_TRACE_PACKET": "1"})
        assert "push< version 1" in pushed.stderr, pushed.stderr


def test_ref_in_want_where_the_repository_allows_it(make_server: Any, client: Client) -> None:
    """``uploadpack.allowRefInWant``: git 2.39 offers ``ref-in-want``, and its client then asks for
    refs by name (``want-ref``) and takes what they name from the ``wanted-refs`` section, over
    git:// and HTTP alike; a ref that does not exist is git's ``ERR unknown ref``.  Off, nothing
    is offered and the client sends ``want`` lines."""
    server = make_server("fs", git=[LOOPBACK], http=[LOOPBACK])
    tip = make_history(server, client, "riw")
    client.git("tag", "v1", "HEAD~1", cwd=client.cwd / "src-riw")
    client.git("push", "-q", "origin", "v1", cwd=client.cwd / "src-riw")
    bare = str(server.root / "riw.git")
    for url in (server.git_url("riw"), server.url("http", "riw.git")):
        off = client.git("-c", "protocol.version=2", "ls-remote", url, env={"GIT_TRACE_PACKET": "1"}).stderr
        assert "ref-in-want" not in off
    client.git("--git-dir", bare, "config", "uploadpack.allowRefInWant", "true")
    for n, url in enumerate((server.git_url("riw"), server.url("http", "riw.git"))):
        target = client.cwd / f"riw-{n}"
        cloned = client.git("-c", "protocol.version=2", "clone", url, str(target), env={"GIT_TRACE_PACKET": "1"})
        assert "fetch=shallow wait-for-done filter ref-in-want" in cloned.stderr
        assert "clone> want-ref refs/heads/main" in cloned.stderr and "clone< wanted-refs" in cloned.stderr
        assert f"clone< {tip} refs/heads/main" in cloned.stderr
        assert client.git("rev-parse", "origin/main", "v1", cwd=target).stdout.split() == [
            tip, client.git("rev-parse", "v1", cwd=client.cwd / "src-riw").stdout.strip()]
        client.git("fsck", "--full", cwd=target)
        new = client.git("commit-tree", "-p", tip, "-m", f"n{n}", f"{tip}^{{tree}}", cwd=client.cwd / "src-riw")
        client.git("push", "-q", "origin", f"{new.stdout.strip()}:refs/heads/side{n}", cwd=client.cwd / "src-riw")
        fetched = client.git("-c", "protocol.version=2", "fetch", "origin", f"side{n}", cwd=target,
                             env={"GIT_TRACE_PACKET": "1"})
        assert f"fetch> want-ref refs/heads/side{n}" in fetched.stderr
        assert client.git("rev-parse", "FETCH_HEAD", cwd=target).stdout.strip() == new.stdout.strip()
        client.git("fsck", "--full", cwd=target)
    body = (pktline.encode(b"command=fetch\n") + pktline.DELIM + pktline.encode(b"want-ref refs/heads/nosuch\n")
            + pktline.encode(b"done\n") + pktline.FLUSH)
    with socket.create_connection(("127.0.0.1", server.port("git")), timeout=10) as sock:
        sock.sendall(pktline.encode(b"git-upload-pack /riw.git\0host=x\0\0version=2\0") + body)
        sock.shutdown(socket.SHUT_WR)
        reply = b""
        while data := sock.recv(65536):
            reply += data
    assert reply.endswith(b"0000" + pktline.encode(b"ERR unknown ref refs/heads/nosuch")), reply[-100:]
    client.git("--git-dir", bare, "fsck", "--full")
