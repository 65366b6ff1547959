"""A loose blob over the bound on what the server inflates at once (dulwich's 512 MiB, from
``core.bigFileThreshold``) clones and fetches as from git's own server, read and deflated a piece
at a time (it was "internal error").  The bound is lowered here so that a small blob reaches it."""

from __future__ import annotations

import io
import random
import subprocess
import tarfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import dulwich.object_store
import pytest

from backends import git_objects
from backends.git_objects import RawLooseObjectStore
from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_daemon import commit, started_repo

LIMIT = 64 << 10


@pytest.fixture
def inflated(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Lower the bound to ``LIMIT``; the ids of the loose objects read whole from now on."""
    monkeypatch.setattr(dulwich.object_store, "DEFAULT_LOOSE_OBJECT_SIZE_LIMIT", LIMIT)
    monkeypatch.setattr(git_objects, "DEFAULT_LOOSE_OBJECT_SIZE_LIMIT", LIMIT)
    read: list[bytes] = []
    original = RawLooseObjectStore.loose_raw

    def recording(self: RawLooseObjectStore, name: bytes) -> Any:
        read.append(name)
        return original(self, name)

    monkeypatch.setattr(RawLooseObjectStore, "loose_raw", recording)
    return read


def _loose(repo: Path, oid: str) -> bool:
    return (repo / "objects" / oid[:2] / oid[2:]).is_file()


def _files(client: Client, work: Path) -> dict[str, str]:
    listed = client.git("ls-tree", "-r", "HEAD", cwd=work).stdout.splitlines()
    return {line.split("\t")[1]: line.split()[2] for line in listed}


def test_a_loose_blob_past_the_bound_clones_and_fetches_a_piece_at_a_time(
        make_server: Any, client: Client, inflated: list[bytes]) -> None:
    server: RunningServer = make_server("fs", git=[LOOPBACK])
    url, work = started_repo(server, client, "big", push=True)
    noise = random.Random(5).randbytes(3 * LIMIT + 7)
    commit(client, work, "noise.bin", noise, "a blob past the bound")
    repo = server.root / "big.git"
    client.git("push", "-q", f"file://{repo}", "HEAD:main", cwd=work)  # git's receive-pack stores a few loose
    big = _files(client, work)["noise.bin"]
    assert _loose(repo, big)

    clone = client.cwd / "clone"
    client.git("clone", "-q", url, str(clone))
    assert (clone / "noise.bin").read_bytes() == noise
    client.git("fsck", "--full", "--strict", cwd=clone)

    more = random.Random(6).randbytes(2 * LIMIT + 1)
    commit(client, work, "more.bin", more, "another")
    client.git("push", "-q", f"file://{repo}", "HEAD:main", cwd=work)
    client.git("pull", "-q", "--ff-only", cwd=clone)
    assert (clone / "more.bin").read_bytes() == more
    client.git("fsck", "--full", "--strict", cwd=clone)
    assert _loose(repo, _files(client, work)["more.bin"])
    assert big.encode() not in inflated and _files(client, work)["more.bin"].encode() not in inflated

    partial = client.cwd / "partial"  # the filter types it from its header; the checkout fetches it
    client.git("clone", "-q", "--filter=blob:limit=1k", url, str(partial))
    assert (partial / "noise.bin").read_bytes() == noise and (partial / "more.bin").read_bytes() == more

    twin = client.cwd / "twin"  # git's own upload-pack over the same repository
    client.git("clone", "-q", "--no-local", f"file://{repo}", str(twin))
    assert _files(client, twin) == _files(client, clone)
    client.git("--git-dir", str(repo), "fsck", "--full", "--strict")


def test_a_loose_blob_past_the_bound_is_sent_by_its_web_page_a_piece_at_a_time(
        make_server: Any, client: Client, inflated: list[bytes]) -> None:
    """A 600 MiB loose blob's ``raw-file`` was a 500 "internal error" (its size learnt by reading it
    whole: 1.8 GB of server RSS); it is sent as one stored whole in a pack is, whatever its size."""
    server: RunningServer = make_server("fs", git=[LOOPBACK], http=[LOOPBACK])
    _url, work = started_repo(server, client, "big", push=True)
    noise = random.Random(5).randbytes(3 * LIMIT)
    commit(client, work, "noise.bin", noise, "a blob past the bound")
    repo = server.root / "big.git"
    client.git("push", "-q", f"file://{repo}", "HEAD:main", cwd=work)
    url = server.url("http", "big.git/raw-file/main/noise.bin")
    with urllib.request.urlopen(url, timeout=60) as answer:
        assert answer.read() == noise
    assert not inflated


def test_a_loose_blob_past_the_bound_is_archived_a_piece_at_a_time(
        make_server: Any, client: Client, inflated: list[bytes]) -> None:
    """``git archive --remote`` of a tree holding one was "internal error"; git's tar streams it."""
    server: RunningServer = make_server("fs", git=[LOOPBACK])
    _url, work = started_repo(server, client, "big", push=True)
    noise = random.Random(7).randbytes(3 * LIMIT + 3)
    commit(client, work, "noise.bin", noise, "a blob past the bound")
    repo = server.root / "big.git"
    client.git("push", "-q", f"file://{repo}", "HEAD:main", cwd=work)
    client.git("--git-dir", str(repo), "config", "daemon.uploadarch", "true")
    ours = subprocess.run(["git", "archive", f"--remote={server.git_url('big.git')}", "--format=tar", "main"],
                          env=client.env, cwd=client.cwd, capture_output=True, timeout=60, check=True).stdout
    theirs = subprocess.run(["git", "archive", f"--remote={repo}", "--format=tar", "main"],
                            env=client.env, cwd=client.cwd, capture_output=True, timeout=60, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(ours)) as tar:
        member = tar.extractfile("noise.bin")
        assert member is not None and member.read() == noise
        names = tar.getnames()
    with tarfile.open(fileobj=io.BytesIO(theirs)) as tar:
        assert tar.getnames() == names
    assert not inflated
