"""A ``packed-refs`` whose first line lacks ``peeled`` (an old git's, another tool's, or none):
hgwire's rewrite of it for a push creating many refs, or deleting packed ones, kept that line, so
every later read took the slow path (each packed ref's object peeled again: 0.9 s of server CPU at
100,000 refs).  git's receive-pack and pack-refs write ``# pack-refs with: peeled fully-peeled
sorted`` with every ref's ``^`` line; hgwire now writes the file so, byte for byte as git's
pack-refs writes the same refs."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from backends.git import PACKED_CREATIONS_MIN
from backends.interfaces import Kind
from tests.conftest import Client, RunningServer
from tests.integration.test_git_daemon import assert_consistent
from tests.integration.test_git_many_refs import _work

FULL = "# pack-refs with: peeled fully-peeled sorted \n"


def _unpeeled(git_dir: Path, first: str) -> None:
    """The repository's refs all packed, its file rewritten without ``^`` lines under ``first``."""
    packed = git_dir / "packed-refs"
    lines = [line for line in packed.read_text().splitlines(keepends=True)
             if not line.startswith(("#", "^"))]
    packed.write_text(first + "".join(lines))


def _as_git_packs_it(client: Client, git_dir: Path, tmp_path: Path) -> str:
    """The ``packed-refs`` git's ``pack-refs --all`` writes for the refs of ``git_dir``."""
    copy = tmp_path / "by-git.git"
    shutil.copytree(git_dir, copy)
    (copy / "packed-refs").write_text(FULL)  # (its refs read afresh, from loose files)
    for ref_line in client.git("--git-dir", str(git_dir), "for-each-ref", "--format=%(objectname) %(refname)"
                               ).stdout.splitlines():
        sha, name = ref_line.split(" ")
        client.git("--git-dir", str(copy), "update-ref", name, sha)
    client.git("--git-dir", str(copy), "pack-refs", "--all", "--prune")
    return (copy / "packed-refs").read_text()


@pytest.mark.parametrize("first", ["# pack-refs with: \n", "", "# pack-refs with: peeled \n"])
@pytest.mark.parametrize("push", ["create", "delete"])
def test_a_rewritten_packed_refs_says_fully_peeled_as_git_writes_it(
        make_server: Any, client: Client, tmp_path: Path, first: str, push: str) -> None:
    server: RunningServer = make_server("fs")
    server.backend.create("many", Kind.GIT)
    work = _work(client, tmp_path)
    url = server.git_url("many")
    git_dir = server.root / "many.git"
    # the tags and a few branches first, packed by git, then left without their peeled lines
    client.git("push", "-q", url, "main", "refs/heads/topic/b0001", "refs/heads/topic/b0002",
               "refs/tags/*:refs/tags/*", cwd=work)
    client.git("--git-dir", str(git_dir), "pack-refs", "--all", "--prune")
    _unpeeled(git_dir, first)
    if push == "create":
        client.git("push", "-q", url, "refs/heads/*:refs/heads/*", cwd=work)
        assert len(list((git_dir / "refs" / "heads").rglob("b*"))) == 0, f"{PACKED_CREATIONS_MIN}+ refs packed"
    else:
        client.git("push", "-q", url, ":refs/heads/topic/b0001", ":refs/heads/topic/b0002", cwd=work)
    written = (git_dir / "packed-refs").read_text()
    assert written.startswith(FULL), written.splitlines()[0]
    assert written == _as_git_packs_it(client, git_dir, tmp_path)
    remote = client.git("ls-remote", url).stdout
    assert "refs/tags/v0-blessed^{}" in remote and "refs/tags/blob-tag^{}" in remote
    assert_consistent(server, client, "many")
