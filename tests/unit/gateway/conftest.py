"""Fixtures shared by the gateway unit tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import cast

import pytest
from twisted.logger import ILogObserver, LogEvent, globalLogPublisher

from gateway import audit
from gateway.auth import Access, Authorizer


@pytest.fixture
def events() -> Iterator[list[LogEvent]]:
    """The audit log events emitted while the test runs."""
    seen: list[LogEvent] = []

    def observe(event: LogEvent) -> None:
        if event.get("log_namespace") == audit.AUDIT_NAMESPACE:
            seen.append(event)

    observer = cast(ILogObserver, observe)
    globalLogPublisher.addObserver(observer)
    yield seen
    globalLogPublisher.removeObserver(observer)


class Counted:
    """What the ``counted`` fixture saw."""

    def __init__(self) -> None:
        self.listed: list[str] = []
        self.checked: list[str] = []


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counted]:
    """The directories the ``fs`` backend lists and the names the access rules are asked of."""
    seen = Counted()
    scandir, allows = os.scandir, Authorizer.allows

    def listing(path: str) -> object:
        seen.listed.append(path)
        return scandir(path)

    def checking(self: Authorizer, user: str | None, repo: str, transport: str, access: Access) -> bool:
        seen.checked.append(repo)
        return allows(self, user, repo, transport, access)

    monkeypatch.setattr(os, "scandir", listing)
    monkeypatch.setattr(Authorizer, "allows", checking)
    yield seen
