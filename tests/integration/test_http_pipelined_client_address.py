"""The client address of each request on one kept-alive connection, the requests pipelined
(``gateway.http.BoundedRequest.getClientAddress``, worked out once a request): a request is known by
its own forwarding headers (from a trusted proxy) or by the peer, never by another request's."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from twisted.logger import LogEvent, globalLogPublisher

from tests.conftest import LOOPBACK, RunningServer


@pytest.fixture
def access() -> Iterator[list[LogEvent]]:
    events: list[LogEvent] = []

    def observe(event: LogEvent) -> None:
        if "access_line" in event and "peer" in event:
            events.append(event)

    globalLogPublisher.addObserver(observe)  # type: ignore[arg-type]
    yield events
    globalLogPublisher.removeObserver(observe)  # type: ignore[arg-type]


def _server(make_server: Callable[..., RunningServer], tmp_path: Path, trusted: str) -> RunningServer:
    policy = tmp_path / f"policy-{trusted.strip(chr(34)).replace('/', '_')}.toml"
    policy.write_text(f'[http]\ntrusted_proxies = [{trusted}]\n\n'
                      '[[repo]]\npattern = "*"\nread = ["*", "anonymous"]\n')
    return make_server("fs", http=[LOOPBACK], config_file=str(policy))


def _pipelined(port: int, forwarded: list[bytes | None]) -> bytes:
    """One request a ``forwarded`` entry (its X-Forwarded-For, or none), all sent at once."""
    requests = b"".join(
        b"GET /nothing-%d?cmd=capabilities HTTP/1.1\r\nHost: h\r\n" % i
        + (b"X-Forwarded-For: " + value + b"\r\n" if value is not None else b"")
        + (b"Connection: close\r\n" if i == len(forwarded) - 1 else b"") + b"\r\n"
        for i, value in enumerate(forwarded))
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(requests)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def _peers(events: list[LogEvent], count: int) -> dict[str, str]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        seen = {str(e["path"]): str(e["peer"]) for e in list(events) if str(e["path"]).startswith("/nothing-")}
        if len(seen) >= count:
            return {path.split("?")[0]: peer.rsplit(":", 1)[0] for path, peer in seen.items()}
        time.sleep(0.05)
    raise AssertionError(f"access lines: {events}")


FORWARDED = [b"203.0.113.9", None, b"198.51.100.4", None]


def test_pipelined_requests_from_a_trusted_proxy_each_have_their_own_client(
        make_server: Callable[..., RunningServer], tmp_path: Path, access: list[LogEvent]) -> None:
    server = _server(make_server, tmp_path, '"127.0.0.1"')
    answer = _pipelined(server.port("http"), FORWARDED)
    assert answer.count(b"HTTP/1.1 ") == len(FORWARDED)
    assert _peers(access, len(FORWARDED)) == {
        "/nothing-0": "203.0.113.9", "/nothing-1": "127.0.0.1", "/nothing-2": "198.51.100.4", "/nothing-3": "127.0.0.1"}


def test_pipelined_requests_from_a_peer_not_trusted_are_all_the_peer_s(
        make_server: Callable[..., RunningServer], tmp_path: Path, access: list[LogEvent]) -> None:
    server = _server(make_server, tmp_path, '"192.0.2.0/24"')
    answer = _pipelined(server.port("http"), FORWARDED)
    assert answer.count(b"HTTP/1.1 ") == len(FORWARDED)
    assert set(_peers(access, len(FORWARDED)).values()) == {"127.0.0.1"}
