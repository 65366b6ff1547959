"""A shallow fetch of several branch tips sends an older tip's tree whose stored base is not sent as a
delta made from the two trees' entries (``git_deltachain.tree_pieces``), read whole, where it composed
every stored delta of the chain between them (a third of the writing of the bench corpus's 27 tips)."""

from __future__ import annotations

import mmap
import random
import subprocess
from pathlib import Path

import pytest
from dulwich.repo import Repo

from backends import git_fastpack
from backends.git_deltachain import DeltaError, Pieces, apply_pieces, encode_delta, parse_delta, tree_pieces
from backends.git_fastpack import WriteStats, _open_maps, plan_pack, write_pack
from backends.git_objects import PackMaps, PackObjectReader
from backends.git_packindex import PackIndexView
from tests.unit.backends.test_git_chain_deltas import accepted, git, shallow_pack


def tree(entries: list[tuple[bytes, bytes, bytes]]) -> bytes:
    return b"".join(mode + b" " + name + b"\0" + sha for mode, name, sha in entries)


def test_tree_pieces_make_the_target_from_the_base() -> None:
    rng = random.Random(5)
    names = sorted(b"file%03d" % i for i in range(60))
    base_entries = [(b"100644", name, rng.randbytes(20)) for name in names]
    for _ in range(50):
        entries = list(base_entries)
        for _ in range(rng.randrange(6)):
            i = rng.randrange(len(entries))
            action = rng.randrange(3)
            if action == 0:      # a changed file
                entries[i] = (entries[i][0], entries[i][1], rng.randbytes(20))
            elif action == 1:    # a removed one
                del entries[i]
            else:                # a new one
                entries.insert(i, (b"40000", b"new%d" % rng.randrange(1000), rng.randbytes(20)))
        base, target = tree(base_entries), tree(entries)
        pieces = tree_pieces(target, base, 20)
        assert apply_pieces(parse_delta(encode_delta(pieces)), base) == target
        assert len(encode_delta(pieces)) < len(target) // 4   # a few changes: mostly copies


def test_a_changed_entry_copies_its_mode_and_name() -> None:
    base = tree([(b"100644", b"a.txt", b"\1" * 20), (b"100644", b"b.txt", b"\2" * 20)])
    target = tree([(b"100644", b"a.txt", b"\3" * 20), (b"100644", b"b.txt", b"\2" * 20)])
    pieces = tree_pieces(target, base, 20)
    assert pieces.literal == [b"", b"\3" * 20, b""]
    assert apply_pieces(pieces, base) == target


@pytest.mark.parametrize("bad", [b"100644 no-nul", b"100644 short\0" + b"\1" * 5])
def test_bytes_that_are_not_a_tree_are_refused(bad: bytes) -> None:
    good = tree([(b"100644", b"a", b"\1" * 20)])
    with pytest.raises(DeltaError):
        tree_pieces(bad, good, 20)
    with pytest.raises(DeltaError):
        tree_pieces(good, bad, 20)


def wide_history(root: Path) -> Path:
    """30 commits each changing 2 of the 120 files of one directory and adding one, repacked with a
    window of two (each version of the directory's tree a delta against the next larger, newer one),
    then branch ``old`` at the 5th and ``mid`` at the 15th: the chains of their trees go through the
    versions between the tips, which a shallow fetch of the three does not send."""
    work = root / "work"
    git(root, "init", "-q", "-b", "main", str(work))
    (work / "wide").mkdir()
    rng = random.Random(11)
    for n in range(30):
        for i in ([*range(120)] if n == 0 else [119 + n, *rng.sample(range(120), 2)]):
            (work / "wide" / f"file{i:03d}.txt").write_text(f"file {i} at commit {n}\n")
        git(work, "add", "-A")
        git(work, "commit", "-q", "-m", f"c{n}")
    git(work, "repack", "-adfq", "--depth=50", "--window=2")
    git(work, "branch", "old", "main~25")
    git(work, "branch", "mid", "main~15")
    return work / ".git"


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return wide_history(tmp_path_factory.mktemp("trees"))


