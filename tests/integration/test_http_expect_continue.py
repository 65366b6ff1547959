"""``Expect: 100-continue`` on a push over HTTP (``gateway.http.BoundedRequest``): a push refused
before its body is needed (401, 403) is answered at once, with no ``100 Continue``, so the client
never sends the body (lighttpd with git-http-backend answers so; twisted.web sent the 100 as soon
as the headers were in, and the refusal only once the whole body had come).  A push its handler
accepts gets its 100 when the handler starts to read, then its answer.

Raw sockets send the headers and wait, as a client waiting for its 100 does; curl is the real
client that sends ``Expect`` (git 2.39 and hg do not).
"""

from __future__ import annotations

import base64
import os
import socket
from collections.abc import Callable
from pathlib import Path

import bcrypt
import pytest

from backends.interfaces import Kind
from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_bad_input import main_of, push_commands, still_serving
from tests.integration.test_git_http_live_body import _new_history

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
LFS_OID = "a" * 64
ANNOUNCED = 50_000_000
"""The body's ``Content-Length`` in the refused requests: what a client would have sent for nothing."""


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def web(make_server: Callable[..., RunningServer], tmp_path: Path, request: pytest.FixtureRequest) -> RunningServer:
    """alice may push, bob may log in and only read; hg pushes over plain HTTP as the test says."""
    passwords = tmp_path / "htpasswd"
    passwords.write_text("".join(f"{user}:{bcrypt.hashpw(b'pw', bcrypt.gensalt(rounds=4)).decode()}\n"
                                 for user in ("alice", "bob")))
    policy = tmp_path / "policy.toml"
    policy.write_text('[[repo]]\npattern = "*"\nread = ["*", "anonymous"]\nwrite = ["alice"]\n')
    server = make_server("fs", git=[LOOPBACK], http=[LOOPBACK], htpasswd=str(passwords), config_file=str(policy),
                         allow_push_over_http=getattr(request, "param", True))
    server.backend.create("h", Kind.HG)
    return server


def _seed(server: RunningServer, client: Client) -> str:
    """Repository ``good.git`` with one commit on main, pushed through the file system (the policy
    wants a user to push); its commit id."""
    server.backend.create("good", Kind.GIT)
    work = client.cwd / "seed"
    client.git("init", "-q", "-b", "main", str(work))
    (work / "f.txt").write_text("content\n")
    client.git("add", "f.txt", cwd=work)
    client.git("commit", "-qm", "seed", cwd=work)
    client.git("push", "-q", str(server.repo_path("good.git")), "main", cwd=work)
    return client.git("rev-parse", "HEAD", cwd=work).stdout.strip()


