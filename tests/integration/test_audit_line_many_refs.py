"""A push naming thousands of refs or bookmarks (``git push --mirror`` of a mirror) wrote one audit
line naming every one of them: 100,000 refs made a line of 5.3 MB, which journald splits (past
48 KB) and syslog cuts.  The line now names the first ``audit.SUMMARY_CHANGES`` and says how many
more; the event's ``changes`` keeps the first ``audit.KEPT_CHANGES`` and ``changes_total`` counts
them all."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.logger import formatEvent

from backends.interfaces import Kind
from gateway import audit
from tests.conftest import LOOPBACK, Client, RunningServer, SshKeys, log_events, ssh_server_settings
from tests.integration.test_git_daemon import commit

REFS = 3_000
BOUND = 8_192
"""rsyslog's default message size: the line stays under it."""


def _pushes(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e.get("log_namespace") == audit.AUDIT_NAMESPACE and e["action"] == "push"]


def test_a_git_mirror_push_of_thousands_of_refs_writes_a_bounded_line(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> None:
    server = make_server("fs", git=[LOOPBACK])
    server.backend.create("moved", Kind.GIT)
    work = tmp_path / "old"
    client.git("init", "-q", "-b", "main", str(work))
    commit(client, work, "f.txt", "one\n", "first")
    lines = "".join(f"create refs/tags/build-{i:05d} HEAD\n" for i in range(REFS))
    client.git("update-ref", "--stdin", cwd=work, input=lines.encode())
    with log_events() as events:
        client.git("push", "-q", "--mirror", server.git_url("moved"), cwd=work, timeout=600)
        server.settled()
    [event] = _pushes(events)
    line = formatEvent(event)
    assert len(line.encode()) < BOUND, len(line)
    assert line.rstrip(")").endswith(f", and {REFS + 1 - audit.SUMMARY_CHANGES} more"), line[-200:]
    assert event["changes_total"] == REFS + 1 and event["changes_refused"] == 0
    assert len(event["changes"]) == audit.KEPT_CHANGES


def test_an_hg_push_of_thousands_of_bookmarks_writes_a_bounded_line(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, tmp_path: Path) -> None:
    server = make_server("fs", **ssh_server_settings(ssh_keys))
    client.hg("init", str(server.root / "h"))
    work = tmp_path / "hw"
    client.hg("init", str(work))
    (work / "a").write_text("a\n")
    client.hg("commit", "-qAm", "a", cwd=work)
    names = [f"b{i:05d}" for i in range(REFS)]
    client.hg("bookmark", "-r", ".", *names, cwd=work)
    with log_events() as events:
        client.hg("push", "-q", "--config", f"ui.ssh={ssh_keys.command(server.port('ssh'))}",
                  *(f"--bookmark={name}" for name in names), f"ssh://x@127.0.0.1:{server.port('ssh')}/h", cwd=work,
                  timeout=600)
        server.settled()
    [event] = _pushes(events)
    line = formatEvent(event)
    assert len(line.encode()) < BOUND, len(line)
    assert line.endswith(f", and {REFS + 2 - audit.SUMMARY_CHANGES} more)"), line[-200:]  # (heads and phase too)
    assert event["changes_total"] == REFS + 2 and len(event["changes"]) == audit.KEPT_CHANGES
