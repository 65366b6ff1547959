"""``git archive --remote=ssh://…`` (git-upload-archive) against hgwire with real git, both backends."""

from __future__ import annotations

import io
import os
import random
import subprocess
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from dulwich.repo import Repo

from backends.git_archive import ArchiveSource, archive_chunks
from backends.git_objects import PIECE_STEP
from protocols.git_archive import ArchiveOptions
from tests.conftest import BACKENDS, Client, RunningServer, SshKeys, ssh_server_settings

FILES = {"README": b"hello\n", "src/main.py": b"print('hi')\n", "src/deep/data.bin": bytes(range(256)) * 40}


@dataclass
class Served:
    client: Client
    url: str
    head: str


@pytest.fixture(params=BACKENDS)
def served(request: pytest.FixtureRequest, make_server: Callable[..., RunningServer], client: Client,
           ssh_keys: SshKeys) -> Served:
    server = make_server(request.param, create_on_push=True, **ssh_server_settings(ssh_keys))
    port = server.port("ssh")
    client.env["GIT_SSH_COMMAND"] = ssh_keys.command(port)
    url = f"ssh://git@127.0.0.1:{port}/repo.git"
    work = client.cwd / "src-repo"
    client.git("init", "-q", work)
    for name, content in FILES.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_bytes(content)
    (work / "run.sh").write_text("#!/bin/sh\n")
    (work / "run.sh").chmod(0o755)
    (work / "link").symlink_to("src/main.py")
    client.git("add", ".", cwd=work)
    client.git("commit", "-qm", "first", cwd=work)
    client.git("tag", "-a", "-m", "v1", "v1", cwd=work)
    (work / "README").write_bytes(b"second\n")
    client.git("commit", "-qam", "second", cwd=work)
    client.git("push", "-q", url, "main", "v1", cwd=work)
    head = client.git("rev-parse", "HEAD", cwd=work).stdout.strip()
    return Served(client, url, head)


