"""An hg push over HTTP reads its bundle as it arrives (``gateway.live_body``,
``gateway.hg_http._LiveReader``), as over SSH, not after twisted.web spooled the whole body to
``TMPDIR``: the bundle is kept in the repository's ``.hg`` until it is whole and only then applied,
under the repository's locks (``backends.hg.push_spool``, as ``hg serve`` does).  What it must not
change: a client gone in the middle leaves the repository as it was, the kept bundle goes, and the
server serves on; a push refused before its body is in reaches the client.

A raw socket sends the body in parts (the bundle ``hg bundle`` writes, as ``hg push`` sends it)
so that the test can look at the server between them.
"""

from __future__ import annotations

import base64
import os
import socket
from pathlib import Path
from typing import Any

from tests.conftest import Client
from tests.integration.test_full_disk import _hg_over_http, _snapshot
from tests.integration.test_git_http_live_body import _answer, _wait_for
from tests.integration.test_hg_push_spool import kept_bundles

AUTH = "Basic " + base64.b64encode(b"alice:pw").decode()


def _bundle(client: Client, work: Path, tmp_path: Path, size: int) -> bytes:
    """A second changeset adding 40 files of ``size`` random bytes in all, as the bundle2 a push sends
    (uncompressed): their revlogs are written one after the other as the bundle is applied."""
    for n in range(40):
        (work / f"big{n:02d}.bin").write_bytes(os.urandom(size // 40))
    client.hg("commit", "-q", "-A", "-m", "big", "-u", "u", cwd=work)
    path = tmp_path / "push.hg"
    client.hg("bundle", "-q", "-t", "none-v2", "-r", "tip", "--base", "0", str(path), cwd=work)
    return path.read_bytes()


def _head(port: int, length: int, auth: bool = True) -> bytes:
    return (f"POST /h?cmd=unbundle HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            + (f"Authorization: {AUTH}\r\n" if auth else "")
            + "X-HgArg-1: heads=666f726365\r\nContent-Type: application/mercurial-0.1\r\n"
            + f"Content-Length: {length}\r\nConnection: close\r\n\r\n").encode()


def _half_sent(make_server: Any, client: Client, tmp_path: Path) -> tuple[Any, str, Path, bytes, dict[str, bytes],
                                                                        socket.socket]:
    """A server, its URL, the local repository, a 4 MB push's bundle, the server's ``.hg`` before it,
    and a connection that sent half the bundle, which the server keeps until the rest comes."""
    server, url, work = _hg_over_http(make_server, client, tmp_path)
    client.hg("push", "-q", url, cwd=work)
    bundle = _bundle(client, work, tmp_path, 4 << 20)
    repo = server.root / "h" / ".hg"
    before = _snapshot(repo)
    sock = socket.create_connection(("127.0.0.1", server.port("http")), timeout=30)
    sock.sendall(_head(server.port("http"), len(bundle)) + bundle[:len(bundle) // 2])
    _wait_for(lambda: kept_bundles(server.root / "h"), "the bundle is read as it arrives")
    return server, url, work, bundle, before, sock


def test_a_push_over_http_is_read_while_its_bundle_arrives_and_applied_once_it_is_whole(
        make_server: Any, client: Client, tmp_path: Path) -> None:
    server, _url, _work, bundle, before, sock = _half_sent(make_server, client, tmp_path)
    repo = server.root / "h" / ".hg"
    with sock:
        assert _snapshot(repo) == before, "nothing is written until the bundle is whole"
        sock.sendall(bundle[len(bundle) // 2:])
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]
    assert client.hg("log", "-R", str(server.root / "h"), "-r", "tip", "-T", "{desc}").stdout == "big"
    client.hg("verify", "-q", "-R", str(server.root / "h"))


def test_a_client_gone_in_the_middle_of_its_bundle_leaves_the_repository_as_it_was(
        make_server: Any, client: Client, tmp_path: Path) -> None:
    server, url, work, _bundle_sent, before, sock = _half_sent(make_server, client, tmp_path)
    sock.close()
    repo = server.root / "h" / ".hg"
    _wait_for(lambda: not kept_bundles(server.root / "h"), "the kept bundle is gone")
    assert _snapshot(repo) == before
    client.hg("verify", "-q", "-R", str(server.root / "h"))
    client.hg("push", "-q", url, cwd=work)  # the same push, whole: it goes through
    assert client.hg("log", "-R", str(server.root / "h"), "-r", "tip", "-T", "{desc}").stdout == "big"


def test_a_push_refused_before_its_bundle_is_in_reaches_the_client(
        make_server: Any, client: Client, tmp_path: Path) -> None:
    """No credentials: 401 at once, the rest of the body (more than is held unread before the
    connection is paused) read and dropped."""
    server, url, work = _hg_over_http(make_server, client, tmp_path)
    client.hg("push", "-q", url, cwd=work)
    bundle = _bundle(client, work, tmp_path, 3 << 20)
    before = _snapshot(server.root / "h" / ".hg")
    with socket.create_connection(("127.0.0.1", server.port("http")), timeout=30) as sock:
        sock.sendall(_head(server.port("http"), len(bundle), auth=False) + bundle)
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 401 "), answer[:300]
    assert _snapshot(server.root / "h" / ".hg") == before
    client.hg("push", "-q", url, cwd=work)
