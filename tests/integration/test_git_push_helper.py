"""A push through the server whose pack is resolved by two processes (``git_ingest._ForkedHalf``,
with its threshold lowered): the repository is whole, clones, and no helper is left behind."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import bcrypt
import pytest

from backends import git_ingest
from backends.interfaces import Kind
from tests.conftest import LOOPBACK, Client, RunningServer
from tests.unit.backends.test_git_ingest_parallel import history  # noqa: F401 - the fixture


@pytest.mark.parametrize("transport", ["git", "http"])
def test_a_push_through_the_server_with_the_helper(make_server: Callable[..., RunningServer], client: Client,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   history: tuple[Path, bytes, bytes],  # noqa: F811 - the fixture
                                                   transport: str, tmp_path: Path) -> None:
    """A real push, its pack resolved by two processes: the repository is whole (fsck), clones, and
    no helper is left behind (each is reaped)."""
    work, _first, _last = history
    monkeypatch.setattr(git_ingest, "PARALLEL_MIN_OBJECTS", 2)
    monkeypatch.setattr(git_ingest, "HALF_WAIT_SECONDS", 600.0)  # the helper's answer however loaded the host
    forks: list[int] = []
    real_fork = os.fork

    def fork() -> int:
        pid = real_fork()
        if pid:
            forks.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", fork)
    merged: list[int] = []  # the helper's answer taken (not the parent's own fallback)
    merge = git_ingest.PackIngest._merge
    monkeypatch.setattr(git_ingest.PackIngest, "_merge", lambda self, half: merged.append(len(half.named)) or
                        merge(self, half))
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"alice:{bcrypt.hashpw(b'pw', bcrypt.gensalt(rounds=4)).decode()}\n")
    server = make_server("fs", git=[LOOPBACK], http=[LOOPBACK], htpasswd=str(htpasswd), allow_push_over_http=True)
    server.backend.create("r", Kind.GIT)
    url = server.git_url("r") if transport == "git" else server.url("http", "r").replace("http://", "http://alice:pw@")
    # (one delta-search thread: the same pack every push, so the same deltas below the helper's wholes)
    client.git("-c", "pack.threads=1", "push", "-q", url, "main", cwd=work)
    assert len(forks) == 1 and len(merged) == 1 and merged[0] > 0  # (the push ran on a pool thread)
    client.git("--git-dir", str(server.root / "r.git"), "fsck", "--full")
    client.git("clone", "-q", url, str(client.cwd / "copy"))
    with pytest.raises(ChildProcessError):
        os.waitpid(forks[0], os.WNOHANG)  # the helper was reaped: it is no child of this process any more
