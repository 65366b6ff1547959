"""A connection that never sends its request is logged in words an operator reads: git://
``git-daemon (no request) from HOST:PORT``, not ``git-daemon None None``; an HTTP request too slow
names its peer ``HOST:PORT``, not ``IPv4Address(type='TCP', …)``."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.logger import formatEvent, globalLogPublisher

from tests.conftest import LOOPBACK, RunningServer
from tests.integration.test_limits import policy_with, recv_all


def _said(seen: list[dict[str, Any]], text: str) -> list[str]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = [formatEvent(e) for e in list(seen)]
        if found := [line for line in lines if text in line]:
            return found
        time.sleep(0.05)
    return [formatEvent(e) for e in seen]


def test_a_silent_git_connection_and_a_slow_http_request_are_logged_in_plain_words(
        make_server: Callable[..., RunningServer], tmp_path: Path) -> None:
    server = make_server("memory", git=[LOOPBACK], http=[LOOPBACK],
                         config_file=policy_with(tmp_path, "request_timeout = 0.5\n"))
    seen: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(seen.append)  # type: ignore[arg-type]
    try:
        with socket.create_connection(("127.0.0.1", server.port("git")), timeout=10) as sock:
            recv_all(sock)  # says nothing until it is dropped
            port = sock.getsockname()[1]
        with socket.create_connection(("127.0.0.1", server.port("http")), timeout=10) as web:
            web.sendall(b"GET /r.git/info/refs HTTP/1.1\r\n")
            assert recv_all(web).startswith(b"HTTP/1.1 408 ")
            web_port = web.getsockname()[1]
        git_lines = _said(seen, f"127.0.0.1:{port}:")
        http_lines = _said(seen, "too slow")
    finally:
        globalLogPublisher.removeObserver(seen.append)  # type: ignore[arg-type]
    assert any(line.startswith(f"git-daemon (no request) from 127.0.0.1:{port}: error: request timeout")
               for line in git_lines), git_lines
    assert not any("None" in line for line in git_lines), git_lines
    assert f"HTTP request from 127.0.0.1:{web_port} too slow" in "".join(http_lines), http_lines
