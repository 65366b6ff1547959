"""``gateway.sd_notify``: systemd's notification messages, written by hand (one datagram of
``KEY=VALUE`` lines to ``$NOTIFY_SOCKET``)."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from twisted.internet import task

from gateway import sd_notify
from gateway.sd_notify import Notifier, message, socket_address, watchdog_interval


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2)
    yield path, sock
    sock.close()


def _read(sock: socket.socket) -> dict[str, str]:
    data = sock.recv(4096).decode()
    assert data.endswith("\n")
    return dict(line.split("=", 1) for line in data.splitlines())


def test_socket_addresses() -> None:
    assert socket_address("/run/systemd/notify") == "/run/systemd/notify"
    assert socket_address("@/org/freedesktop/systemd1/notify/123") == b"\0/org/freedesktop/systemd1/notify/123"
    assert socket_address(None) is None and socket_address("") is None
    assert socket_address("vsock:2:1234") is None and socket_address("relative/path") is None


def test_messages_are_key_value_lines() -> None:
    assert message({"READY": 1, "STATUS": "serving 3 listeners"}) == b"READY=1\nSTATUS=serving 3 listeners\n"
    assert message({"STATUS": "two\nlines"}) == b"STATUS=two lines\n"  # a value cannot hold a line break


def test_watchdog_interval_is_half_of_watchdog_usec_for_this_process() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}, 42) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "42"}, 42) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "41"}, 42) is None
    assert watchdog_interval({}, 42) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}, 42) is None
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}, 42) is None


def test_the_variables_leave_the_environment(receiver: tuple[str, socket.socket]) -> None:
    path, _ = receiver
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "4000000", "WATCHDOG_PID": str(os.getpid()), "PATH": "/bin"}
    notifier = Notifier.from_environment(env)
    assert env == {"PATH": "/bin"}  # no hook or git command of ours sees them
    assert notifier.address == path and notifier.watchdog == 2.0
    assert not Notifier.from_environment({}).enabled


def test_ready_reload_stop_and_failure(receiver: tuple[str, socket.socket]) -> None:
    path, sock = receiver
    notifier = Notifier(path)
    notifier.ready("serving 2 listeners")
    assert _read(sock) == {"READY": "1", "STATUS": "serving 2 listeners"}
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    notifier.reloading("reloading")
    told = _read(sock)
    assert told["RELOADING"] == "1" and told["STATUS"] == "reloading"
    assert before <= int(told["MONOTONIC_USEC"]) <= before + 2_000_000
    notifier.stopping("stopping: waiting for 2 connections to finish (grace 30 s, 30 s left)")
    assert _read(sock) == {"STOPPING": "1", "STATUS": "stopping: waiting for 2 connections to finish (grace 30 s, "
                                                      "30 s left)"}
    notifier.failed("cannot listen on tcp:22: Permission denied", 13)
    assert _read(sock) == {"STATUS": "cannot listen on tcp:22: Permission denied", "ERRNO": "13"}


def test_mainpid_when_this_is_not_the_process_systemd_started(receiver: tuple[str, socket.socket]) -> None:
    path, sock = receiver
    Notifier(path, started_pid=1).ready("serving")  # twistd without -n forked away from it
    assert _read(sock) == {"READY": "1", "MAINPID": str(os.getpid()), "STATUS": "serving"}


def test_status_is_sent_when_it_changes(receiver: tuple[str, socket.socket]) -> None:
    path, sock = receiver
    notifier = Notifier(path)
    notifier.status("serving 1 listener; 0 connections open")
    notifier.status("serving 1 listener; 0 connections open")
    notifier.status("serving 1 listener; 1 connection open")
    assert _read(sock)["STATUS"].endswith("0 connections open")
    assert _read(sock)["STATUS"].endswith("1 connection open")
    sock.settimeout(0.1)
    with pytest.raises(TimeoutError):
        sock.recv(4096)


def test_a_full_queue_drops_pings_without_blocking(receiver: tuple[str, socket.socket],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    path, _ = receiver  # nobody reads: the queue fills (net.unix.max_dgram_qlen)
    notifier = Notifier(path)
    monkeypatch.setattr(sd_notify, "STATE_SEND_WAIT", 0.001)  # (a ping made to wait would wait this, not 1 s)
    waits: list[float | None] = []  # what each send's socket may wait (the wall clock: a loaded host's)
    settimeout = socket.socket.settimeout

    def recorded(sock: socket.socket, value: float | None) -> None:
        waits.append(value)
        settimeout(sock, value)

    monkeypatch.setattr(socket.socket, "settimeout", recorded)
    sent = [notifier.send({"WATCHDOG": 1}) for _ in range(2000)]
    assert sent[0] and not sent[-1]
    assert len(waits) == 2000 and set(waits) == {0.0}, set(waits)


def test_a_missing_socket_is_logged_once(tmp_path: Path) -> None:
    notifier = Notifier(str(tmp_path / "gone"))
    assert not notifier.send({"READY": 1})
    assert not notifier.send({"READY": 1})


def test_the_watchdog_pings_from_the_loop(receiver: tuple[str, socket.socket]) -> None:
    path, sock = receiver
    clock = task.Clock()
    notifier = Notifier(path, watchdog=5.0)
    notifier.start_watchdog(clock)
    assert _read(sock) == {"WATCHDOG": "1"}
    clock.advance(5.0)
    clock.advance(5.0)
    assert [_read(sock), _read(sock)] == [{"WATCHDOG": "1"}] * 2
    notifier.stop_watchdog()
    clock.advance(10.0)
    sock.settimeout(0.1)
    with pytest.raises(TimeoutError):
        sock.recv(4096)


def test_without_a_socket_nothing_is_sent() -> None:
    notifier = Notifier(None, watchdog=5.0)
    assert notifier.watchdog is None and not notifier.send({"READY": 1})
    notifier.ready("serving")  # (no error)
