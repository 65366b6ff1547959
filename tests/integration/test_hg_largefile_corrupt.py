"""A largefile whose stored bytes no longer hash to its name (a failing disk): ``getlfile`` refuses
it before its first byte, over SSH and HTTP, where hg serve sends it as it is and the client finds
it corrupt; the operator's log names the file in one line, and a later ``statlfile`` says ``1`` (hg's
word for a damaged one), so that a client's ``hg verify --large`` reports it."""

# ruff: noqa: F811  (the htpasswd fixture, imported from test_hg_http, is each test's parameter)
from __future__ import annotations

import hashlib
import http.client
import io
import os
import tarfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from backends import blobs
from tests.conftest import Client, RunningServer, SshKeys
from tests.conftest import log_events as logged
from tests.integration.test_hg_hooks import _served
from tests.integration.test_hg_http import htpasswd  # noqa: F401 - a fixture
from tests.integration.test_hg_largefiles import LF, largefiles_clone


@pytest.fixture
def log_events() -> Iterator[list[dict[str, Any]]]:
    with logged() as events:
        yield events


@pytest.mark.parametrize("kind", ["ssh", "http"])
def test_a_corrupt_largefile_is_refused_before_its_first_byte_and_logged(
        kind: str, make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys,
        htpasswd: Path, tmp_path: Path, log_events: list[dict[str, Any]]) -> None:
    peer, url, server = _served(kind, make_server, client, ssh_keys, htpasswd)
    repo, work = largefiles_clone(peer, url, server, client, tmp_path)
    data = os.urandom(1 << 18)
    (work / "blob.bin").write_bytes(data)
    client.hg(*LF, "add", "-q", "--large", str(work / "blob.bin"), cwd=work)
    client.hg(*LF, "commit", "-q", "-m", "big", cwd=work)
    peer.hg(*LF, "--config", "largefiles.usercache=" + str(tmp_path / "cache0"), "push", "-q", "-R", str(work),
            url("big"))
    sha = hashlib.sha1(data).hexdigest()
    stored = repo / ".hg" / "largefiles" / sha
    corrupt = bytearray(stored.read_bytes())
    corrupt[len(corrupt) // 2] ^= 1
    stored.write_bytes(bytes(corrupt))
    for cached in Path(client.env["HOME"]).rglob(sha):  # no user cache to fall back on
        cached.unlink()

    clone = tmp_path / "clone"
    cloned = peer.hg(*LF, "--config", "largefiles.usercache=" + str(tmp_path / "cache1"), "clone", url("big"),
                     str(clone), check=False)
    said = cloned.stdout + cloned.stderr
    assert f"largefile {sha} is corrupt" in said, said
    assert "data corruption" not in said, "none of its bytes reached the client"
    assert not (clone / "blob.bin").exists() or (clone / "blob.bin").read_bytes() != bytes(corrupt)
    assert not list((tmp_path / "cache1").rglob(sha)) if (tmp_path / "cache1").exists() else True
    lines = [str(e.get("reason")) for e in log_events
             if e["log_level"].name == "error" and sha in str(e.get("reason"))]
    assert len(lines) == 1 and str(stored) in lines[0] and "restore the file" in lines[0], lines

    work2 = tmp_path / "work2"  # a client's verify of the server's copy: hg's "contents differ" (statlfile 1)
    peer.hg(*LF, "clone", "-q", "--noupdate", url("big"), str(work2))
    verified = peer.hg(*LF, "--config", "largefiles.usercache=" + str(tmp_path / "cache2"), "verify", "--large", "--lfa",
                       "-R", str(work2), check=False)
    assert verified.returncode == 1 and "blob.bin: contents differ" in verified.stdout + verified.stderr, verified

    if kind == "http":  # hgweb's archive holding it is cut short: never a whole archive with the wrong bytes
        (repo / ".hg" / "hgrc").write_text("[extensions]\nlargefiles =\n[web]\nallow-archive = gz\n")
        body = b""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{server.port('http')}/big/archive/tip.tar.gz",
                                        timeout=30) as answer:
                body = answer.read()
        except http.client.IncompleteRead:
            pass
        if body:
            with pytest.raises((OSError, EOFError, tarfile.TarError)), \
                    tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as archive:
                archive.getmembers()
        assert any(str(stored) in str(e.get("where")) for e in log_events if e["log_level"].name == "error")


@pytest.mark.parametrize("kind", ["ssh", "http"])
def test_a_largefile_changed_after_it_was_found_intact_is_cut_before_its_end(
        kind: str, make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys,
        htpasswd: Path, tmp_path: Path, log_events: list[dict[str, Any]]) -> None:
    """One found intact is not hashed again while its file's stamp holds, but hashed as it is sent,
    its last chunk held back: bits that rot under the same stamp never reach the client whole."""
    peer, url, server = _served(kind, make_server, client, ssh_keys, htpasswd)
    repo, work = largefiles_clone(peer, url, server, client, tmp_path)
    data = os.urandom(3 * blobs.CHUNK + 7)
    (work / "blob.bin").write_bytes(data)
    client.hg(*LF, "add", "-q", "--large", str(work / "blob.bin"), cwd=work)
    client.hg(*LF, "commit", "-q", "-m", "big", cwd=work)
    peer.hg(*LF, "--config", "largefiles.usercache=" + str(tmp_path / "cache0"), "push", "-q", "-R", str(work),
            url("big"))
    sha = hashlib.sha1(data).hexdigest()
    for cached in Path(client.env["HOME"]).rglob(sha):
        cached.unlink()
    peer.hg(*LF, "--config", "largefiles.usercache=" + str(tmp_path / "cache1"), "clone", "-q", url("big"),
            str(tmp_path / "first"))
    assert (tmp_path / "first" / "blob.bin").read_bytes() == data, "found intact, and remembered so"
    stored = repo / ".hg" / "largefiles" / sha
    corrupt = bytearray(data)
    corrupt[7] ^= 1
    stored.write_bytes(bytes(corrupt))
    with blobs._CHECKED_LOCK:  # the changed file's stamp, as if no file time showed the change
        blobs._CHECKED[str(stored)] = (blobs._stamp(os.stat(stored)), True)

    second = tmp_path / "second"
    cloned = peer.hg(*LF, "--config", "largefiles.usercache=" + str(tmp_path / "cache2"), "clone", url("big"),
                     str(second), check=False)
    said = cloned.stdout + cloned.stderr
    assert not (second / "blob.bin").exists() or (second / "blob.bin").read_bytes() != bytes(corrupt), said
    assert not list((tmp_path / "cache2").rglob(sha)) if (tmp_path / "cache2").exists() else True
    lines = [str(e.get("reason")) for e in log_events
             if e["log_level"].name == "error" and sha in str(e.get("reason"))]
    assert len(lines) == 1 and str(stored) in lines[0], lines
    assert not [e for e in log_events if e.get("log_failure") is not None and sha in str(e.get("log_failure"))]
