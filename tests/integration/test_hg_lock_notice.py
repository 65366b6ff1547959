"""A push that waits for its repository's lock is told so, in hg's words, as hg serve tells it:
``remote: waiting for lock on repository NAME held by process 'N' on host 'H'`` once the wait passes
a second (over SSH as it happens, over HTTP with the push's other output), then ``remote: got lock
after N seconds``."""

from __future__ import annotations

import os
import re
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

from backends.hg.lock import lock_prefix
from tests.conftest import VENV_BIN, Client, RunningServer, SshKeys, ssh_server_settings
from tests.integration.test_hg_http import HgHttp, _settings, htpasswd  # noqa: F401
from tests.integration.test_hg_lock_wait import _repo_with_a_change
from tests.integration.test_hg_ssh import HgSsh


def _waiting_line(pid: int) -> str:
    return f"remote: waiting for lock on repository r held by process '{pid}' on host '{lock_prefix()}'"


def test_a_push_over_ssh_is_told_as_it_waits_for_the_lock(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, tmp_path: Path,
        live_pid: int) -> None:
    """The lock is freed only once the client has shown that it waits: a line sent with the reply
    instead would leave the push waiting until it is refused."""
    server = make_server("fs", **ssh_server_settings(ssh_keys))
    hgssh = HgSsh(server, client, ssh_keys.command(server.port("ssh")))
    work = _repo_with_a_change(client, hgssh.server.root, tmp_path)
    lock = hgssh.server.root / "r" / ".hg" / "store" / "lock"
    os.symlink(f"{lock_prefix()}:{live_pid}", lock)
    push = subprocess.Popen([os.path.join(VENV_BIN, "hg"), "--config", f"ui.ssh={hgssh.ssh}", "push", "-R", str(work),
                             hgssh.url("r")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**client.env, "PYTHONUNBUFFERED": "1"}, cwd=tmp_path)  # each line as written
    killer = threading.Timer(30, push.kill)
    killer.start()
    try:
        assert push.stdout is not None
        said = []
        for line in push.stdout:
            said.append(line)
            if line.startswith("remote: waiting for lock"):
                os.unlink(lock)
        push.wait()
    finally:
        killer.cancel()
    out = "".join(said)
    assert push.returncode == 0, out
    assert _waiting_line(live_pid) + "\n" in said, out
    assert any(line.startswith("remote: got lock after ") and line.endswith(" seconds\n") for line in said), out
    assert out.index("remote: waiting for lock") < out.index("remote: got lock") < out.index("added 1 changesets")
    client.hg("verify", "-q", "-R", str(hgssh.server.root / "r"))


def test_a_push_over_http_is_told_it_waited_with_its_output(
        make_server: Callable[..., RunningServer], client: Client, htpasswd: Path,  # noqa: F811
        tmp_path: Path, live_pid: int) -> None:
    http = HgHttp(make_server("fs", **_settings(htpasswd)), client)
    work = _repo_with_a_change(client, http.server.root, tmp_path)
    lock = http.server.root / "r" / ".hg" / "store" / "lock"
    os.symlink(f"{lock_prefix()}:{live_pid}", lock)
    push = subprocess.Popen([os.path.join(VENV_BIN, "hg"), "--debug", "push", "-R", str(work), http.push_url("r")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**client.env, "PYTHONUNBUFFERED": "1"}, cwd=tmp_path)
    killer = threading.Timer(60, push.kill)
    killer.start()
    try:
        assert push.stdout is not None
        said = []
        for line in push.stdout:  # (the lock freed 3 s after the client sends its bundle, not after its
            said.append(line)  # start: a loaded host once took more than 4 s to get there, and no wait was told)
            if "sending unbundle command" in line:
                threading.Timer(3, os.unlink, (lock,)).start()
        push.wait()
    finally:
        killer.cancel()
    out = "".join(said)
    assert push.returncode == 0, out
    assert _waiting_line(live_pid) + "\n" in out, out
    assert re.search(r"^remote: got lock after [1-9] seconds\n", out, re.MULTILINE), out
    assert out.index("remote: waiting for lock") < out.index("remote: got lock") < out.index("remote: adding changesets")
    client.hg("verify", "-q", "-R", str(http.server.root / "r"))
