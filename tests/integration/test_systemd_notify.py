"""systemd's notifications (``sd_notify``) from the real ``twistd hgwire``, read from a unix
datagram socket of the test's own given as ``$NOTIFY_SOCKET``, as systemd gives its own.

hgwire sent nothing: a ``Type=notify`` unit waited for READY=1 until its start timed out, a
reload could not be waited for, and a watchdog could not be used.
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_cli import TWISTD, _free_port
from tests.integration.test_hg_http import HgHttp, _settings, htpasswd  # noqa: F401 - a fixture


class Listener:
    """The test's end of ``$NOTIFY_SOCKET``: every message, as a dict, with when it came."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address if not address.startswith("@") else "\0" + address[1:])
        self.messages: list[tuple[float, dict[str, str]]] = []

    def next(self, timeout: float = 30.0, skip_watchdog: bool = True) -> dict[str, str] | None:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                return None
            assert data.endswith(b"\n"), data
            fields = dict(line.split("=", 1) for line in data.decode().splitlines())
            self.messages.append((time.monotonic(), fields))
            if not (skip_watchdog and fields.keys() == {"WATCHDOG"}):
                return fields

    def wait_for(self, key: str, timeout: float = 30.0) -> dict[str, str]:
        while True:
            fields = self.next(timeout)
            assert fields is not None, f"no {key} within {timeout} s; got {self.messages}"
            if key in fields:
                return fields

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[Listener]:
    listener = Listener(str(tmp_path / "notify.sock"))
    yield listener
    listener.close()


