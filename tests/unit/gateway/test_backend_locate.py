"""A custom backend's ``locate`` runs on the reactor's thread (the access rules ask it there): one
that is slow or raises is logged, at most once a minute, with what to do."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
from twisted.logger import ILogObserver, LogEvent, formatEvent, globalLogPublisher

from backends.interfaces import Kind
from gateway import auth
from gateway.auth import Access, Authorizer
from gateway.policy import PolicyFile
from protocols.errors import PermissionDenied, UnsafeName

RULES = '[[repo]]\npattern = "team/*"\nwrite = ["alice"]\n'


@pytest.fixture
def logged() -> Iterator[list[LogEvent]]:
    seen: list[LogEvent] = []
    observer = cast(ILogObserver, seen.append)
    globalLogPublisher.addObserver(observer)
    auth._locate_warned.clear()
    yield seen
    globalLogPublisher.removeObserver(observer)
    auth._locate_warned.clear()


def _lines(events: list[LogEvent]) -> list[str]:
    return [formatEvent(e) for e in events if "locate" in (e.get("log_format") or "")]


def test_a_slow_locate_is_warned_of_once_a_minute(tmp_path: Path, logged: list[LogEvent],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "rules.toml").write_text(RULES)
    clock = [1000.0]
    monkeypatch.setattr(auth, "_clock", lambda: clock[0])

    def locate(name: str) -> tuple[str, Kind] | None:
        clock[0] += 4.0  # a backend asking a database: the whole service waited
        return ("team/app.git", Kind.GIT)

    authorizer = Authorizer(policy=PolicyFile(tmp_path / "rules.toml"), locate=locate)
    authorizer.check("alice", "team/app", "git-ssh", Access.WRITE)
    authorizer.check("alice", "team/app", "git-ssh", Access.WRITE)
    lines = _lines(logged)
    assert lines == [("the backend's locate('team/app') took 4.00 s on the service's event loop, where every "
                      "connection waited for it: make locate answer from memory or a few stat calls")], lines
    clock[0] += 61
    authorizer.check("alice", "team/app", "git-ssh", Access.READ)
    assert len(_lines(logged)) == 2


def test_a_locate_that_raises_is_logged_not_passed_over_in_silence(tmp_path: Path, logged: list[LogEvent]) -> None:
    (tmp_path / "rules.toml").write_text(RULES)

    def locate(name: str) -> tuple[str, Kind] | None:
        if name.startswith("-"):
            raise UnsafeName("refused")  # hgwire's own refusal: refused where the name is opened, not logged
        raise RuntimeError("the backend's database is gone")

    authorizer = Authorizer(policy=PolicyFile(tmp_path / "rules.toml"), locate=locate)
    assert authorizer.exists("-x") is None
    assert _lines(logged) == []
    with pytest.raises(PermissionDenied):
        authorizer.check("bob", "team/app", "git-ssh", Access.WRITE)
    assert authorizer.exists("team/app") is None
    lines = _lines(logged)
    assert len(lines) == 1 and lines[0].startswith(
        "the backend's locate('team/app') raised RuntimeError; access rules were matched on the name asked for "
        "only: fix the backend"), lines
    failures = [e["log_failure"] for e in logged if "log_failure" in e]
    assert [str(f.value) for f in failures] == ["the backend's database is gone"]  # (its traceback)
