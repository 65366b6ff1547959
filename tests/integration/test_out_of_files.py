"""Out of open files (EMFILE) where a request starts: each client is refused in its own protocol
with a sentence to retry later, the operator gets one line saying to raise the limit, and nothing
is logged as a critical traceback or an "internal error".  The error is injected where the
repository or the authorized keys file is opened (the test process keeps its own limit)."""

from __future__ import annotations

import errno
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import pytest
from twisted.logger import LogLevel

from gateway.auth import AuthorizedKeys
from tests.conftest import LOOPBACK, Client, RunningServer, SshKeys, log_events, ssh_server_settings
from tests.integration.test_hg_ssh import HgSsh

TOLD = "the server has too many open files right now; try again later"


def _out_of_files(*_: object, **__: object) -> NoReturn:
    raise OSError(errno.EMFILE, "Too many open files", "/srv/repos/r/objects/pack")


def _logged(events: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """The events whose format holds ``text``, once one is there (the server logs on its own thread)."""
    deadline = time.monotonic() + 10
    while not (found := [e for e in events if text in str(e.get("log_format"))]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert found, events
    return found


def _no_traceback_and_advice(events: list[dict[str, Any]]) -> None:
    critical = [e for e in events if e.get("log_level") in (LogLevel.critical, LogLevel.error)]
    assert not critical, critical
    assert any("LimitNOFILE" in str(e.get("advice", "")) for e in events), events
    assert not any("internal error" in str(e.get("outcome", "")) for e in events), events


def test_a_git_clone_out_of_files_is_told_to_try_again(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    server = make_server("fs", git=[LOOPBACK], http=[LOOPBACK])
    client.git("init", "-q", "--bare", str(server.root / "r.git"))
    monkeypatch.setattr(server.backend, "open", _out_of_files)
    with log_events() as events:
        daemon = client.git("clone", server.git_url("r.git"), str(tmp_path / "a"), check=False)
        web = client.git("clone", server.url("http", "r.git"), str(tmp_path / "b"), check=False)
    assert daemon.returncode != 0 and f"remote error: {TOLD}" in daemon.stderr, daemon.stderr
    assert web.returncode != 0 and "503" in web.stderr, web.stderr
    _no_traceback_and_advice(events)


def test_an_hg_ssh_clone_out_of_files_is_told_to_try_again(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    server = make_server("fs", **ssh_server_settings(ssh_keys))
    hgssh = HgSsh(server, client, ssh_keys.command(server.port("ssh")))
    client.hg("init", str(server.root / "r"))
    monkeypatch.setattr(server.backend, "open", _out_of_files)
    with log_events() as events:
        cloned = hgssh.hg("clone", hgssh.url("r"), str(tmp_path / "c"), check=False)
    assert cloned.returncode != 0 and f"abort: {TOLD}" in cloned.stdout + cloned.stderr, cloned
    _no_traceback_and_advice(events)


def test_an_ssh_login_out_of_files_is_told_to_try_again_and_logged_as_such(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The key file could not be read: the client hears why instead of "Permission denied
    (publickey)", and the login line names the key and the reason, not "no public key offered"."""
    server = make_server("fs", **ssh_server_settings(ssh_keys))
    monkeypatch.setattr(AuthorizedKeys, "decide", _out_of_files)
    with log_events() as events:
        login = subprocess.run([*ssh_keys.command(server.port("ssh")).split(), "-o", "LogLevel=INFO",
                                "alice@127.0.0.1", "git-upload-pack 'r.git'"], check=False, env=client.env,
                               capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        refusals = _logged(events, "SSH login refused")
    assert login.returncode != 0 and TOLD in login.stderr, login.stderr
    assert "Permission denied" not in login.stderr, login.stderr
    _no_traceback_and_advice(events)
    why = str(refusals[0]["why"])
    assert "no public key offered" not in why and "authorized keys file could not be read" in why, why
