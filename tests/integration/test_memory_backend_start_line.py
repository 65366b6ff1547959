"""``--backend memory`` said at the start that it served the repositories under ROOT, a directory
it does not use (nor make), and nothing of what an operator trying it meets next: it starts empty,
and without ``--create-on-push`` a git push to it is told the repository is not found."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import LOOPBACK, RunningServer, log_events


def _start_lines(make_server: Callable[..., RunningServer], **settings: Any) -> list[dict[str, Any]]:
    with log_events() as events:
        make_server("memory", git=[LOOPBACK], **settings)
    return [e for e in events if e.get("log_namespace") == "gateway.service"]


def test_the_memory_backend_says_where_its_repositories_are_and_how_one_is_made(
        make_server: Callable[..., RunningServer]) -> None:
    lines = _start_lines(make_server)
    texts = [str(e.get("log_format")) for e in lines]
    assert any(t.startswith("hgwire serves repositories kept in memory, lost when it stops") for t in texts), texts
    assert not any("under {root}" in t for t in texts), texts
    warned = [e for e in lines if "--create-on-push" in str(e.get("log_format"))]
    assert len(warned) == 1 and warned[0]["log_level"].name == "warn", texts


@pytest.mark.parametrize("backend", ["memory", "fs"])
def test_no_warning_where_a_push_can_make_a_repository(make_server: Callable[..., RunningServer],
                                                       backend: str) -> None:
    with log_events() as events:
        make_server(backend, git=[LOOPBACK], create_on_push=backend == "memory")
    assert not [e for e in events if "--create-on-push" in str(e.get("log_format"))]
