"""A git URL of one scheme at the port of the other: ``git://`` at the HTTP listener, ``http://``
at the git:// listener.  Each is told, in the client's own protocol, what the port speaks."""

from __future__ import annotations

import socket
from collections.abc import Callable

from tests.conftest import LOOPBACK, Client, RunningServer, log_events


def _answer(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    return answer


def test_a_git_url_at_the_http_port_is_told_at_once(make_server: Callable[..., RunningServer],
                                                    client: Client) -> None:
    """git waited ``request_timeout`` (30 s) for "fatal: protocol error: bad line length
    character: HTTP" (the 408); now an ``ERR`` line says at once that the port speaks HTTP."""
    from twisted.logger import formatEvent

    server = make_server("memory", http=[LOOPBACK])
    port = server.port("http")
    with log_events() as events:
        told = client.git("ls-remote", f"git://127.0.0.1:{port}/r.git", check=False, timeout=20)
        cloned = client.git("clone", f"git://127.0.0.1:{port}/r.git", check=False, timeout=20)
    for said in (told, cloned):
        assert said.returncode == 128
        assert ("fatal: remote error: this port speaks HTTP, not the git:// protocol; use an http:// URL here, "
                "or the server's git:// listener for a git:// URL") in said.stderr.splitlines(), said.stderr
    logged = [formatEvent(e) for e in list(events) if "git:// request on the HTTP listener" in formatEvent(e)]
    assert len(logged) == 2, logged
    assert _answer(port, b"GET / HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.0 200 ")  # HTTP is served as before


def test_an_http_url_at_the_git_port_is_answered_in_http(make_server: Callable[..., RunningServer],
                                                         client: Client) -> None:
    """The git:// port answered an HTTP request with an ``ERR`` pkt-line, which curl (and so git)
    refuses as "Received HTTP/0.9 when not allowed" and browsers show nothing of; it is an
    HTTP/1.0 400 now, whose text git shows as ``remote:``."""
    server = make_server("memory", git=[LOOPBACK])
    port = server.port("git")
    told = client.git("ls-remote", f"http://127.0.0.1:{port}/r.git", check=False, timeout=20)
    assert told.returncode == 128
    assert ("remote: this port speaks the git:// protocol, not HTTP; use a git:// URL here, or the server's "
            "HTTP listener for an http:// URL") in told.stderr.splitlines(), told.stderr
    answer = _answer(port, b"GET /r.git/info/refs?service=git-upload-pack HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == (b"HTTP/1.0 400 this port speaks the git:// protocol, not HTTP; use a git:// URL "
                                       b"here, or the server's HTTP listener for an http:// URL"), answer
    assert b"Content-Type: text/plain; charset=utf-8" in head.split(b"\r\n"), answer
    assert body == (b"this port speaks the git:// protocol, not HTTP; use a git:// URL here, or the server's "
                    b"HTTP listener for an http:// URL\n"), answer


def test_a_git_request_whose_length_comes_alone_is_told_at_once(make_server: Callable[..., RunningServer]) -> None:
    """git writes a pkt-line's four-byte length and its payload in two writes; when the length
    arrived alone the HTTP port took the connection for an HTTP one and git waited 30 s
    (``request_timeout``) for "bad line length character" (1 run in ~20 under load)."""
    import time

    server = make_server("memory", http=[LOOPBACK])
    request = b"git-upload-pack /r.git\0host=127.0.0.1\0\0version=2\0"
    with socket.create_connection(("127.0.0.1", server.port("http")), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(b"%04x" % (len(request) + 4))
        time.sleep(0.3)  # (read by the server on its own)
        sock.sendall(request[:2])
        time.sleep(0.3)
        sock.sendall(request[2:])
        answer = b""
        while chunk := sock.recv(4096):  # (a socket timeout where the answer waited for request_timeout)
            answer += chunk
    assert answer[4:].startswith(b"ERR this port speaks HTTP, not the git:// protocol"), answer


def test_an_hg_url_at_the_git_port_says_what_the_port_speaks(make_server: Callable[..., RunningServer],
                                                             client: Client) -> None:
    """hg shows a 400's reason phrase alone, not its body: ``hg clone http://HOST:9418/r`` said
    "abort: HTTP Error 400: Bad Request", which did not say that the port was git://'s."""
    server = make_server("memory", git=[LOOPBACK])
    told = client.hg("id", f"http://127.0.0.1:{server.port('git')}/r", check=False, timeout=20)
    assert told.returncode == 255
    assert ("abort: HTTP Error 400: this port speaks the git:// protocol, not HTTP; use a git:// URL here, or the "
            "server's HTTP listener for an http:// URL") in told.stderr.splitlines(), told.stderr
