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
