"""``GET /.health``: what a load balancer probes and a monitor reads.  ``GET /`` answered 200 with
ROOT gone, while every clone said "not found"; nothing showed the work in flight."""

from __future__ import annotations

import http.client
import os
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import LOOPBACK, RunningServer, log_events


def _get(server: RunningServer, path: str = "/.health", method: str = "GET") -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port("http"), timeout=20)
    try:
        connection.request(method, path)
        answer = connection.getresponse()
        return answer.status, answer.read().decode()
    finally:
        connection.close()


def test_health_says_ok_with_the_work_in_flight_and_writes_no_access_line(
        make_server: Callable[..., RunningServer]) -> None:
    server = make_server("fs", http=[LOOPBACK], git=[LOOPBACK])
    with log_events() as events:
        status, body = _get(server)
    assert status == 200, body
    lines = body.splitlines()
    assert lines[0] == "ok"
    assert lines[1] == "connections: 1 open (git 0, http 1)"  # (the check's own)
    assert lines[2].startswith("workers: ") and lines[2].endswith(" of 8 busy, 0 waiting")
    assert lines[3].startswith("hooks: 0 pushes")
    assert not [e for e in events if e.get("log_namespace") == "gateway.http.access"]
    assert _get(server, method="HEAD") == (200, "")
    assert _get(server, method="POST")[0] == 405


def test_health_fails_while_root_is_gone_and_recovers(make_server: Callable[..., RunningServer]) -> None:
    server = make_server("fs", http=[LOOPBACK])
    (server.root / "app.git").mkdir()
    away = server.root.with_name("away")
    server.root.rename(away)
    try:
        with log_events() as events:
            status, body = _get(server)
            again = _get(server)
    finally:
        away.rename(server.root)
    assert status == 503, body
    assert body.startswith(f"failing: the repositories' directory {os.path.realpath(server.root)} is gone"), body
    assert again[0] == 503
    warned = [e for e in events if e.get("log_namespace") == "gateway.health"]
    assert len(warned) == 1, warned  # a change of state, not each probe
    assert [e for e in events if e.get("log_namespace") == "gateway.http.access"]
    with log_events() as events:
        assert _get(server)[0] == 200
    assert any("ok again" in str(e.get("log_format")) for e in events)


@pytest.mark.parametrize(("flag", "free", "expected"), [
    (os.ST_RDONLY, 10**12, "is on a read-only file system, so every push fails; remount it read-write"),
    (0, 10 * 1024 * 1024, "has 10 MiB free, so pushes may fail; free some space"),
])
def test_health_fails_on_a_read_only_or_full_file_system(make_server: Callable[..., RunningServer],
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         flag: int, free: int, expected: str) -> None:
    server = make_server("fs", http=[LOOPBACK])
    real = os.statvfs

    class Found:
        def __init__(self, path: Any) -> None:
            found = real(path)
            self.f_flag, self.f_frsize, self.f_bavail = flag, 1, free
            self.f_files, self.f_favail = found.f_files, found.f_favail

    monkeypatch.setattr(os, "statvfs", Found)
    status, body = _get(server)
    assert status == 503 and expected in body.splitlines()[0], body


def test_health_under_read_only_ignores_a_read_only_file_system(make_server: Callable[..., RunningServer],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    server = make_server("fs", http=[LOOPBACK], read_only=True)
    real = os.statvfs

    class ReadOnly:
        def __init__(self, path: Any) -> None:
            found = real(path)
            self.f_flag, self.f_frsize, self.f_bavail = os.ST_RDONLY, found.f_frsize, found.f_bavail
            self.f_files, self.f_favail = found.f_files, found.f_favail

    monkeypatch.setattr(os, "statvfs", ReadOnly)
    assert _get(server)[0] == 200


def test_a_repository_cannot_take_the_health_path(make_server: Callable[..., RunningServer]) -> None:
    server = make_server("fs", http=[LOOPBACK])
    assert _get(server, "/.health/info/refs?service=git-upload-pack")[0] == 404
    assert _get(server, "/.health?cmd=capabilities")[0] == 404


def test_health_fails_while_every_worker_is_held(make_server: Callable[..., RunningServer], reactor: Any,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A storage call that hangs holds its worker; once all are held, every request waits."""
    import threading

    from gateway import health
    from gateway.threads import pool_load, run_blocking

    server = make_server("fs", http=[LOOPBACK])
    monkeypatch.setattr(health, "CHECK_TIMEOUT", 0.5)
    release = threading.Event()
    size = pool_load()[1]
    for _ in range(size + 1):  # every worker, and one more waiting
        reactor.callFromThread(run_blocking, release.wait)
    try:
        deadline = time.monotonic() + 10
        while pool_load()[0] < size and time.monotonic() < deadline:
            time.sleep(0.02)
        status, body = _get(server)
    finally:
        release.set()
    assert status == 503, body
    assert body.startswith(f"failing: the check did not end within 0.5 s in the worker pool ({size} of {size} threads busy"), body
    deadline = time.monotonic() + 10
    while _get(server)[0] != 200:
        assert time.monotonic() < deadline
        time.sleep(0.1)
