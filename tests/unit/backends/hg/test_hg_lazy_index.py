"""A large split revlog index read lazily (``revlog.Index``): columns taken from the file's bytes,
an entry parsed when asked, a node found by scanning the node column before a node map is built.

Transcripts of index bytes -> columns, a property (the lazy index answers every query the index
parsed whole answers, on random indexes, damaged ones too), and the first open of a changelog past
``LAZY_ENTRIES``: a push's discovery and commit leave it unparsed, with ``hg verify`` clean after.
"""

from __future__ import annotations

import gc
import os
import shutil
import struct
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends.hg import kept, open_repository, repository, revlog
from backends.hg.repository import _checked_parents
from backends.hg.revlog import (
    ENTRY_SIZE,
    FLAG_GENERALDELTA,
    INDEX_ENTRY,
    Index,
    Revlog,
    _WriterEntries,
    parse_index,
)
from backends.hg.vfs import MemoryVfs
from backends.interfaces import DeltaMode
from backends.lru import LruCache
from protocols.errors import StorageError
from tests import hg_command_server
from tests.conftest import VENV_BIN

ENV = {**os.environ, "HGRCPATH": "", "HGPLAIN": "1", "HGUSER": "t <t@example.com>"}
HEADER = 1 | FLAG_GENERALDELTA  # revlog v1, generaldelta, split (not inline)


def _hg(path: Path, *args: str) -> str:
    done = hg_command_server.subprocess_run([os.path.join(VENV_BIN, "hg"), "-R", str(path), *args], cwd=path,
                                            env=ENV, check=True, text=True)
    return str(done.stdout)


def _packed(entries: list[tuple[int, int, int, int, int, int, int, bytes]], header: int = HEADER) -> bytes:
    data = bytearray(b"".join(INDEX_ENTRY.pack(*entry) for entry in entries))
    if data:
        data[:4] = struct.pack(">I", header)
    return bytes(data)


def _whole(data: bytes, header: int = HEADER) -> Index:
    """The index parsed whole, as ``parse_index`` made every split index before."""
    entries = list(INDEX_ENTRY.iter_unpack(data))
    if entries:
        entries[0] = (entries[0][0] & 0xFFFF, *entries[0][1:])
    return Index(entries, header, None, None)


def _old_checked_parents(entries: list[tuple[int, ...]], start: int) -> list[tuple[int, int]]:
    """``repository._checked_parents`` as it was: a tuple an entry, a Python step a revision."""
    parents = [(e[5], e[6]) for e in entries[start:]]
    for rev, (p1, p2) in enumerate(parents, start):
        if not (-1 <= p1 < rev and -1 <= p2 < rev):
            raise StorageError(f"corrupt changelog: revision {rev} has parents {p1}, {p2}")
    return parents


NODE_A = bytes(range(1, 21))
NODE_B = bytes(range(21, 41))
NODE_C = bytes(range(41, 61))
TRANSCRIPT = [
    ((0 << 16) | 0, 11, 12, 0, 0, -1, -1, NODE_A),
    ((11 << 16) | 0x2000, 13, 14, 1, 1, 0, -1, NODE_B),
    ((24 << 16) | 0, 15, 16, 2, 2, 1, 0, NODE_C),
]


def test_transcript_of_index_bytes_to_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _packed(TRANSCRIPT)
    assert data[:4] == b"\x00\x02\x00\x01" and len(data) == 3 * ENTRY_SIZE
    monkeypatch.setattr(revlog, "LAZY_ENTRIES", 2)
    index = parse_index(data + b"\x01" * 10, None, HEADER)  # a partial entry being appended: not there yet
    assert index.lazy and len(index) == 3 and index.packed == data
    assert index.nodes() == NODE_A + NODE_B + NODE_C
    p1, p2 = index.parent_columns()
    assert (list(p1), list(p2)) == ([-1, 0, 1], [-1, -1, 0])
    assert index.entry(0) == (0, 11, 12, 0, 0, -1, -1, NODE_A)  # the header is not the first offset
    assert index.entry(1) == ((11 << 16) | 0x2000, 13, 14, 1, 1, 0, -1, NODE_B)
    assert index.entry(-1) == index.entry(2) == ((24 << 16), 15, 16, 2, 2, 1, 0, NODE_C)
    assert [index.node(r) for r in range(3)] == [NODE_A, NODE_B, NODE_C]
    assert (index.find(NODE_C), index.find(NODE_A), index.find(b"\1" * 20), index.find(NODE_A[1:] + NODE_B[:1])) \
        == (2, 0, None, None)  # (a match across two nodes is none)
    assert index.lazy and index._nodemap == {}  # nothing parsed whole, no node map
    with pytest.raises(IndexError):
        index.entry(3)
    with pytest.raises(IndexError):
        index.entry(-4)
    cl = Revlog(MemoryVfs(), b"00changelog.i", index)
    assert (cl.parent_revs(2), cl.flags(1), cl.linkrev(2), cl.raw_size(1), cl.node(1)) == ((1, 0), 0x2000, 2, 14, NODE_B)
    assert _checked_parents(index, 0) == [(-1, -1), (0, -1), (1, 0)]
    assert index.lazy
    assert cl.rev(NODE_B) == 1  # (an index of at most SCANNED_ENTRIES looks at each entry)
    assert index.entries == _whole(data).entries and not index.lazy
    assert index.nodemap() == {NODE_A: 0, NODE_B: 1, NODE_C: 2}


