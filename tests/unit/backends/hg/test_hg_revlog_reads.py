"""Windowed chunk reads of split revlogs, and the index snapshots shared between opens."""

from __future__ import annotations

import os
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backends.hg import create_repository, open_repository
from backends.hg.revlog import (
    FILELOG_INDEXES_PER_OPEN,
    FLAG_GENERALDELTA,
    INDEX_ENTRY,
    READ_GAP,
    READ_WINDOW,
    IndexCache,
    RevlogCache,
    parse_index,
)
from backends.hg.vfs import FsVfs, MemoryVfs

HEADER = FLAG_GENERALDELTA | 1


class CountingVfs(MemoryVfs):
    def __init__(self) -> None:
        super().__init__()
        self.range_reads = 0
        self.whole_reads = 0

    def read_range(self, path: bytes, offset: int, length: int) -> bytes:
        self.range_reads += 1
        return super().read_range(path, offset, length)

    def read(self, path: bytes) -> bytes:
        self.whole_reads += 1
        return super().read(path)


def split_revlog(sizes: list[int]) -> tuple[CountingVfs, list[bytes]]:
    """A non-inline revlog whose revision ``r`` is a stored chunk of ``sizes[r]`` bytes."""
    vfs = CountingVfs()
    index = bytearray()
    data = bytearray()
    chunks = []
    for rev, size in enumerate(sizes):
        chunk = b"u" + bytes([rev % 251]) * (size - 1)
        first = HEADER << 32 if rev == 0 else len(data) << 16
        index += INDEX_ENTRY.pack(first, size, size - 1, rev, rev, -1, -1, rev.to_bytes(20, "big"))
        data += chunk
        chunks.append(chunk)
    vfs.replace(b"x.i", bytes(index))
    vfs.replace(b"x.d", bytes(data))
    return vfs, chunks


@given(
    st.lists(st.integers(min_value=1, max_value=300_000), min_size=1, max_size=40),
    st.data(),
)
def test_raw_chunks_are_the_stored_chunks_of_any_ascending_selection(sizes: list[int], data: st.DataObject) -> None:
    vfs, chunks = split_revlog(sizes)
    revlog = RevlogCache(vfs, HEADER).open(b"x.i")
    revs = sorted(data.draw(st.sets(st.integers(min_value=0, max_value=len(sizes) - 1), min_size=1)))
    assert list(revlog.raw_chunks(revs)) == [chunks[r] for r in revs]