def _archive(served: Served, *args: str) -> bytes:
    result = subprocess.run(["git", "archive", f"--remote={served.url}", *args], env=served.client.env,
                            cwd=served.client.cwd, capture_output=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _refused(served: Served, *args: str) -> str:
    result = served.client.git("archive", f"--remote={served.url}", *args, check=False)
    assert result.returncode != 0
    return result.stderr


def _tar_contents(data: bytes) -> dict[str, bytes]:
    """Regular files by name; ``r:*`` also reads the gzipped kind."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
        return {m.name: _read(tar, m) for m in tar.getmembers() if m.isfile()}


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    extracted = tar.extractfile(member)
    assert extracted is not None
    return extracted.read()


def test_tar_piped_to_tar_t(served: Served) -> None:
    listing = subprocess.run(f"git archive --remote={served.url} --format=tar HEAD | tar t", shell=True,
                             env=served.client.env, cwd=served.client.cwd, capture_output=True, text=True,
                             timeout=60, check=True)
    assert sorted(listing.stdout.split()) == sorted([*FILES, "run.sh", "link", "src/", "src/deep/"])


@pytest.mark.parametrize("args", [("--format=tar", "HEAD"), ("--format=zip", "--prefix=p/", "v1"),
                                  ("HEAD", "src", ":!*.bin"), ("--format=zip", "HEAD:src"),
                                  ("--prefix=x", "HEAD"), ("--format=zip", "--prefix=a/b", "v1", "src")])
def test_the_same_archive_as_git_makes(served: Served, args: tuple[str, ...]) -> None:
    """Entries, their kinds, modes, link targets and contents, and the commit id, as git-archive's own.
    A prefix not ending in ``/`` (``--prefix=x``: ``xREADME``) gets no directory entry of its own, as
    in git's (hgwire's began with an ``x/`` one)."""
    ours = _entries(_archive(served, *args))
    theirs = _entries(subprocess.run(["git", "archive", *args], cwd=served.client.cwd / "src-repo",
                                     env=served.client.env, capture_output=True, check=True).stdout)
    assert ours == theirs


@pytest.mark.parametrize("kind", ["tar", "zip"])
@pytest.mark.parametrize("paths", [("src", ":!src"), ("*.py", ":!src"), ("src/deep", ":!*.bin"), (":!*",),
                                   ("nope", ":!src"), (":!src", "nope"), (":!README", ":!src"),
                                   ("src/.", "src//main.py", "src/deep/../main.py", "./README"), (":!.",),
                                   ("src/..", ":!src")])
def test_pathspecs_are_checked_one_by_one_as_git_checks_them(served: Served, kind: str,
                                                              paths: tuple[str, ...]) -> None:
    """Each pathspec alone must select something (an exclusion alone, what it leaves), in the order
    given; what they leave together may be nothing: git's archive is then empty, and hgwire's
    was refused ("did not match any files" for ``'*.py' ':!src'``, "the pathspecs leave no file")."""
    args = (f"--format={kind}", "HEAD", "--", *paths)
    ours = subprocess.run(["git", "archive", f"--remote={served.url}", *args], env=served.client.env,
                          cwd=served.client.cwd, capture_output=True, timeout=60, check=False)
    theirs = subprocess.run(["git", "archive", *args], cwd=served.client.cwd / "src-repo", env=served.client.env,
                            capture_output=True, timeout=60, check=False)
    if theirs.returncode == 0:
        assert (ours.returncode, ours.stdout) == (0, theirs.stdout), ours.stderr
    else:
        assert ours.returncode != 0
        assert ours.stderr.decode().splitlines()[0].rstrip() == "remote: " + theirs.stderr.decode().splitlines()[0]


@pytest.mark.parametrize("args", [("-v", "HEAD"), ("--verbose", "--format=zip", "--prefix=p/", "v1", "src"),
                                  ("--format=tgz", "-v", "HEAD:src")])
def test_verbose_names_each_entry_as_git_does(served: Served, args: tuple[str, ...]) -> None:
    """``git archive --remote -v``: the archive, and each entry's path on the client's stderr
    (``remote: src/main.py``), as git's own archive writes them; it was refused, "option not allowed: -v"."""
    ours = subprocess.run(["git", "archive", f"--remote={served.url}", *args], env=served.client.env,
                          cwd=served.client.cwd, capture_output=True, timeout=60, check=False)
    theirs = subprocess.run(["git", "archive", *args], cwd=served.client.cwd / "src-repo", env=served.client.env,
                            capture_output=True, timeout=60, check=True)
    assert ours.returncode == 0, ours.stderr
    said = [line.rstrip() for line in ours.stderr.decode().splitlines()]
    assert said == ["remote: " + line for line in theirs.stderr.decode().splitlines()]
    if "HEAD:src" not in args:  # (a tree's archive is stamped with the second it is made)
        assert ours.stdout == theirs.stdout
    else:
        assert sorted(_tar_contents(ours.stdout)) == sorted(_tar_contents(theirs.stdout))


@pytest.mark.parametrize("args", [("--format=tar", "-9", "HEAD"), ("--format=zip", "-10", "HEAD"), ("HEAD", ""),
                                  ("HEAD:README",), ("v1:link",)])
def test_refusals_in_gits_words(served: Served, args: tuple[str, ...]) -> None:
    """A compression level a format does not take, an empty pathspec, a tree-ish that names a file:
    git's own refusal (a level past 9 was "option not allowed", an empty pathspec archived
    everything, a file "'HEAD:README' does not name a tree")."""
    ours = served.client.git("archive", f"--remote={served.url}", *args, check=False)
    theirs = served.client.git("archive", *args, cwd=served.client.cwd / "src-repo", check=False)
    assert ours.returncode == 1 and theirs.returncode == 128, (ours.stderr, theirs.stderr)
    assert ours.stderr.splitlines()[0].rstrip() == "remote: " + theirs.stderr.splitlines()[0]


ATTRIBUTES = {
    ".gitattributes": "*.sh export-ignore\nlink export-ignore\ndocs/** export-ignore\n/src/deep/ export-ignore\n"
                      "# a comment\nREADME text\nversion.txt export-subst\n",
    "version.txt": "$Format:%H %h %T %t %P %p|%an <%ae> %ad|%aD|%ai|%aI|%as|%at|%cn %ce %cd|%s|%b|%e|%%|%x41$\n"
                   "plain $Format:%s$ twice $Format:%h$ and $not-a-format$\n",
    "src/.gitattributes": "*.py export-ignore\nkeep.py -export-ignore\n",
    "src/keep.py": "kept\n",
    "docs/a.txt": "a\n",
    "docs/x/b.txt": "b\n",
}