def test_a_node_found_by_scans_until_the_map_pays(monkeypatch: pytest.MonkeyPatch) -> None:
    index = Index(None, HEADER, None, None, packed=_packed(TRANSCRIPT))
    for _ in range(revlog.MAPPED_AFTER_SCANS):
        assert index.find(NODE_B) == 1
    assert index._nodemap == {}
    assert index.find(NODE_C) == 2
    assert index._nodemap == {NODE_A: 0, NODE_B: 1, NODE_C: 2}


def test_the_node_map_of_an_index_holding_a_node_twice_is_built_once() -> None:
    """A damaged index gives a node twice, so its node map is shorter than its count: each lookup
    once the map was due built it again (1.6 ms a lookup of 200,000 changesets, 3 s for a discovery's
    2,000); it is built once, and still answers the last revision of the node, as before."""
    entries = [(0, 0, 0, rev, rev, rev - 1, -1, struct.pack(">I", rev + 1) * 5) for rev in range(300)]
    entries[299] = (*entries[299][:7], entries[5][7])  # revision 5's node again
    data = _packed(entries)
    for index in (Index(None, HEADER, None, None, packed=data), _whole(data)):
        for _ in range(revlog.MAPPED_AFTER_SCANS + 1):
            assert index.find(entries[5][7]) == 299
        built = index._nodemap
        assert len(built) == 299
        for rev in (0, 6, 298):
            assert index.find(entries[rev][7]) == rev
        assert index.find(bytes(20)) is None
        assert index.nodemap() is built and index._nodemap is built


def test_damaged_parents_give_the_error_they_gave() -> None:
    for bad in ((-1, 2), (-2, -1), (2, -1), (0, 5)):
        entries = [*TRANSCRIPT[:2], (*TRANSCRIPT[2][:5], *bad, NODE_C)]
        lazy = Index(None, HEADER, None, None, packed=_packed(entries))
        with pytest.raises(StorageError) as old:
            _old_checked_parents(_whole(_packed(entries)).entries, 0)  # type: ignore[arg-type]
        with pytest.raises(StorageError) as new:
            _checked_parents(lazy, 0)
        assert str(new.value) == str(old.value) == f"corrupt changelog: revision 2 has parents {bad[0]}, {bad[1]}"


NODES = st.sampled_from([bytes([n]) * 20 for n in range(12)])
"""Few nodes: random indexes name some twice (damaged ones), where the last must be found."""


@st.composite
def indexes(draw: st.DrawFn) -> list[tuple[int, int, int, int, int, int, int, bytes]]:
    count = draw(st.integers(0, 40))
    small = st.integers(-3, count + 2)
    return [(draw(st.integers(0, 2**48 - 1)), draw(st.integers(-(2**31), 2**31 - 1)), draw(st.integers(0, 2**31 - 1)),
             draw(small), draw(small), draw(small), draw(small), draw(NODES)) for _ in range(count)]