def test_a_walk_over_many_small_revisions_reads_in_windows() -> None:
    vfs, chunks = split_revlog([1000] * 5000)  # 5 MB of data in 5,000 revisions
    revlog = RevlogCache(vfs, HEADER).open(b"x.i")
    assert list(revlog.raw_chunks(range(5000))) == chunks
    assert vfs.range_reads == -(-5_000_000 // READ_WINDOW)
    vfs.range_reads = 0
    # Revisions far apart are not read as one span: the window never swallows a large gap.
    far = [0, READ_GAP // 1000 + 10, 4999]
    assert list(revlog.raw_chunks(far)) == [chunks[r] for r in far]
    assert vfs.range_reads == 3


def test_a_chunk_larger_than_a_window_is_read_alone() -> None:
    vfs, chunks = split_revlog([10, READ_WINDOW + 5, 10])
    revlog = RevlogCache(vfs, HEADER).open(b"x.i")
    assert list(revlog.raw_chunks([0, 1, 2])) == chunks
    assert vfs.range_reads == 3
    assert revlog.revision(2) == chunks[2][1:]


def test_index_cache_holds_within_its_budget_and_drops_the_least_recently_used() -> None:
    cache = IndexCache(budget=4 * (IndexCache.ENTRY_COST * 2))
    indexes = {}
    for n in range(6):
        entry = INDEX_ENTRY.pack(HEADER << 32, 1, 0, 0, 0, -1, -1, bytes([n]) * 20)
        indexes[n] = parse_index(entry, (64, n, n, 0), HEADER)
        cache.put((b"s", b"%d.i" % n), indexes[n])
        if n == 2:
            assert cache.get_valid((b"s", b"0.i"), (64, 0, 0, 0)) is indexes[0]  # used again: kept
    assert cache.held <= cache.budget
    assert cache.get_valid((b"s", b"0.i"), (64, 0, 0, 0)) is indexes[0]
    assert cache.get_valid((b"s", b"1.i"), (64, 1, 1, 0)) is None
    assert cache.get_valid((b"s", b"5.i"), (64, 5, 5, 0)) is indexes[5]
    assert cache.get_valid((b"s", b"5.i"), (64, 5, 6, 0)) is None  # another stamp: the file changed


def test_opens_of_one_store_share_index_snapshots_until_the_file_changes(tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "r")
    create_repository(path, "r")
    shared = IndexCache(budget=1 << 20)
    vfs, _ = split_revlog([100, 200])
    first = RevlogCache(vfs, HEADER, scope=b"/store", shared=shared)
    second = RevlogCache(vfs, HEADER, scope=b"/store", shared=shared)
    other = RevlogCache(vfs, HEADER, scope=b"/elsewhere", shared=shared)
    assert second.index(b"x.i") is first.index(b"x.i")
    assert vfs.whole_reads == 1
    assert other.index(b"x.i") is not first.index(b"x.i")
    vfs.append(b"x.i", INDEX_ENTRY.pack(300 << 16, 5, 4, 2, 2, 1, -1, b"\x09" * 20))
    vfs.append(b"x.d", b"u1234")
    third = RevlogCache(vfs, HEADER, scope=b"/store", shared=shared)
    assert len(third.index(b"x.i").entries) == 3
    assert len(first.index(b"x.i").entries) == 3
    # A repository on disk is opened with its store directory as the scope.
    repo = open_repository(path, "r")
    assert repo.revlogs.scope == os.fsencode(os.path.realpath(os.path.join(path, ".hg", "store")))


def test_one_open_keeps_its_last_filelog_indexes_and_every_other_one() -> None:
    """A full clone opens every filelog once: an open keeps only the last ``FILELOG_INDEXES_PER_OPEN``
    of them (the shared cache keeps what its budget allows), and the changelog's and manifest's
    for as long as it lives."""
    vfs = CountingVfs()
    for name in (b"00changelog.i", b"00manifest.i", *(b"data/f%d.i" % n for n in range(FILELOG_INDEXES_PER_OPEN + 8))):
        vfs.replace(name, INDEX_ENTRY.pack(HEADER << 32, 0, 0, 0, 0, -1, -1, b"\1" * 20))
    cache = RevlogCache(vfs, HEADER)  # no scope: nothing shared, each open's own snapshots only
    changelog, manifest = cache.index(b"00changelog.i"), cache.index(b"00manifest.i")
    for n in range(FILELOG_INDEXES_PER_OPEN + 8):
        cache.index(b"data/f%d.i" % n)
    reads = vfs.whole_reads
    assert cache.index(b"00changelog.i") is changelog and cache.index(b"00manifest.i") is manifest
    cache.index(b"data/f%d.i" % (FILELOG_INDEXES_PER_OPEN + 7))
    assert vfs.whole_reads == reads, "the last filelogs and the changelog and manifest are kept"
    cache.index(b"data/f0.i")
    assert vfs.whole_reads == reads + 1, "the first filelog was let go, and is read again"


def test_texts_walk_equals_revision_by_revision_on_a_real_store(tmp_path: object) -> None:
    from bench.hg_storage_micro import linear_history

    path = os.path.join(str(tmp_path), "w")
    repo = create_repository(path, "w")
    tx = repo.transaction()
    tx.add_changegroup(linear_history(2000, files=7).groups())
    tx.commit()
    assert not repo.changelog().index.inline  # large enough to live in a .d file
    for revlog in (repo.changelog(), repo.manifestlog(), repo.filelog(b"dir0/file0.txt")):
        fresh = open_repository(path, "w").revlogs.open(revlog.index_path)
        assert list(revlog.texts(0, len(revlog))) == [fresh.revision(r) for r in range(len(revlog))]
        assert list(revlog.texts(5, 9)) == [fresh.revision(r) for r in range(5, 9)]


def test_branch_lists_are_shared_between_opens_and_dropped_when_history_changes(tmp_path: object) -> None:
    from backends.hg import repository
    from bench.hg_storage_micro import HistoryBuilder

    path = os.path.join(str(tmp_path), "b")
    builder = HistoryBuilder()
    root = builder.commit({b"a": b"1\n"})
    builder.commit({b"a": b"2\n"}, root, branch=b"stable")
    repo = create_repository(path, "b")
    tx = repo.transaction()
    tx.add_changegroup(builder.groups())
    tx.commit()
    assert sorted(open_repository(path, "b").branchmap()) == [b"default", b"stable"]
    scope = open_repository(path, "b").revlogs.scope
    assert scope is not None
    known = (repository.SHARED_BRANCHES.get(scope) or ([], b"", 0, None))[0]
    assert [name for name, _ in known] == [b"default", b"stable"]
    # A stale list (its last node no longer in the changelog at that place) is not trusted.
    repository.SHARED_BRANCHES.put(scope, ([(b"bogus", False), (b"bogus", False)], b"\x01" * 20, 2, None))
    assert sorted(open_repository(path, "b").branchmap()) == [b"default", b"stable"]


def test_views_are_shared_between_opens_until_the_changelog_or_phases_change(tmp_path: object) -> None:
    from backends.hg import repository
    from bench.hg_storage_micro import linear_history

    path = os.path.join(str(tmp_path), "v")
    repo = create_repository(path, "v")
    history = linear_history(4, files=2)
    tx = repo.transaction()
    tx.add_changegroup(history.groups())
    tx.commit()
    first = open_repository(path, "v")
    views = first.views()
    assert open_repository(path, "v").views() is views
    # A phase change replaces phaseroots: the next open computes new views.
    tx = first.transaction()
    tx.set_phase(1, [first.changelog().node(3)])
    tx.commit()
    again = open_repository(path, "v")
    assert again.views() is not views
    assert repository.SHARED_VIEWS.get(again.revlogs.scope or b"") is again.views()


def test_mercurial_s_rev_branch_cache_is_used_where_it_matches_the_changelog(tmp_path: object) -> None:
    from backends.hg.branchcache import RBC_RECORD, branch_of, read
    from tests import hg_command_server
    from tests.conftest import VENV_BIN

    path = os.path.join(str(tmp_path), "rbc")
    env = {**os.environ, "HGRCPATH": "", "HGPLAIN": "1", "HGUSER": "t <t@example.com>"}

    def hg(*args: str) -> None:
        hg_command_server.subprocess_run([os.path.join(VENV_BIN, "hg"), "-R", path, *args], cwd=path, env=env,
                                         check=True)

    hg_command_server.subprocess_run([os.path.join(VENV_BIN, "hg"), "init", path], cwd=str(tmp_path), env=env,
                                     check=True)
    for i, branch in enumerate(["default", "stable", "stable", "default", "feature"]):
        hg("branch", "-f", "-q", branch)
        with open(os.path.join(path, f"f{i}"), "w") as f:
            f.write(f"{i}\n")
        hg("commit", "-q", "-A", "-m", f"c{i}")
    hg("commit", "-q", "-m", "closed", "--close-branch")
    hg("branches", "-c")  # hg writes .hg/cache/rbc-*-v2 while answering
    repo = open_repository(path, "rbc")
    cl = repo.changelog()
    truth = [branch_of(text) for text in cl.texts(0, len(cl))]
    assert truth[-1] == (b"feature", True)
    assert read(repo.plain, cl) == truth
    # A record whose node prefix no longer matches ends what the cache is trusted for.
    revs_path = os.path.join(path, ".hg", "cache", "rbc-revs-v2")
    with open(revs_path, "r+b") as f:
        f.seek(2 * RBC_RECORD.size)
        f.write(b"\xff\xff\xff\xff")
    assert read(repo.plain, cl) == truth[:2]
    assert sorted(open_repository(path, "rbc").branchmap()) == [b"default", b"feature", b"stable"]


def test_a_file_rewritten_to_its_old_size_and_mtime_gets_another_stamp(tmp_path: object) -> None:
    """A strip then a commit can leave a revlog's size, and (hg's ambiguity avoidance) its
    mtime to the second, as they were: the ctime still tells the cached index is stale."""
    vfs = FsVfs(os.fsencode(str(tmp_path)))
    path = os.path.join(str(tmp_path), "x.i")
    with open(path, "wb") as first:
        first.write(b"a" * 64)
    os.utime(path, (1_700_000_000, 1_700_000_000))
    before = vfs.stamp(b"x.i")
    time.sleep(0.01)
    with open(path, "r+b") as again:  # rewritten in place: same inode, same size
        again.write(b"b" * 64)
    os.utime(path, (1_700_000_000, 1_700_000_000))
    after = vfs.stamp(b"x.i")
    assert before is not None and after is not None and before[:3] == after[:3]
    assert after != before


def _entries(first: int, count: int, salt: int = 0) -> bytes:
    """``count`` index entries of a non-inline revlog from revision ``first`` (nodes vary with ``salt``)."""
    out = bytearray()
    for rev in range(first, first + count):
        offset = HEADER << 32 if rev == 0 else (rev * 10) << 16
        out += INDEX_ENTRY.pack(offset, 10, 10, rev, rev, rev - 1, -1, (rev * 7 + salt).to_bytes(20, "big"))
    return bytes(out)


def test_an_index_that_grew_is_extended_from_its_snapshot_not_parsed_whole(
        tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from backends.hg import revlog as revlog_mod

    vfs = FsVfs(os.fsencode(str(tmp_path)))
    vfs.replace(b"x.i", _entries(0, 50))
    cache = RevlogCache(vfs, HEADER, scope=b"/grow", shared=IndexCache(budget=1 << 20))
    before = cache.index(b"x.i")
    assert len(before.nodemap()) == 50
    whole = []
    monkeypatch.setattr(revlog_mod, "parse_index", lambda *a: whole.append(1) or parse_index(*a))
    vfs.append(b"x.i", _entries(50, 7))  # a push
    grown = cache.index(b"x.i")
    assert whole == []
    fresh = parse_index(vfs.read(b"x.i"), None, HEADER)
    assert grown.entries == fresh.entries and grown.nodemap() == fresh.nodemap()
    assert grown.entries[:50] == before.entries
    # A strip and new revisions that leave the file longer than before: the old last entry is
    # another one now, so the file is parsed whole.
    data = vfs.read(b"x.i")
    vfs.replace(b"x.i", data[: 40 * INDEX_ENTRY.size] + _entries(40, 30, salt=1))
    time.sleep(0.01)
    rewritten = cache.index(b"x.i")
    fresh = parse_index(vfs.read(b"x.i"), None, HEADER)
    assert rewritten.entries == fresh.entries and rewritten.nodemap() == fresh.nodemap()
    # The same in place (truncated, then appended to: the same inode, longer than the snapshot).
    os.truncate(os.path.join(str(tmp_path), "x.i"), 40 * INDEX_ENTRY.size)
    vfs.append(b"x.i", _entries(40, 35, salt=2))
    truncated = cache.index(b"x.i")
    fresh = parse_index(vfs.read(b"x.i"), None, HEADER)
    assert truncated.entries == fresh.entries and truncated.nodemap() == fresh.nodemap()


def _pushed_in_two(path: str, hgrc: str) -> tuple[object, object]:
    """A repository that got 6 changesets, had its views computed, then got 5 more (one a second
    head); returns (its views now, the same computed from scratch)."""
    from backends.hg import graph, repository
    from backends.interfaces import DeltaMode
    from bench.hg_storage_micro import HistoryBuilder

    builder = HistoryBuilder()
    node = builder.commit({b"a": b"0\n"})
    nodes = [node]
    for i in range(1, 10):
        node = builder.commit({b"a": b"%d\n" % i}, node)
        nodes.append(node)
    fork = builder.commit({b"b": b"fork\n"}, nodes[3], branch=b"stable")
    fork2 = builder.commit({b"b": b"fork 2\n"}, fork, branch=b"stable")
    other = builder.commit({b"c": b"third\n"}, nodes[2])  # a second head of default
    source = create_repository(os.path.join(path, "source"), "s")
    tx = source.transaction()
    tx.add_changegroup(builder.groups())
    tx.commit()
    target_path = os.path.join(path, "target")
    target = create_repository(target_path, "t")
    with open(os.path.join(target_path, ".hg", "hgrc"), "w") as f:
        f.write(hgrc)
    for heads in ([nodes[5], fork], [nodes[9], other, fork2]):
        old = target.views()
        target.branchmap()  # what a server answers before a push: the old heads are known
        tx = target.transaction()
        tx.add_changegroup(source.emit_groups(source.missing(target.heads(), heads), DeltaMode.ANY))
        visible = bytearray(1 if p < 2 else 0 for p in tx._phase_array())
        assert tx._heads() == set(graph.heads(tx._parents(), visible))  # the incremental answer
        tx.commit()
    computed = []
    real = graph.compute_phases
    graph.compute_phases = lambda *a: computed.append(1) or real(*a)  # type: ignore[assignment]
    try:
        extended = target.views()
    finally:
        graph.compute_phases = real  # type: ignore[assignment]
    assert computed == [] and extended is not old  # grown from the old views, not recomputed
    repository.SHARED_VIEWS.put(target.revlogs.scope or b"", None)  # type: ignore[arg-type]
    scratch = open_repository(target_path, "t2")
    scratch._views = None
    assert target.branchmap() == scratch.branchmap()
    assert target.heads() == scratch.heads()
    assert sorted(target.branchmap()) == [b"default", b"stable"] and len(target.heads()) == 3
    return extended, scratch.views()


def test_views_after_a_push_are_grown_from_the_old_ones_as_computed_whole(tmp_path: object) -> None:
    for name, hgrc in (("publishing", ""), ("draft", "[phases]\npublish = False\n")):
        path = os.path.join(str(tmp_path), name)
        os.makedirs(path)
        extended, scratch = _pushed_in_two(path, hgrc)
        assert extended is not scratch
        for field in ("parents", "phases", "visible", "phase_stamp"):
            assert getattr(extended, field) == getattr(scratch, field), (name, field)
        assert extended.phases[-1] == (0 if name == "publishing" else 1)
