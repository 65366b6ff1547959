"""Pushes that race for the same ref: the loser is told what git's receive-pack tells it (its
``remote: error: cannot lock ref …`` line, with the words of git's refs code for the case),
compared with git's own receive-pack (``file://``) under the same race.  The race is made
deterministic: a ``pre-receive`` hook holds the first push (after its commands were read and
checked) until the second one is done."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from twisted.logger import globalLogPublisher

from gateway.audit import AUDIT_NAMESPACE
from tests.conftest import LOOPBACK, Client, RunningServer

GATE = """#!/bin/sh
# the first push to get here waits until the test lets it go on
if mkdir first 2>/dev/null; then
  while [ ! -e release ]; do sleep 0.05; done
fi
"""


def _remote_lines(stderr: str) -> list[str]:
    return [line.rstrip() for line in stderr.splitlines() if line.startswith("remote:")]


def _rejections(stderr: str) -> list[str]:
    return [line.strip() for line in stderr.splitlines() if line.startswith(" ! ")]


def _repositories(client: Client, root: Path, tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    """A bare ``root/r.git`` with ``main``, ``d`` and ``e``, its copy for git's own receive-pack, and
    two clones of it each with a commit of its own."""
    bare = root / "r.git"
    client.git("init", "-q", "--bare", "-b", "main", str(bare))
    first, second = tmp_path / "a", tmp_path / "b"
    client.git("init", "-q", "-b", "main", str(first))
    client.git("commit", "-q", "--allow-empty", "-m", "base", cwd=first)
    client.git("push", "-q", str(bare), "main", "main:d", "main:e", cwd=first)
    client.git("clone", "-q", str(bare), str(second))
    client.git("commit", "-q", "--allow-empty", "-m", "a", cwd=first)
    client.git("commit", "-q", "--allow-empty", "-m", "b", cwd=second)
    (bare / "hooks" / "pre-receive").write_text(GATE)
    (bare / "hooks" / "pre-receive").chmod(0o755)
    copy = tmp_path / "copy.git"
    shutil.copytree(bare, copy, symlinks=True)
    return bare, copy, first, second


def _race(client: Client, url: str, bare: Path, first: tuple[Path, list[str]],
          second: tuple[Path, list[str]]) -> subprocess.CompletedProcess[str]:
    """Push ``first`` (held in its pre-receive hook) and ``second`` meanwhile; the first's outcome."""
    outcome: list[subprocess.CompletedProcess[str]] = []
    loser = threading.Thread(target=lambda: outcome.append(
        client.git("push", url, *first[1], cwd=first[0], check=False)))
    loser.start()
    try:
        deadline = time.monotonic() + 60
        while not (bare / "first").is_dir():
            assert time.monotonic() < deadline, "the first push never reached its pre-receive hook"
            time.sleep(0.02)
        client.git("push", url, *second[1], cwd=second[0])
    finally:
        (bare / "release").touch()
        loser.join(120)
    (bare / "first").rmdir()
    (bare / "release").unlink()
    client.git("--git-dir", str(bare), "fsck", "--full")
    return outcome[0]


@pytest.mark.parametrize(("refspec", "reason"), [
    ("HEAD:refs/tags/v1", "failed to update ref: another push created it meanwhile; fetch and push again"),
    ("HEAD:refs/heads/new", "failed to update ref: another push created it meanwhile; fetch and push again"),
    (":refs/heads/d", "failed to update ref: another push deleted it meanwhile"),
    ("HEAD:refs/heads/e", "failed to update ref: another push moved it meanwhile; fetch and push again"),
])
def test_the_loser_of_a_race_for_a_ref_is_told_what_git_says(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path, refspec: str,
        reason: str) -> None:
    server = make_server("fs", git=[LOOPBACK])
    bare, copy, first, second = _repositories(client, server.root, tmp_path)
    ours = _race(client, server.git_url("r"), bare, (first, [refspec]), (second, [refspec]))
    theirs = _race(client, f"file://{copy}", copy, (first, [refspec]), (second, [refspec]))
    assert ours.returncode == theirs.returncode == 1
    assert _remote_lines(ours.stderr) == _remote_lines(theirs.stderr), ours.stderr
    assert any("cannot lock ref" in line for line in _remote_lines(theirs.stderr))  # (something to compare)
    assert [line.split(" (", 1)[1] for line in _rejections(ours.stderr)] == [reason + ")"], ours.stderr


def test_the_loser_of_an_atomic_race_is_told_which_ref_failed_its_transaction_and_why(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> None:
    server = make_server("fs", git=[LOOPBACK])
    bare, copy, first, second = _repositories(client, server.root, tmp_path)
    atomic = ["--atomic", "HEAD:main", "HEAD:x"]
    audited: list[dict[str, Any]] = []

    def observe(event: dict[str, Any]) -> None:
        if event.get("log_namespace") == AUDIT_NAMESPACE:
            audited.append(event)

    globalLogPublisher.addObserver(observe)
    try:
        ours = _race(client, server.git_url("r"), bare, (first, atomic), (second, ["HEAD:main"]))
    finally:
        globalLogPublisher.removeObserver(observe)
    theirs = _race(client, f"file://{copy}", copy, (first, atomic), (second, ["HEAD:main"]))
    assert ours.returncode == theirs.returncode == 1
    assert _remote_lines(ours.stderr) == _remote_lines(theirs.stderr), ours.stderr
    won = client.git("--git-dir", str(bare), "rev-parse", "main").stdout.strip()
    seen = client.git("rev-parse", "HEAD~", cwd=first).stdout.strip()
    said = f"cannot lock ref 'refs/heads/main': is at {won} but expected {seen}"
    assert _remote_lines(ours.stderr) == [f"remote: error: {said}"]
    assert _rejections(ours.stderr) == ["! [remote rejected] HEAD -> main (atomic transaction failed)",
                                        "! [remote rejected] HEAD -> x (atomic transaction failed)"]
    lost = next(e for e in audited if e["outcome"] == "2 refused")
    assert [c["result"] for c in lost["changes"]] == [f"atomic transaction failed: {said}",
                                                      "atomic transaction failed"]
