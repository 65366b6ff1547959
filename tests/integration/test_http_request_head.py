"""Hostile or odd HTTP/1.1 request heads sent on a raw socket: what RFC 9112 says a server does
with them is what hgwire does, where twisted.web alone guessed (a target without its leading
"/", an absolute-form URL)."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from tests.conftest import LOOPBACK, Client, RunningServer


@pytest.fixture
def port(make_server: Callable[..., RunningServer], client: Client) -> int:
    """An HTTP listener serving an hg repository ``hgr`` holding ``a.txt`` ("hi"), and an empty
    one ``gr`` (which a target that lost its first byte would name)."""
    server = make_server("fs", http=[LOOPBACK])
    repo = server.root / "hgr"
    client.hg("init", str(repo))
    (repo / "a.txt").write_text("hi\n")
    client.hg("commit", "-q", "-A", "-m", "a", cwd=repo)
    client.hg("init", str(server.root / "gr"))
    return server.port("http")


def exchange(port: int, data: bytes) -> bytes:
    """What the server sends back to ``data`` until it closes the connection (or goes quiet)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return answer


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.") else 0


def body_of(answer: bytes) -> bytes:
    return answer.partition(b"\r\n\r\n")[2]


def get(target: str, *headers: str, version: str = "HTTP/1.1") -> bytes:
    """A request head: ``Host`` and ``Connection: close`` unless ``headers`` say otherwise."""
    lines = [f"GET {target} {version}", *headers]
    if not any(h.lower().startswith("host:") for h in headers) and "-host" not in headers:
        lines.append("Host: example.test")
    lines.append("Connection: close")
    return ("\r\n".join(line for line in lines if line != "-host") + "\r\n\r\n").encode()


def test_a_target_without_its_leading_slash_is_refused_not_shortened(port: int) -> None:
    """twisted.web dropped its first byte: ``hgr/...`` served repository ``gr``, ``xhgr/...`` hgr."""
    for target in ("hgr/raw-file/tip/a.txt", "xhgr/raw-file/tip/a.txt", "*", "evil.example:80",
                   "ftp://evil.example/hgr/raw-file/tip/a.txt", "http://user@evil.example/hgr/raw-file/tip/a.txt"):
        answer = exchange(port, get(target))
        assert status_of(answer) == 400, (target, answer)
        assert b"nothing was done" in body_of(answer), answer


def test_an_absolute_form_target_is_served_as_its_path_and_host(port: int) -> None:
    """RFC 9112 §3.2.2: a server accepts ``http://host/path`` and takes the host from it (it was
    404 "'ttp://evil.example/hgr' contains an empty path segment")."""
    answer = exchange(port, get("http://hg.example.test/hgr/raw-file/tip/a.txt"))
    assert (status_of(answer), body_of(answer)) == (200, b"hi\n"), answer
    index = exchange(port, get("HTTPS://hg.example.test:8443?x", "Host: other.test"))
    assert status_of(index) == 200 and b"hg clone http://hg.example.test:8443/NAME" in body_of(index), index
    assert b"other.test" not in index
    options = exchange(port, b"OPTIONS * HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n")
    assert status_of(options) not in (0, 400), options


def test_a_missing_or_second_host_is_a_bad_request(port: int) -> None:
    """The last of two ``Host`` lines was the one in the pages' clone URLs (a cache in front may key
    on the first); an HTTP/1.1 request without one was served.  RFC 9112 §3.2: 400, as nginx."""
    for head in (get("/", "-host"), get("/", "Host: good.test", "Host: evil.test"),
                 get("/", "Host: evil.test", "Host: good.test", version="HTTP/1.0"),
                 get("http://good.test/", "-host")):
        answer = exchange(port, head)
        assert status_of(answer) == 400 and b"Host header" in body_of(answer), (head, answer)
        assert b"evil.test" not in answer
    assert status_of(exchange(port, get("/", "-host", version="HTTP/1.0"))) == 200
    assert b"git clone http://good.test/NAME.git" in body_of(exchange(port, get("/", "Host: good.test")))


SMUGGLED = b"GET /hgr/raw-file/tip/a.txt HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n"
"""A second request hidden in the first's body, for a proxy in front that frames it the other way."""


