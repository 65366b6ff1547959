"""An LFS upload over HTTP (``PUT …/info/lfs/objects/<oid>``) is written beside its place as it
arrives (``gateway.live_body``, ``backends.lfs.LfsStore.upload``), not spooled by twisted.web to
``TMPDIR`` first and copied after: a host's multi-gigabyte objects need no room there (a tmpfs
``/tmp`` held them in memory) and are written once.  What it must not change: an upload that is
not what it says, a client gone in the middle, an answer decided before the body is in, leave
nothing behind, and the service goes on.

Raw sockets send the body in parts so that the test can look at the server between them; the
spool twisted.web would use is made to fail, so that an upload spooled there could not pass.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from backends.interfaces import Kind
from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_http_live_body import _answer, _wait_for
from tests.integration.test_git_lfs import _alice, lfs_api
from tests.integration.test_git_transports import PASSWORD

AUTH = "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()


@pytest.fixture
def web(make_server: Callable[..., RunningServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RunningServer:
    from twisted.web import http

    def no_spool(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("an LFS upload was spooled to TMPDIR")

    monkeypatch.setattr(http, "_getContentFile", lambda length: no_spool() if length is None or length > 100_000
                        else io.BytesIO())  # where twisted.web puts a request's body (over 100 kB: TMPDIR)
    server = make_server("fs", http=[LOOPBACK], htpasswd=_alice(tmp_path))
    server.backend.create("media", Kind.GIT)
    return server


def _objects(server: RunningServer) -> Path:
    return server.root / "media.git" / "lfs" / "objects"


def _files(server: RunningServer) -> list[Path]:
    """The files under the LFS store; os.walk passes over a directory the server removes as it is walked."""
    return sorted(Path(top, name) for top, _, names in os.walk(_objects(server)) for name in names)


def _put_head(server: RunningServer, oid: str, length: int, auth: bool = True) -> bytes:
    return (f"PUT /media.git/info/lfs/objects/{oid} HTTP/1.1\r\nHost: 127.0.0.1:{server.port('http')}\r\n"
            + (f"Authorization: {AUTH}\r\n" if auth else "")
            + f"Content-Type: application/octet-stream\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
            ).encode()


def _written(server: RunningServer) -> int:
    """Bytes in the uploads being written (``.tmp-*`` beside the objects' places)."""
    return sum(p.stat().st_size for p in _files(server) if p.name.startswith(".tmp-"))


def test_an_upload_is_written_beside_its_place_while_it_arrives(web: RunningServer) -> None:
    data = os.urandom(3 << 20)
    oid = hashlib.sha256(data).hexdigest()
    with socket.create_connection(("127.0.0.1", web.port("http")), timeout=20) as sock:
        sock.sendall(_put_head(web, oid, len(data)) + data[:len(data) // 2])
        _wait_for(lambda: _written(web) > len(data) // 4, "half the upload is written before the rest is sent")
        assert not (_objects(web) / oid[:2] / oid[2:4] / oid).exists()
        sock.sendall(data[len(data) // 2:])
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]
    assert [p.name for p in _files(web)] == [oid]
    assert (_objects(web) / oid[:2] / oid[2:4] / oid).read_bytes() == data
    status, _ = lfs_api(f"http://127.0.0.1:{web.port('http')}/media.git/info/lfs/objects/batch",
                        {"operation": "download", "objects": [{"oid": oid, "size": len(data)}]})
    assert status == 200


def test_a_client_gone_in_the_middle_of_an_upload_leaves_nothing(web: RunningServer) -> None:
    data = os.urandom(2 << 20)
    oid = hashlib.sha256(data).hexdigest()
    with socket.create_connection(("127.0.0.1", web.port("http")), timeout=20) as sock:
        sock.sendall(_put_head(web, oid, len(data)) + data[:len(data) // 2])
        _wait_for(lambda: _written(web) > 0, "the upload is written as it arrives")
    _wait_for(lambda: not _files(web), "what was written is removed")
    _still_serving(web)


@pytest.mark.parametrize("case", ["other bytes", "unauthenticated"])
def test_an_upload_refused_before_or_after_its_body_is_in_leaves_nothing(web: RunningServer, case: str) -> None:
    """A body that does not hash to its name: 400 once it is in; one without credentials: 401 at
    once, the rest of its body read and dropped (more than is held unread before the connection is
    paused), the connection then serving the next request."""
    data = os.urandom(3 << 20)
    oid = hashlib.sha256(b"something else").hexdigest()
    with socket.create_connection(("127.0.0.1", web.port("http")), timeout=20) as sock:
        sock.sendall(_put_head(web, oid, len(data), auth=case != "unauthenticated") + data)
        answer = _answer(sock)
    if case == "unauthenticated":
        assert answer.startswith(b"HTTP/1.1 401 "), answer[:300]
    else:
        assert answer.startswith(b"HTTP/1.1 400 "), answer[:300]
        assert b"do not match its hash" in answer
    assert not _files(web)
    assert not (_objects(web) / oid[:2]).exists(), "no directory made for it either"
    _still_serving(web)


def _still_serving(server: RunningServer) -> None:
    data = b"small and whole\n" * 10
    oid = hashlib.sha256(data).hexdigest()
    status, _ = lfs_api(f"http://127.0.0.1:{server.port('http')}/media.git/info/lfs/objects/{oid}", data,
                        method="PUT")
    assert status == 200 and (_objects(server) / oid[:2] / oid[2:4] / oid).read_bytes() == data


def test_a_real_git_lfs_push_of_a_large_object_and_its_clone(web: RunningServer, client: Client) -> None:
    import shutil

    if shutil.which("git-lfs") is None:
        pytest.skip("the git-lfs client is not installed (make test installs it)")
    from tests.integration.test_git_lfs import _tracked_work

    url = f"http://alice:{PASSWORD.replace(' ', '%20')}@127.0.0.1:{web.port('http')}/media.git"
    data = os.urandom(12 << 20)
    work = _tracked_work(client, url, data)
    client.git("push", "-q", "origin", "HEAD:main", cwd=work)
    oid = hashlib.sha256(data).hexdigest()
    assert (_objects(web) / oid[:2] / oid[2:4] / oid).read_bytes() == data
    clone = client.cwd / "clone"
    client.git("clone", "-q", url, str(clone))
    assert (clone / "video.bin").read_bytes() == data


def test_an_upload_sent_in_chunks_is_kept_by_its_hash(web: RunningServer) -> None:
    """Without a ``Content-Length`` (``Transfer-Encoding: chunked``) the size is what arrives, up
    to the limit; the hash decides."""
    data = os.urandom(600_000)
    oid = hashlib.sha256(data).hexdigest()
    for body, status in ((data[:-1], b"400"), (data, b"200")):
        head = (f"PUT /media.git/info/lfs/objects/{oid} HTTP/1.1\r\nHost: 127.0.0.1:{web.port('http')}\r\n"
                f"Authorization: {AUTH}\r\nContent-Type: application/octet-stream\r\n"
                "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode()
        chunks = b"".join(b"%x\r\n" % len(body[at:at + 100_000]) + body[at:at + 100_000] + b"\r\n"
                          for at in range(0, len(body), 100_000))
        with socket.create_connection(("127.0.0.1", web.port("http")), timeout=20) as sock:
            sock.sendall(head + chunks + b"0\r\n\r\n")
            answer = _answer(sock)
        assert answer.startswith(b"HTTP/1.1 " + status), answer[:300]
    assert [p.name for p in _files(web)] == [oid]
    assert (_objects(web) / oid[:2] / oid[2:4] / oid).read_bytes() == data
