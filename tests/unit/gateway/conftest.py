"""Fixtures shared by the gateway unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

import pytest
from twisted.logger import ILogObserver, LogEvent, globalLogPublisher

from gateway import audit


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
