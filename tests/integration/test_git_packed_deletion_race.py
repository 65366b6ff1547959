"""A push deleting several packed branches (``git push --prune``, a mirror's: they leave
``packed-refs`` together) while another process changes one of them (a ``git update-ref`` or git's
receive-pack on the same repository on disk).  git's refs code takes each ref's own lock
(``refs/heads/NAME.lock``) before ``packed-refs.lock``, and keeps both until the ref is gone; hgwire
checked under ``packed-refs.lock`` alone, so a ``git update-ref`` moving a branch between that check
and the new ``packed-refs`` read the old file and wrote the branch loose: both said so, the push
reporting the branch deleted while it named the other's value.  The interleaving is driven by
running ``git update-ref`` from inside the server's write of ``packed-refs``, once it has checked
the refs."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import backends.git
from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_daemon import commit

MOVED = ("refs/heads/x", "refs/heads/dir/deep")
"""Branches another process moves while the push deletes them (one whose directory is packed alone)."""


def _ref(client: Client, repo: Path, name: str) -> str:
    return client.git("--git-dir", str(repo), "for-each-ref", "--format=%(objectname)", name).stdout.strip()


def test_a_branch_another_process_moves_during_the_packed_deletion_is_refused_to_it(
        make_server: Callable[..., RunningServer], client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    server = make_server("fs", git=[LOOPBACK])
    served = server.root / "r.git"
    work = client.cwd / "work"
    client.git("init", "-q", "-b", "main", str(work))
    first = commit(client, work, "a.txt", "a\n", "first")
    second = commit(client, work, "b.txt", "b\n", "second")
    client.git("init", "-q", "--bare", str(served))
    client.git("push", "-q", str(served), "main", f"{first}:refs/heads/y", *(f"{first}:{name}" for name in MOVED),
               cwd=work)
    client.git("--git-dir", str(served), "pack-refs", "--all")
    assert not (served / "refs" / "heads" / "dir").exists()
    theirs: list[subprocess.CompletedProcess[str]] = []
    written = backends.git._packed_text

    def meanwhile(*args: Any) -> bytes:  # the refs checked, packed-refs.lock held, nothing written yet
        if not theirs:
            for name in MOVED:
                theirs.append(client.git("--git-dir", str(served), "update-ref", name, second, first, check=False))
        return written(*args)

    monkeypatch.setattr(backends.git, "_packed_text", meanwhile)
    pushed = client.git("push", "--porcelain", server.git_url("r"), ":refs/heads/y", *(f":{name}" for name in MOVED),
                        cwd=work)

    assert len(theirs) == 2, "the push did not delete its branches from packed-refs together"
    for name, done in zip(MOVED, theirs, strict=True):
        assert f"-\t:{name}\t[deleted]" in pushed.stdout, pushed.stdout
        assert done.returncode != 0 and f"cannot lock ref '{name}'" in done.stderr, done.stderr
        assert _ref(client, served, name) == "", "another process moved the branch the push reported deleted"
    assert _ref(client, served, "refs/heads/y") == ""
    assert not list(served.glob("refs/**/*.lock")) and not (served / "refs" / "heads" / "dir").exists()
    client.git("--git-dir", str(served), "fsck", "--full")


def test_a_shadowed_branch_leaves_both_its_files_under_its_own_lock(
        make_server: Callable[..., RunningServer], client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """A packed branch hidden by its loose file (moved since it was packed): git's receive-pack removes
    its packed line, then its loose file, holding the branch's lock throughout; a ``git update-ref``
    in between is refused, where it moved the branch and the push's deletion then failed."""
    server = make_server("fs", git=[LOOPBACK])
    served = server.root / "r.git"
    work = client.cwd / "work"
    client.git("init", "-q", "-b", "main", str(work))
    first = commit(client, work, "a.txt", "a\n", "first")
    second = commit(client, work, "b.txt", "b\n", "second")
    third = commit(client, work, "c.txt", "c\n", "third")
    client.git("init", "-q", "--bare", str(served))
    client.git("push", "-q", str(served), "main", f"{first}:refs/heads/x", f"{first}:refs/heads/y", cwd=work)
    client.git("--git-dir", str(served), "pack-refs", "--all")
    client.git("--git-dir", str(served), "update-ref", "refs/heads/x", second, first)  # loose, hiding the packed
    theirs: list[subprocess.CompletedProcess[str]] = []
    written = backends.git._packed_text

    def meanwhile(*args: Any) -> bytes:
        if not theirs:
            theirs.append(client.git("--git-dir", str(served), "update-ref", "refs/heads/x", third, second,
                                     check=False))
        return written(*args)

    monkeypatch.setattr(backends.git, "_packed_text", meanwhile)
    pushed = client.git("push", "--porcelain", server.git_url("r"), ":refs/heads/x", ":refs/heads/y", cwd=work,
                        check=False)

    assert len(theirs) == 1
    assert "-\t:refs/heads/x\t[deleted]" in pushed.stdout, pushed.stdout + pushed.stderr
    assert theirs[0].returncode != 0 and "cannot lock ref 'refs/heads/x'" in theirs[0].stderr, theirs[0].stderr
    assert _ref(client, served, "refs/heads/x") == "" and _ref(client, served, "refs/heads/y") == ""
    assert not list(served.glob("refs/**/*.lock"))
    client.git("--git-dir", str(served), "fsck", "--full")
