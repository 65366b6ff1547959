"""A pack's index view (``backends.git_packindex.read_index``, a ``TableView``) looks names up in its
name table, held as one buffer, by binary search: it answers as the dictionary and lists it replaced
(names in pack order, a position by name, offsets ascending), for small packs, SHA-1 and SHA-256
names, names sharing long prefixes and the first and last buckets of the fan-out, and it holds a few
bytes an object where it held about 150."""

from __future__ import annotations

import gc
import hashlib
import os
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backends import git_packindex
from backends.git_packindex import read_index

LARGE = 1 << 32


def write_idx(path: Path, entries: dict[bytes, int], raw_len: int) -> None:
    """A version-2 ``.idx`` of ``entries`` (name -> pack offset), its offsets past 4 GiB in the large
    offset table, beside a sparse ``.pack`` that reaches past the last entry."""
    names = sorted(entries)
    fanout = [sum(1 for name in names if name[0] <= b) for b in range(256)]
    small: list[int] = []
    large: list[int] = []
    for name in names:
        offset = entries[name]
        if offset >= LARGE:
            small.append(git_packindex.LARGE_OFFSET_FLAG | len(large))
            large.append(offset)
        else:
            small.append(offset)
    body = b"".join([git_packindex.IDX_MAGIC, (2).to_bytes(4, "big"),
                     *(n.to_bytes(4, "big") for n in fanout), *names,
                     *(hashlib.sha1(name).digest()[:4] for name in names),
                     *(o.to_bytes(4, "big") for o in small), *(o.to_bytes(8, "big") for o in large),
                     b"\x5a" * raw_len])
    path.write_bytes(body + hashlib.new("sha1" if raw_len == 20 else "sha256", body).digest())
    with open(path.with_suffix(".pack"), "wb") as pack:
        pack.truncate(max(entries.values(), default=12) + 100 + raw_len)


PREFIXES = [b"", b"\x00" * 19, b"\xff" * 19, b"\x00", b"\xff", bytes(range(7, 26)), b"\x80" * 3]
"""Where names begin: anywhere, in the first or last bucket, sharing all but their last bytes."""


def name(prefix: bytes, tail: bytes, raw_len: int) -> bytes:
    return (prefix[:raw_len - 1] + tail + bytes(raw_len))[:raw_len]


names_drawn = st.lists(st.tuples(st.sampled_from(PREFIXES), st.binary(min_size=1, max_size=32)), max_size=150)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw_len=st.sampled_from([20, 32]), drawn=names_drawn, probes=names_drawn,
       big=st.booleans(), mapped=st.booleans(), data=st.data())
def test_lookups_answer_as_the_dictionary_did(tmp_path: Path, raw_len: int, drawn: list[tuple[bytes, bytes]],
                                              probes: list[tuple[bytes, bytes]], big: bool, mapped: bool,
                                              data: st.DataObject) -> None:
    """Both ways a view looks a name up: a small pack's map, a large one's binary search."""
    threshold = git_packindex.MAPPED_VIEW_MAX_OBJECTS
    git_packindex.MAPPED_VIEW_MAX_OBJECTS = threshold if mapped else 0
    try:
        _check_lookups(tmp_path, raw_len, drawn, probes, big, data)
    finally:
        git_packindex.MAPPED_VIEW_MAX_OBJECTS = threshold


