"""One contract, two engines: the on-disk repository and MemoryHgRepository answer alike.

Histories are built without Mercurial (bench.hg_storage_micro.HistoryBuilder
computes real node hashes), so these tests are fast; agreement with real
``hg`` is proven in tests/integration/test_hg_storage_*.py.
"""

from __future__ import annotations

import binascii
from collections.abc import Iterator
from pathlib import Path

import pytest

import backends.hg as hgstore
from backends.hg.repository import HgRepo
from backends.hg.store import encode_store_path
from backends.interfaces import NULL_NODE, DeltaMode, Kind, Node, RevisionDelta, RevisionGroup, Section
from bench.hg_storage_micro import HistoryBuilder
from protocols.errors import ProtocolError, StorageError, UnsupportedFeature


@pytest.fixture(params=["fs", "memory"])
def new_repo(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HgRepo]:
    if request.param == "fs":
        yield hgstore.create_repository(str(tmp_path / "r"), "r")
    else:
        yield hgstore.MemoryHgRepository("r")


def sample_history() -> tuple[HistoryBuilder, dict[str, Node]]:
    """default: a-b-c, branch stable off a (closed later), and a merge of b and c' on default."""
    h = HistoryBuilder()
    n: dict[str, Node] = {}
    n["a"] = h.commit({b"f": b"1\n", b"g": b"g\n"}, message=b"a")
    n["b"] = h.commit({b"f": b"1\n2\n"}, n["a"], message=b"b")
    n["s1"] = h.commit({b"s": b"stable\n"}, n["a"], branch=b"stable", message=b"s1")
    n["s2"] = h.commit({b"s": b"stable\nclosed\n"}, n["s1"], branch=b"stable", close=True, message=b"s2")
    n["c"] = h.commit({b"g": b"g\nc\n"}, n["a"], message=b"c")
    n["m"] = h.commit({b"f": b"1\n2\n", b"g": b"g\nc\n"}, n["b"], n["c"], message=b"merge")
    return h, n


def ingest(repo: HgRepo, groups: Iterator[RevisionGroup]) -> list[Node]:
    tx = repo.transaction()
    result = tx.add_changegroup(groups)
    tx.commit()
    return list(result.added)


def test_empty_repository(new_repo: HgRepo) -> None:
    assert new_repo.kind is Kind.HG and new_repo.name == "r"
    assert new_repo.heads() == [NULL_NODE]
    assert new_repo.known([NULL_NODE, Node(b"\1" * 20)]) == [True, False]
    assert dict(new_repo.branchmap()) == {}
    assert new_repo.lookup(b"tip") == new_repo.lookup(b"null") == NULL_NODE
    assert new_repo.listkeys(b"bookmarks") == {}
    assert new_repo.listkeys(b"phases") == {b"publishing": b"True"}
    assert new_repo.missing([], [NULL_NODE]) == []
    assert "revlog-compression-zstd" in new_repo.requirements()
    assert new_repo.publishing()
    count, size, files = new_repo.stream_files()
    assert (count, size, list(files)) == (0, 0, [])


def test_ingest_and_query(new_repo: HgRepo) -> None:
    h, n = sample_history()
    tx = new_repo.transaction()
    result = tx.add_changegroup(h.groups())
    tx.commit()
    assert list(result.added) == [n[k] for k in ("a", "b", "s1", "s2", "c", "m")]
    assert (result.heads_before, result.heads_after) == (1, 2)
    assert new_repo.heads() == [n["s2"], n["m"]]
    assert {k: list(v) for k, v in new_repo.branchmap().items()} == {b"default": [n["m"]], b"stable": [n["s2"]]}
    assert new_repo.lookup(b"stable") == n["s2"]  # only closed heads: the tip-most one
    assert new_repo.lookup(b"default") == new_repo.lookup(b"tip") == n["m"]
    assert new_repo.lookup(b"1") == n["b"]
    assert new_repo.lookup(binascii.hexlify(n["c"])[:10]) == n["c"]
    assert new_repo.missing([n["b"]], [n["m"]]) == [n["c"], n["m"]]
    assert new_repo.missing([n["a"]], [n["s2"], n["m"]]) == [n["b"], n["s1"], n["s2"], n["c"], n["m"]]
    assert new_repo.known([n["a"], Node(b"\2" * 20)]) == [True, False]
    with pytest.raises(KeyError):
        new_repo.lookup(b"nope")


