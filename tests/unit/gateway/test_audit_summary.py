"""The audit event's one-line summary: every head an hg push moved (not the first alone), a long
list of ids counted, an anonymous git:// pusher named as one (the ``user`` field stays None)."""

from __future__ import annotations

from typing import Any

from twisted.logger import formatEvent, globalLogPublisher

from gateway import audit
from gateway.channel import SessionContext


def _recorded(user: str | None, changes: list[audit.Change]) -> dict[str, Any]:
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)  # type: ignore[arg-type]
    try:
        ctx = SessionContext(backend=None, repo_name="r", transport="hg-ssh", peer="10.0.0.1:5", user=user)  # type: ignore[arg-type]
        audit.record(ctx, "push", changes, "ok")
    finally:
        globalLogPublisher.removeObserver(events.append)  # type: ignore[arg-type]
    [event] = [e for e in events if e.get("audit")]
    return event


def test_every_head_of_a_change_is_in_the_summary() -> None:
    old, new = "a" * 40 + " " + "b" * 40, "a" * 40 + " " + "c" * 40
    line = formatEvent(_recorded("alice", [audit.Change("heads", old, new)]))
    assert f"heads {'a' * 12} {'b' * 12}..{'a' * 12} {'c' * 12} ok" in line, line
    assert " by alice from " in line


def test_a_long_list_of_ids_is_counted_and_an_anonymous_pusher_named() -> None:
    nodes = " ".join(str(i) * 40 for i in range(6))
    event = _recorded(None, [audit.Change("phase public", "", nodes)])
    line = formatEvent(event)
    assert f"..{'0' * 12} {'1' * 12} {'2' * 12} {'3' * 12} (+2 more) ok" in line, line
    assert " by an anonymous user from " in line and event["user"] is None
    assert event["changes"][0]["new"] == nodes


def test_a_phase_of_many_changesets_and_a_long_ref_name_are_bounded() -> None:
    nodes = " ".join(f"{i:040x}" for i in range(audit.KEPT_IDS + 50))
    name = "refs/heads/" + "x" * 5000
    event = _recorded("alice", [audit.Change("phase public", "", nodes), audit.Change(name, "", "a" * 40)])
    assert event["changes"][0]["new"].endswith(f"{audit.KEPT_IDS - 1:040x} (+50 more)")
    assert event["changes"][1]["name"] == name
    line = formatEvent(event)
    assert f"{'x' * 10}… ({len(name)} characters) " in line and len(line) < 1000, line