@settings(max_examples=300, deadline=None)
@given(indexes(), st.lists(NODES, max_size=6), st.integers(0, 40), st.integers(0, 4))
def test_the_lazy_index_answers_as_the_index_parsed_whole(
        entries: list[tuple[int, int, int, int, int, int, int, bytes]], asked: list[bytes], start: int,
        appended: int) -> None:
    data = _packed(entries)
    lazy = Index(None, HEADER, None, None, packed=data)
    whole = _whole(data)
    count = len(entries)
    assert len(lazy) == len(whole) == count
    for rev in range(-count, count):
        assert lazy.entry(rev) == whole.entries[rev]
        assert lazy.node(rev % count) == whole.entries[rev][7]
    p1, p2 = lazy.parent_columns()
    assert list(zip(p1, p2, strict=True)) == [(e[5], e[6]) for e in whole.entries]
    assert lazy.nodes() == b"".join(e[7] for e in whole.entries)
    start = min(start, count)
    try:
        expected: object = _old_checked_parents(whole.entries, start)  # type: ignore[arg-type]
    except StorageError as exc:
        expected = str(exc)
    try:
        found: object = _checked_parents(lazy, start)
    except StorageError as exc:
        found = str(exc)
    assert found == expected
    for node in asked:
        assert lazy.find(node) == whole.nodemap().get(node)
        lazy_cl, whole_cl = Revlog(MemoryVfs(), b"x.i", lazy), Revlog(MemoryVfs(), b"x.i", whole)
        assert lazy_cl.has_node(node) == whole_cl.has_node(node)
    assert lazy.nodemap() == whole.nodemap()
    # a writer's entries over it, and the snapshot of them appended to
    added = [(0, 1, 2, count + i, count + i, count + i - 1, -1, bytes([200 + i]) * 20) for i in range(appended)]
    writer_entries = _WriterEntries(Index(None, HEADER, None, None, packed=data))
    for entry in added:
        writer_entries.append(entry)
    assert list(writer_entries) == whole.entries + added
    assert [writer_entries[r] for r in range(-len(writer_entries), len(writer_entries))] == (whole.entries + added) * 2
    assert writer_entries[count:] == added
    if count:
        grown = writer_entries.snapshot(HEADER)
        assert grown.entries == _whole(data + b"".join(INDEX_ENTRY.pack(*e) for e in added)).entries
        assert grown.nodemap() == {**whole.nodemap(), **{e[7]: r for r, e in enumerate(added, count)}}


@settings(max_examples=300, deadline=None)
@given(indexes(), st.lists(NODES, max_size=6), st.lists(st.integers(0, 41 * ENTRY_SIZE), max_size=4))
def test_a_lazy_index_finds_nodes_in_its_bytes_as_the_index_parsed_whole(
        entries: list[tuple[int, int, int, int, int, int, int, bytes]], asked: list[bytes], windows: list[int]) -> None:
    """Before its node column is made, a lazy index scans its file's bytes: a node counts only where
    it is an entry's node (any 20 bytes of the file are asked too, most of them across fields), and
    the first push or pull after a start no longer copies the column out (7 ms for 200,000)."""
    data = _packed(entries)
    lazy = Index(None, HEADER, None, None, packed=data)
    whole = _whole(data)
    asked = asked + [data[at:at + 20] for at in windows if at + 20 <= len(data)]
    assert len(asked) < revlog.MAPPED_AFTER_SCANS
    for node in asked:
        assert lazy.find(node) == whole.nodemap().get(node)
    assert lazy._nodes is None and lazy.lazy
    if entries:
        assert lazy.node_prefixes(len(entries)) == b"".join(e[7][:4] for e in whole.entries)
        assert lazy.node_prefixes(1) == whole.entries[0][7][:4] == whole.node_prefixes(1)
    assert lazy.nodemap() == whole.nodemap()


@settings(max_examples=200, deadline=None)
@given(indexes(), st.lists(st.integers(1, 4), min_size=1, max_size=3), st.lists(NODES, max_size=4),
       st.sampled_from(["nothing", "columns", "map"]))