@pytest.mark.parametrize("ofs_delta", [True, False])
def test_older_tips_trees_are_deltas_made_from_their_entries(source: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch, ofs_delta: bool) -> None:
    composed: list[bytes] = []
    made: list[bytes] = []
    real_compose = git_fastpack._ChainDeltas._compose
    real_tree = getattr(git_fastpack._ChainDeltas, "_tree_pieces", None)

    def compose(self: git_fastpack._ChainDeltas, mapped: object, chain: list[int]):  # type: ignore[no-untyped-def]
        composed.append(self._view.names[chain[0]].hex().encode())
        return real_compose(self, mapped, chain)  # type: ignore[arg-type]

    def tree_text(self: git_fastpack._ChainDeltas, pos: int, base: int):  # type: ignore[no-untyped-def]
        made.append(self._view.names[pos].hex().encode())
        assert real_tree is not None
        return real_tree(self, pos, base)

    monkeypatch.setattr(git_fastpack._ChainDeltas, "_compose", compose)
    monkeypatch.setattr(git_fastpack._ChainDeltas, "_tree_pieces", tree_text, raising=False)
    pack, stats, tips = shallow_pack(source, ["main", "mid", "old"], ofs_delta=ofs_delta)
    kinds = dict(zip(composed + made, subprocess.run(
        ["git", "cat-file", "--batch-check=%(objecttype)"], cwd=source, check=True, capture_output=True,
        input=b"".join(name + b"\n" for name in composed + made)).stdout.split(), strict=True))
    assert not [name for name in composed if kinds[name] == b"tree"]
    assert made and all(kinds[name] == b"tree" for name in made)
    assert stats.whole <= 6, stats
    accepted(tmp_path, pack, tips)


def test_the_writer_reads_the_trees_the_counting_read_from_its_cache(source: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The counting's reader is the writer's: the trees it made deltas of were read by the counting's
    walk, and are not inflated again (they were, through a reader of the writer's own)."""
    tips = [git(source, "rev-parse", name).strip() for name in ("main", "mid", "old")]
    repo = Repo(str(source))
    maps = PackMaps()
    plan = plan_pack(repo.object_store, tips, [], thin_pack=True, ofs_delta=True, shallow_boundary=tips, maps=maps)
    inflated: list[bytes] = []
    real_entry = PackObjectReader._entry

    def entry(self: PackObjectReader, view: PackIndexView, mapped: mmap.mmap, pos: int) -> tuple[int, bytes, int]:
        found = real_entry(self, view, mapped, pos)
        inflated.append(view.names[pos].hex().encode())
        return found

    monkeypatch.setattr(PackObjectReader, "_entry", entry)
    stats = WriteStats()
    pack = b"".join(write_pack(plan, _open_maps(plan, maps), chunk_size=4096, stats=stats))
    monkeypatch.undo()
    assert stats.composed >= 2
    kinds = subprocess.run(["git", "cat-file", "--batch-check=%(objecttype)"], cwd=source, check=True,
                           capture_output=True, input=b"".join(name + b"\n" for name in inflated)).stdout.split()
    assert b"tree" not in kinds
    assert plan.reader is None   # closed with the pack
    accepted(tmp_path, pack, tips)


def test_the_entries_a_tree_goes_on_with_are_one_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The next version of a tree of 150 entries, two changed: its entries that go on where the
    base's do are found as runs of bytes in common, not appended one by one (a shallow fetch of
    10,000 such trees sent as deltas spent a quarter of its time there)."""
    rng = random.Random(8)
    base_entries = [(b"100644", b"file%03d" % i, rng.randbytes(20)) for i in range(150)]
    entries = list(base_entries)
    for i in (20, 120):
        entries[i] = (entries[i][0], entries[i][1], rng.randbytes(20))
    base, target = tree(base_entries), tree(entries)
    appended = 0
    append = Pieces.append

    def counted(self: Pieces, src: int, size: int, lit: bytes) -> None:
        nonlocal appended
        appended += 1
        append(self, src, size, lit)

    monkeypatch.setattr(Pieces, "append", counted)
    pieces = tree_pieces(target, base, 20)
    assert apply_pieces(pieces, base) == target
    assert len(pieces) == 5 and pieces.literal[1::2] == [entries[20][2], entries[120][2]]
    assert appended <= 7
