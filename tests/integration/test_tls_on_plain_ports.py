"""A TLS client at a plain port (``https://`` for an ``http://`` port, a TLS handshake at git://):
answered at once, and logged as what it is."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable
from typing import Any

from tests.conftest import LOOPBACK, Client, RunningServer, log_events


def _client_hello() -> bytes:
    """The first bytes a TLS client sends: its ClientHello."""
    out = ssl.MemoryBIO()
    tls = ssl.create_default_context().wrap_bio(ssl.MemoryBIO(), out, server_hostname="localhost")
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def _answer(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    return answer


def _messages(events: list[dict[str, Any]]) -> list[str]:
    from twisted.logger import formatEvent

    return [formatEvent(e) for e in list(events)]


def test_an_https_url_at_the_plain_http_port_is_answered_at_once(
        make_server: Callable[..., RunningServer], client: Client) -> None:
    """git and hg waited 30 s (``request_timeout``) for their TLS error and the log said "too slow:
    its headers did not arrive in time"; ``hg serve`` answers at once.  Now a 400 says to use
    http:// or the HTTPS port, and the log says what happened."""
    server = make_server("memory", http=[LOOPBACK])
    port = server.port("http")
    with log_events() as events:
        answer = _answer(port, _client_hello())
        git = client.git("ls-remote", f"https://127.0.0.1:{port}/r.git", check=False, timeout=20)
        hg = client.hg("identify", f"https://127.0.0.1:{port}/r", check=False, timeout=20)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert b"this port speaks plain HTTP, not TLS: use an http:// URL" in answer, answer
    assert git.returncode != 0 and "TLS" in git.stderr, git.stderr
    assert hg.returncode != 0 and "SSL" in hg.stderr + hg.stdout, (hg.stdout, hg.stderr)
    logged = [m for m in _messages(events) if "TLS handshake on the plain HTTP listener" in m]
    assert len(logged) == 3 and "(the client used https:// for an http:// port)" in logged[0], logged
    assert not [m for m in _messages(events) if "too slow" in m]


def test_a_tls_handshake_at_the_git_port_is_refused_in_words(make_server: Callable[..., RunningServer]) -> None:
    """The git:// port answered a ClientHello ``ERR bad pkt-line length b'\\x16\\x03\\x01\\x02':
    expected four hex digits`` and logged that bytes repr; now one sentence says what to use."""
    server = make_server("memory", git=[LOOPBACK])
    with log_events() as events:
        answer = _answer(server.port("git"), _client_hello())
        deadline = time.monotonic() + 10
        while not [m for m in _messages(events) if "git-daemon (no request)" in m] and time.monotonic() < deadline:
            time.sleep(0.05)  # (logged as the server sees the close)
    assert answer[4:].startswith(b"ERR this port speaks git://, not TLS"), answer
    assert b"\\x" not in answer
    logged = [m for m in _messages(events) if "git-daemon (no request)" in m]
    assert logged and "not TLS" in logged[-1] and "\\x16" not in logged[-1], logged
