"""A push deleting a branch while another process holds ``packed-refs.lock`` (a ``git gc`` or ``git
pack-refs`` on the server, another push deleting a packed ref): git's receive-pack takes that lock
before it changes anything and keeps it until the loose file is gone, so the branch is either
deleted or left as it was.  hgwire (dulwich's order) removed the loose file first: refused, the
branch went back to its older packed value; and a ``git pack-refs`` that had read the loose file
before it went wrote the deleted branch back.  The interleaving is driven by holding the lock file
as git does and watching the server's own attempt to take it."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from dulwich.file import FileLocked, GitFile

import backends.git
from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_daemon import commit


def _served(client: Client, served: Path) -> tuple[Path, str, str]:
    """``served`` with main, x and y packed at the first commit, then x moved (loose) to a second:
    the work tree, the first commit and the second."""
    work = client.cwd / "work"
    client.git("init", "-q", "-b", "main", str(work))
    first = commit(client, work, "a.txt", "a\n", "first")
    client.git("init", "-q", "--bare", str(served))
    client.git("push", "-q", str(served), "main", "main:x", "main:y", cwd=work)
    client.git("--git-dir", str(served), "pack-refs", "--all")
    second = commit(client, work, "b.txt", "b\n", "second")
    client.git("push", "-q", str(served), "HEAD:refs/heads/x", cwd=work)
    return work, first, second


def _ref(client: Client, repo: Path, name: str) -> str:
    return client.git("--git-dir", str(repo), "for-each-ref", "--format=%(objectname)", name).stdout.strip()


def test_a_deletion_refused_for_the_lock_leaves_the_branch_as_it_was(
        make_server: Callable[..., RunningServer], client: Client) -> None:
    server = make_server("fs", git=[LOOPBACK])
    served, twin = server.root / "r.git", client.cwd / "twin.git"
    work, first, second = _served(client, served)
    shutil.copytree(served, twin, symlinks=True)
    for repo in (served, twin):
        client.git("--git-dir", str(repo), "config", "core.packedRefsTimeout", "0")
        (repo / "packed-refs.lock").write_text("")  # another git process changing refs

    ours = client.git("push", server.git_url("r"), ":x", cwd=work, check=False)
    theirs = client.git("push", f"file://{twin}", ":x", cwd=work, check=False)  # git's own receive-pack
    assert ours.returncode == theirs.returncode == 1
    assert "packed-refs.lock" in ours.stderr
    assert _ref(client, twin, "refs/heads/x") == second
    assert _ref(client, served, "refs/heads/x") == second, f"the branch went back to {first}"

    (served / "packed-refs.lock").unlink()
    client.git("push", "-q", server.git_url("r"), ":x", cwd=work)
    assert _ref(client, served, "refs/heads/x") == ""
    client.git("--git-dir", str(served), "fsck", "--full")


@pytest.fixture
def packed_lock_refused(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Set when the server finds ``packed-refs.lock`` held (its ``GitFile`` refused)."""
    refused = threading.Event()

    def watched(path: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return GitFile(path, *args, **kwargs)
        except FileLocked:
            if os.fsdecode(path).endswith("packed-refs"):
                refused.set()
            raise

    monkeypatch.setattr(backends.git, "GitFile", watched)
    yield refused


def test_a_pack_refs_that_read_the_branch_before_its_deletion_does_not_write_it_back(
        make_server: Callable[..., RunningServer], client: Client, packed_lock_refused: threading.Event) -> None:
    server = make_server("fs", git=[LOOPBACK])
    served, copy = server.root / "r.git", client.cwd / "copy.git"
    work = client.cwd / "work"
    client.git("init", "-q", "-b", "main", str(work))
    commit(client, work, "a.txt", "a\n", "first")
    client.git("init", "-q", "--bare", str(served))
    client.git("push", "-q", str(served), "main", "main:y", cwd=work)
    client.git("--git-dir", str(served), "pack-refs", "--all")
    commit(client, work, "b.txt", "b\n", "second")
    client.git("push", "-q", str(served), "HEAD:refs/heads/x", cwd=work)  # loose alone
    client.git("--git-dir", str(served), "config", "core.packedRefsTimeout", "-1")  # (waits while it is held)
    # git pack-refs --all holds the lock, having read every loose ref, x among them: what it writes
    shutil.copytree(served, copy, symlinks=True)
    client.git("--git-dir", str(copy), "pack-refs", "--all")
    lock = served / "packed-refs.lock"
    lock.write_bytes((copy / "packed-refs").read_bytes())
    assert "refs/heads/x" in lock.read_text()
    outcome: list[Any] = []
    pusher = threading.Thread(target=lambda: outcome.append(
        client.git("push", server.git_url("r"), ":x", cwd=work, check=False)))
    pusher.start()
    try:
        while pusher.is_alive() and not packed_lock_refused.is_set():
            packed_lock_refused.wait(0.02)
    finally:
        os.rename(lock, served / "packed-refs")  # pack-refs done: its file in place
        pusher.join(120)
    assert outcome[0].returncode == 0, outcome[0].stderr
    assert _ref(client, served, "refs/heads/x") == "", "the deleted branch was written back"
    assert "refs/heads/x" not in (served / "packed-refs").read_text()
    client.git("--git-dir", str(served), "fsck", "--full")
