"""A push whose quarantine (``objects/tmp_objdir-incoming-*``) a ``git prune --expire=now`` on the
server removes while its pack is written is refused saying so (git's prune removes ``tmp_*``
entries of the object directory past its expiry; git's own receive-pack fails the same way)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from dulwich.objects import Blob, Commit, Tree

from backends.filesystem import FilesystemBackend
from backends.interfaces import Kind
from protocols.errors import ProtocolError
from tests.unit.backends.contract import _pack


def _big_pack() -> bytes:
    blob = Blob.from_string(os.urandom(1 << 20))
    tree = Tree()
    tree.add(b"big.bin", 0o100644, blob.id)
    commit = Commit()
    commit.tree = tree.id
    commit.author = commit.committer = b"Test <test@example.com>"
    commit.author_time = commit.commit_time = 1700000000
    commit.author_timezone = commit.commit_timezone = 0
    commit.message = b"big"
    return _pack([blob, tree, commit])


def test_a_push_whose_quarantine_is_pruned_meanwhile_is_refused_saying_so(tmp_path: Path) -> None:
    repo = FilesystemBackend(str(tmp_path)).create("r", Kind.GIT)
    git_dir = tmp_path / "r.git"
    pack = _big_pack()
    sink = repo.begin_pack()
    sink.write(pack[: len(pack) // 2])
    assert list((git_dir / "objects").glob("tmp_objdir-incoming-*"))
    subprocess.run(["git", "--git-dir", str(git_dir), "prune", "--expire=now"], check=True,
                   env={"PATH": os.environ["PATH"], "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(tmp_path)})
    assert not list((git_dir / "objects").glob("tmp_objdir-incoming-*"))  # (git's prune took it)
    with pytest.raises(ProtocolError) as refused:
        sink.write(pack[len(pack) // 2:])
        sink.commit()
    assert str(refused.value) == ("the push's quarantine directory was removed while the push was stored "
                                  "(a `git prune --expire=now` on the server?); push again")
    sink.abort()
    subprocess.run(["git", "--git-dir", str(git_dir), "fsck", "--full"], check=True, capture_output=True)
