"""One long hg command whose client goes away while it is answered (Ctrl-C, a CI job cancelled, a
network cut): a ``listkeys`` of 100,000 bookmarks, a ``known`` of thousands of nodes, a clone's
changegroup, a web page of a long log ran to their end in a worker for nobody.  Their loops now
look every ``CHECK_EVERY`` steps whether the client has gone, stop, and log one line; the server
serves the next request in full, and a stopped clone leaves nothing kept."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from twisted.logger import globalLogPublisher
from twisted.web import http

import gateway.hg_http
import gateway.hg_session
from backends.hg import repository as hg_repository
from backends.hg import web as hg_web
from gateway.shared_streams import SHARED
from protocols import client_gone, hg_commands
from protocols.errors import ClientGone
from tests.conftest import LOOPBACK, VENV_BIN, Client, RunningServer, SshKeys, ssh_server_settings
from tests.integration.test_hg_ssh import HgSsh

REVISIONS = 1500
BOOKMARKS = 100_000
WAIT = 30  # seconds: a bound for a broken run only; every wait below ends on an event


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


@contextmanager
def _events() -> Iterator[list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)  # type: ignore[arg-type]
    try:
        yield events
    finally:
        globalLogPublisher.removeObserver(events.append)  # type: ignore[arg-type]


def _gone_lines(events: list[dict[str, Any]]) -> list[str]:
    """The log's "client gone: …" lines that say what was stopped."""
    lines = []
    for event in list(events):
        text = " ".join(str(event.get(field, "")) for field in ("outcome", "reason"))
        if "client gone" in text or "was stopped" in text:
            lines.append(text)
    return [line for line in lines if "was stopped" in line]