def _head(server: RunningServer, method: str, path: str, headers: dict[str, str], length: int) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{server.port('http')}", "Expect: 100-continue",
             f"Content-Length: {length}", *(f"{name}: {value}" for name, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _until_closed(sock: socket.socket) -> bytes:
    """What the server sends until it closes, or until it waits (a body it asked for with a 100)."""
    received = b""
    try:
        while data := sock.recv(65536):
            received += data
    except TimeoutError:
        pass
    return received


def _answer(sock: socket.socket) -> bytes:
    """One whole answer: its head, then its body as far as its ``Content-Length`` or its last chunk
    say (or until the server closes, for neither); the connection may be kept open after it."""
    received = _until_blank_line(sock)
    head = received.lower()
    if b"\r\ntransfer-encoding: chunked\r\n" in head:
        while True:
            size_line = _until(sock, b"\r\n")
            received += size_line
            size = int(size_line.split(b";")[0], 16)
            received += _exactly(sock, size + 2) if size else _until(sock, b"\r\n\r\n", have=b"\r\n")
            if not size:
                return received
    for line in head.split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return received + _exactly(sock, int(line.split(b":", 1)[1]))
    return received + _until_closed(sock)


def _exactly(sock: socket.socket, count: int) -> bytes:
    received = b""
    while len(received) < count and (data := sock.recv(count - len(received))):
        received += data
    return received


def _until(sock: socket.socket, end: bytes, have: bytes = b"") -> bytes:
    received = have
    while not received.endswith(end) and (data := sock.recv(1)):
        received += data
    return received[len(have):]


def _until_blank_line(sock: socket.socket) -> bytes:
    received = b""
    while not received.endswith(b"\r\n\r\n") and (data := sock.recv(1)):
        received += data
    return received


GIT_PUSH = ("POST", "/good.git/git-receive-pack", {"Content-Type": "application/x-git-receive-pack-request"})
HG_PUSH = ("POST", "/h?cmd=unbundle", {"Content-Type": "application/mercurial-0.1", "X-HgArg-1": "heads=666f726365"})
HG_LARGEFILE = ("POST", "/h?cmd=putlfile", {"Content-Type": "application/mercurial-0.1",
                                            "X-HgArg-1": "sha=" + "b" * 40})
LFS_PUT = ("PUT", f"/good.git/info/lfs/objects/{LFS_OID}", {"Content-Type": "application/octet-stream"})


@pytest.mark.parametrize("web, shape, user, status", [
    (True, GIT_PUSH, None, 401),
    (True, GIT_PUSH, ("alice", "wrong"), 401),
    (True, GIT_PUSH, ("bob", "pw"), 403),
    (True, HG_PUSH, None, 401),
    (True, HG_PUSH, ("bob", "pw"), 403),
    (False, HG_PUSH, ("alice", "pw"), 403),  # over plain HTTP without --allow-push-over-http
    (True, HG_LARGEFILE, None, 401),
    (True, LFS_PUT, None, 401),
    (True, LFS_PUT, ("bob", "pw"), 403),
], indirect=["web"])
def test_a_refused_push_is_answered_before_its_body_is_sent(
        web: RunningServer, client: Client, shape: tuple[str, str, dict[str, str]], user: tuple[str, str] | None,
        status: int) -> None:
    tip = _seed(web, client)
    method, path, headers = shape
    if user is not None:
        headers = {**headers, "Authorization": _basic(*user)}
    with socket.create_connection(("127.0.0.1", web.port("http")), timeout=5) as sock:
        sock.sendall(_head(web, method, path, headers, ANNOUNCED))
        answer = _until_closed(sock)  # closed: nothing of the body is expected any more
    assert answer.startswith(b"HTTP/1.1 %d " % status), answer[:300]
    assert CONTINUE not in answer
    assert b"\r\nConnection: close\r\n" in answer
    assert main_of(web, client) == tip
    assert not (web.root / "good.git" / "lfs").exists()
    client.hg("verify", "-q", "-R", str(web.root / "h"))
    still_serving(web, client)


def test_a_push_let_in_gets_its_100_then_its_answer(web: RunningServer, client: Client) -> None:
    tip = _seed(web, client)
    new, pack = _new_history(tip, size=80_000)
    body = push_commands(tip, new) + pack
    method, path, headers = GIT_PUSH
    with socket.create_connection(("127.0.0.1", web.port("http")), timeout=20) as sock:
        sock.sendall(_head(web, method, path, {**headers, "Authorization": _basic("alice", "pw")}, len(body)))
        assert _until_blank_line(sock) == CONTINUE
        sock.sendall(body)
        answer = _answer(sock)  # (the connection is kept open after it: waiting for a close waited out the timeout)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]
    assert b"unpack ok" in answer and b"ok refs/heads/main" in answer, answer[-300:]
    assert main_of(web, client) == new
    client.git("--git-dir", str(web.root / "good.git"), "fsck", "--full")


def test_a_body_over_the_limit_is_refused_with_no_100(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text("[limits]\nmax_request_body = 600000\n")
    server = make_server("fs", git=[LOOPBACK], http=[LOOPBACK], config_file=str(policy))
    tip = _seed(server, client)
    method, path, headers = GIT_PUSH
    with socket.create_connection(("127.0.0.1", server.port("http")), timeout=5) as sock:
        sock.sendall(_head(server, method, path, headers, 600_001))
        answer = _until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:300]
    assert CONTINUE not in answer
    assert main_of(server, client) == tip


def test_curl_sends_no_body_to_a_refused_push_and_all_of_it_to_one_let_in(
        web: RunningServer, client: Client, tmp_path: Path) -> None:
    data = tmp_path / "object.bin"
    data.write_bytes(os.urandom(3_000_000))
    oid = client.run("sha256sum", data).stdout[:64]
    url = f"http://127.0.0.1:{web.port('http')}/good.git/info/lfs/objects/{oid}"
    _seed(web, client)
    sent = {}
    for user in ("bob:pw", "alice:pw"):
        sent[user] = client.run("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_upload}", "-u", user,
                                "-X", "PUT", "-H", "Expect: 100-continue", "-H", "Content-Type: application/octet-stream",
                                "--data-binary", f"@{data}", url).stdout
    assert sent == {"bob:pw": "403 0", "alice:pw": "200 3000000"}
    stored = web.root / "good.git" / "lfs" / "objects" / oid[:2] / oid[2:4] / oid
    assert stored.read_bytes() == data.read_bytes()
