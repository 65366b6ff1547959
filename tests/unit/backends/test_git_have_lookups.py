"""A fetch's haves were each looked for with dulwich's ``name in store``, which searches every
pack's index and stats the multi-pack index's file: 10,000 haves (a hostile ``--deepen``) cost
0.06 s of it.  The counting's pack index views answer for the haves they hold."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from dulwich.object_store import DiskObjectStore
from dulwich.objects import ObjectID
from dulwich.repo import Repo

from backends.git_fastpack import plan_pack
from tests.unit.backends.test_git_fastpack import git, rev

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs a git binary")


def line_of_commits(root: Path, commits: int) -> Path:
    work = root / "work"
    git(root, "init", "-q", "-b", "main", str(work))
    for n in range(commits):
        (work / "f.txt").write_text(f"{n}\n")
        git(work, "add", "f.txt")
        git(work, "commit", "-q", "-m", f"c{n}")
    git(work, "repack", "-adbq")
    return work / ".git"


def test_the_haves_a_pack_holds_are_not_looked_for_in_the_store(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    src = line_of_commits(tmp_path, 12)
    commits = git(src, "rev-list", "main").split()
    (src / "objects" / "ab").mkdir(exist_ok=True)
    missing = b"ab" + b"0" * 38  # (a have the repository lacks: still looked for, and left out)
    haves = commits[3:] + [missing]
    asked: list[bytes] = []
    real = DiskObjectStore.__contains__

    def contains(self: Any, sha: ObjectID) -> bool:
        asked.append(bytes(sha))
        return bool(real(self, sha))

    monkeypatch.setattr(DiskObjectStore, "__contains__", contains)
    plan = plan_pack(Repo(str(src)).object_store, [rev(src, "main")], haves, thin_pack=True, ofs_delta=True)
    assert plan.count == 3 * 3, "the three commits above the haves, their trees and blobs"
    assert not set(asked) & set(commits), "no have the pack holds is looked for in the store"
    assert missing in asked