@pytest.mark.parametrize("mode", [DeltaMode.ANY, DeltaMode.PREVIOUS])
def test_emit_partial_then_rest_round_trips(new_repo: HgRepo, mode: DeltaMode) -> None:
    h, n = sample_history()
    ingest(new_repo, h.groups())
    other = hgstore.MemoryHgRepository("copy")
    first = new_repo.missing([], [n["b"]])
    ingest(other, new_repo.emit_groups(first, mode))
    rest = new_repo.missing(other.heads(), new_repo.heads())
    assert rest == [n["s1"], n["s2"], n["c"], n["m"]]
    groups = list(new_repo.emit_groups(rest, mode))
    assert [g.section for g in groups[:2]] == [Section.CHANGELOG, Section.MANIFEST]
    assert [g.path for g in groups[2:]] == [b"f", b"g", b"s"]
    for g in groups:
        for rd in g.revisions:
            assert rd.base == NULL_NODE or rd.base in (rd.p1, rd.p2) or other_or_sent(rd)
    ingest(other, new_repo.emit_groups(rest, mode))
    assert other.heads() == new_repo.heads()
    assert dict(other.branchmap()) == dict(new_repo.branchmap())


def other_or_sent(rd: RevisionDelta) -> bool:
    return True  # any base is legal as long as the receiving side could apply it (checked by ingest)


def test_bookmarks_compare_and_swap(new_repo: HgRepo) -> None:
    h, n = sample_history()
    ingest(new_repo, h.groups())
    tx = new_repo.transaction()
    assert tx.set_bookmark(b"m", None, n["a"])
    assert not tx.set_bookmark(b"m", None, n["b"])  # exists already
    assert not tx.set_bookmark(b"m", n["c"], n["b"])  # wrong old value
    assert tx.set_bookmark(b"m", n["a"], n["b"])
    with pytest.raises(ProtocolError, match="unknown to the server"):  # no bookmark to a missing changeset
        tx.set_bookmark(b"bad", None, Node(b"\3" * 20))
    tx.commit()
    assert new_repo.bookmarks() == {b"m": n["b"]}
    assert new_repo.listkeys(b"bookmarks") == {b"m": binascii.hexlify(n["b"])}
    assert new_repo.lookup(b"m") == n["b"]
    tx = new_repo.transaction()
    assert tx.set_bookmark(b"m", n["b"], None)
    tx.commit()
    assert new_repo.bookmarks() == {}


def test_phases_non_publishing(new_repo: HgRepo) -> None:
    new_repo.plain.replace(b"hgrc", b"[phases]\npublish = False\n")
    assert not new_repo.publishing()
    h, n = sample_history()
    ingest(new_repo, h.groups())
    assert new_repo.listkeys(b"phases") == {binascii.hexlify(n["a"]): b"1"}
    tx = new_repo.transaction()
    tx.set_phase(0, [n["b"]])
    tx.commit()
    roots = new_repo.listkeys(b"phases")
    assert roots == {binascii.hexlify(n[k]): b"1" for k in ("s1", "c")}
    assert new_repo.phase_heads([n["m"]]) == [(0, n["b"]), (1, n["m"])]


def test_phase_heads_of_an_empty_non_publishing_repository_name_the_null_revision_public(new_repo: HgRepo) -> None:
    """A pull from an empty non-publishing repository by a client with changesets of its own asks
    getbundle for the null revision, its only head: it is public, as in hg (an HTTP 500 before)."""
    new_repo.plain.replace(b"hgrc", b"[phases]\npublish = False\n")
    assert new_repo.phase_heads([NULL_NODE]) == [(0, NULL_NODE)]


def test_publishing_repo_makes_pushed_changesets_public(new_repo: HgRepo) -> None:
    h, _ = sample_history()
    ingest(new_repo, h.groups())
    assert new_repo.listkeys(b"phases") == {b"publishing": b"True"}
    assert new_repo.phase_heads(new_repo.heads()) == [(0, x) for x in sorted(new_repo.heads())]