@pytest.mark.parametrize(("framing", "status"), [
    (b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n", 400),
    (b"Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n", 400),
    (b"Transfer-Encoding: identity\r\nContent-Length: 5\r\n", 501),
    (b"Transfer-Encoding: chunked\r\n", 400),  # on HTTP/1.0
])
def test_a_body_framed_two_ways_is_refused_and_nothing_after_it_is_served(port: int, framing: bytes,
                                                                          status: int) -> None:
    """twisted.web decoded chunked beside ``identity``, took ``Content-Length`` beside ``identity``
    and chunked on HTTP/1.0, then served the request smuggled after the body."""
    version = b"HTTP/1.0" if framing == b"Transfer-Encoding: chunked\r\n" else b"HTTP/1.1"
    answer = exchange(port, b"POST /hgr?cmd=heads " + version + b"\r\nHost: example.test\r\n" + framing
                      + b"\r\n0\r\n\r\n" + SMUGGLED)
    assert status_of(answer) == status and answer.count(b"\r\n\r\n") == 1, answer
    assert b"Transfer-Encoding" in body_of(answer) and b"hi\n" not in answer


def test_a_chunked_body_on_http11_is_read(port: int) -> None:
    answer = exchange(port, b"POST /hgr?cmd=heads HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n"
                      b"Transfer-Encoding: Chunked\r\n\r\n0\r\n\r\n")
    assert status_of(answer) == 200 and len(body_of(answer).strip()) == 40, answer


@pytest.mark.parametrize("connection", [b"close, foo", b"foo,Close", b"keep-alive\r\nConnection: close"])
def test_connection_close_among_other_options_closes(port: int, connection: bytes) -> None:
    """twisted.web split ``Connection`` on spaces (``close,``) and read its first line only: the
    connection stayed open after the answer, the client waiting for it to close."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /hgr/raw-file/tip/a.txt HTTP/1.1\r\nHost: example.test\r\nConnection: " + connection
                     + b"\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):  # TimeoutError if the server keeps the connection open
            answer += chunk
    assert status_of(answer) == 200 and b"Connection: close\r\n" in answer and body_of(answer) == b"hi\n", answer


def test_empty_lines_before_a_request_line_are_ignored(port: int) -> None:
    """RFC 9112 §2.2: a server ignores at least one; twisted.web ignored one and answered 400 to two."""
    answer = exchange(port, b"\r\n\r\n\r\n" + get("/hgr/raw-file/tip/a.txt"))
    assert (status_of(answer), body_of(answer)) == (200, b"hi\n"), answer


def test_http_versions_are_read_as_rfc_9110_says(port: int) -> None:
    """``HTTP/1.2`` is answered as 1.1 (§2.5; it was 400), another major version 505 (it was 400)."""
    answer = exchange(port, get("/hgr/raw-file/tip/a.txt", version="HTTP/1.2"))
    assert answer.startswith(b"HTTP/1.1 200 ") and body_of(answer) == b"hi\n", answer
    for version in ("HTTP/2.0", "HTTP/0.9"):
        answer = exchange(port, get("/hgr/raw-file/tip/a.txt", version=version))
        assert status_of(answer) == 505 and b"HTTP/1.1" in body_of(answer), answer



@pytest.mark.parametrize("request_bytes", [
    b"GET /hgr?cmd=capabilities HTTP/1.1\nHost: example.test\n\n",  # printf '...\n' | nc
    b"GET /hgr?cmd=capabilities HTTP/1.1\n",
    b"GET /hgr?cmd=capabilities HTTP/1.1\r\nHost: example.test\nConnection: close\r\n\r\n",
    b"\n",
    # a chunked body's size line, a chunk's end, a trailer line that ends in LF alone
    b"POST /hgr?cmd=heads HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n\r\n0\n\n",
    b"POST /hgr?cmd=heads HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\n",
    b"POST /hgr?cmd=heads HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: a\n\r\n"
    + SMUGGLED,
])
def test_a_line_that_ends_in_lf_alone_is_refused_at_once(port: int, request_bytes: bytes) -> None:
    """RFC 9112 §2.2 lets a server take a bare LF as a line's end: hgwire waited request_timeout
    (30 s) for a CRLF instead, and read a request after a trailer line ``X: a<LF>`` as more trailers.
    Now 400 at once, as lighttpd in front of git http-backend answers (``hg serve`` serves it), and
    nothing after it read: taken as a line's end, a proxy in front that passes it on inside a line
    would frame the request another way."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request_bytes)
        answer = b""
        while chunk := sock.recv(65536):  # TimeoutError if the server waits for more
            answer += chunk
    assert status_of(answer) == 400 and b"ends in LF alone" in body_of(answer), answer
    assert answer.count(b"\r\n\r\n") == 1 and b"hi\n" not in answer, answer


def test_lfs_inside_a_body_are_its_bytes(port: int) -> None:
    """Only the head's and the chunked framing's lines are held to CRLF, not the body they frame."""
    for body in (b"Content-Length: 3\r\n\r\na\n\n", b"Transfer-Encoding: chunked\r\n\r\n2\r\n\n\n\r\n0\r\n\r\n"):
        answer = exchange(port, b"POST /hgr?cmd=heads HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n" + body)
        assert status_of(answer) == 200 and len(body_of(answer).strip()) == 40, answer


# What pygit2 (libgit2 1.9.7) sent for ``list_heads()`` of ``http://127.0.0.1:PORT/ünï.git``,
# recorded byte for byte: the name's UTF-8 as it is, where git, JGit and browsers percent-encode it.
LIBGIT2_UTF8_NAME = (b"GET /\xc3\xbcn\xc3\xaf.git/info/refs?service=git-upload-pack HTTP/1.1\r\n"
                     b"User-Agent: git/2.0 (libgit2 1.9.7)\r\n"
                     b"Host: 127.0.0.1:%d\r\n"
                     b"Accept: */*\r\n"
                     b"Connection: close\r\n\r\n")


def test_libgit2_s_unescaped_utf8_repository_name_is_served(make_server: Callable[..., RunningServer],
                                                             client: Client) -> None:
    """twisted.web answered 400 ("the request line … is malformed"); lighttpd and nginx in front of
    git http-backend read those bytes as their percent-encoding, and so does hgwire now."""
    server = make_server("fs", http=[LOOPBACK])
    client.git("init", "-q", "--bare", str(server.root / "ünï.git"))
    port = server.port("http")
    answer = exchange(port, LIBGIT2_UTF8_NAME % port)
    assert status_of(answer) == 200, answer[:300]
    assert b"application/x-git-upload-pack-advertisement" in answer.partition(b"\r\n\r\n")[0]
    assert b"# service=git-upload-pack" in body_of(answer)
    # the same name, encoded as git sends it, is the same repository; a space is still refused
    encoded = exchange(port, get("/%C3%BCn%C3%AF.git/info/refs?service=git-upload-pack"))
    assert status_of(encoded) == 200
    assert body_of(encoded) == body_of(answer)
    assert status_of(exchange(port, get("/my app.git/info/refs?service=git-upload-pack"))) == 400
