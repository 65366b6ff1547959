"""A push creating many branches (a migration's: they go into ``packed-refs`` together) while
another process creates one of them (a ``git update-ref`` or git's receive-pack on the same
repository on disk).  git's refs code takes each ref's own lock (``refs/heads/NAME.lock``) before
it reads whether the ref is there, and keeps it until the ref is written; hgwire checked under
``packed-refs.lock`` alone, so a ``git update-ref`` of a branch between that check and the new
``packed-refs`` also "created" it: both said so, and its loose file hid what the push reported.
The interleaving is driven by running ``git update-ref`` from inside the server's write of
``packed-refs``, once it has checked the refs."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import backends.git
from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_daemon import commit

BRANCHES = [f"refs/heads/b{i:02d}" for i in range(backends.git.PACKED_CREATIONS_MIN + 2)] + ["refs/heads/dir/deep"]


def _ref(client: Client, repo: Path, name: str) -> str:
    return client.git("--git-dir", str(repo), "for-each-ref", "--format=%(objectname)", name).stdout.strip()


def test_a_branch_another_process_creates_during_the_packed_write_is_created_once(
        make_server: Callable[..., RunningServer], client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    server = make_server("fs", git=[LOOPBACK])
    served = server.root / "r.git"
    work = client.cwd / "work"
    client.git("init", "-q", "-b", "main", str(work))
    first = commit(client, work, "a.txt", "a\n", "first")
    second = commit(client, work, "b.txt", "b\n", "second")
    client.git("init", "-q", "--bare", str(served))
    client.git("push", "-q", str(served), "main", cwd=work)  # (second is there for update-ref)
    theirs: list[subprocess.CompletedProcess[str]] = []
    written = backends.git._packed_text

    def meanwhile(*args: Any) -> bytes:  # the refs checked, packed-refs.lock held, nothing written yet
        if not theirs:
            for name in ("refs/heads/b00", "refs/heads/dir/deep"):
                theirs.append(client.git("--git-dir", str(served), "update-ref", name, second, "0" * 40,
                                         check=False))
        return written(*args)

    monkeypatch.setattr(backends.git, "_packed_text", meanwhile)
    pushed = client.git("push", "--porcelain", server.git_url("r"), *(f"{first}:{name}" for name in BRANCHES),
                        cwd=work)

    assert len(theirs) == 2, "the push did not write its branches into packed-refs together"
    for name, done in zip(("refs/heads/b00", "refs/heads/dir/deep"), theirs, strict=True):
        assert f"*\t{first}:{name}\t[new branch]" in pushed.stdout, pushed.stdout
        assert done.returncode != 0 and f"cannot lock ref '{name}'" in done.stderr, done.stderr
        assert _ref(client, served, name) == first, "another process created the branch the push reported made"
    assert all(_ref(client, served, name) == first for name in BRANCHES)
    assert not list(served.glob("refs/**/*.lock")) and not (served / "refs" / "heads" / "dir").exists()
    client.git("--git-dir", str(served), "fsck", "--full")