def _snapshot(repo: HgRepo) -> dict[bytes, bytes]:
    return {p: repo.store.read(p) for p in repo.store.walk() if not p.endswith(b"lock")}


def test_bad_changegroups_are_refused_and_leave_nothing(new_repo: HgRepo) -> None:
    h, _ = sample_history()
    ingest(new_repo, iter(list(HistoryBuilder().groups())))
    before = _snapshot(new_repo)
    groups = list(h.groups())
    cl = list(groups[0].revisions)
    broken = RevisionDelta(cl[0].node, cl[0].p1, cl[0].p2, cl[0].linknode, cl[0].base, cl[0].delta + b"x")
    tx = new_repo.transaction()
    with pytest.raises((ProtocolError, StorageError)):
        tx.add_changegroup(iter([RevisionGroup(Section.CHANGELOG, b"", iter([broken]))]))
    assert _snapshot(new_repo) == before
    tx = new_repo.transaction()
    unknown_base = RevisionDelta(cl[1].node, cl[1].p1, cl[1].p2, cl[1].linknode, Node(b"\4" * 20), cl[1].delta)
    with pytest.raises(ProtocolError, match="delta base"):
        tx.add_changegroup(iter([RevisionGroup(Section.CHANGELOG, b"", iter([unknown_base]))]))
    tx = new_repo.transaction()
    groups = list(h.groups())
    without_files = iter(groups[:2])
    with pytest.raises(ProtocolError, match="missing revision"):
        tx.add_changegroup(without_files)
    assert _snapshot(new_repo) == before
    assert new_repo.heads() == [NULL_NODE]


def test_stream_files_snapshot(new_repo: HgRepo) -> None:
    h, _ = sample_history()
    ingest(new_repo, h.groups())
    count, size, files = new_repo.stream_files()
    entries = [(f.path, f.size, b"".join(f.chunks)) for f in files]
    assert count == len(entries) and size == sum(e[1] for e in entries)
    paths = [e[0] for e in entries]
    # the manifest, then the changelog (split, as hg creates it), then phaseroots where it is sent
    assert [p for p in paths if p != b"phaseroots"][-3:] == [b"00manifest.i", b"00changelog.d", b"00changelog.i"]
    assert b"data/f.i" in paths
    for path, length, data in entries:
        assert len(data) == length == new_repo.store.size(encode_store_path(path))


def test_stream_files_copy_inline_indexes_and_skip_what_fncache_names_but_is_gone(new_repo: HgRepo) -> None:
    """An inline ``.i`` is copied when the sizes are taken (a writer may replace it later);
    a file the fncache still names but the store lost (as after a strip) is left out."""
    h, _ = sample_history()
    ingest(new_repo, h.groups())
    new_repo.store.append(b"fncache", b"data/gone.i\n")
    before = new_repo.store.read(encode_store_path(b"data/f.i"))
    assert before[1] & 1  # inline
    count, _size, files = new_repo.stream_files()
    new_repo.store.replace(encode_store_path(b"data/f.i"), b"\0" * len(before))
    entries = {f.path: b"".join(f.chunks) for f in files}
    assert len(entries) == count and b"data/gone.i" not in entries
    assert entries[b"data/f.i"] == before


def test_stream_files_follow_hg_s_phase_rules(new_repo: HgRepo) -> None:
    """As hg's server: phase roots only from a repository that does not publish, and no stream
    clone while a changeset is secret (pulls hide it; a copy of the store would not)."""
    h, n = sample_history()
    ingest(new_repo, h.groups())
    new_repo.store.replace(b"phaseroots", b"1 %s\n" % binascii.hexlify(n["c"]))

    def streamed() -> list[bytes]:
        return [f.path for f in new_repo.stream_files()[2]]

    assert new_repo.stream_clone_allowed() and b"phaseroots" not in streamed()  # publishing: all public
    new_repo.plain.replace(b"hgrc", b"[phases]\npublish = False\n")
    assert b"phaseroots" in streamed()
    new_repo.store.replace(b"phaseroots", b"1 %s\n2 %s\n" % (binascii.hexlify(n["c"]), binascii.hexlify(n["m"])))
    assert not new_repo.stream_clone_allowed()
    with pytest.raises(UnsupportedFeature, match="secret changesets"):
        new_repo.stream_files()
    new_repo.store.replace(b"phaseroots", b"1 %s\n" % binascii.hexlify(n["m"]))  # the secret one is draft again
    assert new_repo.stream_clone_allowed() and b"phaseroots" in streamed()


