"""What a CI poller's ``hg id -r default http://…`` costs the server beyond the answers themselves."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import gateway.hg_http
from gateway.threads import run_blocking
from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_hg_ssh import built_history, history  # noqa: F401


def test_a_poll_takes_one_worker_turn_per_request_and_answers_as_before(
        make_server: Callable[..., RunningServer], client: Client, history: Path,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    server = make_server("fs", http=[LOOPBACK])
    shutil.copytree(history, server.root / "repo", symlinks=True)
    client.hg("bookmark", "-R", str(server.root / "repo"), "-r", "default", "poll-mark")
    turns: list[str] = []

    def counted(f: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        turns.append(getattr(f, "__name__", repr(f)))
        return run_blocking(f, *args, **kwargs)

    monkeypatch.setattr(gateway.hg_http, "run_blocking", counted)
    served = client.hg("id", "-r", "default", server.url("http", "repo")).stdout
    local = client.hg("id", "-r", "default", "-R", str(server.root / "repo")).stdout
    assert served.split()[0] == local.split()[0] and "poll-mark" in served
    # capabilities, lookup (or batch), listkeys x2: each runs its command in the pool and nothing more
    # (the GET's empty in-memory body was closed there too, a second turn and a reactor wake-up each)
    assert turns and set(turns) == {"_execute"}, turns
