"""Every HTTP request hgwire answers writes exactly one access line (``gateway.http.access``) and
counts in ``/.metrics``, the ones answered before twisted.web hands them over too.

A body over ``[limits] max_request_body`` (413), one the temporary directory cannot hold (507), a
head that breaks HTTP/1.1 (400, 505), a request line or header too long (414, 431) and headers that
do not arrive within ``request_timeout`` (408) were answered straight on the connection and wrote
no access line, nor counted: an operator reading the access log (or fail2ban, or a log
collector's dashboard of statuses) saw nothing of them, where nginx logs each."""

from __future__ import annotations

import base64
import errno
import os
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bcrypt
import pytest
from twisted.web import http as twisted_http

from gateway import metrics
from tests.conftest import LOOPBACK, Client, RunningServer, log_events

AUTH = b"Authorization: Basic " + base64.b64encode(b"alice:pw") + b"\r\n"
BIG = b"x" * 3000


@pytest.fixture(scope="module")
def refusing(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    where = tmp_path_factory.mktemp("refusing")
    htpasswd = where / "htpasswd"
    htpasswd.write_text("alice:" + bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode() + "\n")
    policy = where / "policy.toml"
    policy.write_text('anonymous_read = true\n[[repo]]\npattern = "*"\nwrite = ["alice"]\n'
                      "[limits]\nmax_request_body = 1000\nrequest_timeout = 1\n")
    return htpasswd, policy


@pytest.fixture
def web(make_server: Callable[..., RunningServer], client: Client, refusing: tuple[Path, Path]) -> RunningServer:
    htpasswd, policy = refusing
    server = make_server("fs", http=[LOOPBACK], htpasswd=str(htpasswd), config_file=str(policy))
    subprocess.run(["git", "init", "-q", "--bare", str(server.root / "a.git")], check=True)
    client.hg("init", str(server.root / "h"))
    return server


def _requests() -> int:
    with metrics._lock:
        return sum(n for (t, _), n in metrics.REQUESTS.items() if t == "http")


def _answer(server: RunningServer, sent: bytes) -> tuple[bytes, list[dict[str, Any]]]:
    """Send ``sent``, read the answer to the connection's close; the access events written."""
    with log_events() as events:
        with socket.create_connection(("127.0.0.1", server.port("http")), timeout=20) as sock:
            sock.sendall(sent)
            answer = b""
            try:
                while data := sock.recv(65536):
                    answer += data
            except ConnectionResetError:  # (closed with the body unread: the answer came first)
                pass
        time.sleep(0.3)  # (a second line, if any, would be written at once)
    return answer, [e for e in events if e.get("log_namespace") == "gateway.http.access"]


GIT_POST = b"POST /a.git/git-upload-pack HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-git-upload-pack-request\r\n"
PUSH = (b"POST /a.git/git-receive-pack HTTP/1.1\r\nHost: x\r\n" + AUTH
        + b"Content-Type: application/x-git-receive-pack-request\r\n")
REFUSALS = [
    ("length", GIT_POST + b"Content-Length: 3000\r\n\r\n" + BIG, 413, "POST", "/a.git/git-upload-pack"),
    ("chunked", GIT_POST + b"Transfer-Encoding: chunked\r\n\r\nbb8\r\n" + BIG + b"\r\n0\r\n\r\n", 413, "POST",
     "/a.git/git-upload-pack"),
    ("push-chunked", PUSH + b"Transfer-Encoding: chunked\r\n\r\nbb8\r\n" + BIG + b"\r\n0\r\n\r\n", 413, "POST",
     "/a.git/git-receive-pack"),
    ("hg", b"POST /h?cmd=lookup HTTP/1.1\r\nHost: x\r\nX-HgArgs-Post: 3000\r\nContent-Length: 3000\r\n\r\n" + BIG,
     413, "POST", "/h?cmd=lookup"),
    ("lfs", (b"PUT /a.git/info/lfs/objects/" + b"a" * 64 + b" HTTP/1.1\r\nHost: x\r\n" + AUTH
             + b"Content-Length: 3000\r\n\r\n" + BIG), 413, "PUT", "/a.git/info/lfs/objects/" + "a" * 64),
    ("no-host", b"GET /a.git/info/refs?service=git-upload-pack HTTP/1.1\r\n\r\n", 400, "GET",
     "/a.git/info/refs?service=git-upload-pack"),
    ("version", b"GET /h?cmd=capabilities HTTP/2.0\r\nHost: x\r\n\r\n", 505, "-", "-"),
    ("long-line", b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "-", "-"),
    ("slow-head", b"GET /h?cmd=capabilities HTTP/1.1\r\nHost: x\r\n", 408, "GET", "/h?cmd=capabilities"),
]


@pytest.mark.parametrize(("sent", "status", "method", "path"), [r[1:] for r in REFUSALS],
                         ids=[r[0] for r in REFUSALS])
def test_a_request_answered_before_it_is_handed_over_writes_one_access_line(
        web: RunningServer, sent: bytes, status: int, method: str, path: str) -> None:
    before = _requests()
    answer, lines = _answer(web, sent)
    assert answer.startswith(b"HTTP/1.1 %d " % status), answer[:200]
    assert len(lines) == 1, [e.get("access_line") for e in lines]
    line = lines[0]
    assert line["status"] == status and line["method"] == method and line["path"] == path, line
    assert f'" {status} ' in line["access_line"] and line["bytes_out"] > 0, line
    assert line["elapsed_ms"] is not None and line["peer"].startswith("127.0.0.1:"), line
    assert _requests() - before == 1


def test_a_body_the_temporary_directory_cannot_hold_writes_one_access_line(
        web: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(length: int | None) -> Any:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(twisted_http, "_getContentFile", full)
    answer, lines = _answer(web, b"POST /h?cmd=lookup HTTP/1.1\r\nHost: x\r\nX-HgArgs-Post: 6\r\n"
                                 b"Content-Length: 6\r\n\r\nkey=ab")
    assert answer.startswith(b"HTTP/1.1 507 "), answer[:200]
    assert [(e["status"], e["path"], e["repo"]) for e in lines] == [(507, "/h?cmd=lookup", "h")]


def test_an_answered_request_writes_one_access_line_naming_its_repository(web: RunningServer) -> None:
    answer, lines = _answer(web, b"GET /h?cmd=capabilities HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    assert [(e["status"], e["repo"]) for e in lines] == [(200, "h")]
    assert lines[0]["bytes_out"] > 0 and lines[0]["elapsed_ms"] >= 0