def test_bookmarks_on_secret_changesets_and_divergent_ones_are_not_listed_but_kept(new_repo: HgRepo) -> None:
    """As hg's server lists them; a bookmark write keeps the hidden ones in the file."""
    h, n = sample_history()
    ingest(new_repo, h.groups())
    new_repo.plain.replace(b"hgrc", b"[phases]\npublish = False\n")
    new_repo.store.replace(b"phaseroots", b"2 %s\n" % binascii.hexlify(n["m"]))  # the merge is secret
    hidden = {b"on-secret": n["m"], b"feature@other": n["b"]}
    shown = {b"main": n["c"], b"trailing@": n["b"]}
    lines = b"".join(b"%s %s\n" % (binascii.hexlify(node), name) for name, node in {**hidden, **shown}.items())
    new_repo.bookmarks_vfs().replace(b"bookmarks", lines)
    assert dict(new_repo.bookmarks()) == shown
    assert new_repo.listkeys(b"bookmarks") == {k: binascii.hexlify(v) for k, v in shown.items()}
    with pytest.raises(KeyError):
        new_repo.lookup(b"on-secret")
    assert new_repo.lookup(b"feature@other") == n["b"]  # a divergent name still resolves, as in hg
    tx = new_repo.transaction()
    assert tx.set_bookmark(b"new", None, n["a"])
    assert not tx.set_bookmark(b"on-secret", None, n["a"])  # a name the client could not see is not free
    tx.commit()
    assert new_repo.stored_bookmarks() == {**hidden, **shown, b"new": n["a"]}


def test_bookmarks_without_an_at_sign_are_all_listed(new_repo: HgRepo) -> None:
    """The common case a poller meets (no ``@`` in any name) lists what the general one does."""
    h, n = sample_history()
    ingest(new_repo, h.groups())
    shown = {b"main": n["c"], b"feature/x": n["b"], b"a": n["a"]}
    lines = b"".join(b"%s %s\n" % (binascii.hexlify(node), name) for name, node in shown.items())
    new_repo.bookmarks_vfs().replace(b"bookmarks", lines)
    assert dict(new_repo.bookmarks()) == shown
    assert new_repo.listkeys(b"bookmarks") == {k: binascii.hexlify(v) for k, v in shown.items()}
    assert dict(new_repo.bookmarks()) == shown  # (a second time, from the shared cache)


def test_the_number_of_a_secret_revision_is_not_read_as_a_hex_prefix(new_repo: HgRepo) -> None:
    """hg's lookup takes a number in range as a revision, visible or not: "7" for a secret
    revision 7 is unknown, not the changeset whose hash starts with 7."""
    h, n = sample_history()
    n["d"] = h.commit({b"f": b"d\n"}, n["m"], message=b"d")
    n["e"] = h.commit({b"f": b"e\n"}, n["d"], message=b"e")  # revision 7
    ingest(new_repo, h.groups())
    assert [node.hex()[0] for node in n.values()].count("7") == 1 and n["c"].hex().startswith("7")
    assert new_repo.lookup(b"7") == n["e"]
    new_repo.plain.replace(b"hgrc", b"[phases]\npublish = False\n")
    new_repo.store.replace(b"phaseroots", b"2 %s\n" % binascii.hexlify(n["e"]))
    with pytest.raises(KeyError):
        new_repo.lookup(b"7")
    assert new_repo.lookup(b"70") == n["c"] and new_repo.lookup(b"6") == n["d"]


def test_unknown_requirement_is_refused(tmp_path: Path) -> None:
    hgstore.create_repository(str(tmp_path / "r"), "r")
    with open(tmp_path / "r" / ".hg" / "store" / "requires", "a") as f:
        f.write("treemanifest\n")
    with pytest.raises(UnsupportedFeature, match="unsupported repository feature: treemanifest"):
        hgstore.open_repository(str(tmp_path / "r"), "r")
    assert not hgstore.is_hg_repository(str(tmp_path / "missing"))