def test_a_lazy_index_appended_to_answers_as_the_index_parsed_whole(
        entries: list[tuple[int, int, int, int, int, int, int, bytes]], pushes: list[int], asked: list[bytes],
        worked: str) -> None:
    """A push's snapshot after it (``appended_by``) shares the file's bytes the index read and holds
    the entries added apart (200,000 changesets: a copy of 12.8 MB each for the changelog and the
    manifest, 7 ms); it answers every query as the joined bytes parsed whole, pushed again too."""
    if not entries:
        return
    data = base = _packed(entries)
    index = Index(None, HEADER, None, None, packed=data)
    if worked != "nothing":
        index.nodes(), index.parent_columns()
    if worked == "map":
        index.nodemap()
    rev = len(entries)
    for count in pushes:
        added = [(rev + i, 1, 2, rev + i, rev + i, rev + i - 1, -1, bytes([100 + (rev + i) % 150]) * 20)
                 for i in range(count)]
        packed_added = b"".join(INDEX_ENTRY.pack(*entry) for entry in added)
        index = index.appended_by(packed_added, None)
        data += packed_added
        rev += count
        parts = index.packed_parts
        assert parts is not None and parts[0] is base and len(index) == rev  # (shared, not copied)
    assert kept.index_bytes(index) == kept.index_bytes(Index(None, HEADER, None, None, dict(index._nodemap), data))
    whole = _whole(data)
    assert index.packed == data and index.lazy
    for node in asked + [whole.entries[-1][7], whole.entries[0][7]]:
        assert index.find(node) == whole.nodemap().get(node)
    for r in range(-rev, rev):
        assert index.entry(r) == whole.entries[r]
        assert index.node(r % rev) == whole.entries[r][7]
    assert index.node_prefixes(rev) == b"".join(e[7][:4] for e in whole.entries)
    assert list(zip(*index.parent_columns(), strict=True)) == [(e[5], e[6]) for e in whole.entries]
    assert index.nodes() == b"".join(e[7] for e in whole.entries)
    assert index.nodemap() == whole.nodemap()
    assert index.entries == whole.entries and not index.lazy
    assert index.packed_parts is None and index._tail == b""


def test_a_push_s_snapshot_copies_the_node_map_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A push that looked up enough nodes to build the map: the snapshot after it copied the map,
    then ``nodemap`` copied that copy again to extend it (7 ms each for 200,000 changesets)."""
    monkeypatch.setattr(revlog, "NODE_BATCH", 2)
    entries = [(0, 1, 2, rev, rev, rev - 1, -1, bytes([rev + 1]) * 20) for rev in range(9)]
    data = _packed(entries)
    index = Index(None, HEADER, None, None, packed=data)
    index.nodemap()
    added = b"".join(INDEX_ENTRY.pack(0, 1, 2, rev, rev, rev - 1, -1, bytes([rev + 1]) * 20) for rev in range(9, 14))
    expected = _whole(data + added).nodemap()
    copies: list[int] = []
    real = Index.nodemap
    monkeypatch.setattr(Index, "nodemap", lambda self: copies.append(1) or real(self))
    for grown in (index.appended_by(added, None), index.grown(data + added, None)):
        assert copies == [] and grown._mapped and grown._nodemap == expected
        assert grown.find(bytes([14]) * 20) == 13 and grown.find(bytes([1]) * 20) == 0


def test_a_lazy_index_is_weighed_by_what_it_holds() -> None:
    """Its file's bytes and columns while nothing else is made: a fifth of an index parsed whole."""
    count = 10_000
    entries = [(0, 1, 2, r, r, r - 1, -1, r.to_bytes(20, "big")) for r in range(count)]
    data = _packed(entries)
    lazy, whole = Index(None, HEADER, None, None, packed=data), _whole(data)
    assert kept.index_bytes(whole) == kept.INDEX_OBJECT_BYTES + (kept.INDEX_ENTRY_BYTES + kept.NODEMAP_ENTRY_BYTES) * count
    assert kept.index_bytes(lazy) == kept.INDEX_OBJECT_BYTES + (ENTRY_SIZE + kept.COLUMN_ENTRY_BYTES) * count
    lazy.nodemap()
    assert kept.index_bytes(lazy) == kept.INDEX_OBJECT_BYTES + (
        ENTRY_SIZE + kept.COLUMN_ENTRY_BYTES + kept.NODEMAP_ENTRY_BYTES + kept.NODE_KEY_BYTES) * count
    assert lazy.entries
    whole.nodes()  # (parsed whole, it lets go of its bytes and weighs as a whole parse with its node column)
    assert lazy.packed is None and kept.index_bytes(lazy) == kept.index_bytes(whole)