def _check_lookups(tmp_path: Path, raw_len: int, drawn: list[tuple[bytes, bytes]],
                   probes: list[tuple[bytes, bytes]], big: bool, data: st.DataObject) -> None:
    names = list(dict.fromkeys(name(p, t, raw_len) for p, t in drawn))
    starts = data.draw(st.lists(st.integers(12, 1 << 30), min_size=len(names), max_size=len(names), unique=True))
    if big and starts:  # the last entries of the pack lie past 4 GiB
        starts = [s + LARGE if i % 3 == 0 else s for i, s in enumerate(starts)]
    entries = dict(zip(names, starts))
    idx = tmp_path / f"pack-{len(os.listdir(tmp_path))}.idx"
    write_idx(idx, entries, raw_len)
    view = read_index(str(idx), str(idx.with_suffix(".pack")), raw_len)

    in_pack_order = sorted(entries, key=entries.__getitem__)
    pos_of = {sha: pos for pos, sha in enumerate(in_pack_order)}
    assert len(view) == len(entries)
    assert list(view.names) == in_pack_order
    assert [view.names[pos] for pos in range(len(view))] == in_pack_order
    assert list(view.offsets) == sorted(entries.values())
    assert list(view.idx_to_pos) == [pos_of[sha] for sha in sorted(entries)]
    for sha, start in entries.items():
        assert view.position(sha) == pos_of[sha]
        assert view.position_at_offset(start) == pos_of[sha]
    absent = [sha for sha in (name(p, t, raw_len) for p, t in probes) if sha not in entries]
    absent += [bytes(raw_len), b"\xff" * raw_len, *(sha[:-1] + bytes([sha[-1] ^ 1]) for sha in entries)]
    for sha in absent:
        if sha not in entries:
            assert view.position(sha) is None
    for sha in list(entries)[:3]:
        assert view.position(sha[:-1]) is None and view.position(sha + b"\0") is None  # another length
    for wanted in (set(entries) | set(absent), set(list(entries)[:2]) | set(absent[:1]), set()):
        found, offsets = view.find_many(wanted)
        assert sorted(zip(found, offsets)) == sorted((sha, entries[sha]) for sha in wanted if sha in entries)
    for pos in range(len(view)):
        end = view.entry_end(pos)
        assert end == (view.offsets[pos + 1] if pos + 1 < len(view) else view.pack_size - raw_len)


