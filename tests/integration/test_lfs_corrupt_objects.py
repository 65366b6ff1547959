"""An LFS object whose stored bytes no longer hash to its name (disk corruption) is never sent:
the batch API says so per object (422, ``hg serve``'s answer), a download is refused with 422
before its first byte, as ``hg serve`` refuses it, the operator's log says which file, and an
upload of the object puts a good copy in its place."""

from __future__ import annotations

import base64
import hashlib
import http.client
import io
import os
import shutil
import tarfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from backends.interfaces import Kind
from tests.conftest import Client, RunningServer, SshKeys, ssh_server_settings
from tests.conftest import log_events as logged
from tests.integration.test_git_lfs import _batch, _tracked_work
from tests.integration.test_git_transports import PASSWORD, TRANSPORTS
from tests.integration.test_hg_hooks import _served
from tests.integration.test_hg_http import htpasswd  # noqa: F401 - a fixture

LFS = ("--config", "extensions.lfs=", "--config", 'lfs.track=size(">1KB")')


@pytest.fixture
def log_events() -> Iterator[list[dict[str, Any]]]:
    with logged() as events:
        yield events


def _corrupt(path: Path) -> None:
    """Flip one bit of the stored file in place, as a failing disk would."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))


def _get(url: str, user: str | None = "alice") -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, headers={} if user is None else {
        "Authorization": "Basic " + base64.b64encode(f"{user}:{PASSWORD}".encode()).decode()})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.reason, answer.read()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.reason, refused.read()


def _corrupt_lines(events: list[dict[str, Any]], oid: str) -> list[str]:
    return [str(e.get("log_format")) for e in events
            if e.get("log_namespace") == "gateway.git_lfs" and e.get("oid") == oid and e["log_level"].name == "error"]


def test_hg_clone_of_a_corrupt_blob_is_told_so_and_gets_none_of_it(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, htpasswd: Path,  # noqa: F811
        tmp_path: Path, log_events: list[dict[str, Any]]) -> None:
    peer, url, server = _served("http", make_server, client, ssh_keys, htpasswd)
    repo = server.root / "blobs"
    client.hg("init", str(repo))
    (repo / ".hg" / "hgrc").write_text("[extensions]\nlfs =\n")
    work = tmp_path / "work"
    peer.hg(*LFS, "clone", "-q", url("blobs"), str(work))
    data = os.urandom(300_000)
    (work / "big.bin").write_bytes(data)
    client.hg(*LFS, "commit", "-q", "-A", "-m", "big", cwd=work)
    peer.hg(*LFS, "push", "-q", "-R", str(work), url("blobs"))
    oid = hashlib.sha256(data).hexdigest()
    stored = repo / ".hg" / "store" / "lfs" / "objects" / oid[:2] / oid[2:]
    os.unlink(stored)  # (hg's own cache may share the file with the pushing side: a copy of it, not a link)
    stored.write_bytes(data)
    _corrupt(stored)

    clone = tmp_path / "clone"
    refused = peer.hg("--config", f"lfs.usercache={tmp_path / 'cache'}", "clone", url("blobs"), str(clone),
                      check=False)
    assert refused.returncode != 0
    assert 'abort: LFS server error for "big.bin": Validation error' in refused.stderr, refused.stderr
    assert _corrupt_lines(log_events, oid), "the operator is told which object"

    port = server.port("http")
    status, reason, body = _get(f"http://127.0.0.1:{port}/blobs/.git/info/lfs/objects/{oid}", None)
    assert status == 422 and "corrupt" in reason and data[:100] not in body
    # hgweb's raw file of it: refused (hg serve: 500 too), not the corrupt bytes
    status, _reason, body = _get(f"http://127.0.0.1:{port}/blobs/raw-file/tip/big.bin", None)
    assert status == 500 and b"corrupt" in body and data[:100] not in body
    # an archive holding it is cut short: never a whole archive with the wrong bytes
    (repo / ".hg" / "hgrc").write_text("[extensions]\nlfs =\n[web]\nallow-archive = gz\n")
    try:
        status, _reason, body = _get(f"http://127.0.0.1:{port}/blobs/archive/tip.tar.gz", None)
    except http.client.IncompleteRead:
        pass
    else:
        with pytest.raises((OSError, EOFError, tarfile.TarError)), \
                tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as archive:
            archive.getmembers()


@pytest.mark.skipif(shutil.which("git-lfs") is None, reason="the git-lfs client is not installed")
def test_git_lfs_download_of_a_corrupt_object_is_refused_and_a_push_repairs_it(
        make_server: Any, client: Client, ssh_keys: SshKeys, tmp_path: Path,
        log_events: list[dict[str, Any]]) -> None:
    server = TRANSPORTS["http"](make_server, "fs", client, ssh_keys, tmp_path)
    server.running.backend.create("media", Kind.GIT)
    url = server.git_url("media")
    data = os.urandom(1 << 20)
    work = _tracked_work(client, url, data)
    client.git("push", "-q", "origin", "HEAD:main", cwd=work)
    oid = hashlib.sha256(data).hexdigest()
    stored = server.running.root / "media.git" / "lfs" / "objects" / oid[:2] / oid[2:4] / oid
    _corrupt(stored)

    port = server.running.port("http")
    status, _reason, body = _get(f"http://127.0.0.1:{port}/media.git/info/lfs/objects/{oid}")
    assert status == 422 and b"corrupt" in body and len(body) < 1000
    batch = f"http://127.0.0.1:{port}/media.git/info/lfs/objects/batch"
    status, answer = _batch(batch, {"operation": "download", "objects": [{"oid": oid, "size": len(data)}]})
    assert status == 200 and answer["objects"][0]["error"]["code"] == 422
    assert "corrupt" in answer["objects"][0]["error"]["message"]
    assert _corrupt_lines(log_events, oid)

    clone = client.cwd / "clone"
    refused = client.git("clone", url, str(clone), check=False)
    assert "corrupt" in refused.stderr, refused.stderr

    status, answer = _batch(batch, {"operation": "upload", "objects": [{"oid": oid, "size": len(data)}]})
    assert "upload" in answer["objects"][0]["actions"], "a corrupt object is asked for again"
    client.git("lfs", "push", "--all", "origin", cwd=work)
    assert stored.read_bytes() == data
    again = client.cwd / "again"
    client.git("clone", "-q", url, str(again))
    assert (again / "video.bin").read_bytes() == data


@pytest.mark.skipif(shutil.which("git-lfs") is None, reason="the git-lfs client is not installed")
def test_a_corrupt_object_over_git_lfs_transfer_is_refused_and_a_push_repairs_it(
        make_server: Any, client: Client, ssh_keys: SshKeys, log_events: list[dict[str, Any]]) -> None:
    """The same over git-lfs's pure SSH protocol (``git-lfs-transfer``), with no HTTP listener."""
    server = make_server("fs", **ssh_server_settings(ssh_keys))
    server.backend.create("media", Kind.GIT)
    port = server.port("ssh")
    client.env["GIT_SSH_COMMAND"] = ssh_keys.command(port)
    url = f"ssh://git@127.0.0.1:{port}/media.git"
    data = os.urandom(1 << 20)
    work = _tracked_work(client, url, data)
    client.git("push", "-q", "origin", "HEAD:main", cwd=work)
    oid = hashlib.sha256(data).hexdigest()
    stored = server.root / "media.git" / "lfs" / "objects" / oid[:2] / oid[2:4] / oid
    _corrupt(stored)

    # (git-lfs tries a refused download again, waiting longer each time: once is enough here)
    refused = client.git("-c", "lfs.transfer.maxretries=1", "clone", url, str(client.cwd / "clone"), check=False)
    assert "corrupt" in refused.stderr, refused.stderr
    assert _corrupt_lines(log_events, oid)
    client.git("lfs", "push", "--all", "origin", cwd=work)
    assert stored.read_bytes() == data
