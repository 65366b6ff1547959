"""A git repository removed between a client's ``info/refs`` (answered 200) and its POST, with
the real git client: what the user is told.  git http-backend answers the POST 404, which git shows
as ``error: RPC failed; HTTP 404`` and, for a push, ``send-pack: unexpected disconnect while
reading sideband packet`` (or "Everything up-to-date"); hgwire tells the reason in the client's
protocol instead."""

from __future__ import annotations

import http.client
import shutil
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import bcrypt
import pytest

from tests.conftest import LOOPBACK, Client, RunningServer


class _RemovingProxy(BaseHTTPRequestHandler):
    """Passes requests to the server; removes the repository once an ``info/refs`` got its 200."""

    protocol_version = "HTTP/1.1"
    upstream = 0
    repository = Path()

    def _pass(self, method: str) -> None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while size := int(self.rfile.readline().split(b";")[0], 16):
                body += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("transfer-encoding", "content-length")}
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream, timeout=30)
        conn.request(method, self.path, body=body if method == "POST" else None, headers=headers)
        response = conn.getresponse()
        data = response.read()
        self.send_response(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in ("transfer-encoding", "content-length", "connection", "date", "server"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        if "/info/refs" in self.path and response.status == 200 and self.repository.exists():
            shutil.rmtree(self.repository)

    def do_GET(self) -> None:
        self._pass("GET")

    def do_POST(self) -> None:
        self._pass("POST")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def gone(make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A proxy URL of repository ``y.git``, which goes once its ``info/refs`` is answered, and a
    work tree with a commit to push."""
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("alice:" + bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode() + "\n")
    server = make_server("fs", http=[LOOPBACK], htpasswd=str(htpasswd))
    work = client.cwd / "work"
    client.git("init", "-q", "-b", "main", str(work))
    (work / "a.txt").write_text("a\n")
    client.git("add", "a.txt", cwd=work)
    client.git("commit", "-q", "-m", "one", cwd=work)
    client.git("clone", "-q", "--bare", str(work), str(server.root / "y.git"))
    (work / "a.txt").write_text("b\n")
    client.git("commit", "-q", "-am", "two", cwd=work)
    handler = type("Proxy", (_RemovingProxy,), {"upstream": server.port("http"), "repository": server.root / "y.git"})
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://alice:s3cret@127.0.0.1:{proxy.server_address[1]}/y.git", work
    finally:
        proxy.shutdown()
        proxy.server_close()


def test_a_push_to_a_repository_gone_after_its_info_refs_is_refused_with_the_reason(gone: tuple[str, Path],
                                                                                   client: Client) -> None:
    """The ``ERR`` line sent at once was read as a side-band packet: ``send-pack: protocol error:
    bad band #69``, the reason lost."""
    url, work = gone
    push = client.git("push", url, "main", "main:refs/heads/other", cwd=work, check=False)
    assert push.returncode != 0
    assert "error: remote unpack failed: repository y.git not found" in push.stderr, push.stderr
    assert "! [remote rejected] main -> main (repository y.git not found)" in push.stderr, push.stderr
    assert "! [remote rejected] main -> other (repository y.git not found)" in push.stderr, push.stderr
    assert "bad band" not in push.stderr


@pytest.mark.parametrize("version", ["0", "2"])
def test_a_fetch_from_a_repository_gone_after_its_info_refs_says_so(gone: tuple[str, Path], client: Client,
                                                                    version: str) -> None:
    """Its ``ERR`` line (in a 200) is what git shows, where a 404 shows ``RPC failed; HTTP 404``."""
    url, _work = gone
    empty = client.cwd / "empty"
    client.git("init", "-q", str(empty))
    fetch = client.git("-c", f"protocol.version={version}", "fetch", url, cwd=empty, check=False)
    assert fetch.returncode != 0
    assert "fatal: remote error: repository y.git not found" in fetch.stderr, fetch.stderr
