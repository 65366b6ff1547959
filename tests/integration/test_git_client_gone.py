"""A git clone that ends early (the client killed mid-transfer) is logged "client gone" on every
transport, as an hg one is: git:// said "client-gone", HTTP and SSH "disconnected", so a search of
the log for clients that left met one transport in three."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from twisted.logger import LogLevel

from tests.conftest import LOOPBACK, Client, RunningServer, SshKeys, log_events, ssh_server_settings
from tests.integration.test_hg_ssh_client_gone import kill_mid_transfer

PROTOS = {"git": "git-daemon", "http": "git-http", "ssh": "git-ssh"}


def _big_repository(client: Client, repo: Path) -> None:
    """8 MB that compress to nothing less: the clone is still streaming when its client stops."""
    work = client.cwd / "big-work"
    client.git("init", "-q", str(work))
    for i in range(4):
        (work / f"blob{i}").write_bytes(os.urandom(2 * 1024 * 1024))
    client.git("add", ".", cwd=work)
    client.git("commit", "-qm", "big", cwd=work)
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(repo)], check=True)


def _session_line(events: list[dict[str, Any]], proto: str, deadline: float) -> dict[str, Any]:
    while time.monotonic() < deadline:
        done = [e for e in events if e.get("proto") == proto and "elapsed_ms" in e and e.get("outcome") != "ok"]
        if done:
            return done[-1]
        time.sleep(0.05)
    raise AssertionError(f"no {proto} line was logged: {events}")


@pytest.mark.parametrize("kind", ["git", "http", "ssh"])
def test_a_killed_git_clone_is_a_client_gone_on_every_transport(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, tmp_path: Path,
        kind: str) -> None:
    settings: dict[str, Any] = ssh_server_settings(ssh_keys) if kind == "ssh" else {kind: [LOOPBACK]}
    server = make_server("fs", **settings)
    _big_repository(client, server.root / "big.git")
    url = (f"ssh://git@127.0.0.1:{server.port('ssh')}/big.git" if kind == "ssh" else server.url(kind, "big.git"))
    env = dict(client.env, GIT_SSH_COMMAND=ssh_keys.command(server.port("ssh"))) if kind == "ssh" else client.env
    target = tmp_path / "clone"
    with log_events() as events:
        clone = subprocess.Popen(["git", "clone", "-q", "--bare", url, str(target)], env=env, cwd=client.cwd,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        kill_mid_transfer(clone, lambda: bool(list((target / "objects" / "pack").glob("tmp_pack_*"))))
        logged = _session_line(events, PROTOS[kind], time.monotonic() + 30)
    assert not [e for e in events if e.get("log_level") in (LogLevel.critical, LogLevel.error)], events
    assert logged["outcome"] == "client gone", logged
