"""A Git LFS upload cut by ``kill -9`` of the real ``twistd hgwire``: its temporary stayed in the
object's directory for good (an object's bytes, up to 2 GiB), whatever was uploaded after."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.crash import LOOPBACK, PASSWORD, USER, Server

AUTH = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    started = Server(tmp_path / "server", tmp_path / "root")
    subprocess.run(["git", "init", "-q", "--bare", str(started.root / "app.git")], check=True)
    started.start()
    yield started
    started.stop()


def _upload_href(port: int, oid: str, size: int) -> tuple[str, dict[str, str]]:
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=30)
    body = json.dumps({"operation": "upload", "objects": [{"oid": oid, "size": size}]})
    connection.request("POST", "/app.git/info/lfs/objects/batch", body,
                       {"Authorization": AUTH, "Content-Type": "application/vnd.git-lfs+json",
                        "Accept": "application/vnd.git-lfs+json"})
    answer: Any = json.loads(connection.getresponse().read())
    connection.close()
    upload = answer["objects"][0]["actions"]["upload"]
    return upload["href"].split(f":{port}", 1)[1], upload.get("header", {})


def _put(port: int, oid: str, data: bytes, cut_after: int | None = None) -> Any:
    path, headers = _upload_href(port, oid, len(data))
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=30)
    connection.putrequest("PUT", path)
    for key, value in headers.items():
        connection.putheader(key, value)
    connection.putheader("Content-Length", str(len(data)))
    connection.endheaders()
    connection.send(data[:cut_after])
    if cut_after is not None:
        return connection  # (kept open by the caller: the server dies under it)
    status = connection.getresponse().status
    connection.close()
    return status


def test_a_killed_upload_s_temporary_is_removed_by_the_next_upload_there(server: Server) -> None:
    data = os.urandom(1_000_000)
    oid = hashlib.sha256(data).hexdigest()
    directory = server.root / "app.git" / "lfs" / "objects" / oid[:2] / oid[2:4]
    cut = _put(server.ports["http"], oid, data, cut_after=600_000)
    deadline = time.monotonic() + 30
    while not any(p.name.startswith(".tmp-") and p.stat().st_size >= 400_000 for p in directory.glob(".tmp-*")):
        assert time.monotonic() < deadline, "the upload never reached the disk"
        time.sleep(0.05)
    server.kill()
    cut.close()
    (left,) = directory.glob(".tmp-*")
    long_ago = time.time() - 120
    os.utime(left, (long_ago, long_ago))  # (written last more than DEAD_AFTER ago)
    server.start()
    assert _put(server.ports["http"], oid, data) == 200  # the push tried again
    assert (directory / oid).read_bytes() == data
    assert not list(directory.glob(".tmp-*")), "the killed upload's bytes are still there"
