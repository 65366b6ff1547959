"""A client that hangs up while the server answers its ``batch`` (a long list of ``listkeys``,
``known``…): the rest of the batch ran in a worker, to the end, for nobody.  A batch that writes
nothing now stops at its next command once the client has gone (over SSH and HTTP); one with a
``pushkey`` runs to its end as before."""

from __future__ import annotations

import socket
import subprocess
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

import gateway.hg_http
import gateway.hg_session
from protocols import hg_commands
from tests.conftest import LOOPBACK, Client, RunningServer, SshKeys, ssh_server_settings

COMMANDS = 40
WAIT = 30  # seconds: a bound only for a broken run; every wait below ends on an event


class SlowBatch:
    """``listkeys`` that holds its first call until released; events for the batch's end and for the
    server's seeing the client go."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self.first = threading.Event()
        self.release = threading.Event()
        self.ended = threading.Event()
        self.gone = threading.Event()
        listkeys = hg_commands.COMMANDS[b"listkeys"]
        batch = hg_commands.COMMANDS[b"batch"]

        def slow_listkeys(repo: Any, args: Any, ctx: Any) -> Any:
            self.calls += 1
            if self.calls == 1:
                self.first.set()
                self.release.wait(WAIT)
            return listkeys.handler(repo, args, ctx)

        def watched_batch(repo: Any, args: Any, ctx: Any) -> Any:
            try:
                return batch.handler(repo, args, ctx)
            finally:
                self.ended.set()

        monkeypatch.setitem(hg_commands.COMMANDS, b"listkeys", replace(listkeys, handler=slow_listkeys))
        monkeypatch.setitem(hg_commands.COMMANDS, b"batch", replace(batch, handler=watched_batch))

    def noticed(self, cls: type, method: str, monkeypatch: pytest.MonkeyPatch) -> None:
        original = getattr(cls, method)

        def wrapped(obj: Any, *args: Any) -> Any:
            try:
                return original(obj, *args)
            finally:
                self.gone.set()

        monkeypatch.setattr(cls, method, wrapped)

    def leave_then_finish(self, hang_up: Callable[[], None]) -> None:
        assert self.first.wait(WAIT), "the batch never started"
        hang_up()
        assert self.gone.wait(WAIT), "the server never saw the client go"
        self.release.set()
        assert self.ended.wait(WAIT), "the batch never ended"


CMDS = ";".join(["listkeys namespace=bookmarks"] * COMMANDS)


def test_http_batch_stops_when_the_client_leaves(make_server: Callable[..., RunningServer], client: Client,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    server = make_server("fs", http=[LOOPBACK])
    client.hg("init", str(server.root / "repo"))
    slow = SlowBatch(monkeypatch)
    slow.noticed(gateway.hg_http.HgHttpCommand, "_request_gone", monkeypatch)
    conn = socket.create_connection(("127.0.0.1", server.port("http")))
    arg = urllib.parse.urlencode({"cmds": CMDS}).encode()
    headers = b"".join(b"X-HgArg-%d: %s\r\n" % (n + 1, arg[at:at + 1000])  # as hg splits them
                       for n, at in enumerate(range(0, len(arg), 1000)))
    conn.sendall(b"GET /repo?cmd=batch HTTP/1.1\r\nHost: localhost\r\nAccept: application/mercurial-0.1\r\n"
                 + headers + b"\r\n")
    slow.leave_then_finish(conn.close)
    assert slow.calls <= 2, slow.calls  # was all 40


def test_ssh_batch_stops_when_the_client_leaves(make_server: Callable[..., RunningServer], client: Client,
                                                ssh_keys: SshKeys, monkeypatch: pytest.MonkeyPatch) -> None:
    server = make_server("fs", **ssh_server_settings(ssh_keys))
    client.hg("init", str(server.root / "repo"))
    slow = SlowBatch(monkeypatch)
    slow.noticed(gateway.hg_session.HgServeSession, "connection_lost", monkeypatch)
    ssh = ssh_keys.command(server.port("ssh")).split()
    proc = subprocess.Popen([*ssh, "alice@127.0.0.1", "hg -R repo serve --stdio"], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert proc.stdin is not None
    cmds = CMDS.encode()
    proc.stdin.write(b"batch\n* 0\ncmds %d\n%s" % (len(cmds), cmds))
    proc.stdin.flush()

    def hang_up() -> None:
        proc.kill()
        proc.wait()

    try:
        slow.leave_then_finish(hang_up)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert slow.calls <= 2, slow.calls  # was all 40
