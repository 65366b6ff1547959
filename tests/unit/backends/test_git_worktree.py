"""push_to_deploy (``receive.denyCurrentBranch = updateInstead``) where the server cannot run git."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends import git_worktree


def test_without_a_git_binary_the_update_is_refused_saying_what_to_do(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(git_worktree.shutil, "which", lambda _name: None)
    reason = git_worktree.push_to_deploy(str(tmp_path / ".git"), str(tmp_path), "0" * 40, head_is_born=True)
    assert reason == git_worktree.NO_GIT
    assert "install git there or set receive.denyCurrentBranch to refuse" in reason


def test_a_git_that_cannot_start_refuses_at_the_first_step(tmp_path: Path) -> None:
    reason = git_worktree.push_to_deploy(str(tmp_path / ".git"), str(tmp_path), "0" * 40, head_is_born=True,
                                         git=str(tmp_path / "no-such-git"))
    assert reason == "Up-to-date check failed"


def test_the_environment_is_the_repository_s_not_the_server_s(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_INDEX_FILE", "/elsewhere/index")
    monkeypatch.setenv("GIT_DIR", "/elsewhere")
    env = git_worktree.worktree_environment("/srv/site/.git", "/srv/site")
    assert env["GIT_DIR"] == "/srv/site/.git" and env["GIT_WORK_TREE"] == "/srv/site"
    assert "GIT_INDEX_FILE" not in env
