"""hg-evolve's range hashes kept on disk (``backends.hg.rangecache``, ``.hg/cache/hgwire-obshashrange-v1``):
the first ``evoext_obshashrange_v1`` after a start hashed every range of the history (200,000
changesets, 3,500 markers: 2.4-2.8 s of CPU); the ranges and hashes are read back now where the
file fits the repository.  What is read back equals what is computed afresh (random histories of
merges, random markers, markers appended after the file was written, the changelog grown, pushes
after); a file that does not fit, or is no regular file, is ignored and written again."""

from __future__ import annotations

import hashlib
import os
import random
import struct
from pathlib import Path

import pytest

from backends.hg import forget, open_for_reading, rangecache
from backends.hg.obsstore import ObsStore, relevance_changed
from backends.hg.stablerange import RangeHashes
from protocols import hg_obsmarkers as obs
from protocols.hg_obsmarkers import Marker
from tests.unit.backends.hg.test_hg_kept_parsed_budget import _store
from tests.unit.backends.hg.test_hg_range_hashes_after_markers import _asked, _marker, _new_markers
from tests.unit.backends.hg.test_hg_stable_ranges import _history, _node

FIT = rangecache.Fit(0, b"\0" * 20, b"\0" * 20, 0, 0, b"\0" * 20)


def _round_trip(kept: RangeHashes) -> rangecache.FrozenRanges:
    hashes, subranges = kept.export()
    frozen = rangecache.decode(rangecache.encode(FIT, hashes, subranges))
    assert frozen is not None
    return frozen


def _store_of(markers: list[Marker]) -> ObsStore | None:
    return ObsStore(1, markers) if markers else None


def _same_as_fresh(kept: RangeHashes, parents: list[tuple[int, int]], count: int, store: ObsStore | None,
                   asked: list[tuple[int, int]]) -> None:
    fresh = RangeHashes(parents[:count], _node, store.relevant if store is not None else lambda nodes: [])
    for rangeid in asked:
        assert kept.obshash(rangeid) == fresh.obshash(rangeid), rangeid
    hashes, subranges = kept.export()  # every hash it holds, read back or computed since
    for packed, value in hashes.items():
        assert value == fresh.obshash(rangeconv(packed)), rangeconv(packed)
    for packed, subs in subranges.items():
        assert [rangeconv(s) for s in subs] == fresh.subranges(rangeconv(packed))


def rangeconv(packed: int) -> tuple[int, int]:
    return rangecache.unkey(packed)


@pytest.mark.parametrize("seed", range(10))
def test_range_hashes_read_back_equal_fresh_ones(seed: int) -> None:
    rng = random.Random(seed)
    total = 150
    parents = _history(seed, total)
    count = 100
    rev_of = {_node(r): r for r in range(total)}
    markers: list[Marker] = []
    for _ in range(rng.randrange(1, 12)):
        markers.extend(_new_markers(rng, parents, total))
    store = _store_of(markers)
    written = RangeHashes(parents[:count], _node, lambda nodes: [])
    written.use_store(store, {n: r for n, r in rev_of.items() if r < count}.get)
    asked = _asked(rng, written, count)
    _same_as_fresh(written, parents, count, store, asked)
    # read back by the next process, the same markers
    read = RangeHashes(parents[:count], _node, lambda nodes: [])
    read.adopt(_round_trip(written), count, store, [])
    _same_as_fresh(read, parents, count, store, asked)
    assert not read.unsaved and read.known() == count  # (nothing hashed again: all was read back)
    _same_as_fresh(read, parents, count, store, _asked(rng, read, count))
    # markers appended since the file was written: the ranges they touch are hashed again
    grown = [*markers, *_new_markers(rng, parents, total), *_new_markers(rng, parents, total)]
    now = _store_of(grown)
    assert now is not None
    touched = relevance_changed(store, now, 10_000)
    assert touched is not None
    again = RangeHashes(parents[:count], _node, lambda nodes: [])
    again.adopt(_round_trip(written), count, now, [r for r in map(rev_of.get, touched) if r is not None and r < count])
    _same_as_fresh(again, parents, count, now, _asked(rng, again, count))
    # the changelog grows, a push's markers come: kept hashes, read back or not, stay true
    count2 = count + rng.randrange(1, total - count)
    again.rebind(parents[:count2], _node)
    pushed = now.extended(now.new(_new_markers(rng, parents, total)))
    again.use_store(pushed, {n: r for n, r in rev_of.items() if r < count2}.get)
    _same_as_fresh(again, parents, count2, pushed, _asked(rng, again, count2))
    # written again (read back and computed since, merged) and read back
    last = RangeHashes(parents[:count2], _node, lambda nodes: [])
    last.adopt(_round_trip(again), count2, pushed, [])
    _same_as_fresh(last, parents, count2, pushed, _asked(rng, last, count2))


def test_subranges_read_back_that_do_not_cut_their_range_are_not_followed() -> None:
    """A file made up to fit, whose subranges loop back to their range: hashed afresh, no loop."""
    parents = [(r - 1, -1) for r in range(40)]
    head = (39, 0)
    made_up = {rangecache.key(head): [rangecache.key(head), rangecache.key((39, 20))],
               rangecache.key((39, 20)): [rangecache.key((39, 20)), rangecache.key(head)]}
    frozen = rangecache.decode(rangecache.encode(FIT, {}, made_up))
    assert frozen is not None
    store = ObsStore(1, [_marker(random.Random(1), hashlib.sha1(b"x").digest(), (_node(7),), None)])
    read = RangeHashes(parents, _node, lambda nodes: [])
    read.adopt(frozen, 40, store, [])
    assert read.obshash(head) == RangeHashes(parents, _node, store.relevant).obshash(head)


