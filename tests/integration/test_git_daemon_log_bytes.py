"""The git:// request line's event carries what the connection moved (``bytes_in``, ``bytes_out``),
as the SSH and HTTP lines do: a JSON log (``--logger gateway.logs.json_lines``) said how long a
git:// clone took and nothing of its size, on the transport most anonymous clones use."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from twisted.logger import ILogObserver, LogEvent, globalLogPublisher
from zope.interface import provider

from tests.conftest import LOOPBACK, Client
from tests.integration.test_git_daemon import started_repo


@contextmanager
def _git_daemon_events() -> Iterator[list[LogEvent]]:
    seen: list[LogEvent] = []

    @provider(ILogObserver)
    def observe(event: LogEvent) -> None:
        if event.get("log_namespace") == "gateway.git_daemon" and "outcome" in event:
            seen.append(event)

    globalLogPublisher.addObserver(observe)
    try:
        yield seen
    finally:
        globalLogPublisher.removeObserver(observe)


def test_git_daemon_lines_say_the_bytes_of_a_clone_and_a_push(make_server: Any, client: Client) -> None:
    server = make_server("fs", git=[LOOPBACK])
    url, work = started_repo(server, client, "sized", push=True)
    (work / "big.bin").write_bytes(os.urandom(300_000))
    client.git("add", "big.bin", cwd=work)
    client.git("commit", "-qm", "big", cwd=work)
    with _git_daemon_events() as events:
        client.git("push", "-q", url, "HEAD:main", cwd=work)
        client.git("clone", "-q", url, str(client.cwd / "copy"))
        client.git("ls-remote", server.git_url("missing"), check=False)
        server.settled()
    by_service = {(e["service"], e["repo"]): e for e in events}
    push = by_service[("git-receive-pack", "sized.git")]
    clone = by_service[("git-upload-pack", "sized.git")]
    missing = by_service[("git-upload-pack", "missing.git")]
    assert push["outcome"].startswith("ok") and push["bytes_in"] > 300_000 and push["bytes_out"] > 0, push
    assert clone["outcome"] == "ok" and clone["bytes_out"] > 300_000 and 0 < clone["bytes_in"] < 10_000, clone
    assert missing["bytes_in"] > 0 and missing["bytes_out"] > 0, missing  # its request, and the ERR line
