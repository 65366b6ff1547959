"""hgwire points HEAD at a pushed branch when the branch it names does not exist (a first push into
an empty repository whose HEAD names ``trunk``).  It decided and wrote that outside ``HEAD.lock``,
the lock git's ``symbolic-ref`` and ``checkout`` take to change HEAD: one such process changing HEAD
between hgwire's look and its write saw its HEAD replaced, and one holding the lock as the push
ended failed the push ("internal error") after its refs were written.  HEAD is now read again and
written under ``HEAD.lock``; a lock another process holds leaves HEAD to it, the push told it went."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from typing import Any

import pytest

import backends.git
from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_daemon import commit


def _set_up(make_server: Callable[..., RunningServer], client: Client) -> tuple[RunningServer, Any, Any, str]:
    server = make_server("fs", git=[LOOPBACK])
    served = server.root / "r.git"
    work = client.cwd / "work"
    client.git("init", "-q", "-b", "main", str(work))
    first = commit(client, work, "a.txt", "a\n", "first")
    client.git("init", "-q", "--bare", "-b", "trunk", str(served))
    return server, served, work, first


def test_head_changed_by_another_process_meanwhile_is_not_overwritten(
        make_server: Callable[..., RunningServer], client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    server, served, work, _first = _set_up(make_server, client)
    theirs: list[subprocess.CompletedProcess[str]] = []
    listed = backends.git.DulwichGitRepository.refs

    def meanwhile(self: Any) -> Any:  # (the repair lists the branches to choose one)
        if not theirs and (served / "refs" / "heads" / "main").exists():
            theirs.append(client.git("--git-dir", str(served), "symbolic-ref", "HEAD", "refs/heads/other",
                                     check=False))
        return listed(self)

    monkeypatch.setattr(backends.git.DulwichGitRepository, "refs", meanwhile)
    client.git("push", "-q", server.git_url("r"), "main", "main:other", cwd=work)

    head = client.git("--git-dir", str(served), "symbolic-ref", "HEAD").stdout.strip()
    assert len(theirs) == 1
    if theirs[0].returncode == 0:  # it changed HEAD: its HEAD stays
        assert head == "refs/heads/other", "symbolic-ref said done, and the push's repair replaced its HEAD"
    else:
        assert "HEAD.lock" in theirs[0].stderr and head == "refs/heads/main", (theirs[0].stderr, head)
    assert not (served / "HEAD.lock").exists()
    client.git("--git-dir", str(served), "fsck", "--full")


def test_a_push_while_another_process_holds_head_lock_is_made_and_head_left_to_it(
        make_server: Callable[..., RunningServer], client: Client) -> None:
    server, served, work, first = _set_up(make_server, client)
    (served / "HEAD.lock").write_text("ref: refs/heads/dev\n")  # a git symbolic-ref under way

    pushed = client.git("push", "--porcelain", server.git_url("r"), "main", cwd=work, check=False)

    assert pushed.returncode == 0 and "[new branch]" in pushed.stdout, pushed.stdout + pushed.stderr
    assert client.git("--git-dir", str(served), "rev-parse", "refs/heads/main").stdout.strip() == first
    assert (served / "HEAD").read_text() == "ref: refs/heads/trunk\n"
    assert (served / "HEAD.lock").read_text() == "ref: refs/heads/dev\n"
    (served / "HEAD.lock").unlink()
    client.git("--git-dir", str(served), "fsck", "--full")
