"""What a push's discovery vouched for in the rev-branch-cache, remembered for its commit
(``branchcache.read``): hg changing the files or the changelog in between (a commit, a strip, a
rewrite of the cache) leaves the files the commit writes as hg's own."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from backends.hg import branchcache, open_repository, repository
from backends.interfaces import DeltaMode
from backends.lru import LruCache
from tests.unit.backends.hg.test_hg_branchcache import (
    BRANCHES,
    branchy_template,
    clear_caches,
    commit_on,
    files,
    hg,
    hg_s_own,
)

__all__ = ["branchy_template"]  # (the fixtures, imported for pytest)


def _between(path: Path, what: str) -> None:
    strip = ("debugstrip", "-q", "--no-backup")  # (core hg's strip: no extension, so in the command server)
    if what == "hg commit":
        commit_on(path, ["stable", "other"], start=50)
    elif what == "strip":
        hg(path, *strip, "-r", "tip")
    elif what == "strip and commit":
        hg(path, *strip, "-r", "tip")
        hg(path, "update", "-q", "-C", "tip")
        commit_on(path, ["newer"], start=60)
    elif what == "caches rewritten":
        clear_caches(path)
        hg(path, "debugupdatecaches")
    elif what == "caches removed":
        clear_caches(path)


@pytest.fixture(scope="module")
def discovered(branchy_template: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``branchy`` updated to its tip with hg's caches, and a copy with two more commits (the pushing
    side), made once for the module: each test changes its own copies."""
    base = tmp_path_factory.mktemp("remembered")
    target, source = base / "branchy", base / "source"
    shutil.copytree(branchy_template, target, symlinks=True)
    hg(target, "update", "-q", "-C", "tip")
    hg(target, "debugupdatecaches")
    shutil.copytree(target, source, symlinks=True)
    commit_on(source, ["hotfix", "stable"], start=len(BRANCHES))
    return target, source


@pytest.mark.parametrize("what", ["hg commit", "strip", "strip and commit", "caches rewritten", "caches removed"])
def test_the_files_changed_between_discovery_and_commit(
        discovered: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, what: str) -> None:
    branchy, source = tmp_path / "branchy", tmp_path / "source"
    for built, path in zip(discovered, (branchy, source), strict=True):
        shutil.copytree(built, path, symlinks=True)
    monkeypatch.setattr(repository, "SHARED_BRANCHES", LruCache(4))  # as after a restart
    monkeypatch.setattr(branchcache, "_WRITTEN", LruCache(4))
    target = open_repository(str(branchy), "b")
    origin = open_repository(str(source), "s")
    target.branchmap()  # the push's discovery: the files vouched for, remembered
    _between(branchy, what)
    tx = target.transaction()
    tx.add_changegroup(origin.emit_groups(origin.missing(target.heads(), origin.heads()), DeltaMode.ANY))
    tx.commit()
    hg(branchy, "verify", "-q")
    assert files(branchy) == hg_s_own(branchy, tmp_path)
    again = open_repository(str(branchy), "b2")
    assert again.branch_tips() == open_repository(str(hg_s_copy(branchy, tmp_path)), "c").branch_tips()


def hg_s_copy(path: Path, tmp_path: Path) -> Path:
    """A copy of ``path`` without caches (what is read there is the changelog's own)."""
    copy = tmp_path / "plain-copy"
    shutil.copytree(path, copy, symlinks=True)
    clear_caches(copy)
    return copy
