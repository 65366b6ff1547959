"""An HTTP request whose client leaves while it sends the body (``Content-Length: N`` and fewer
bytes, or a chunked body cut before its last chunk) is logged and counted as a git:// or SSH
request its client left is.

twisted.web spools such a body before anything runs, so a clone's or a pull's request cut there
wrote no line and counted nothing in ``/.metrics``; the pushes read as they arrive (git's pack,
hg's bundle, a Git LFS upload) said so, but an hg push's line counted as ``failed`` and an LFS
upload's not at all, and no request an HTTP client left was in ``hgwire_requests_total``."""

from __future__ import annotations

import base64
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from gateway import metrics
from tests.conftest import LOOPBACK, Client, RunningServer, log_events

AUTH = b"Authorization: Basic " + base64.b64encode(b"alice:pw") + b"\r\n"
ZERO = b"0" * 40


@pytest.fixture
def web(make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> RunningServer:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("alice:" + bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode() + "\n")
    server = make_server("fs", http=[LOOPBACK], htpasswd=str(htpasswd), allow_push_over_http=True)
    subprocess.run(["git", "init", "-q", "--bare", str(server.root / "a.git")], check=True)
    client.hg("init", str(server.root / "h"))
    return server


def _counts() -> tuple[Counter[str], Counter[str]]:
    with metrics._lock:
        return (Counter({s: n for (t, s), n in metrics.REQUESTS.items() if t == "http"}),
                Counter({k: n for (t, k), n in metrics.ERRORS.items() if t == "http"}))


def _cut(server: RunningServer, head: bytes, part: bytes, said: str) -> dict[str, Any]:
    """Send ``head`` (a POST's unless it names its method) and ``part`` of the body, wait until the server has read them, leave; the line
    whose outcome holds ``said``."""
    head = head if head.startswith(b"PUT ") else b"POST " + head
    with log_events() as events:
        with socket.create_connection(("127.0.0.1", server.port("http")), timeout=20) as sock:
            sock.sendall(head + b"Host: x\r\n" + part)
            time.sleep(0.3)  # (read or not, the cut is the same request's: this only lets it be read)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            found = [e for e in events if said in str(e.get("outcome"))]
            if found:
                return found[0]
            time.sleep(0.02)
    raise AssertionError(f"no line says {said!r}: {[e.get('log_format') for e in events]}")


SPOOLED = [
    ("git-upload-pack", (b"/a.git/git-upload-pack HTTP/1.1\r\nContent-Type: application/x-git-upload-pack-request\r\n"
                        b"Content-Length: 1000\r\n\r\n0032want "), "client gone: its body was cut after 9 of 1000 bytes"),
    ("git-upload-pack", (b"/a.git/git-upload-pack HTTP/1.1\r\nContent-Type: application/x-git-upload-pack-request\r\n"
                        b"Transfer-Encoding: chunked\r\n\r\n9\r\n0032want \r\n20\r\n0032"),
     "client gone: its body was cut after 13 bytes of a chunked body"),
    ("hg-getbundle", b"/h?cmd=getbundle HTTP/1.1\r\nX-HgArgs-Post: 900\r\nContent-Length: 900\r\n\r\nheads=",
     "client gone: its body was cut after 6 of 900 bytes"),
    ("none", b"/nothing/here HTTP/1.1\r\nContent-Length: 50\r\n\r\nab", "client gone: its body was cut after 2 of 50"),
]


@pytest.mark.parametrize(("service", "head", "said"), SPOOLED, ids=["length", "chunked", "hg", "no-route"])
def test_a_body_cut_before_anything_ran_is_one_line_and_counted(web: RunningServer, service: str, head: bytes,
                                                                said: str) -> None:
    requests, errors = _counts()
    line = _cut(web, head.split(b"\r\n", 1)[0] + b"\r\n" + AUTH, head.split(b"\r\n", 1)[1], said)
    assert line["outcome"] == said or line["outcome"].startswith(said), line
    assert line["service"] == service and line["peer"].startswith("127.0.0.1:"), line
    assert line["method"] == "POST" and line["path"] == head.split(b" ", 1)[0].decode(), line
    assert line["log_level"].name == "info", line
    after_requests, after_errors = _counts()
    assert after_requests[service] - requests[service] == 1
    assert after_errors["client_gone"] - errors["client_gone"] == 1


PUSHES = [
    ("git-receive-pack", b"/a.git/git-receive-pack HTTP/1.1\r\nContent-Type: application/x-git-receive-pack-request\r\n"
                         b"Content-Length: 1000\r\n\r\n0094" + ZERO + b" " + b"1" * 40 + b" refs/heads/main\0report-status\n"
                         b"0000PACK", "client gone"),
    ("hg-unbundle", (b"/h?cmd=unbundle HTTP/1.1\r\nContent-Type: application/mercurial-0.1\r\n"
                    b"X-HgArg-1: heads=686173686564+6e6f6e65\r\nContent-Length: 1000\r\n\r\nHG20"),
     "client gone: the push did not arrive whole; nothing was changed"),
    ("git-lfs", b"PUT /a.git/info/lfs/objects/" + b"a" * 64 + b" HTTP/1.1\r\nContent-Type: application/octet-stream\r\n"
                b"Content-Length: 1000\r\n\r\nabc", "client gone: the upload did not arrive whole; nothing was kept"),
]


@pytest.mark.parametrize(("service", "head", "said"), PUSHES, ids=["git", "hg", "lfs"])
def test_a_push_read_as_it_arrives_and_cut_is_counted_as_its_client_gone(web: RunningServer, service: str,
                                                                         head: bytes, said: str) -> None:
    requests, errors = _counts()
    line = _cut(web, head.split(b"\r\n", 1)[0] + b"\r\n" + AUTH, head.split(b"\r\n", 1)[1], said)
    assert line["outcome"] == said, line
    deadline = time.monotonic() + 20
    while _counts()[0][service] == requests[service] and time.monotonic() < deadline:
        time.sleep(0.02)  # (the request's end is counted as its connection's loss is seen)
    after_requests, after_errors = _counts()
    assert after_requests[service] - requests[service] == 1
    assert after_errors["client_gone"] - errors["client_gone"] == 1
    assert after_errors["failed"] == errors["failed"]