def _traced(make: Callable[[], Index]) -> int:
    """The bytes ``make``'s index holds (what it allocated and still holds, by tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    try:
        index = make()
        gc.collect()
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(index)
    return held


def test_a_lazy_index_parsed_whole_holds_what_a_whole_parse_holds() -> None:
    """Its file's bytes go, and the node map it built is keyed by the entries' nodes (it held 524
    bytes an entry, a whole parse 373: 64 for the bytes, 56 for a node map's own keys)."""
    count = 20_000
    data = _packed([(0, 1, 2, r, r, r - 1, -1, (r * 7919).to_bytes(20, "big")) for r in range(count)])

    def whole() -> Index:
        index = _whole(bytes(bytearray(data)))
        index.nodes()
        index.nodemap()
        return index

    def lazy_then_whole() -> Index:
        index = Index(None, HEADER, None, None, packed=bytes(bytearray(data)))
        index.nodes()
        index.nodemap()
        assert not index.lazy or index.entries
        return index

    index = Index(None, HEADER, None, None, packed=data)
    mapped = dict(index.nodemap())
    assert index.entries == _whole(data).entries and index.nodemap() == mapped
    assert all(index.entries[rev][7] is key for key, rev in index.nodemap().items())
    lazy_then_whole()  # (what a first node map caches for good: the struct that reads a batch of nodes)
    assert _traced(lazy_then_whole) <= _traced(whole) * 1.02


def test_a_reader_of_a_lazy_index_parsed_whole_meanwhile_reads_the_list() -> None:
    count = 5_000
    data = _packed([(0, 1, 2, r, r, r - 1, -1, r.to_bytes(20, "big")) for r in range(count)])
    index = Index(None, HEADER, None, None, packed=data)
    assert index.entry(17) == _whole(data).entries[17]
    assert index.entries and index.packed is None
    assert index.entry(17) == _whole(data).entries[17] and index.entry(-1)[4] == count - 1
    assert index.node(3) == (3).to_bytes(20, "big") and index.parent_columns()[0][3] == 2
    assert index.restamped(HEADER, None).entries == index.entries


def test_the_first_push_after_a_start_parses_no_changelog_entry_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A changelog past ``LAZY_ENTRIES``, two branches and a merge: the push's discovery (heads,
    branch map, known) and its commit (phases, heads, branches, the rev-branch-cache) read it
    lazily; ``hg verify`` is clean and the pushed changesets are served after."""
    monkeypatch.setattr(revlog, "LAZY_ENTRIES", 8)
    target = tmp_path / "target"
    target.mkdir()
    _hg(target, "init")
    _hg(target, "debugbuilddag", "-q", "+10:a @stable +5 <a +3 /a")  # (-m-less: empty manifests)
    _hg(target, "phase", "-p", "tip")
    _hg(target, "debugupdatecaches")
    source = tmp_path / "source"
    shutil.copytree(target, source, symlinks=True)
    _hg(source, "update", "-q", "tip")
    for n in range(3):
        (source / f"f{n}").write_text(f"{n}\n")
        _hg(source, "commit", "-q", "-A", "-m", f"c{n}")
    monkeypatch.setattr(repository, "SHARED_VIEWS", LruCache(4))  # (as after a start)
    monkeypatch.setattr(revlog, "SHARED_INDEXES", revlog.IndexCache(1 << 30, kept.KEPT))
    repo = open_repository(str(target), "t")
    origin = open_repository(str(source), "s")
    cl = repo.changelog()
    assert cl.index.lazy and len(cl) == 19
    heads = repo.heads()
    assert sorted(repo.branchmap()) == [b"default", b"stable"]
    assert sorted(repo.known(list(origin.heads()))) == [False, True]
    tx = repo.transaction()
    tx.add_changegroup(origin.emit_groups(origin.missing(heads, origin.heads()), DeltaMode.ANY))
    tx.commit()
    assert cl.index.lazy
    after = open_repository(str(target), "t")
    assert sorted(after.heads()) == sorted(origin.heads())
    assert after.changelog().index.lazy
    _hg(target, "verify", "-q")
    assert _hg(target, "log", "-r", "tip", "-T", "{desc} {phase}") == "c2 public"



def test_pushes_then_a_commit_by_hg_are_read_as_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two pushes into a lazy changelog (each snapshot after shares the bytes read at the start and
    holds the entries pushed apart), then a commit by hg on the server's disk: each open answers as
    the file, the last one extended from the snapshot (its old bytes compared), ``hg verify`` clean."""
    monkeypatch.setattr(revlog, "LAZY_ENTRIES", 8)
    target = tmp_path / "target"
    target.mkdir()
    _hg(target, "init")
    _hg(target, "debugbuilddag", "-q", "+20")
    _hg(target, "phase", "-p", "tip")
    source = tmp_path / "source"
    shutil.copytree(target, source, symlinks=True)
    monkeypatch.setattr(repository, "SHARED_VIEWS", LruCache(4))
    monkeypatch.setattr(revlog, "SHARED_INDEXES", revlog.IndexCache(1 << 30, kept.KEPT))
    first = open_repository(str(target), "t").changelog().index
    parts = first.packed_parts
    assert parts is not None
    _hg(source, "update", "-q", "tip")
    for n in range(2):
        (source / f"f{n}").write_text(f"{n}\n")
        _hg(source, "commit", "-q", "-A", "-m", f"c{n}")
        repo = open_repository(str(target), "t")
        origin = open_repository(str(source), "s")
        tx = repo.transaction()
        tx.add_changegroup(origin.emit_groups(origin.missing(repo.heads(), origin.heads()), DeltaMode.ANY))
        tx.commit()
        index = open_repository(str(target), "t").changelog().index
        held = index.packed_parts
        assert held is not None and held[0] is parts[0] and len(held[1]) == (n + 1) * ENTRY_SIZE
        assert index.packed == (target / ".hg" / "store" / "00changelog.i").read_bytes()
        assert open_repository(str(target), "t").heads() == origin.heads()
    _hg(target, "update", "-q", "tip")
    (target / "g").write_text("g\n")
    _hg(target, "commit", "-q", "-A", "-m", "by hg")
    parsed: list[int] = []
    parse = revlog.parse_index
    monkeypatch.setattr(revlog, "parse_index", lambda data, *a: parsed.append(len(data)) or parse(data, *a))
    again = open_repository(str(target), "t")
    index = again.changelog().index
    assert parsed == [] and index.lazy and len(index) == 23  # (extended, not parsed again)
    whole = _whole(index.packed or b"", index.header)
    assert index.nodes() == b"".join(e[7] for e in whole.entries)
    tip = bytes.fromhex(_hg(target, "log", "-r", "tip", "-T", "{node}"))
    assert again.heads() == [tip] and index.find(tip) == 22
    _hg(target, "verify", "-q")