@pytest.mark.parametrize("args", [("--format=tar", "attrs"), ("--format=zip", "attrs"), ("attrs", "src", "docs")])
def test_export_ignore_as_git_applies_it(served: Served, args: tuple[str, ...]) -> None:
    """``.gitattributes`` at several levels: patterns, a directory, ``dir/**``, a rule undone below."""
    work = served.client.cwd / "src-repo"
    if "attrs" not in served.client.git("branch", "--list", "attrs", cwd=work).stdout:
        served.client.git("checkout", "-q", "-b", "attrs", cwd=work)
        for name, text in ATTRIBUTES.items():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            (work / name).write_text(text)
        served.client.git("add", ".", cwd=work)
        served.client.git("commit", "-qm", "attributes,\nwrapped subject\n\nand a body\nof two lines", cwd=work)
        served.client.git("push", "-q", served.url, "attrs", cwd=work)
    ours = _entries(_archive(served, *args))
    theirs = _entries(subprocess.run(["git", "archive", *args], cwd=work, env=served.client.env,
                                     capture_output=True, check=True).stdout)
    assert ours == theirs
    names = [entry[0] for entry in ours[1]]  # type: ignore[index]
    assert not any(n.endswith((".sh", "main.py", "a.txt")) for n in names) and any("keep.py" in n for n in names)


