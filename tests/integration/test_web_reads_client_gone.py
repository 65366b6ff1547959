"""Web pages whose client goes away while they are made (a browser tab closed, a crawler's timeout):
an hg file's line-range log walking a long history, an hg annotate, a git log of a path, a git
blame and a git directory of many files ran to their end in a worker for nobody.  Their loops now
look every ``CHECK_EVERY`` steps whether the client has gone, stop, and log one line."""

from __future__ import annotations

import inspect
import os
import shutil
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from twisted.web import http

from backends import git_web
from backends.hg import annotate, blocklines
from protocols import client_gone
from tests import conftest
from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_hg_single_command_client_gone import Hold, _events, _gone_lines, _until

REVISIONS = 1200
WAIT = 30


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``hg``: "mf" changed by each of ``REVISIONS`` changesets; ``g.git``: "f.txt" changed by each
    of ``REVISIONS`` commits (its first line never: blame walks to the root), another file beside
    it, and a directory of 2,000 files made by the first.  Built once for the module, each test
    serving a copy of its own.  hg's default delta chains (up to 1,000 long) had ``debugbuilddag``
    rebuild each new revision of "mf" by patching up to a thousand deltas: 7.3 s of the set-up's
    9.7 s of CPU; chains of at most 64 (``format.maxchainlen``, read where revisions are written)
    give the same 1,200 revisions, read alike by the server, in 2.8 s."""
    base = tmp_path_factory.mktemp("client-gone")
    client = Client(conftest.client_environment(base), base)
    built = base / "built"
    built.mkdir()
    client.hg("init", str(built / "hg"))
    client.hg("--config", "format.maxchainlen=64", "debugbuilddag", "-q", "-R", str(built / "hg"), "-m",
              f"+{REVISIONS}")
    stream = [b"blob\nmark :1\ndata 0\n\n"]
    for n in range(REVISIONS):
        text = b"first\n" + b"".join(b"line %d\n" % (k if k != n % 50 else k + 1000 * n) for k in range(50))
        stream.append(b"commit refs/heads/main\ncommitter t <t@example.com> %d +0000\ndata 2\nc\n" % (1_700_000_000 + n))
        stream.append(b"M 100644 inline f.txt\ndata %d\n%s\n" % (len(text), text))
        stream.append(b"M 100644 inline other.txt\ndata %d\n%d\n\n" % (len(b"%d" % n) + 1, n))
        if n == 0:
            stream += [b"M 100644 :1 dir/%d\n" % k for k in range(2000)]
    work = built / "g.git"
    subprocess.run(["git", "init", "-q", "--bare", str(work)], check=True)
    subprocess.run(["git", "-C", str(work), "fast-import", "--quiet"], input=b"".join(stream), check=True,
                   env={**os.environ, "GIT_CONFIG_NOSYSTEM": "1"})
    subprocess.run(["git", "-C", str(work), "symbolic-ref", "HEAD", "refs/heads/main"], check=True)
    return built


@pytest.fixture
def served(make_server: Callable[..., RunningServer], built: Path) -> RunningServer:
    """An fs server over HTTP of a copy of ``built``'s two repositories."""
    server = make_server("fs", http=[LOOPBACK])
    for name in ("hg", "g.git"):
        shutil.copytree(built / name, server.root / name, symlinks=True)
    return server


def _stopped_early(served: RunningServer, monkeypatch: pytest.MonkeyPatch, owner: Any, name: str,
                   request: str) -> int:
    """Ask for ``request`` on a raw socket, close it once ``owner.name`` is first called (held until
    the server has seen the connection go); how many times it was called in all."""
    hold = Hold()
    calls: list[None] = []
    real = getattr(owner, name)

    def held(*args: Any, **kwargs: Any) -> Any:
        calls.append(None)
        return hold.wait_then(lambda: real(*args, **kwargs))

    static = isinstance(inspect.getattr_static(owner, name), staticmethod)
    monkeypatch.setattr(owner, name, staticmethod(held) if static else held)
    hold.notice(monkeypatch, http.Request, "connectionLost")
    with _events() as events:
        conn = socket.create_connection(("127.0.0.1", served.port("http")))
        conn.sendall(b"GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % request.encode())
        assert hold.started.wait(WAIT), "the page was never made"
        conn.close()
        _until(lambda: bool(_gone_lines(events)), "no log line says the page was stopped")
    assert len(_gone_lines(events)) == 1, _gone_lines(events)
    return len(calls)


def test_an_hg_line_range_log(served: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _stopped_early(served, monkeypatch, blocklines, "range_before", "/hg/json-filelog/tip/mf?linerange=1:3")
    assert calls <= 2 * client_gone.CHECK_EVERY, calls  # was one for each of the 1,200 revisions


def test_an_hg_annotate(served: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _stopped_early(served, monkeypatch, annotate, "hinted_blocks", "/hg/json-annotate/tip/mf")
    assert calls <= 2 * client_gone.CHECK_EVERY, calls


def test_a_git_log_of_a_path(served: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _stopped_early(served, monkeypatch, git_web.GitPages, "_at_path", "/g.git/log/main/dir/0")
    assert calls <= 6 * client_gone.CHECK_EVERY, calls  # (two a commit)


def test_a_git_blame(served: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _stopped_early(served, monkeypatch, git_web.GitPages, "_source", "/g.git/annotate/main/f.txt")
    assert calls <= 2 * client_gone.CHECK_EVERY, calls


def test_a_git_directory_of_many_files(served: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _stopped_early(served, monkeypatch, git_web.GitPages, "_listed_size", "/g.git/file/main/dir")
    assert calls <= 2 * client_gone.CHECK_EVERY, calls
