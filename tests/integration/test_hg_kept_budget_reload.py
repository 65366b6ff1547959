"""``[limits] hg_kept_repositories_bytes`` took effect at the next read-only hg HTTP request or hg
SSH session, not when the policy was read: a server serving git only never applied it, and a reload
that lowered it left what the hg engine kept parsed above the new bound until an hg request came.
It now takes effect as the service is built and as each reload puts new rules in force."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.threads import blockingCallFromThread

from backends.hg import kept
from gateway.policy import PolicyReloader
from tests.conftest import LOOPBACK, Client, RunningServer

RULES = '[[repo]]\npattern = "*"\n'


def _reload(reactor: Any, server: RunningServer) -> None:
    reloader = next(s for s in server.service if isinstance(s, PolicyReloader))
    blockingCallFromThread(reactor, reloader.reload)


def test_the_budget_is_applied_as_the_policy_loads_and_reloads(
        reactor: Any, make_server: Callable[..., RunningServer], client: Client, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kept.KEPT, "budget", kept.KEPT.budget)  # (restored after)
    kept.KEPT.budget = kept.KEPT_BYTES
    policy = tmp_path / "policy.toml"
    policy.write_text(RULES + "[limits]\nhg_kept_repositories_bytes = 50000000\n")
    server = make_server("fs", http=[LOOPBACK], git=[LOOPBACK], config_file=str(policy))
    assert kept.KEPT.budget == 50_000_000, "applied as the service starts, before any hg request"

    repo = server.root / "r"
    client.hg("init", str(repo))
    client.hg("debugbuilddag", "-q", "-R", str(repo), "+400")
    assert len(client.hg("id", server.url("http", "r")).stdout.split()[0]) == 12
    held = kept.KEPT.held
    assert held > 100_000, held  # (400 changesets' index, node map and views at least)

    lowered = held // 4
    policy.write_text(RULES + f"[limits]\nhg_kept_repositories_bytes = {lowered}\n")
    _reload(reactor, server)
    assert kept.KEPT.budget == lowered
    assert kept.KEPT.held <= lowered, "a lowered budget lets go at the reload, before any hg request"

    policy.write_text(RULES)  # the key taken out: the default again
    time.sleep(0.01)  # (a new modification time)
    _reload(reactor, server)
    assert kept.KEPT.budget == kept.KEPT_BYTES


def test_a_server_without_a_policy_file_keeps_the_default_budget(
        make_server: Callable[..., RunningServer], monkeypatch: pytest.MonkeyPatch) -> None:
    """(Services built in one process share the engine's budget: one built later without a policy
    file does not keep the bound an earlier one's file set.)"""
    monkeypatch.setattr(kept.KEPT, "budget", 3_000_000)  # (restored after)
    make_server("fs", git=[LOOPBACK])
    assert kept.KEPT.budget == kept.KEPT_BYTES
