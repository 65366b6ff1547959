"""A loose blob over ``core.bigFileThreshold`` that a repository borrows from another
(``objects/info/alternates``: a fork made with ``git clone --shared``) is read and sent a piece at a
time, as one of its own is (it was read whole: past dulwich's 512 MiB bound, "internal error").
The bound is lowered here, as in ``test_git_big_loose_blob``, so that a small blob reaches it."""

from __future__ import annotations

import io
import random
import subprocess
import tarfile
from pathlib import Path
from typing import Any

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_big_loose_blob import LIMIT, inflated  # noqa: F401 (a fixture)
from tests.integration.test_git_daemon import commit, started_repo


def _borrowing_fork(server: RunningServer, client: Client, noise: bytes) -> tuple[Path, Path, str]:
    """``base.git`` holding ``noise.bin`` loose, and ``fork.git`` borrowing all its objects from it."""
    _url, work = started_repo(server, client, "base", push=True)
    commit(client, work, "noise.bin", noise, "a blob past the bound")
    base = server.root / "base.git"
    client.git("push", "-q", f"file://{base}", "HEAD:main", cwd=work)  # git's receive-pack stores it loose
    big = client.git("rev-parse", "HEAD:noise.bin", cwd=work).stdout.strip()
    assert (base / "objects" / big[:2] / big[2:]).is_file()
    fork = server.root / "fork.git"
    subprocess.run(["git", "clone", "-q", "--bare", "--shared", str(base), str(fork)], check=True)
    assert not (fork / "objects" / big[:2]).exists()
    return base, fork, big


def test_a_borrowed_loose_blob_past_the_bound_is_cloned_a_piece_at_a_time(
        make_server: Any, client: Client, inflated: list[bytes]) -> None:  # noqa: F811
    server: RunningServer = make_server("fs", git=[LOOPBACK])
    noise = random.Random(11).randbytes(3 * LIMIT + 5)
    _base, fork, big = _borrowing_fork(server, client, noise)
    clone = client.cwd / "clone"
    client.git("clone", "-q", server.git_url("fork"), str(clone))
    assert (clone / "noise.bin").read_bytes() == noise
    client.git("fsck", "--full", "--strict", cwd=clone)
    assert big.encode() not in inflated, inflated

    client.git("--git-dir", str(fork), "config", "daemon.uploadarch", "true")
    ours = subprocess.run(["git", "archive", f"--remote={server.git_url('fork.git')}", "--format=tar", "main"],
                          env=client.env, cwd=client.cwd, capture_output=True, timeout=60, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(ours)) as tar:
        member = tar.extractfile("noise.bin")
        assert member is not None and member.read() == noise
    assert big.encode() not in inflated, inflated