# -- through the repository: the file on disk -----------------------------------------------------

CHANGESETS = 3000


def _answered(path: str, asked: list[bytes]) -> list[bytes]:
    """The answers of a new open to the ranges of ``asked``'s heads, then what the gateway does
    once they are sent (``take_after_answer``: the file written)."""
    repo = open_for_reading(path, "r")
    answers = repo.obsmarker_range_hashes([(n, 0) for n in asked])
    if (work := repo.take_after_answer()) is not None:
        work()
    return answers


@pytest.fixture
def served(tmp_path: Path) -> tuple[str, list[bytes], list[bytes]]:
    """A store with markers whose range hashes were asked once: the path, the answers, the nodes asked."""
    path = _store(tmp_path, 0, changesets=CHANGESETS)
    repo = open_for_reading(path, "r")
    cl = repo.changelog()
    rng = random.Random(3)
    markers = [_marker(rng, hashlib.sha1(cl.node(r)).digest(), (cl.node(r),), None) for r in range(CHANGESETS)]
    (Path(path) / ".hg" / "store" / "obsstore").write_bytes(b"".join(obs.encode(markers, 1)))
    forget(path)
    asked = [cl.node(CHANGESETS - 1), cl.node(2000), cl.node(1234)]
    first = _answered(path, asked)
    return path, first, asked


def _cache(path: str) -> Path:
    return Path(path) / ".hg" / "cache" / "hgwire-obshashrange-v1"


def _restarted(path: str, asked: list[bytes], monkeypatch: pytest.MonkeyPatch) -> tuple[list[bytes], int]:
    """The answers after a start (what was kept forgotten), and how many changesets' markers were
    looked up for them."""
    forget(path)
    looked: list[bytes] = []
    relevant = ObsStore.relevant

    def counted(self: ObsStore, nodes: list[bytes]) -> list[Marker]:
        looked.extend(nodes)
        return relevant(self, nodes)

    with monkeypatch.context() as patched:
        patched.setattr(ObsStore, "relevant", counted)
        answers = _answered(path, asked)
    return answers, len(looked)


def test_the_first_question_after_a_start_reads_the_hashes_back(served: tuple[str, list[bytes], list[bytes]],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path, first, asked = served
    written = _cache(path).stat()
    answers, looked = _restarted(path, asked, monkeypatch)
    assert answers == first and looked == 0  # (every changeset's markers were looked up: 3,000)
    again = _cache(path).stat()
    assert (again.st_ino, again.st_mtime_ns) == (written.st_ino, written.st_mtime_ns)  # (nothing new: not written)
    # a marker appended on the server since (hg debugobsolete): the ranges it touches alone are hashed again
    repo = open_for_reading(path, "r")
    amended = repo.changelog().node(1235)
    with (Path(path) / ".hg" / "store" / "obsstore").open("ab") as f:
        f.write(b"".join(obs.encode([_marker(random.Random(2), amended, (), None)], 1, header=False)))
    answers, looked = _restarted(path, asked, monkeypatch)
    forget(path)
    _cache(path).unlink()
    assert answers == _answered(path, asked) != first
    assert looked == 1


def _fifo(cache: Path) -> None:
    os.mkfifo(cache)


def _dev_zero(cache: Path) -> None:
    cache.symlink_to("/dev/zero")


def _truncated(cache: Path) -> None:
    data = cache.read_bytes()
    cache.write_bytes(data[:len(data) // 2])


def _one_byte_changed(cache: Path) -> None:
    data = bytearray(cache.read_bytes())
    data[len(data) // 2] ^= 1
    cache.write_bytes(bytes(data))


def _another_changelog(cache: Path) -> None:
    """A file that fits another history of as many changesets (its digest of their nodes)."""
    data = bytearray(cache.read_bytes())
    data[48:68] = hashlib.sha1(b"another").digest()
    body = bytes(data[:-20])
    cache.write_bytes(body + hashlib.sha1(body).digest())


def _wrong_tip(cache: Path) -> None:
    data = bytearray(cache.read_bytes())
    data[28:48] = hashlib.sha1(b"tip").digest()
    body = bytes(data[:-20])
    cache.write_bytes(body + hashlib.sha1(body).digest())


def _huge(cache: Path) -> None:
    """A header claiming more hashes than any file of its changesets holds, then a large file."""
    data = bytearray(cache.read_bytes())
    struct.pack_into("<Q", data, rangecache.HEADER.size - 40, 1 << 40)
    cache.write_bytes(bytes(data))


def _another_format(cache: Path) -> None:
    cache.write_bytes(b"SQLite format 3\0" + b"\0" * 4000)


def _directory(cache: Path) -> None:
    cache.mkdir()


@pytest.mark.parametrize("damage", [_fifo, _dev_zero, _truncated, _one_byte_changed, _another_changelog,
                                    _wrong_tip, _huge, _another_format, _directory])
def test_a_cache_file_that_does_not_fit_is_ignored_and_written_again(
        served: tuple[str, list[bytes], list[bytes]], damage: object, monkeypatch: pytest.MonkeyPatch) -> None:
    path, first, asked = served
    cache = _cache(path)
    if damage in (_fifo, _dev_zero, _directory):
        cache.unlink()
    damage(cache)  # type: ignore[operator]
    answers, looked = _restarted(path, asked, monkeypatch)
    assert answers == first and looked == CHANGESETS  # (hashed afresh)
    if damage is _directory:
        assert cache.is_dir()  # (left as it is: the answers are the same)
        return
    assert cache.is_file() and not cache.is_symlink()
    answers, looked = _restarted(path, asked, monkeypatch)  # (written again: read back at the next start)
    assert answers == first and looked == 0