def test_a_push_s_node_lookups_copy_no_node_map(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The changelog writer's ``nodemap`` (read several times a push by the obsolescence checks)
    made a dict of every node for each read: a copy of 200,000 entries each time.  It is a view now:
    the added nodes, then the snapshot's ``find`` (a lazy index's few lookups scan, no map built),
    and it answers, iterates and counts as the merged dict did."""
    monkeypatch.setattr(revlog, "LAZY_ENTRIES", 8)
    target = tmp_path / "target"
    target.mkdir()
    _hg(target, "init")
    _hg(target, "debugbuilddag", "-q", "+20")
    source = tmp_path / "source"
    shutil.copytree(target, source, symlinks=True)
    _hg(source, "update", "-q", "tip")
    (source / "f").write_text("f\n")
    _hg(source, "commit", "-q", "-A", "-m", "c")
    monkeypatch.setattr(repository, "SHARED_VIEWS", LruCache(4))
    monkeypatch.setattr(revlog, "SHARED_INDEXES", revlog.IndexCache(1 << 30, kept.KEPT))
    repo = open_repository(str(target), "t")
    origin = open_repository(str(source), "s")
    index = repo.changelog().index
    assert index.lazy
    tx = repo.transaction()
    try:
        tx.add_changegroup(origin.emit_groups(origin.missing(repo.heads(), origin.heads()), DeltaMode.ANY))
        tip, first = origin.heads()[0], bytes(index.nodes()[:20])
        looked = tx.cl.nodemap
        for _ in range(3):  # (as three checks of a push look)
            looked = tx.cl.nodemap
            assert looked.get(tip) == 20 and looked[first] == 0 and tip in looked
            assert looked.get(bytes(20)) is None and bytes(20) not in looked
        assert tx.cl.entries.base is index and not index._mapped and index._nodemap == {}
        whole = {bytes(e[7][:20]): rev for rev, e in enumerate(_whole(index.packed or b"").entries)}
        whole[tip] = 20
        assert dict(looked) == whole and len(looked) == 21
    finally:
        tx.abort()


def test_a_lazy_changelog_hg_appends_to_is_extended_not_parsed_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A commit by hg on the server's disk appends to a lazy changelog: the next open takes the old
    snapshot's bytes and columns, extended by the new entry (its old bytes checked by their digest),
    and answers as the file parsed whole."""
    monkeypatch.setattr(revlog, "LAZY_ENTRIES", 8)
    path = tmp_path / "r"
    path.mkdir()
    _hg(path, "init")
    _hg(path, "debugbuilddag", "-q", "+20")
    first = open_repository(str(path), "r")
    before = first.changelog().index
    assert before.lazy and len(first.heads()) == 1 and before._parents is not None
    before.nodes()
    _hg(path, "update", "-q", "tip")
    (path / "f").write_text("f\n")
    _hg(path, "commit", "-q", "-A", "-m", "c")
    parsed: list[int] = []
    parse = revlog.parse_index

    def counted(data: bytes, *args: object) -> Index:
        parsed.append(len(data))
        return parse(data, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(revlog, "parse_index", counted)
    again = open_repository(str(path), "r")
    index = again.changelog().index
    assert index is not before and index.lazy and len(index) == 21 and parsed == []
    assert index._nodes is not None and index._parents is not None  # (carried, extended)
    whole = _whole(index.packed or b"", index.header)
    assert index.nodes() == b"".join(e[7] for e in whole.entries)
    assert list(zip(*index.parent_columns(), strict=True)) == [(e[5], e[6]) for e in whole.entries]
    tip = bytes.fromhex(_hg(path, "log", "-r", "tip", "-T", "{node}"))
    assert again.heads() == [tip] and index.find(tip) == 20


def test_an_index_parsed_whole_is_weighed_with_the_columns_made_of_it() -> None:
    """A small changelog's node and parent columns (made by the views and the rev-branch-cache's
    check) are kept with it, and counted."""
    entries = [(0, 1, 2, r, r, r - 1, -1, r.to_bytes(20, "big")) for r in range(100)]
    index = _whole(_packed(entries))
    bare = kept.index_bytes(index)
    index.nodes()
    index.parent_columns()
    assert kept.index_bytes(index) == bare + kept.COLUMN_ENTRY_BYTES * 100


def test_a_push_s_absent_nodes_are_found_absent_by_their_prefixes_without_a_node_map() -> None:
    """A push of 30 changesets into 200,000 asks the changelog for each pushed node, which is not
    there: each was a scan of the file's bytes (1.2 ms), and past 16 the node map was built (40 ms
    of CPU, 20 MB kept).  A lazy index scans its nodes' first 4 bytes (0.16 ms): a hundred nodes are
    answered without a node map or node column, nodes sharing their first 4 bytes (or more) with
    another, or found across two entries, answered as by the index parsed whole."""
    count = 3_000
    nodes = [struct.pack(">I", rev % 50) + (rev * 7919).to_bytes(16, "big") for rev in range(count)]
    nodes[2_000] = nodes[10]  # (a damaged index: the last one is found)
    entries = [(0, 1, 2, rev, rev, rev - 1, -1, nodes[rev]) for rev in range(count)]
    data = _packed(entries)
    whole = _whole(data).nodemap()
    lazy = Index(None, HEADER, None, None, packed=data)
    asked = [struct.pack(">I", n % 60) + (n * 104729 + 1).to_bytes(16, "big") for n in range(100)]  # (absent)
    asked += [nodes[0], nodes[10], nodes[2_999], nodes[1_234], data[40:60], data[ENTRY_SIZE + 36:ENTRY_SIZE + 56]]
    for node in asked:
        assert lazy.find(node) == whole.get(node)
    assert lazy.find(nodes[10]) == 2_000
    assert lazy._nodemap == {} and not lazy._mapped and lazy._nodes is None and lazy.lazy
    added = INDEX_ENTRY.pack(0, 1, 2, count, count, count - 1, -1, nodes[7])
    for grown in (lazy.appended_by(added, None), lazy.grown(data + added, None)):  # (a push; an append by hg)
        assert grown._prefixes is not None  # (carried, extended)
        assert grown.find(nodes[7]) == count and grown.find(nodes[8]) == 8 and grown.find(asked[0]) is None
        assert grown.node_prefixes(count + 1) == b"".join(n[:4] for n in nodes) + nodes[7][:4]
        assert grown.nodemap() == {**whole, nodes[7]: count}
