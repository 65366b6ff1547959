"""``git archive --remote=git://…`` against a server just started reads its objects by name from the
pack's index offsets: the view of the pack is built, but not its pack order (its ``.rev`` not read,
its offsets not sorted), which the clone after it does make, for its bitmap."""

from __future__ import annotations

import io
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from backends import git_packindex
from tests.conftest import LOOPBACK, Client, RunningServer


def test_an_archive_reads_objects_without_pack_order(make_server: Callable[..., RunningServer], client: Client,
                                                    tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = make_server("fs", git=[LOOPBACK])
    work = tmp_path / "src"
    client.git("init", "-q", work)
    for i in range(12):
        (work / f"d{i % 3}").mkdir(exist_ok=True)
        (work / f"d{i % 3}" / f"f{i % 5}.txt").write_text(f"line {i}\n" * (i + 2))
        client.git("add", "-A", cwd=work)
        client.git("commit", "-qm", f"c{i}", cwd=work)
    repo = server.repo_path("repo.git")
    client.git("clone", "-q", "--bare", work, repo)
    client.git("-C", repo, "config", "daemon.uploadarch", "true")
    client.git("-C", repo, "-c", "pack.writeReverseIndex=true", "repack", "-adbq")
    assert list((repo / "objects" / "pack").glob("*.rev"))

    monkeypatch.setattr(git_packindex, "_CACHE", git_packindex._ViewCache(git_packindex.MAX_CACHED_VIEWS))
    made: list[str] = []
    reverse_index = git_packindex._reverse_index

    def counted(*args: object) -> object:
        made.append("rev")
        return reverse_index(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(git_packindex, "_reverse_index", counted)
    url = server.git_url("repo.git")
    archived = subprocess.run(["git", "archive", f"--remote={url}", "HEAD"], env=client.env, cwd=client.cwd,
                              capture_output=True, timeout=60, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archived)) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
    assert files == {str(p.relative_to(work)): p.read_bytes() for p in work.rglob("*.txt")}
    server.settled()
    assert made == []  # (the view was built and read: no .rev read for pack order)
    assert len(git_packindex._CACHE) == 1

    client.git("clone", "-q", "--bare", url, tmp_path / "copy.git")
    server.settled()
    assert made == ["rev"]  # (the clone's bitmap needs pack order: made once, from the .rev)
    client.git("-C", tmp_path / "copy.git", "fsck", "--full")