@pytest.fixture
def large_is_50_000(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests of a large pack's view take 50,000 objects as large (their names not mapped)."""
    monkeypatch.setattr(git_packindex, "MAPPED_VIEW_MAX_OBJECTS", 10_000)


def _large_index(tmp_path: Path, count: int) -> tuple[dict[bytes, int], Path]:
    """A ``.idx`` of ``count`` made-up objects whose offsets are not in name order, and its entries."""
    entries = {hashlib.sha1(b"%d" % i).digest(): 12 + 40 * ((i * 7919) % count) for i in range(count)}
    idx = tmp_path / "pack-big.idx"
    write_idx(idx, entries, 20)
    return entries, idx


def _measured_read(idx: Path) -> tuple[git_packindex.PackIndexView, int, int]:
    """The view of ``idx`` and what Python held for it: after the read (collected) and at its peak."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        view = read_index(str(idx), str(idx.with_suffix(".pack")))
        peak = tracemalloc.get_traced_memory()[1] - before
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    return view, held, peak


def test_a_large_view_holds_a_few_bytes_an_object(tmp_path: Path, large_is_50_000: None) -> None:
    """50,000 objects: their view held about 150 bytes an object (a bytes object, a dictionary entry
    and a tuple slot each); it is their name table and four 4-byte columns now."""
    count = 50_000
    _, idx = _large_index(tmp_path, count)
    view, held, _ = _measured_read(idx)
    assert len(view) == count
    assert held < 48 * count, f"{held / count:.0f} bytes an object"


def test_building_a_large_view_holds_little_beside_it(tmp_path: Path, large_is_50_000: None) -> None:
    """50,000 objects put in pack order: the peak of what Python held while building their view stays
    under 90 bytes an object, the view included (its positions sorted by their offsets as keys held a
    list of keys and one of positions: 108; 74 now)."""
    count = 50_000
    entries, idx = _large_index(tmp_path, count)
    view, _, peak = _measured_read(idx)
    assert [view.find_many({sha})[1] for sha in list(entries)[:100]] == [[at] for at in list(entries.values())[:100]]
    assert peak < 90 * count, f"{peak / count:.0f} bytes an object"


def write_rev(idx: Path, entries: dict[bytes, int], raw_len: int, order: list[int] | None = None) -> None:
    """The pack's reverse index (gitformat-pack(5)): each object's index position, in pack order."""
    names = sorted(entries)
    if order is None:
        order = sorted(range(len(names)), key=lambda i: entries[names[i]])
    body = b"RIDX" + (1).to_bytes(4, "big") + (1 if raw_len == 20 else 2).to_bytes(4, "big") \
        + b"".join(i.to_bytes(4, "big") for i in order) + b"\x5a" * raw_len
    idx.with_suffix(".rev").write_bytes(body + hashlib.new("sha1" if raw_len == 20 else "sha256", body).digest())


def _tables(view: git_packindex.PackIndexView) -> tuple[list[bytes], list[int], list[int]]:
    return list(view.names), list(view.offsets), list(view.idx_to_pos)


def test_a_reverse_index_gives_pack_order_unsorted(tmp_path: Path, large_is_50_000: None) -> None:
    """With the pack's ``.rev`` (git's ``pack.writeReverseIndex``) the view takes pack order from it,
    holding no sort's list beside it (74 bytes an object at the peak without it), and is the same
    view; a ``.rev`` of another order, or of another pack, is not taken."""
    count = 50_000
    entries, idx = _large_index(tmp_path, count)
    pack = str(idx.with_suffix(".pack"))
    sorted_view = _tables(read_index(str(idx), pack))
    write_rev(idx, entries, 20)
    view, _, peak = _measured_read(idx)
    assert _tables(view) == sorted_view
    assert peak < 60 * count, f"{peak / count:.0f} bytes an object"
    names = sorted(entries)
    wrong = sorted(range(count), key=lambda i: entries[names[i]] if i % 2 else -i)
    write_rev(idx, entries, 20, wrong)
    assert _tables(read_index(str(idx), pack)) == sorted_view
    write_rev(idx, entries, 32)  # (a SHA-256 pack's)
    assert _tables(read_index(str(idx), pack)) == sorted_view


def test_git_s_own_reverse_index_is_read(tmp_path: Path) -> None:
    """A ``.rev`` git writes (``pack.writeReverseIndex``) is one ``read_index`` takes."""
    import subprocess

    work = tmp_path / "w"
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    for i in range(30):
        (work / f"f{i}").write_text(f"file {i}\n" * (i + 1))
    subprocess.run(["git", "-C", str(work), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(work), "-c", "user.name=a", "-c", "user.email=a@b", "commit", "-qm", "x"],
                   check=True)
    subprocess.run(["git", "-C", str(work), "-c", "pack.threads=1", "-c", "pack.writeReverseIndex=true",
                    "repack", "-adq"], check=True)
    rev = next((work / ".git" / "objects" / "pack").glob("*.rev"))
    pack = str(rev.with_suffix(".pack"))
    view = read_index(str(rev.with_suffix(".idx")), pack)
    by_pos = git_packindex._reverse_index(pack, len(view), view.checksum, 20)
    assert by_pos is not None and [view.names[pos] for pos in range(len(view))] == list(view.names)
    assert list(view.idx_to_pos) == [list(by_pos).index(i) for i in range(len(view))]


def test_a_small_pack_s_names_are_mapped_and_weighed_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pack of up to ``MAPPED_VIEW_MAX_OBJECTS`` objects (the bench corpus's 54,500) has its names
    mapped: a walk of its trees looks up some 58,000 names, each a binary search in Python when the
    view held its name table alone (its first ``git fetch --deepen=1`` 0.12-0.13 s of CPU against
    0.09-0.10).  The map is made once a quarter of its objects have been looked up by binary
    search (a request that looks up a few names of a cold view does not pay for it: 80 ms of 0.2 s
    for a pack of 200,000 objects).  Its view weighs ``MAPPED_WEIGHT`` an object in the view cache;
    a larger pack's, 1."""
    count = 3_000
    entries = {hashlib.sha1(b"%d" % i).digest(): 12 + 40 * ((i * 7919) % count) for i in range(count)}
    idx = tmp_path / "pack-small.idx"
    write_idx(idx, entries, 20)
    pack = str(idx.with_suffix(".pack"))
    view = read_index(str(idx), pack)
    searches = 0
    index_of = view.index_of

    def counted(sha: bytes) -> int | None:
        nonlocal searches
        searches += 1
        return index_of(sha)

    monkeypatch.setattr(view, "index_of", counted)
    in_pack_order = sorted(entries, key=entries.__getitem__)
    assert [view.position(sha) for sha in in_pack_order] == list(range(count))
    assert searches == count // 4  # (binary searches first, then the map answered)
    assert view.position(b"\1" * 20) is None
    assert view.weight == count * git_packindex.MAPPED_WEIGHT
    monkeypatch.setattr(git_packindex, "MAPPED_VIEW_MAX_OBJECTS", count - 1)
    large = read_index(str(idx), pack)
    assert large.weight == count and large.position(in_pack_order[7]) == 7
    cache = git_packindex._ViewCache(limit=0, max_objects=count * 2)
    assert cache.get(str(idx), pack).weight == count  # (a large view: kept within the bound)
    assert cache.cached(str(idx)) is not None
