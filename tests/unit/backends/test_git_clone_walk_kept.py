"""``git clone --depth=1 --no-single-branch`` walks its tips' trees (its branches and tags, each
commit a shallow one); its first ``git fetch --deepen=1`` names those commits as its haves and
walked the same trees again (the bench corpus: 0.13 s of server CPU, ``git daemon`` 0.06).  The
clone's walk is kept, as the closure of its commits alone too (less its tags), and is the
deepen's."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from dulwich.repo import Repo

from backends import git_reach
from backends.git_fastpack import generate_pack_fast
from tests.unit.backends.test_git_fastpack import (  # noqa: F401 - ``sources`` is a fixture
    expected_objects,
    parents,
    rev,
    sources,
    with_shallow_file,
)
from tests.unit.backends.test_git_kept_closures import counted_reads

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs a git binary")

BRANCHES = ["main", "dev", "feature"]


def pack(src: Path, wants: list[bytes], haves: list[bytes], boundary: list[bytes]) -> bytes:
    repo = Repo(str(src))
    chunks = generate_pack_fast(repo.object_store, wants, haves, thin_pack=True, refs=repo.get_refs(),
                                shallow_boundary=boundary)
    assert chunks is not None
    return b"".join(chunks)


def clone_then_deepen(src: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tags: list[str],
                      others: tuple[str, ...] = ()) -> tuple[set[bytes], set[bytes]]:
    """A depth-1 clone of the branches, ``tags`` and ``others`` (tags of no commit; its boundary:
    the commits the others name), then its deepen by one (its haves: those commits); the objects
    the deepen's walks read, and the objects the clone has (its pack checked against git's)."""
    commits = sorted({rev(src, f"{name}^{{commit}}") for name in BRANCHES + tags})
    wants = sorted({rev(src, name) for name in [*BRANCHES, *tags, *others]})
    pack(src, wants, [], commits)
    grown = sorted({p for c in commits for p in parents(src, c)} - set(commits))
    boundary = sorted(set(commits) | set(grown))
    oracle = with_shallow_file(tmp_path, src, boundary, f"oracle-{len(tags)}.git")
    have_objects = expected_objects(oracle, commits, [])
    expected = expected_objects(oracle, sorted(set(commits) | set(grown)), []) - have_objects
    reads = counted_reads(monkeypatch)
    deepened = pack(src, sorted(set(commits) | set(grown)), commits, boundary)
    read = set(reads)
    assert int.from_bytes(deepened[8:12], "big") == len(expected)
    return read, have_objects


@pytest.fixture
def tipbitmaps(sources: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:  # noqa: F811
    src = tmp_path / "clone-walk.git"
    shutil.copytree(sources["tipbitmaps"].path, src)
    monkeypatch.setattr(git_reach, "KEEP_CLOSURE_STEPS", 1)  # (the corpus's walk takes thousands)
    return src


@pytest.mark.parametrize("tags", [[], ["v1", "v2-blessed"]], ids=["branches", "with-tags"])
def test_a_shallow_clone_s_walk_is_its_first_deepen_s(tipbitmaps: Path, tmp_path: Path, tags: list[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    read, have_objects = clone_then_deepen(tipbitmaps, tmp_path, monkeypatch, tags)
    assert not read & have_objects, "the clone's walk is the deepen's haves'"


def test_a_clone_with_a_tag_of_a_blob_is_walked_again(tipbitmaps: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A tag of a blob (or a tree) reaches what its commits do not: its walk is no commits' walk."""
    read, have_objects = clone_then_deepen(tipbitmaps, tmp_path, monkeypatch, ["v1"], others=("blob-tag",))
    assert read & have_objects
