"""A repository whose packs have version-1 indexes (git wrote them until 1.5.2, and writes them
with ``pack.indexVersion = 1``): read as the version-2 ones, so it is cloned, fetched from and
pushed to (a push into one was "the pushed pack is invalid: … not a version-2 pack index")."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from backends.git_packindex import read_index
from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_daemon import commit


def _history(client: Client, work: Path, n: int) -> None:
    for step in range(n):
        commit(client, work, f"f{step % 7}.txt", f"{step}\n" * (step + 1), f"step {step}")


def test_a_version_1_index_reads_as_its_version_2_twin(client: Client, tmp_path: Path) -> None:
    work = tmp_path / "work"
    client.git("init", "-q", "-b", "main", str(work))
    _history(client, work, 30)
    client.git("repack", "-q", "-a", "-d", cwd=work)
    (pack,) = (work / ".git" / "objects" / "pack").glob("*.pack")
    v2 = read_index(str(pack.with_suffix(".idx")), str(pack))
    v1_path = tmp_path / "v1.idx"
    client.git("index-pack", "--index-version=1", "-o", str(v1_path), str(pack))
    assert v1_path.read_bytes()[:4] != b"\377tOc"
    v1 = read_index(str(v1_path), str(pack))
    assert (v1.names, list(v1.offsets), list(v1.idx_to_pos), v1.checksum) == (
        v2.names, list(v2.offsets), list(v2.idx_to_pos), v2.checksum)
    assert len(v1) > 30  # commits, trees and blobs


def test_a_repository_of_version_1_indexes_is_served(make_server: Callable[..., RunningServer],
                                                     client: Client) -> None:
    server = make_server("fs", git=[LOOPBACK], http=[LOOPBACK])
    repo = server.root / "old.git"
    work = client.cwd / "work"
    client.git("init", "-q", "-b", "main", str(work))
    _history(client, work, 30)
    client.git("init", "-q", "--bare", str(repo))
    client.git("push", "-q", str(repo), "main", cwd=work)
    client.git("--git-dir", str(repo), "-c", "pack.indexVersion=1", "repack", "-q", "-a", "-d")
    (idx,) = (repo / "objects" / "pack").glob("*.idx")
    assert idx.read_bytes()[:4] != b"\377tOc"
    url = server.git_url("old")
    copy = client.cwd / "copy"
    client.git("clone", "-q", url, str(copy))
    shallow = client.cwd / "shallow"
    client.git("clone", "-q", "--depth=2", server.url("http", "old"), str(shallow))
    commit(client, copy, "new.txt", "new\n", "after")
    client.git("push", "-q", url, "HEAD:main", cwd=copy)
    client.git("fetch", "-q", "origin", cwd=shallow)
    assert client.git("rev-parse", "origin/main", cwd=shallow).stdout == client.git("rev-parse", "HEAD",
                                                                                     cwd=copy).stdout
    client.git("--git-dir", str(repo), "fsck", "--full")
