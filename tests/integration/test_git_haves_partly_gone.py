"""A shallow client that still holds a branch's old tip fetches after the server reset the branch
and ran ``git repack -adb``: the old tip's loose commits stay, the packed commit below them and the
packed subtrees of their trees are gone.  Its haves (and, at depth 1, its shallow line) name those
loose commits; hgwire refused the fetch ("the repository lacks object ..., which its refs lead
to") where git's upload-pack passes over what it cannot read of a client's haves and serves it.
Compared with ``git-upload-pack`` over file://: the same objects, ``.git/shallow`` and fsck."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import LOOPBACK, Client, RunningServer


def _commit(client: Client, work: Path, path: str, text: str) -> None:
    (work / path).parent.mkdir(parents=True, exist_ok=True)
    (work / path).write_text(text)
    client.git("add", "-A", cwd=work)
    client.git("commit", "-qm", text.strip(), cwd=work)


def _objects(client: Client, clone: Path) -> list[str]:
    out = client.git("cat-file", "--batch-all-objects", "--batch-check", cwd=clone).stdout
    return sorted(out.splitlines())


@pytest.mark.parametrize(("depth", "options"), [
    (1, []),  # (the shallow line's tree lacks a subtree: the counting's walk gave up, dulwich's served)
    (3, []),  # (a have's parent is gone)
    (3, ["--filter=tree:1"]),  # (a filter the generic path serves: dulwich's walk of the haves)
])
def test_a_fetch_whose_haves_the_repository_holds_in_part(make_server: object, client: Client, depth: int,
                                                          options: list[str]) -> None:
    server: RunningServer = make_server("fs", git=[LOOPBACK], http=[LOOPBACK])  # type: ignore[operator]
    bare = server.root / "s.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    client.git("-C", bare, "config", "repack.writeBitmaps", "true")
    client.git("-C", bare, "config", "uploadpack.allowFilter", "true")
    work = client.cwd / "src"
    client.git("init", "-q", "-b", "main", str(work))
    for n in range(6):
        (work / f"d{n}").mkdir()
        (work / f"d{n}" / "f.txt").write_text(f"{n}\n")
    client.git("add", "-A", cwd=work)
    client.git("commit", "-qm", "root", cwd=work)
    root = client.git("rev-parse", "HEAD", cwd=work).stdout.strip()
    _commit(client, work, "d0/f.txt", "packed, then dropped\n")  # its d0 tree only it and its children hold
    client.git("push", "-q", str(bare), "main", cwd=work)
    client.git("-C", bare, "repack", "-adbq")
    _commit(client, work, "d1/f.txt", "loose 1\n")
    _commit(client, work, "d2/f.txt", "loose 2\n")
    client.git("push", "-q", str(bare), "main", cwd=work)  # (a small push: loose objects)
    url = f"file://{bare}"
    shallow = client.cwd / "shallow"
    client.git("clone", "-q", "-n", f"--depth={depth}", "--no-single-branch", *options, url, str(shallow))
    # the branch reset below the packed commit, then repacked: the loose commits stay, the packed one
    # and its d0 tree (which the loose commits' trees name) go
    client.git("-C", bare, "update-ref", "refs/heads/main", root)
    client.git("-C", bare, "repack", "-adbq")
    client.git("reset", "-q", "--hard", root, cwd=work)
    _commit(client, work, "d5/f.txt", "new\n")
    client.git("push", "-q", "-f", str(bare), "main", cwd=work)
    results = {}
    for name, version, address in (("file", "2", url), ("git", "2", server.git_url("s")),
                                   ("http", "0", server.url("http", "s"))):
        clone = client.cwd / f"c-{name}"
        shutil.copytree(shallow, clone, symlinks=True)
        client.git("remote", "set-url", "origin", address, cwd=clone)
        fetched = client.git("-c", f"protocol.version={version}", "fetch", "-q", cwd=clone, check=False)
        fsck = client.git("fsck", "--full", "--no-dangling", cwd=clone, check=False)
        results[name] = (fetched.returncode, fsck.returncode, (clone / ".git" / "shallow").read_text(),
                         _objects(client, clone))
        assert fetched.returncode == 0, (name, fetched.stderr)
    assert results["git"] == results["file"]
    assert results["http"] == results["file"]


@pytest.mark.parametrize("version", ["0", "2"])
def test_an_unshallow_down_from_a_commit_whose_parent_is_gone(make_server: object, client: Client,
                                                              version: str) -> None:
    """``--unshallow`` from a shallow line whose commit the repository holds without its parent:
    git's upload-pack refuses it ("bad object"), and so does hgwire, naming the object as reached
    from a commit the client named, not as one the repository's refs lead to (they do not)."""
    server: RunningServer = make_server("fs", git=[LOOPBACK])  # type: ignore[operator]
    bare = server.root / "s.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    work = client.cwd / "src"
    client.git("init", "-q", "-b", "main", str(work))
    _commit(client, work, "f.txt", "root\n")
    root = client.git("rev-parse", "HEAD", cwd=work).stdout.strip()
    _commit(client, work, "f.txt", "packed, then dropped\n")
    gone = client.git("rev-parse", "HEAD", cwd=work).stdout.strip()
    client.git("push", "-q", str(bare), "main", cwd=work)
    client.git("-C", bare, "repack", "-adq")
    _commit(client, work, "f.txt", "loose 1\n")
    _commit(client, work, "f.txt", "loose 2\n")
    client.git("push", "-q", str(bare), "main", cwd=work)
    shallow = client.cwd / "shallow"
    client.git("clone", "-q", "-n", "--depth=2", f"file://{bare}", str(shallow))
    client.git("-C", bare, "update-ref", "refs/heads/main", root)
    client.git("-C", bare, "repack", "-adq")
    client.git("reset", "-q", "--hard", root, cwd=work)
    _commit(client, work, "g.txt", "new\n")
    client.git("push", "-q", "-f", str(bare), "main", cwd=work)
    said = {}
    for name, address in (("file", f"file://{bare}"), ("ours", server.git_url("s"))):
        clone = client.cwd / f"u-{name}"
        shutil.copytree(shallow, clone, symlinks=True)
        fetched = client.git("-c", f"protocol.version={version}", "fetch", "-q", "--unshallow", address,
                             cwd=clone, check=False)
        assert fetched.returncode != 0, (name, fetched.stderr)
        said[name] = fetched.stderr
    assert f"bad object {gone}" in said["file"]
    assert f"remote: the repository lacks object {gone}, which a ref or a commit the client named leads to" in said["ours"]
