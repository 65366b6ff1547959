"""A first ``git fetch --deepen=1`` of a ``--depth=1 --no-single-branch`` clone that the server did
not serve (or served before a restart: no walk kept) names every branch and tag tip as a have, each
a shallow commit.  The haves' walk reads each of their trees once, however many tips share it: on
the bench corpus (40,000 commits, 94 tips) its 6,862 reads are exactly the 6,862 trees the tips
reach.  git walks them all too (``pack-objects --shallow`` runs ``--objects-edge-aggressive``, which
marks every have's whole tree): ``git rev-list --objects-edge-aggressive`` there lists the same 655
objects to send.  What costs is each read (77,381 pack entries inflated for 7,275 trees, every one
once: the tips lie far apart along the trees' delta chains), not the walk."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from dulwich.repo import Repo

from backends.git_fastpack import generate_pack_fast
from tests.unit.backends.test_git_fastpack import (  # noqa: F401 - ``sources`` is a fixture
    expected_objects,
    git,
    parents,
    rev,
    sources,
    with_shallow_file,
)
from tests.unit.backends.test_git_kept_closures import counted_reads

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs a git binary")


def test_a_cold_deepen_reads_each_of_the_haves_trees_once(
        sources: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    src = sources["tipbitmaps"].path
    peeled = {rev(src, f"{ref.decode()}^{{}}") for ref in Repo(str(src)).get_refs()
              if ref.startswith((b"refs/heads/", b"refs/tags/"))}
    tips = sorted(sha for sha in peeled if git(src, "cat-file", "-t", sha.decode()).strip() == b"commit")
    assert len(tips) > 2, "the corpus has several tips sharing trees"
    grown = sorted({p for c in tips for p in parents(src, c)} - set(tips))
    boundary = sorted(set(tips) | set(grown))
    oracle = with_shallow_file(tmp_path, src, boundary, "oracle.git")
    have_objects = expected_objects(oracle, tips, [])
    have_trees = {sha for sha in have_objects
                  if git(oracle, "cat-file", "-t", sha.decode()).strip() == b"tree"}
    expected = expected_objects(oracle, boundary, []) - have_objects
    reads = counted_reads(monkeypatch)
    repo = Repo(str(src))
    chunks = generate_pack_fast(repo.object_store, boundary, tips, thin_pack=True, refs=repo.get_refs(),
                                shallow_boundary=boundary)
    assert chunks is not None
    data = b"".join(chunks)
    assert int.from_bytes(data[8:12], "big") == len(expected)
    assert len(reads) == len(set(reads)), "no object is read twice"
    assert {sha for sha in reads if sha in have_trees} == have_trees, "the haves' walk reads each of their trees"
