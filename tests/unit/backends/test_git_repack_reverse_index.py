"""hgwire's own repacks (``git_maintenance.repack_args``) write the new pack's reverse index
(``pack-<hash>.rev``, git's ``pack.writeReverseIndex``, off by default before git 2.41), which
``git_packindex.read_index`` takes its pack order from instead of sorting it; not where the
repository's config sets ``pack.writeReverseIndex = false``."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from dulwich.repo import Repo

from backends import git_packindex
from backends.git import ConfigValueError, DulwichGitRepository
from backends.git_maintenance import REPACK_ARGS, repack_args, write_bitmap
from backends.git_packindex import read_index


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "pack.threads=1", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout


def _bare(tmp_path: Path, commits: int, first: int = 0) -> Path:
    work = tmp_path / "w"
    if not work.exists():
        git(tmp_path, "init", "-q", "-b", "main", str(work))
    for i in range(first, first + commits):
        (work / f"f{i}").write_text(f"file {i}\n" * (i + 1))
        git(work, "add", "-A")
        git(work, "-c", "user.name=a", "-c", "user.email=a@b", "commit", "-qm", f"c{i}")
    bare = tmp_path / "r.git"
    if not bare.exists():
        git(tmp_path, "clone", "-q", "--bare", str(work), str(bare))
    else:
        git(work, "push", "-q", str(bare), "main")
    return bare


def _checked_rev(bare: Path) -> Path:
    """The one pack's ``.rev``, after git's own checks of the pack and read_index's of the file."""
    pack_dir = bare / "objects" / "pack"
    (rev,) = pack_dir.glob("pack-*.rev")
    git(bare, "fsck", "--full")
    git(bare, "verify-pack", str(rev.with_suffix(".idx")))
    pack = str(rev.with_suffix(".pack"))
    view = read_index(str(rev.with_suffix(".idx")), pack)
    by_pos = git_packindex._reverse_index(pack, len(view), view.checksum, 20)
    assert by_pos is not None  # a .rev read_index takes (its header, size and pack checksum)
    assert list(view.idx_to_pos) == [list(by_pos).index(i) for i in range(len(view))]
    return rev


def test_a_repack_hgwire_starts_writes_the_pack_s_reverse_index(tmp_path: Path) -> None:
    bare = _bare(tmp_path, 5)
    pack_dir = bare / "objects" / "pack"
    assert not list(pack_dir.glob("*.rev"))  # (git 2.39's clone: none)
    assert write_bitmap(bare)
    first = _checked_rev(bare)
    _bare(tmp_path, 3, first=5)  # more commits, loose
    git(bare, "repack", "-dq")  # and a second pack (without a .rev) beside the first
    assert write_bitmap(bare)  # both go: their .rev with them
    second = _checked_rev(bare)
    assert second != first and not first.exists() and not first.with_suffix(".pack").exists()
    assert sorted(p.stem for p in pack_dir.glob("pack-*.rev")) == sorted(p.stem for p in pack_dir.glob("pack-*.pack"))


def test_a_repository_that_turns_it_off_gets_none(tmp_path: Path) -> None:
    bare = _bare(tmp_path, 3)
    assert repack_args(bare, reverse_index=False) == REPACK_ARGS
    git(bare, "config", "pack.writeReverseIndex", "false")
    assert DulwichGitRepository("r.git", Repo(str(bare))).reverse_index_wanted() is False
    assert write_bitmap(bare, reverse_index=False)
    assert list((bare / "objects" / "pack").glob("*.bitmap")) and not list((bare / "objects" / "pack").glob("*.rev"))


@pytest.mark.parametrize(("value", "wanted"), [(None, True), ("true", True), ("1", True), ("off", False)])
def test_the_repository_s_config_says_whether_it_is_wanted(tmp_path: Path, value: str | None, wanted: bool) -> None:
    bare = tmp_path / "r.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    if value is not None:
        git(bare, "config", "pack.writeReverseIndex", value)
    assert DulwichGitRepository("r.git", Repo(str(bare))).reverse_index_wanted() is wanted


def test_a_value_git_would_not_read_is_the_operator_s_to_fix(tmp_path: Path) -> None:
    bare = tmp_path / "r.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    git(bare, "config", "pack.writeReverseIndex", "sometimes")
    with pytest.raises(ConfigValueError, match="pack.writereverseindex"):
        DulwichGitRepository("r.git", Repo(str(bare))).reverse_index_wanted()
