"""A repository the server may not read (copied in as root, served as another user) answers 500 over
HTTP with one line logged and no traceback, as git:// and SSH refuse it; ``/.metrics`` counted it as
``internal`` (a traceback's kind, what an operator alerts on as a bug) where git:// and SSH count
``failed``.  It now counts ``failed`` over HTTP too."""

from __future__ import annotations

import http.client
import os
from typing import Any

import pytest

from backends.interfaces import Kind
from tests.conftest import LOOPBACK, Client
from tests.integration.test_status_metrics import _metrics


def _status(port: int, path: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        connection.request("GET", path)
        answer = connection.getresponse()
        answer.read()
        return answer.status
    finally:
        connection.close()


def test_an_unreadable_repository_over_http_counts_failed_not_internal(
        make_server: Any, client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    server = make_server("fs", git=[LOOPBACK], http=[LOOPBACK])
    server.backend.create("locked.git", Kind.GIT)
    server.backend.create("hglocked", Kind.HG)
    real_access = os.access
    locked = (str(server.root / "locked.git"), str(server.root / "hglocked"))

    def access(path: Any, mode: int, *args: Any, **kwargs: Any) -> bool:
        return not str(path).startswith(locked) and real_access(path, mode, *args, **kwargs)

    failed, internal = ('hgwire_errors_total{transport="http",kind="failed"}',
                        'hgwire_errors_total{transport="http",kind="internal"}')
    git_failed = 'hgwire_errors_total{transport="git",kind="failed"}'
    before = _metrics(server)
    port = server.port("http")
    with monkeypatch.context() as patched:
        patched.setattr(os, "access", access)
        assert _status(port, "/locked.git/info/refs?service=git-upload-pack") == 500
        assert _status(port, "/hglocked?cmd=capabilities") == 500
        refused = client.git("ls-remote", server.git_url("locked"), check=False)
        server.settled()
    assert "cannot be read by the server" in refused.stderr, refused.stderr
    after = _metrics(server)
    assert after[git_failed] - before.get(git_failed, 0) == 1  # git:// counts it so
    assert after.get(failed, 0) - before.get(failed, 0) == 2, (before, after)
    assert after.get(internal, 0) == before.get(internal, 0), (before, after)
