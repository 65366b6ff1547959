"""A shallow client's haves are its tips, each walked whole (its tree and everything below it) at
every fetch: ``git fetch --deepen=1`` of a shallow clone of every branch of the bench corpus read
5,600 trees through 50,000 entries for them, twice ``git daemon``'s server CPU.  The walked closure
is kept with the pack's bitmap, by its tips and boundary, for the next client of the same tips."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from dulwich.repo import Repo

from backends import git_fastpack, git_reach
from backends.git_fastpack import generate_pack_fast, plan_pack
from tests.unit.backends.test_git_fastpack import (  # noqa: F401 - ``sources`` is a fixture
    _counting_bitmap_reads,
    expected_objects,
    parents,
    rev,
    sources,
    with_shallow_file,
)

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs a git binary")

TIPS = ["main", "dev", "feature"]


def deepen_by_one(src: Path) -> tuple[list[bytes], list[bytes], list[bytes]]:
    """A shallow clone of every branch (its tips are its boundary) deepening by one: the wants (the
    tips and their parents), the haves (the tips) and the new boundary (both)."""
    tips = [rev(src, name) for name in TIPS]
    grown = sorted({p for tip in tips for p in parents(src, tip)})
    return sorted(set(tips) | set(grown)), tips, sorted(set(tips) | set(grown))


def counted_reads(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    reads: list[bytes] = []
    real_read = git_reach.Walker._read

    def counted(self: Any, sha: bytes) -> tuple[int, bytes]:
        reads.append(sha)
        return real_read(self, sha)

    monkeypatch.setattr(git_reach.Walker, "_read", counted)
    return reads


def test_a_deepen_s_haves_are_walked_once_for_the_next_clients(
        sources: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    src = tmp_path / "kept-closure.git"
    shutil.copytree(sources["tipbitmaps"].path, src)
    _counting_bitmap_reads(monkeypatch)
    monkeypatch.setattr(git_reach, "KEEP_CLOSURE_STEPS", 1, raising=False)  # (the corpus's walk takes thousands)
    reads = counted_reads(monkeypatch)
    wants, haves, boundary = deepen_by_one(src)
    oracle = with_shallow_file(tmp_path, src, boundary, "oracle.git")
    have_objects = expected_objects(oracle, haves, [])
    expected = expected_objects(oracle, wants, []) - have_objects

    def pack() -> bytes:
        repo = Repo(str(src))
        chunks = generate_pack_fast(repo.object_store, wants, haves, thin_pack=True, refs=repo.get_refs(),
                                    shallow_boundary=boundary)
        assert chunks is not None
        return b"".join(chunks)

    first = pack()
    assert int.from_bytes(first[8:12], "big") == len(expected)
    assert set(reads) & have_objects, "the first client's haves are walked"
    reads.clear()
    assert pack() == first, "the next client of the same tips gets the same pack"
    assert not set(reads) & have_objects, "its haves are not walked again"

    for name, deeper, walked in [
            # a boundary that still holds the tips: their closure is their trees whatever else it holds
            ("also", boundary + sorted({p for c in boundary for p in parents(src, c)} - set(boundary)), False),
            # a boundary below the tips (a client that has deepened since) is another closure
            ("below", sorted({p for c in boundary for p in parents(src, c)} - set(haves)), True)]:
        reads.clear()
        plan = plan_pack(Repo(str(src)).object_store, wants, haves, thin_pack=True, ofs_delta=True,
                         shallow_boundary=deeper)
        assert bool(set(reads) & have_objects) == walked, name
        oracle = with_shallow_file(tmp_path, src, deeper, f"{name}.git")
        assert plan.count == len(expected_objects(oracle, wants, haves)
                                 - expected_objects(with_shallow_file(tmp_path, src, deeper, f"{name}2.git"), haves, []))


def test_the_closures_kept_of_a_bitmap_are_bounded(
        sources: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    src = tmp_path / "bounded-closures.git"
    shutil.copytree(sources["tipbitmaps"].path, src)
    _counting_bitmap_reads(monkeypatch)
    monkeypatch.setattr(git_reach, "KEEP_CLOSURE_STEPS", 1)
    monkeypatch.setattr(git_reach, "MAX_KEPT_CLOSURES", 2)
    monkeypatch.setattr(git_reach, "OTHER_BYTES", 0)  # (the count is bounded here; names: below)
    for _ in range(2):
        for n in range(1, 5):  # four shallow clients of main, each its own depth
            boundary = [rev(src, f"main~{n}")]
            haves = [rev(src, f"main~{n}")]
            wants = [rev(src, "main")]
            plan = plan_pack(Repo(str(src)).object_store, wants, haves, thin_pack=True, ofs_delta=True,
                             shallow_boundary=boundary)
            oracle = with_shallow_file(tmp_path, src, boundary, f"oracle-{n}-{_}.git")
            assert plan.count == len(expected_objects(oracle, wants, []) - expected_objects(oracle, haves, []))
            kept = git_fastpack._BITMAPS.get(str(next((src / "objects" / "pack").glob("*.bitmap"))))
            assert kept is not None and 1 <= len(kept.bitmap._closures) <= 2


def _held_bytes(closures: dict[Any, Any]) -> int:
    """What the kept closures hold: their keys' and others' names and sets, and their bitsets."""
    total = 0
    for (tips, boundary), (bits, others) in closures.items():
        for names in (tips, boundary, others):
            total += sys.getsizeof(names) + sum(sys.getsizeof(name) for name in names)
        total += sys.getsizeof(bits)
    return total


def test_a_client_naming_every_object_as_a_have_cannot_make_a_bitmap_hold_more_than_its_budget(
        sources: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    # A fetch may name 262,144 haves (``max_haves``), any object the repository has: each set of
    # them was kept as its closure's key, uncounted, 32 of them a bitmap (some 800 MB for a
    # repository of a million objects, against the 4 MiB counted for it).
    src = tmp_path / "many-haves.git"
    shutil.copytree(sources["tipbitmaps"].path, src)
    monkeypatch.setattr(git_reach, "KEEP_CLOSURE_STEPS", 1)
    every = sorted(expected_objects(src, [rev(src, "main~1")], []))
    wants = [rev(src, "main")]
    bitmap_path = str(next((src / "objects" / "pack").glob("*.bitmap")))
    for n in range(4):  # four clients, each its own subset of the objects as haves
        haves = every[n:]
        plan = plan_pack(Repo(str(src)).object_store, wants, haves, thin_pack=True, ofs_delta=True)
        assert plan.count == len(expected_objects(src, wants, [rev(src, "main~1")]))
        kept = git_fastpack._BITMAPS.get(bitmap_path)
        assert kept is not None
        assert _held_bytes(kept.bitmap._closures) <= kept.bitmap.closure_budget(kept.objects)
    # a few tips (a shallow clone of every branch) are still kept
    haves = [rev(src, "main~1"), rev(src, "dev"), rev(src, "feature")]
    plan_pack(Repo(str(src)).object_store, wants, haves, thin_pack=True, ofs_delta=True)
    kept = git_fastpack._BITMAPS.get(bitmap_path)
    assert kept is not None and (frozenset(haves), frozenset()) in kept.bitmap._closures
