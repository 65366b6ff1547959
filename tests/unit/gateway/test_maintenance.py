"""The background repack's refusals: no git binary, a repack already running."""

from __future__ import annotations

from pathlib import Path

import pytest
from twisted.logger import LogEvent, globalLogPublisher

from gateway import maintenance


def test_without_git_nothing_runs_and_that_is_logged_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(maintenance.shutil, "which", lambda _name: None)
    monkeypatch.setattr(maintenance, "_no_git_logged", False)
    events: list[LogEvent] = []
    globalLogPublisher.addObserver(events.append)
    try:
        assert maintenance.start_repack(str(tmp_path), "r") is False
        assert maintenance.start_repack(str(tmp_path), "r") is False
    finally:
        globalLogPublisher.removeObserver(events.append)
    warned = [e for e in events if "no git binary" in e.get("log_format", "")]
    assert len(warned) == 1 and warned[0]["repo"] == "r"
    assert str(tmp_path) not in maintenance.running()  # other tests of this process may be repacking


def test_a_repository_being_repacked_gets_no_second_repack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(maintenance, "_running", {str(tmp_path)})
    assert maintenance.start_repack(str(tmp_path), "r", git="/bin/false") is False


class _Repo:
    """A repository that always lacks a bitmap (git cannot write one: kept packs, say)."""

    def __init__(self) -> None:
        self.asked: list[tuple[int, ...]] = []

    def repack_candidate(self, pack_limit: int, bitmap_objects: int = 0) -> str | None:
        self.asked.append((pack_limit, bitmap_objects))
        return "/r.git" if bitmap_objects else None

    def bitmap_candidate(self, min_objects: int) -> str | None:
        self.asked.append((min_objects,))
        return "/r.git"


def test_a_repository_that_gets_no_bitmap_is_repacked_for_one_once_an_hour(monkeypatch: pytest.MonkeyPatch) -> None:
    from twisted.internet import defer

    clock = [1000.0]
    started: list[str] = []
    monkeypatch.setattr(maintenance, "_bitmap_started", {})
    monkeypatch.setattr(maintenance.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(maintenance, "run_blocking", lambda f, *args: defer.succeed(f(*args)))
    monkeypatch.setattr(maintenance, "_pack_refs_then_repack", lambda path, name, _pack_refs: started.append(name))
    repo = _Repo()
    maintenance.after_push(repo, "r", 50, 10_000)  # type: ignore[arg-type]
    maintenance.after_push(repo, "r", 50, 10_000)  # type: ignore[arg-type]
    maintenance.after_fetch(repo, "r", 50, 10_000)  # type: ignore[arg-type]
    assert started == ["r"]
    assert repo.asked == [(50, 10_000), (50, 0)]  # the second push: pack limits only
    clock[0] += maintenance.BITMAP_RECHECK_SECONDS
    maintenance.after_fetch(repo, "r", 50, 10_000)  # type: ignore[arg-type]
    maintenance.after_fetch(repo, "r", 50, 10_000)  # type: ignore[arg-type]
    maintenance.after_push(repo, "r", 50, 10_000)  # type: ignore[arg-type]
    assert started == ["r", "r"]
    maintenance.after_fetch(repo, "other", 50, 0)  # type: ignore[arg-type]
    maintenance.after_fetch(repo, "other", 0, 10_000)  # type: ignore[arg-type]
    assert started == ["r", "r"]