def _entries(data: bytes) -> tuple[object, ...]:
    if data[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return archive.comment, [(i.filename, i.external_attr >> 16, archive.read(i)) for i in archive.infolist()]
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = [(m.name, m.type, m.mode, m.linkname, m.uname, m.mtime, _read(tar, m) if m.isfile() else b"")
                   for m in tar.getmembers()]
        return tar.pax_headers.get("comment"), members


def test_tar_contents_and_modes(served: Served) -> None:
    data = _archive(served, "--format=tar", "HEAD")
    assert _tar_contents(data) == {**FILES, "README": b"second\n", "run.sh": b"#!/bin/sh\n"}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert tar.getmember("run.sh").mode == 0o775  # git's modes: its tar.umask is 002
        assert tar.getmember("README").mode == 0o664
        assert tar.getmember("link").issym() and tar.getmember("link").linkname == "src/main.py"
        assert tar.getmember("src").isdir()
        assert tar.pax_headers["comment"] == served.head  # what git get-tar-commit-id reads


def test_tgz_with_prefix_of_a_tag(served: Served) -> None:
    data = _archive(served, "--format", "tgz", "--prefix=proj-1/", "-9", "v1")
    assert data[:2] == b"\x1f\x8b"
    assert _tar_contents(data)["proj-1/README"] == b"hello\n"


def test_zip_to_output_file(served: Served) -> None:
    out = served.client.cwd / "a.zip"
    served.client.git("archive", f"--remote={served.url}", f"--output={out}", "main")
    with zipfile.ZipFile(out) as archive:
        assert archive.read("src/deep/data.bin") == FILES["src/deep/data.bin"]
        assert archive.testzip() is None


def test_pathspecs(served: Served) -> None:
    """A directory, a file, a pattern and an exclusion, as git-archive takes them."""
    assert sorted(_tar_contents(_archive(served, "HEAD", "src"))) == ["src/deep/data.bin", "src/main.py"]
    assert sorted(_tar_contents(_archive(served, "--format=tar", "v1", "--", "README", "*.sh"))) == \
        ["README", "run.sh"]
    assert sorted(_tar_contents(_archive(served, "HEAD", "--prefix=p/", ":!src/deep"))) == \
        ["p/README", "p/run.sh", "p/src/main.py"]
    assert sorted(_tar_contents(_archive(served, "v1:src", "deep"))) == ["deep/data.bin"]
    out = served.client.cwd / "src.zip"
    served.client.git("archive", f"--remote={served.url}", f"--output={out}", "HEAD", "src/deep/")
    with zipfile.ZipFile(out) as archive:
        assert archive.namelist() == ["src/", "src/deep/", "src/deep/data.bin"]


def test_a_commit_id_is_refused_as_git_refuses_it(served: Served) -> None:
    """git's upload-archive takes a ref name, not an id (not even a ref's own), unless the
    repository sets ``uploadArchive.allowUnreachable``."""
    result = served.client.git("archive", f"--remote={served.url}", served.head, check=False)
    assert result.returncode == 1
    assert result.stderr.splitlines()[0].rstrip() == f"remote: fatal: no such ref: {served.head}"


def _timeless(tar: bytes) -> bytes:
    """A tar with every member's mtime set to 0: git stamps the archive of a tree (``main:src``, a
    tree's id) with the time it makes it, so two made a second apart differ there only."""
    if not tar:
        return tar
    out = bytearray(tar)
    at = 0
    while at + 512 <= len(out) and any(out[at:at + 512]):
        header = out[at:at + 512]
        size = int(bytes(header[124:136]).rstrip(b"\0 ") or b"0", 8)
        header[136:148] = b"0" * 11 + b"\0"
        header[148:156] = b" " * 8
        header[148:156] = b"%06o\0 " % sum(header)
        out[at:at + 512] = header
        at += 512 + (size + 511) // 512 * 512
    return bytes(out)


def test_upload_archive_allow_unreachable_lets_ids_through_as_in_git(make_server: Callable[..., RunningServer],
                                                                     client: Client) -> None:
    """Each tree-ish archived (or refused: status and words) as git's own upload-archive does for
    the same repository (``git archive --remote=<its path>``), without and with
    ``uploadArchive.allowUnreachable``: a ref's commit id, an id with a path, a commit no ref
    reaches, a tree's id."""
    from tests.conftest import LOOPBACK

    server = make_server("fs", git=[LOOPBACK])
    work = client.cwd / "ids-src"
    client.git("init", "-q", "-b", "main", work)
    for name, content in FILES.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_bytes(content)
    client.git("add", ".", cwd=work)
    client.git("commit", "-qm", "first", cwd=work)
    bare = server.root / "ids.git"
    client.git("clone", "-q", "--bare", "--no-local", str(work), str(bare))
    client.git("--git-dir", str(bare), "config", "daemon.uploadarch", "true")
    head = client.git("rev-parse", "HEAD", cwd=work).stdout.strip()
    tree = client.git("rev-parse", "HEAD^{tree}", cwd=work).stdout.strip()
    dangling = client.git("--git-dir", str(bare), "commit-tree", "-m", "no ref", tree).stdout.strip()
    treeishes = ["main", "main:src", head, f"{head}:src", dangling, tree, "nosuch"]

    def archived(remote: str, treeish: str) -> tuple[int, bytes, list[str]]:
        ran = subprocess.run(["git", "archive", f"--remote={remote}", "--format=tar", treeish], env=client.env,
                             cwd=client.cwd, capture_output=True, timeout=60, check=False)
        told = [line.rstrip() for line in ran.stderr.decode().splitlines()]
        return ran.returncode, _timeless(ran.stdout), [line for line in told if line.startswith("remote:")]  # (not
        # the local upload-archive's own stderr)

    for allow in ("false", "true"):
        client.git("--git-dir", str(bare), "config", "uploadArchive.allowUnreachable", allow)
        for treeish in treeishes:
            ours, theirs = archived(server.git_url("ids.git"), treeish), archived(str(bare), treeish)
            assert ours == theirs, (allow, treeish)
        assert [archived(str(bare), t)[0] for t in treeishes] == ([0, 0, 1, 1, 1, 1, 1] if allow == "false"
                                                                  else [0, 0, 0, 0, 0, 0, 1])


@pytest.mark.parametrize(("args", "message"), [
    (("--format=tar", "0123456789abcdef0123456789abcdef01234567"), "no such ref: 0123456789abcdef"),
    (("--format=tar", "HEAD~1"), "tree-ish 'HEAD~1' must be a ref name (a branch or tag"),
    (("HEAD", "src", "nope"), "pathspec 'nope' did not match any files"),
    (("HEAD", ":(glob)src/**"), "pathspec magic 'glob' is not supported"),
    (("--format=rar", "HEAD"), "unknown archive format 'rar'"),
])
def test_refused_after_the_ack_as_git_refuses(served: Served, args: tuple[str, ...], message: str) -> None:
    """git's upload-archive acknowledges first and reports a request it cannot serve on the
    side-band: ``remote: fatal: …``, then its archiver's death, status 1 (not ``NACK``, 128); once."""
    result = served.client.git("archive", f"--remote={served.url}", *args, check=False)
    assert result.returncode == 1, result.stderr
    lines = [line.rstrip() for line in result.stderr.splitlines()]
    assert len(lines) == 2 and lines[0].startswith("remote: fatal: " + message), lines
    assert lines[1] == "remote: git upload-archive: archiver died with error"


def test_exec_is_the_clients_own(served: Served) -> None:
    assert "unknown command '/bin/sh'" in _refused(served, "--exec=/bin/sh", "HEAD")  # the client runs it over ssh


def test_list_and_worktree_attributes_as_git_takes_them(served: Served) -> None:
    """``--list`` names the formats made here (git's upload-archive lists its remote ones);
    ``--worktree-attributes`` changes nothing (a served repository has no working tree to read)."""
    listed = subprocess.run(["git", "archive", f"--remote={served.url}", "--list"], env=served.client.env,
                            cwd=served.client.cwd, capture_output=True, text=True, timeout=60, check=True)
    assert listed.stdout.split() == ["tar", "tgz", "tar.gz", "zip"]
    assert _archive(served, "--worktree-attributes", "HEAD") == _archive(served, "HEAD")


def test_missing_repository(served: Served) -> None:
    """Over SSH git's upload-archive acknowledges before it looks for the repository, so a missing
    one is reported after the ACK too."""
    result = served.client.git("archive", "--remote=" + served.url.replace("repo.git", "nope.git"), "HEAD",
                               check=False)
    assert result.returncode == 1
    assert [line.rstrip() for line in result.stderr.splitlines()] == [
        "remote: fatal: repository nope.git not found", "remote: git upload-archive: archiver died with error"]


def _raw(served: Served, ssh_keys: SshKeys, *arguments: bytes) -> bytes:
    """Talk upload-archive directly, as a client that sends what git's never would."""
    port = served.url.split(":")[2].split("/")[0]
    request = b"".join(b"%04x" % (len(b"argument " + a) + 5) + b"argument " + a + b"\n" for a in arguments)
    result = subprocess.run([*ssh_keys.command(int(port)).split(), "git@127.0.0.1", "git-upload-archive 'repo.git'"],
                            input=request + b"0000", capture_output=True, timeout=60, check=False)
    return result.stdout


@pytest.mark.parametrize("argument", [b"--exec=/bin/sh", b"--remote=ssh://elsewhere/x", b"--output=/tmp/x"])
def test_dangerous_arguments_are_refused_after_the_ack(served: Served, ssh_keys: SshKeys, argument: bytes) -> None:
    option = argument.split(b"=")[0]
    line = b"\x02fatal: option not allowed: %s\n" % option
    assert _raw(served, ssh_keys, argument, b"HEAD") == (
        b"0008ACK\n0000" + b"%04x" % (len(line) + 4) + line + b"0031\x03git upload-archive: archiver died with error")


def test_over_git_protocol_only_where_the_repository_turns_it_on(make_server: Callable[..., RunningServer],
                                                                  client: Client) -> None:
    """``git archive --remote=git://…``: off, as git daemon leaves upload-archive off, until the
    repository's config sets ``daemon.uploadarch``; then the same files as ``git archive``."""
    from tests.conftest import LOOPBACK

    server = make_server("fs", git=[LOOPBACK])
    work = client.cwd / "daemon-src"
    client.git("init", "-q", work)
    for name, content in FILES.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_bytes(content)
    client.git("add", ".", cwd=work)
    client.git("commit", "-qm", "first", cwd=work)
    bare = server.root / "arch.git"
    client.git("clone", "-q", "--bare", "--no-local", str(work), str(bare))
    url = server.git_url("arch.git")
    refused = client.git("archive", f"--remote={url}", "HEAD", check=False)  # git daemon's ERR, before any ACK
    assert refused.returncode == 128 and refused.stderr.startswith("fatal: remote error: service not enabled")
    assert "git config daemon.uploadarch true" in refused.stderr
    assert client.git("archive", f"--remote={url}", "--list", check=False).returncode == 128
    missing = client.git("archive", f"--remote={server.git_url('nope.git')}", "HEAD", check=False)
    assert missing.returncode == 128 and missing.stderr == "fatal: remote error: repository nope.git not found\n"
    client.git("--git-dir", str(bare), "config", "daemon.uploadarch", "true")
    remote = subprocess.run(["git", "archive", f"--remote={url}", "--format=tar", "HEAD"], env=client.env,
                            capture_output=True, check=True).stdout
    local = subprocess.run(["git", "--git-dir", str(bare), "archive", "--format=tar", "HEAD"], env=client.env,
                           capture_output=True, check=True).stdout
    assert _tar_contents(remote) == _tar_contents(local) and set(_tar_contents(remote)) == set(FILES)
    bad_ref = client.git("archive", f"--remote={url}", "nosuch", check=False)  # served: refused after the ACK
    assert bad_ref.returncode == 1 and bad_ref.stderr.startswith("remote: fatal: no such ref: nosuch")
    client.git("--git-dir", str(bare), "config", "daemon.uploadarch", "false")
    assert client.git("archive", f"--remote={url}", "HEAD", check=False).returncode != 0


def test_a_tar_or_zip_is_byte_for_byte_git_archives(served: Served) -> None:
    """The archive itself equals git's, so a checksum of a release archive is the same from hgwire
    as from ``git archive``: headers, a path cut into the header's prefix, paths and a link target
    too long for any field (pax extended headers), a directory name too long, an empty file, a file
    of exactly a record, a name that is not ASCII, one that is not UTF-8, a submodule, a prefix, a tree-ish with a path,
    pathspecs, zip's compression levels."""
    work = served.client.cwd / "src-repo"
    long_dir = "d" * 90 + "/" + "e" * 60
    files = {f"{long_dir}/f.txt": b"cut into prefix and name\n", "g" * 120: b"one name too long\n",
             f"{'h' * 150}/x": b"a directory name too long\n", "empty": b"", "record": b"r" * 512,
             "n\u00e4me.txt": b"a name that is not ASCII\n",
             os.fsdecode(b"l\xe4tin-1.txt"): b"a name that is not UTF-8 (zip: no UTF-8 flag, as git)\n"}
    for name, content in files.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_bytes(content)
    (work / "far").symlink_to("t" * 150)
    served.client.git("add", ".", cwd=work)
    served.client.git("update-index", "--add", "--cacheinfo", f"160000,{'2' * 40},mod", cwd=work)
    served.client.git("commit", "-qm", "long names", cwd=work)
    served.client.git("push", "-q", served.url, "main", cwd=work)
    for args in (("--format=tar", "HEAD"), ("--format=tar", "--prefix=release-1.0/", "main"),
                 ("--format=tar", "v1"), ("--format=tar", "HEAD:src"), ("--format=tar", "HEAD", "src", "empty"),
                 ("--format=zip", "HEAD"), ("--format=zip", "--prefix=release-1.0/", "v1"),
                 ("--format=zip", "-0", "HEAD"), ("--format=zip", "-9", "HEAD", "src")):
        def theirs(args: tuple[str, ...] = args) -> bytes:
            return subprocess.run(["git", "archive", *args], cwd=work, env=served.client.env, capture_output=True,
                                  check=True).stdout

        if ":" not in args[-1]:
            assert _archive(served, *args) == theirs(), args
            continue
        # a tree, not a commit: git dates its entries with the time of the archive, so ours is
        # made between two of git's and equals one of them (a third try if a second ticked twice)
        for _attempt in range(3):
            before, ours, after = theirs(), _archive(served, *args), theirs()
            if ours in (before, after):
                break
        assert ours in (before, after), args


def test_a_zip_of_more_entries_than_zip_counts_is_git_archives(served: Served) -> None:
    """Past 65,535 entries a zip needs zip64's end records: the same bytes as git's."""
    work = served.client.cwd / "src-repo"
    blob = served.client.git("hash-object", "-w", "--stdin", input=b"x\n", cwd=work).stdout.strip()
    index = served.client.cwd / "many.idx"
    listing = "".join(f"100644 {blob}\tmany/f{n:05d}\n" for n in range(66_000))
    served.client.git("update-index", "--index-info", input=listing.encode(), cwd=work, env={"GIT_INDEX_FILE": str(index)})
    tree = served.client.git("write-tree", cwd=work, env={"GIT_INDEX_FILE": str(index)}).stdout.strip()
    commit = served.client.git("commit-tree", tree, "-m", "many", cwd=work).stdout.strip()
    served.client.git("push", "-q", served.url, f"{commit}:refs/heads/many", cwd=work)
    theirs = subprocess.run(["git", "archive", "--format=zip", commit], cwd=work, env=served.client.env,
                            capture_output=True, check=True).stdout
    ours = _archive(served, "--format=zip", "many")
    assert b"PK\x06\x06" in ours and ours == theirs


NOISE_SIZE = 3 * PIECE_STEP + 5


def _large_files(served: Served) -> None:
    """A 3 MB random file, a 2 MB text changed once (git's pack keeps a version as a delta), and a
    large file ``export-subst`` marks, pushed."""
    work = served.client.cwd / "src-repo"
    rng = random.Random(12)
    (work / "noise.bin").write_bytes(rng.randbytes(NOISE_SIZE))
    text = "".join(f"{n} {rng.choice(['red', 'green', 'blue']) * 6}\n" for n in range(70_000)).encode()
    (work / "big.txt").write_bytes(text)
    (work / "subst.txt").write_bytes(b"commit $Format:%H$\n" + text)
    (work / ".gitattributes").write_bytes(b"subst.txt export-subst\n")
    served.client.git("add", ".", cwd=work)
    served.client.git("commit", "-qm", "large files", cwd=work)
    served.client.git("tag", "large", cwd=work)
    (work / "big.txt").write_bytes(text[:1_000_000] + b"a line changed\n" + text[1_000_000:])
    served.client.git("commit", "-qam", "a change", cwd=work)
    served.client.git("push", "-q", served.url, "main", "large", cwd=work)


def test_an_archive_of_large_files_is_git_archives(served: Served) -> None:
    _large_files(served)
    work = served.client.cwd / "src-repo"
    for args in (("--format=tar", "HEAD"), ("--format=tgz", "large"), ("--format=zip", "HEAD"),
                 ("--format=tar", "HEAD", "noise.bin", "subst.txt")):
        theirs = subprocess.run(["git", "archive", *args], cwd=work, env=served.client.env, capture_output=True,
                                check=True).stdout
        assert _archive(served, *args) == theirs, args


def test_a_tar_sends_a_large_blob_a_piece_at_a_time(make_server: Callable[..., RunningServer], client: Client,
                                                    ssh_keys: SshKeys) -> None:
    server = make_server("fs", create_on_push=True, **ssh_server_settings(ssh_keys))
    client.env["GIT_SSH_COMMAND"] = ssh_keys.command(server.port("ssh"))
    served = Served(client, f"ssh://git@127.0.0.1:{server.port('ssh')}/repo.git", "")
    work = client.cwd / "src-repo"
    client.git("init", "-q", work)
    _large_files(served)
    with Repo(str(server.root / "repo.git")) as repo:
        commit = repo[repo.refs[b"refs/heads/main"]]
        source = ArchiveSource(commit.tree, commit.commit_time, commit=commit.id)
        chunks = list(archive_chunks(repo.object_store, source, ArchiveOptions("tar", "", None, "main")))
    # the random file (stored whole) in steps; the text export-subst marks is read whole, as is a
    # text git's pack keeps as a delta
    assert max(map(len, chunks)) < NOISE_SIZE
    theirs = subprocess.run(["git", "archive", "--format=tar", "main"], cwd=work, env=client.env,
                            capture_output=True, check=True).stdout
    assert b"".join(chunks) == theirs