def test_file_revision_shared_by_two_branches_is_sent_with_a_known_linknode(new_repo: HgRepo) -> None:
    """The same file revision committed on two branches links to the first; pulling only the
    second branch must still carry it (Mercurial's slow path), linked to a changeset sent."""
    h = HistoryBuilder()
    a = h.commit({b"f": b"base\n"})
    h.commit({b"f": b"same\n"}, a, branch=b"x")
    c = h.commit({b"f": b"same\n"}, a)
    ingest(new_repo, h.groups())
    other = hgstore.MemoryHgRepository("other")
    ingest(other, new_repo.emit_groups([a], DeltaMode.ANY))
    outgoing = new_repo.missing([a], [c])
    assert outgoing == [c]
    ingest(other, new_repo.emit_groups(outgoing, DeltaMode.ANY))
    assert other.heads() == [c]
    fl = other.filelog(b"f")
    assert fl.revision(fl.tip(), verify=True) == b"same\n"
    assert other.changelog().node(fl.linkrev(fl.tip())) == c


def test_inline_revlog_split_in_a_later_transaction_is_listed_in_fncache(new_repo: HgRepo) -> None:
    h = HistoryBuilder()
    small = h.commit({b"Grows.txt": b"small\n"})
    ingest(new_repo, h.groups())
    assert new_repo.store.read(b"fncache") == b"data/Grows.txt.i\n"
    big = b"".join(b"%d unique-ish line %d\n" % (i, i * 7919 % 10007) for i in range(30000))
    later = HistoryBuilder()
    later.state[small] = h.state[small]
    later.manifest_of[small] = h.manifest_of[small]
    later.commit({b"Grows.txt": big}, small)
    tx = new_repo.transaction()
    tx.add_changegroup(g for g in later.groups())
    tx.commit()
    assert new_repo.store.read(b"fncache") == b"data/Grows.txt.i\ndata/Grows.txt.d\n"
    assert new_repo.store.exists(b"data/_grows.txt.d")
    fl = new_repo.filelog(b"Grows.txt")
    assert not fl.index.inline and fl.revision(1, verify=True) == big


def test_a_push_of_many_large_files_holds_one_file_at_a_time(tmp_path: Path) -> None:
    """The transaction keeps a file's texts (delta bases) only while its group is read."""
    import os
    import tracemalloc

    repo = hgstore.create_repository(str(tmp_path / "r"), "r")
    h = HistoryBuilder()
    size, count = 256 << 10, 48  # 12 MiB of incompressible files in one changeset
    h.commit({b"d/f%02d" % i: os.urandom(size) for i in range(count)}, message=b"big")
    groups = h.groups()  # the deltas exist before the measurement starts
    tracemalloc.start()
    try:
        tx = repo.transaction()
        tx.add_changegroup(groups)
        _, peak = tracemalloc.get_traced_memory()
        tx.commit()
    finally:
        tracemalloc.stop()
    assert repo.heads() != [NULL_NODE]
    # Each file costs its text, its stored chunk and a write buffer: a few times 256 KiB, not 12 MiB.
    assert peak < 12 * size, f"peak {peak} bytes while ingesting {count} files of {size} bytes"


def test_the_state_stamp_moves_with_everything_a_pull_can_see(new_repo: HgRepo) -> None:
    new_repo.plain.replace(b"hgrc", b"[phases]\npublish = False\n")
    seen = [new_repo.state_stamp()]
    assert new_repo.state_stamp() == seen[0]  # reading changes nothing
    h, n = sample_history()
    ingest(new_repo, h.groups())  # new changesets
    seen.append(new_repo.state_stamp())
    tx = new_repo.transaction()
    tx.set_bookmark(b"m", None, n["a"])
    tx.commit()
    seen.append(new_repo.state_stamp())
    tx = new_repo.transaction()
    tx.set_phase(0, [n["b"]])
    tx.commit()
    seen.append(new_repo.state_stamp())
    new_repo.plain.replace(b"hgrc", b"")  # publishing again
    seen.append(new_repo.state_stamp())
    new_repo.serve_hidden = True  # hg pull --remote-hidden: no clone of the served view may be shared with it
    seen.append(new_repo.state_stamp())
    assert len(set(seen)) == len(seen)
    assert new_repo.state_stamp() == seen[-1]
