"""An hg clone over SSH that ends early (the client killed, the network gone) is a client gone in
the log, as it is for git over SSH and hg over HTTP: not a critical traceback and "internal error"."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.logger import LogLevel

from tests.conftest import VENV_BIN, Client, RunningServer, SshKeys, log_events, ssh_server_settings
from tests.integration.test_hg_ssh import HgSsh


def _big_repository(client: Client, repo: Path) -> None:
    """A few MB that compress to nothing less: the clone is still streaming when its client dies."""
    client.hg("init", str(repo))
    for i in range(4):
        (repo / f"blob{i}").write_bytes(os.urandom(2 * 1024 * 1024))
    client.hg("commit", "-q", "-A", "-R", str(repo), "-m", "big")


def _session_logged(events: list[dict[str, Any]], deadline: float) -> dict[str, Any]:
    while time.monotonic() < deadline:
        done = [e for e in events if e.get("proto") == "hg-ssh" and "elapsed_ms" in e]
        if done:
            return done[0]
        time.sleep(0.05)
    raise AssertionError(f"no session line was logged: {events}")


def kill_mid_transfer(clone: subprocess.Popen[bytes], started: Callable[[], bool]) -> None:
    """Stop the client (its own session of processes) once ``started`` says the transfer is under
    way, so the server fills the window and waits, then kill it: a client gone mid-transfer."""
    try:
        deadline = time.monotonic() + 60
        while not started():
            assert clone.poll() is None and time.monotonic() < deadline, "the transfer never started"
            time.sleep(0.02)
        os.killpg(clone.pid, signal.SIGSTOP)
        time.sleep(0.5)
    finally:
        os.killpg(clone.pid, signal.SIGKILL)
        clone.wait(30)


def test_a_killed_hg_ssh_clone_is_a_client_gone_without_a_traceback(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, tmp_path: Path) -> None:
    server = make_server("fs", **ssh_server_settings(ssh_keys))
    hgssh = HgSsh(server, client, ssh_keys.command(server.port("ssh")))
    _big_repository(client, server.root / "big")
    target = tmp_path / "clone"
    with log_events() as events:
        clone = subprocess.Popen([os.path.join(VENV_BIN, "hg"), "--config", f"ui.ssh={hgssh.ssh}", "clone", "-U",
                                  hgssh.url("big"), str(target)], env=client.env, cwd=client.cwd,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        kill_mid_transfer(clone, lambda: any("clone stream" in str(e.get("log_format")) for e in events))
        logged = _session_logged(events, time.monotonic() + 30)
    critical = [e for e in events if e.get("log_level") in (LogLevel.critical, LogLevel.error)]
    assert not critical, critical
    assert "internal error" not in str(logged["outcome"]) and "error" not in str(logged["outcome"]), logged
    assert logged["outcome"] == "client gone", logged
