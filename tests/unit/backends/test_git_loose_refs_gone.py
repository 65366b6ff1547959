"""The loose refs of an advertisement are read in a worker watched for its client
(``protocols.client_gone``): once it has gone, the read stops within ``CHECK_EVERY`` refs (a
repository of 100,000 loose tags had them all read for nobody before the first look)."""

from __future__ import annotations

from pathlib import Path

import pytest
from dulwich.repo import Repo

from backends import git as git_backend
from protocols import client_gone
from protocols.client_gone import CHECK_EVERY
from protocols.errors import ClientGone

LOOSE = 4 * CHECK_EVERY


def test_loose_refs_stop_being_read_once_the_client_has_gone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    git_dir = tmp_path / "loose.git"
    Repo.init_bare(str(git_dir), mkdir=True).close()
    tags = git_dir / "refs" / "tags"
    for i in range(LOOSE):
        (tags / f"v{i:05d}").write_bytes(b"%040x\n" % (i + 1))
    reads = []
    read = git_backend._loose_ref

    def counted(filename: bytes) -> bytes | None:
        reads.append(filename)
        return read(filename)

    monkeypatch.setattr(git_backend, "_loose_ref", counted)
    repo = git_backend.DulwichGitRepository("loose.git", Repo(str(git_dir)), owns_repo=True)
    try:
        with client_gone.watching(lambda: True), pytest.raises(ClientGone):
            repo.refs_and_symrefs()
        assert len(reads) <= CHECK_EVERY + 1, len(reads)  # (HEAD, then the refs up to the first look)
        reads.clear()
        with client_gone.watching(lambda: False):
            assert len(repo.refs()) == LOOSE
    finally:
        repo.close()
