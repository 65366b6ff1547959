"""A full clone sends every entry of its pack as stored: it was written entry by entry (each entry's
type read and its distance to its base checked in Python, each position selected and each bit of
the bitmap turned into a position by a Python step), 0.33 s of CPU for a clone of a million tiny
objects whose pack goes out unchanged.  Those entries now go out as one run, their types read by
C-level passes; the pack is the same, byte for byte."""

from __future__ import annotations

import random
import shutil
from array import array
from pathlib import Path
from typing import Any

import pytest
from dulwich.repo import Repo

from backends import git_fastpack
from backends.git_fastpack import OFS_DELTA, _bit_positions, _NewOffsets, generate_pack_fast
from tests.unit.backends.test_git_fastpack import (  # noqa: F401 - ``sources`` is a fixture
    entry_types,
    expected_objects,
    git,
    receive,
    sources,
)

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs a git binary")


def every_ref(src: Path) -> list[bytes]:
    return sorted({line.split()[0] for line in git(src, "show-ref", "--heads", "--tags").splitlines()})


def counted_entry_steps(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    steps: list[int] = []
    real = git_fastpack._keeps_distance

    def counted(*args: Any) -> bool:
        steps.append(args[1])
        return real(*args)

    monkeypatch.setattr(git_fastpack, "_keeps_distance", counted)
    return steps


def clone(src: Path, **kw: Any) -> bytes:
    repo = Repo(str(src))
    chunks = generate_pack_fast(repo.object_store, every_ref(src), [], chunk_size=4096, refs=repo.get_refs(), **kw)
    assert chunks is not None
    return b"".join(chunks)


def test_a_full_clone_of_a_pack_copies_it_without_a_step_per_entry(
        sources: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    src = tmp_path / "whole.git"
    shutil.copytree(sources["tipbitmaps"].path, src)  # one pack, whole objects and OFS_DELTAs, a bitmap
    (stored,) = (src / "objects" / "pack").glob("*.pack")
    assert OFS_DELTA in entry_types(stored.read_bytes())
    steps = counted_entry_steps(monkeypatch)
    monkeypatch.setattr(git_fastpack, "PLAIN_BLOCK", 7, raising=False)  # (blocks end inside the pack,
    monkeypatch.setattr(git_fastpack, "PLAIN_BLOCK_BYTES", 3000, raising=False)  # by count and by bytes)
    assert clone(src, ofs_delta=True) == stored.read_bytes()
    assert steps == []


def test_a_client_without_ofs_delta_gets_the_rest_entry_by_entry(
        sources: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    src = tmp_path / "no-ofs.git"
    shutil.copytree(sources["tipbitmaps"].path, src)
    steps = counted_entry_steps(monkeypatch)
    pack = clone(src, ofs_delta=False)
    assert OFS_DELTA not in entry_types(pack)
    assert steps, "past the whole objects at its start, the pack went entry by entry"
    client = tmp_path / "client.git"
    git(tmp_path, "init", "-q", "--bare", str(client))
    wants = every_ref(src)
    assert receive(client, pack, wants) == expected_objects(src, wants, [])


def test_a_pack_of_ref_deltas_is_still_sent_as_stored(sources: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    src = tmp_path / "ref.git"
    shutil.copytree(sources["refdelta"].path, src)
    (stored,) = (src / "objects" / "pack").glob("*.pack")
    assert clone(src, ofs_delta=True) == stored.read_bytes()


@pytest.mark.parametrize("size", [0, 1, 7, 8, 9, 64, 1000, 4099])
def test_bit_positions_are_the_set_bits(size: int) -> None:
    rng = random.Random(size)
    for density in (0.0, 0.01, 0.5, 1.0):
        positions = [n for n in range(size) if rng.random() < density]
        bits = sum(1 << n for n in positions)
        assert list(_bit_positions(bits, size)) == positions


def test_the_new_offsets_of_entries_sent_as_one_run_are_their_stored_ones_shifted() -> None:
    stored = array("q", [12, 40, 90, 95, 130])
    offsets = _NewOffsets(array("q", range(5)), stored)
    offsets.plain, offsets.shift = 3, 500
    offsets.append(700)  # the fourth and fifth, recorded one by one
    offsets.append(760)
    assert [offsets[n] for n in range(5)] == [512, 540, 590, 700, 760]
