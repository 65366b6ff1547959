"""A client that hangs up over SSH while its command runs: hg over SSH still ran the pull hooks
(``prelistkeys``/``preoutgoing``) on the hooks' threads for nobody and left the answer unclosed.  Now,
as hg over HTTP, an answer for a gone client runs no hook and its stream is closed."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

import gateway.hg_session
from gateway.threads import run_for_hooks
from protocols import hg_commands
from tests.conftest import Client, RunningServer, SshKeys, ssh_server_settings

WAIT = 30  # seconds: a bound only for a broken run; every wait below ends on an event


def test_ssh_pull_hooks_skip_a_gone_client(make_server: Callable[..., RunningServer], client: Client,
                                           ssh_keys: SshKeys, monkeypatch: pytest.MonkeyPatch) -> None:
    server = make_server("fs", **ssh_server_settings(ssh_keys))
    repo = server.root / "repo"
    client.hg("init", str(repo))
    (repo / ".hg" / "hgrc").write_text("[hooks]\nprelistkeys = true\n")
    started, release, gone, answered = (threading.Event() for _ in range(4))
    listkeys = hg_commands.COMMANDS[b"listkeys"]

    def slow_listkeys(repo: Any, args: Any, ctx: Any) -> Any:
        started.set()
        release.wait(WAIT)
        return listkeys.handler(repo, args, ctx)

    monkeypatch.setitem(hg_commands.COMMANDS, b"listkeys", replace(listkeys, handler=slow_listkeys))
    hooks_run: list[Any] = []
    closed: list[Any] = []
    close_stream = gateway.hg_session.close_stream

    def counted_hooks(f: Any, *args: Any, **kwargs: Any) -> Any:
        hooks_run.append(f)
        return run_for_hooks(f, *args, **kwargs)

    def counted_close(response: Any) -> None:
        closed.append(response)
        close_stream(response)

    monkeypatch.setattr(gateway.hg_session, "run_for_hooks", counted_hooks)
    monkeypatch.setattr(gateway.hg_session, "close_stream", counted_close)
    cls = gateway.hg_session.HgServeSession
    lost, answer = cls.connection_lost, cls._answered

    def watched_lost(session: Any) -> None:
        try:
            lost(session)
        finally:
            gone.set()

    def watched_answered(session: Any, *args: Any) -> None:
        try:
            answer(session, *args)
        finally:
            answered.set()

    monkeypatch.setattr(cls, "connection_lost", watched_lost)
    monkeypatch.setattr(cls, "_answered", watched_answered)
    ssh = ssh_keys.command(server.port("ssh")).split()
    proc = subprocess.Popen([*ssh, "alice@127.0.0.1", "hg -R repo serve --stdio"], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert proc.stdin is not None
    try:
        proc.stdin.write(b"listkeys\nnamespace 9\nbookmarks")
        proc.stdin.flush()
        assert started.wait(WAIT), "listkeys never started"
        proc.kill()
        proc.wait()
        assert gone.wait(WAIT), "the server never saw the client go"
        release.set()
        assert answered.wait(WAIT), "the answer never came back from the pool"
    finally:
        release.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert hooks_run == []  # prelistkeys ran for nobody before
    assert len(closed) == 1  # the answer was dropped unclosed before
