"""A client that stops in the middle of its request body and then stays silent until the idle limit
closes its connection is logged and counted as a timeout, not as a client that left.

Its line said ``client gone: its body was cut after …`` and counted ``client_gone`` in
``/.metrics``, the same as a client that closed its connection: an operator looking for stalled
clients (a proxy buffering, a dead network path) could not tell them from people pressing Ctrl-C.
nginx logs the first as a timeout (``client_body_timeout``, 408); so does hgwire now, over HTTP (a
spooled body and one read as it arrives) and over git://."""

from __future__ import annotations

import base64
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from gateway import metrics
from tests.conftest import LOOPBACK, Client, RunningServer, log_events

AUTH = b"Authorization: Basic " + base64.b64encode(b"alice:pw") + b"\r\n"
ZERO = b"0" * 40
TIMED_OUT = "timed out: the connection was idle for 1 s (idle_timeout)"


@pytest.fixture
def stalled(make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> RunningServer:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("alice:" + bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode() + "\n")
    policy = tmp_path / "policy.toml"
    policy.write_text('anonymous_read = true\n[[repo]]\npattern = "*"\nwrite = ["alice"]\n'
                      "[limits]\nidle_timeout = 1\n")
    server = make_server("fs", http=[LOOPBACK], git=[LOOPBACK], htpasswd=str(htpasswd), config_file=str(policy),
                         allow_push_over_http=True)
    subprocess.run(["git", "init", "-q", "--bare", str(server.root / "a.git")], check=True)
    client.hg("init", str(server.root / "h"))
    return server


def _errors(transport: str) -> Counter[str]:
    with metrics._lock:
        return Counter({k: n for (t, k), n in metrics.ERRORS.items() if t == transport})


def _stall(port: int, sent: bytes, said: str) -> Iterator[dict[str, Any]]:
    """Send ``sent``, then nothing, the connection left open until the server closes it; the lines
    whose outcome holds ``said``."""
    with log_events() as events, socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(sent)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            found = [e for e in events if said in str(e.get("outcome"))]
            if found:
                yield from found
                return
            time.sleep(0.05)
    raise AssertionError(f"no line says {said!r}: {[e.get('log_format') for e in events]}")


STALLS = [
    ((b"/a.git/git-upload-pack HTTP/1.1\r\nContent-Type: application/x-git-upload-pack-request\r\n"
     b"Content-Length: 1000\r\n\r\n0032want "), ": its body was cut after 9 of 1000 bytes"),
    ((b"/a.git/git-upload-pack HTTP/1.1\r\nContent-Type: application/x-git-upload-pack-request\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n9\r\n0032want \r\n20\r\n0032"), ": its body was cut after 13 bytes of a chunked body"),
    (b"/a.git/git-receive-pack HTTP/1.1\r\nContent-Type: application/x-git-receive-pack-request\r\n"
     b"Content-Length: 1000\r\n\r\n0094" + ZERO + b" " + b"1" * 40 + b" refs/heads/main\0report-status\n0000PACK", ""),
    ((b"/h?cmd=unbundle HTTP/1.1\r\nContent-Type: application/mercurial-0.1\r\n"
     b"X-HgArg-1: heads=686173686564+6e6f6e65\r\nContent-Length: 1000\r\n\r\nHG20"),
     ": the push did not arrive whole; nothing was changed"),
]


@pytest.mark.parametrize(("head", "rest"), STALLS, ids=["length", "chunked", "git-push", "hg-push"])
def test_an_http_body_stalled_until_the_idle_limit_is_a_timeout(stalled: RunningServer, head: bytes,
                                                                rest: str) -> None:
    before = _errors("http")
    line, body = head.split(b"\r\n", 1)
    found = next(_stall(stalled.port("http"), b"POST " + line + b"\r\nHost: x\r\n" + AUTH + body, TIMED_OUT))
    assert found["outcome"] == TIMED_OUT + rest, found
    deadline = time.monotonic() + 10
    while _errors("http")["timeout"] == before["timeout"] and time.monotonic() < deadline:
        time.sleep(0.05)  # (a push's request is counted as its connection's loss is seen)
    after = _errors("http")
    assert after["timeout"] - before["timeout"] == 1
    assert after["client_gone"] == before["client_gone"]


def test_a_git_daemon_request_stalled_until_the_idle_limit_is_a_timeout(stalled: RunningServer) -> None:
    before = _errors("git")
    request = b"git-upload-pack /a.git\0host=x\0"
    found = next(_stall(stalled.port("git"), b"%04x" % (len(request) + 4) + request + b"0032want ", TIMED_OUT))
    assert found["outcome"].startswith(TIMED_OUT), found
    assert _errors("git")["timeout"] - before["timeout"] == 1
    assert _errors("git")["client_gone"] == before["client_gone"]