def _start(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    log = open(tmp_path / "server.log", "ab")  # noqa: SIM115 - the process keeps writing it
    with log:
        return subprocess.Popen([TWISTD, "-n", "--pidfile=", "hgwire", "--root", str(tmp_path / "repos"), *args],
                                cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, **env})


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def _connects(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except OSError:
        return False
    return True


def test_ready_watchdog_reload_status_and_stop(notify: Listener, tmp_path: Path, client: Client) -> None:
    git_port, http_port = _free_port(), _free_port()
    repo = tmp_path / "repos" / "app.git"
    subprocess.run(["git", "init", "-q", "--bare", str(repo)], check=True)
    hook = repo / "hooks" / "post-receive"
    hook.write_text(f"#!/bin/sh\nenv > {tmp_path / 'hook-env.txt'}\n")
    hook.chmod(0o755)
    proc = _start(tmp_path, {"NOTIFY_SOCKET": notify.address, "WATCHDOG_USEC": "400000"},
                  "--git", f"tcp:{git_port}:interface=127.0.0.1", "--http", f"tcp:{http_port}:interface=127.0.0.1",
                  "--shutdown-grace", "3")
    try:
        ready = notify.wait_for("READY")
        # READY=1 only once every listener listens: both ports take a connection at once
        assert _connects(git_port) and _connects(http_port)
        assert ready["READY"] == "1" and "MAINPID" not in ready  # (the process systemd started)
        assert ready["STATUS"].startswith("serving 2 listeners; ")
        assert [m for _, m in notify.messages[:-1] if "READY" in m] == []

        watched = time.monotonic()  # the watchdog: every half of WATCHDOG_USEC, from the event loop
        while time.monotonic() < watched + 1.5:
            notify.next(timeout=0.05, skip_watchdog=False)
        pings = [when for when, m in notify.messages if m == {"WATCHDOG": "1"} and when > watched]
        assert len(pings) >= 5, notify.messages
        gaps = sorted(b - a for a, b in itertools.pairwise(pings))
        assert 0.12 < gaps[len(gaps) // 2] < 0.3, gaps

        work = client.cwd / "src"
        client.git("init", "-q", str(work))
        (work / "a.txt").write_text("a\n")
        client.git("add", "a.txt", cwd=work)
        client.git("commit", "-qm", "a", cwd=work)
        client.git("push", "-q", f"git://127.0.0.1:{git_port}/app.git", "main", cwd=work)
        told = (tmp_path / "hook-env.txt").read_text()
        assert "NOTIFY_SOCKET" not in told and "WATCHDOG_USEC" not in told  # no hook talks to systemd for us

        proc.send_signal(signal.SIGHUP)
        before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        reloading = notify.wait_for("RELOADING")
        assert abs(int(reloading["MONOTONIC_USEC"]) - before) < 5_000_000
        assert notify.wait_for("READY")["READY"] == "1"

        # a push held in its pre-receive hook: the status says so, and the stop waits for it
        (repo / "hooks" / "pre-receive").write_text(
            f"#!/bin/sh\ntouch {tmp_path / 'in-hook'}\n"
            f"for i in $(seq 200); do [ -e {tmp_path / 'release'} ] && exit 0; sleep 0.1; done\nexit 1\n")
        (repo / "hooks" / "pre-receive").chmod(0o755)
        (work / "b.txt").write_text("b\n")
        client.git("add", "b.txt", cwd=work)
        client.git("commit", "-qm", "b", cwd=work)
        push = subprocess.Popen(["git", "push", "-q", f"git://127.0.0.1:{git_port}/app.git", "main"], cwd=work,
                                env=client.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while not (tmp_path / "in-hook").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        status = notify.wait_for("STATUS", timeout=10)["STATUS"]  # (every 5 s, when it changed)
        assert status.startswith("serving 2 listeners; 1 push; 1 connection open (git 1, http 0), "), status
        assert status.endswith(", 1 push in hooks"), status
        proc.send_signal(signal.SIGTERM)
        stopping = notify.wait_for("STOPPING")
        assert stopping["STATUS"] == "stopping: no longer listening; 1 open connection get up to 3 s to finish"
        waiting = notify.wait_for("STATUS")["STATUS"]
        assert waiting.startswith("stopping: waiting for 1 connection to finish (1 push), 1 push in hooks "
                                  "(grace 3 s, "), waiting
        (tmp_path / "release").touch()
        assert push.wait(20) == 0, push.communicate()
        assert proc.wait(20) in (0, -signal.SIGTERM)
    finally:
        _stop(proc)


def test_a_start_that_cannot_listen_says_why_and_is_never_ready(notify: Listener, tmp_path: Path) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    proc = _start(tmp_path, {"NOTIFY_SOCKET": notify.address}, "--git", f"tcp:{port}:interface=127.0.0.1")
    try:
        assert proc.wait(30) == 1
        told = notify.wait_for("ERRNO", timeout=5)
        assert told["ERRNO"] == "98"  # EADDRINUSE
        assert told["STATUS"] == f"cannot listen on tcp:{port}:interface=127.0.0.1: Address already in use"
        assert notify.next(timeout=0.5) is None
        assert not [m for _, m in notify.messages if "READY" in m]
    finally:
        _stop(proc)
        taken.close()


def test_an_abstract_socket_and_a_watchdog_for_another_process(tmp_path: Path) -> None:
    listener = Listener(f"@hgwire-test-{os.getpid()}-{time.monotonic_ns()}")
    proc = _start(tmp_path, {"NOTIFY_SOCKET": listener.address, "WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"},
                  "--git", f"tcp:{_free_port()}:interface=127.0.0.1")
    try:
        assert listener.wait_for("READY")["READY"] == "1"
        assert listener.next(timeout=1.0, skip_watchdog=False) is None  # the watchdog watches another process
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
        _stop(proc)
        listener.close()


def test_hooks_of_an_embedded_service_never_see_notify_socket(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path, htpasswd: Path,  # noqa: F811 - the fixture
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A program embedding the service keeps its own ``$NOTIFY_SOCKET`` (it owns its messages to
    systemd), and the hooks still do not get it."""
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "embedder.sock"))
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    server = make_server("fs", git=[LOOPBACK], **_settings(htpasswd))
    repo = server.root / "app.git"
    subprocess.run(["git", "init", "-q", "--bare", str(repo)], check=True)
    hook = repo / "hooks" / "post-receive"
    hook.write_text(f"#!/bin/sh\nenv > {tmp_path / 'git-hook-env.txt'}\n")
    hook.chmod(0o755)
    work = client.cwd / "src"
    client.git("init", "-q", str(work))
    (work / "a.txt").write_text("a\n")
    client.git("add", "a.txt", cwd=work)
    client.git("commit", "-qm", "a", cwd=work)
    client.git("push", "-q", server.git_url("app"), "main", cwd=work)

    hg_repo = server.root / "hooked"
    client.hg("init", str(hg_repo))
    (hg_repo / ".hg" / "hgrc").write_text(f"[hooks]\nchangegroup.env = env > {tmp_path / 'hg-hook-env.txt'}\n")
    hg_work = client.cwd / "hg-src"
    client.hg("init", str(hg_work))
    (hg_work / "a.txt").write_text("a\n")
    client.hg("commit", "-q", "-A", "-R", str(hg_work), "-m", "a")
    HgHttp(server, client).hg("push", "-R", str(hg_work), HgHttp(server, client).push_url("hooked"))

    for told in ((tmp_path / "git-hook-env.txt").read_text(), (tmp_path / "hg-hook-env.txt").read_text()):
        assert "HOME=" in told or "PATH=" in told
        assert "NOTIFY_SOCKET" not in told and "WATCHDOG_USEC" not in told
    assert os.environ["NOTIFY_SOCKET"] == str(tmp_path / "embedder.sock")  # the embedder's own, untouched