class Hold:
    """The first call of ``target`` waits (in the worker) until the server has seen its client go,
    then runs; what it raised is kept."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.gone = threading.Event()
        self.ended = threading.Event()
        self.outcome: BaseException | None = None

    def notice(self, monkeypatch: pytest.MonkeyPatch, cls: type, method: str) -> None:
        original = getattr(cls, method)

        def wrapped(obj: Any, *args: Any) -> Any:
            try:
                return original(obj, *args)
            finally:
                self.gone.set()

        monkeypatch.setattr(cls, method, wrapped)

    def wait_then(self, run: Callable[[], Any]) -> Any:
        if self.started.is_set():
            return run()
        self.started.set()
        self.gone.wait(WAIT)
        time.sleep(0.05)  # the flag the loops read is set by the same reactor turn, just after
        try:
            return run()
        except BaseException as exc:
            self.outcome = exc
            raise
        finally:
            self.ended.set()

    def handler(self, monkeypatch: pytest.MonkeyPatch, name: bytes) -> None:
        cmd = hg_commands.COMMANDS[name]
        monkeypatch.setitem(hg_commands.COMMANDS, name, replace(
            cmd, handler=lambda repo, args, ctx: self.wait_then(lambda: cmd.handler(repo, args, ctx))))


@pytest.fixture
def served(make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys,
           tmp_path: Path) -> Iterator[RunningServer]:
    """An HTTP and SSH server with ``repo``, ``REVISIONS`` changesets, and ``marks``, one changeset
    and ``BOOKMARKS`` bookmarks on it (apart: hg's client takes minutes to clone so many)."""
    policy = tmp_path / "policy.toml"  # clones are kept: a stopped one must not be
    policy.write_text("[clone_cache]\nmax_bytes = 67108864\nmax_age = 600\n")
    server = make_server("fs", http=[LOOPBACK], config_file=str(policy), **ssh_server_settings(ssh_keys))
    repo = server.root / "repo"
    client.hg("init", str(repo))
    client.hg("debugbuilddag", "-q", "-R", str(repo), f"+{REVISIONS}")
    marks = server.root / "marks"
    client.hg("init", str(marks))
    client.hg("debugbuilddag", "-q", "-R", str(marks), "+1")
    tip = client.hg("log", "-R", str(marks), "-r", "tip", "-T", "{node}").stdout.strip()
    (marks / ".hg" / "bookmarks").write_text("".join(f"{tip} mark-{i:06d}\n" for i in range(BOOKMARKS)))
    SHARED.forget_kept()
    yield server
    SHARED.forget_kept()


def test_http_listkeys_of_many_bookmarks(served: RunningServer, client: Client,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    hold = Hold()
    hold.handler(monkeypatch, b"listkeys")
    hold.notice(monkeypatch, gateway.hg_http.HgHttpCommand, "_request_gone")
    with _events() as events:
        conn = socket.create_connection(("127.0.0.1", served.port("http")))
        conn.sendall(b"GET /marks?cmd=listkeys HTTP/1.1\r\nHost: localhost\r\nAccept: application/mercurial-0.1\r\n"
                     b"X-HgArg-1: namespace=bookmarks\r\n\r\n")
        assert hold.started.wait(WAIT), "listkeys never started"
        conn.close()
        assert hold.ended.wait(WAIT), "listkeys never ended"
        assert isinstance(hold.outcome, ClientGone), hold.outcome
        _until(lambda: bool(_gone_lines(events)), "no log line says the listkeys was stopped")
    assert len(_gone_lines(events)) == 1, _gone_lines(events)
    listed = client.hg("debugpushkey", served.url("http", "marks"), "bookmarks").stdout.splitlines()
    assert len(listed) == BOOKMARKS  # the next one gets them all


def test_ssh_known_of_many_nodes(served: RunningServer, client: Client, ssh_keys: SshKeys,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    hold = Hold()
    hold.handler(monkeypatch, b"known")
    hold.notice(monkeypatch, gateway.hg_session.HgServeSession, "connection_lost")
    ssh = ssh_keys.command(served.port("ssh")).split()
    proc = subprocess.Popen([*ssh, "alice@127.0.0.1", "hg -R repo serve --stdio"], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert proc.stdin is not None
    nodes = b" ".join(os.urandom(20).hex().encode() for _ in range(5000))
    with _events() as events:
        proc.stdin.write(b"known\n* 0\nnodes %d\n%s" % (len(nodes), nodes))
        proc.stdin.flush()
        try:
            assert hold.started.wait(WAIT), "known never started"
        finally:
            proc.kill()
            proc.wait()
        assert hold.ended.wait(WAIT), "known never ended"
        assert isinstance(hold.outcome, ClientGone), hold.outcome
        _until(lambda: bool(_gone_lines(events)), "no log line says the known was stopped")
    assert len(_gone_lines(events)) == 1, _gone_lines(events)


@pytest.mark.parametrize("transport", ["http", "ssh"])
def test_a_clone_killed_while_its_changegroup_is_made(served: RunningServer, client: Client, ssh_keys: SshKeys,
                                                      tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      transport: str) -> None:
    hold = Hold()
    emitted: list[None] = []
    group = hg_repository._Emitter.group

    def held_group(emitter: Any, *args: Any) -> Iterator[Any]:
        deltas = hold.wait_then(lambda: group(emitter, *args))
        for delta in deltas:
            emitted.append(None)
            yield delta

    monkeypatch.setattr(hg_repository._Emitter, "group", held_group)
    if transport == "http":
        hold.notice(monkeypatch, gateway.hg_http.HgHttpCommand, "_request_gone")
        url, extra = served.url("http", "repo"), []
    else:
        hold.notice(monkeypatch, gateway.hg_session.HgServeSession, "connection_lost")
        hgssh = HgSsh(served, client, ssh_keys.command(served.port("ssh")))
        url, extra = hgssh.url("repo"), ["--config", f"ui.ssh={hgssh.ssh}"]
    with _events() as events:
        clone = subprocess.Popen([os.path.join(VENV_BIN, "hg"), *extra, "clone", "-U", url, str(tmp_path / "gone")],
                                 env=client.env, cwd=client.cwd, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            assert hold.started.wait(WAIT), "the changegroup was never made"
        finally:
            os.killpg(clone.pid, signal.SIGKILL)
            clone.wait()
        _until(lambda: bool(_gone_lines(events)), "no log line says the clone's changegroup was stopped")
    assert len(_gone_lines(events)) == 1, _gone_lines(events)
    assert len(emitted) <= 2 * client_gone.CHECK_EVERY, len(emitted)  # was every one of the 1,500
    _until(lambda: SHARED.running() == 0, "the stopped clone still runs")
    assert SHARED.kept() == 0  # nothing half-made is kept

    later = tmp_path / "later"  # the next clone is whole
    client.hg(*extra, "clone", "-q", "-U", url, str(later))
    assert client.hg("log", "-R", str(later), "-r", "tip", "-T", "{rev}").stdout == str(REVISIONS - 1)


def test_web_log_page(served: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    hold = Hold()
    entries: list[None] = []
    log_fields = hg_web._Changesets.log_fields

    def held_fields(info: Any, *args: Any) -> Any:
        entries.append(None)
        return hold.wait_then(lambda: log_fields(info, *args))

    monkeypatch.setattr(hg_web._Changesets, "log_fields", held_fields)
    hold.notice(monkeypatch, http.Request, "connectionLost")
    with _events() as events:
        conn = socket.create_connection(("127.0.0.1", served.port("http")))
        conn.sendall(b"GET /repo/json-shortlog?revcount=20000 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert hold.started.wait(WAIT), "the page was never made"
        conn.close()
        _until(lambda: bool(_gone_lines(events)), "no log line says the page was stopped")
    assert len(_gone_lines(events)) == 1, _gone_lines(events)
    assert len(entries) <= 2 * client_gone.CHECK_EVERY, len(entries)  # was all 1,500
