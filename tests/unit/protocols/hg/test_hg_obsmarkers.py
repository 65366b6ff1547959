"""The obsolescence marker codec (``protocols.hg_obsmarkers``) and the marker index
(``backends.hg.obsstore``): byte transcripts of markers hg wrote, round trips, hostile input."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backends.hg import MemoryHgRepository
from backends.hg.obsstore import (
    ObsStore,
    dirstate_parents,
    hidden_revs,
    instabilities,
    merge_pins,
    successors_sets,
)
from protocols import bundle2 as b2
from protocols import hg_exchange
from protocols import hg_obsmarkers as obs
from protocols.errors import ProtocolError
from protocols.hg_obsmarkers import Marker
from protocols.hg_responses import StreamResponse
from protocols.hg_wire import url_quote

from .helpers import parts_of

PREC = bytes.fromhex("809d5bc89bd119c05b0e83a7411a4621b71fb068")
SUCC = bytes.fromhex("a3f473118942863f391d53fab5d639a7f4e9a0f1")
AMEND_V1 = bytes.fromhex(
    "01" "00000058" "41dac465e6036dfd" "0000" "0000" "01" "03" "03"
    "809d5bc89bd119c05b0e83a7411a4621b71fb068" "a3f473118942863f391d53fab5d639a7f4e9a0f1"
    "030109050401") + b"ef19operationamendusert"
"""``hg commit --amend`` with ``experimental.evolution=all``: the obsstore hg 7.2 wrote."""


def test_a_marker_hg_wrote_decodes_and_encodes_back() -> None:
    version, markers = obs.decode(AMEND_V1)
    assert version == 1
    (m,) = markers
    assert (m.prec, m.succs, m.flags, m.parents) == (PREC, (SUCC,), 0, None)
    assert m.meta == ((b"ef1", b"9"), (b"operation", b"amend"), (b"user", b"t"))
    assert int(m.date[0]) == 1796315032 and m.date[1] == 0
    assert b"".join(obs.encode(markers, 1)) == AMEND_V1


def test_format_0_carries_date_and_parents_in_metadata() -> None:
    m = Marker(PREC, (), 0, ((b"user", b"t"),), (1700000000.5, -3600), (SUCC,))
    data = b"".join(obs.encode([m], 0))
    assert data[:1] == b"\x00" and b"date:1700000000.5 -3600" in data and b"p1:" + SUCC.hex().encode() in data
    assert obs.decode(data) == (0, [m])
    none = m._replace(parents=())
    assert b"p0:" in b"".join(obs.encode([none], 0)) and obs.decode(b"".join(obs.encode([none], 0)))[1] == [none]


nodes = st.binary(min_size=20, max_size=20).filter(lambda n: n != obs.NULL)
FORMAT_0_KEYS = frozenset({b"date", b"p0", b"p1", b"p2"})
"""Keys format 0 carries the date and parents in (as hg's own: a marker's own ``p0`` would read back as
"no parents"), which no marker of hg's has in its metadata."""
meta = st.lists(st.tuples(st.binary(max_size=20).filter(lambda k: b":" not in k and b"\0" not in k
                                                          and k not in FORMAT_0_KEYS),
                          st.binary(max_size=30).filter(lambda v: b"\0" not in v)),
                max_size=4, unique_by=lambda kv: kv[0])
markers = st.builds(
    lambda prec, succs, flags, pairs, secs, tz, parents: Marker(
        prec, tuple(s for s in succs if s != prec), flags, tuple(sorted(pairs)), (secs, tz * 60), parents),
    nodes, st.lists(nodes, max_size=3), st.integers(0, 1), meta,
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12),
    st.integers(-720, 720), st.none() | st.lists(nodes, max_size=2).map(tuple))


@given(st.lists(markers, max_size=5), st.sampled_from(obs.VERSIONS))
def test_round_trip(found: list[Marker], version: int) -> None:
    data = b"".join(obs.encode(found, version))
    got_version, got = obs.decode(data)
    assert got_version == version
    if version == 1:
        assert got == found
    else:  # format 0 sorts the metadata with the date and parents in it, then takes them out
        assert [(m.prec, m.succs, m.flags, dict(m.meta), m.date, m.parents) for m in got] == \
            [(m.prec, m.succs, m.flags, dict(m.meta), m.date, m.parents) for m in found]


@given(st.binary(max_size=300))
def test_any_bytes_decode_or_raise_marker_error(data: bytes) -> None:
    try:
        obs.decode(data)
    except obs.MarkerError:
        pass


@pytest.mark.parametrize("cut", range(1, len(AMEND_V1)))
def test_every_truncation_is_refused(cut: int) -> None:
    with pytest.raises(obs.MarkerError):
        obs.decode(AMEND_V1[:cut] if cut > 1 else b"")


@pytest.mark.parametrize(("data", "words"), [
    (b"\x02", "unknown format version 2"),
    (AMEND_V1[:1] + b"\x00\x00\x00\x57" + AMEND_V1[5:], "overruns"),
    (AMEND_V1[:1] + b"\x00\x00\x00\x59" + AMEND_V1[5:] + b"!", "size does not match"),
    (AMEND_V1[:16] + b"\x02" + AMEND_V1[17:], "SHA-256"),
    (AMEND_V1[:18] + b"\x04" + AMEND_V1[19:], "4 parents"),
    (AMEND_V1.replace(SUCC, obs.NULL), "null changeset"),
    (AMEND_V1.replace(SUCC, PREC), "its own successor"),
    (AMEND_V1[:5] + b"\x7f\xf8\x00\x00\x00\x00\x00\x00" + AMEND_V1[13:], "not a finite number"),
], ids=["version", "short-size", "long-size", "sha256", "parents", "null", "cycle", "nan"])
def test_hostile_markers_are_refused(data: bytes, words: str) -> None:
    with pytest.raises(obs.MarkerError, match=words):
        obs.decode(data)


def test_versions_and_common_version() -> None:
    assert obs.versions_of([b"V0", b"V1", b"V9", b"X1", b"V", b"V12345"]) == [0, 1, 9]
    assert obs.common_version([0, 1, 9]) == 1 and obs.common_version([0]) == 0 and obs.common_version([3]) is None


def test_unencodable_markers_raise_value_error() -> None:
    with pytest.raises(ValueError):
        b"".join(obs.encode([Marker(PREC, (), 0x100, (), (0.0, 0), None)], 0))
    with pytest.raises(ValueError):
        b"".join(obs.encode([Marker(PREC, (), 0, ((b"k", b"v" * 256),), (0.0, 0), None)], 1))
    with pytest.raises(ValueError):
        b"".join(obs.encode([Marker(PREC, (), 0, ((b"a:b", b"v"),), (0.0, 0), None)], 0))


def _n(i: int) -> bytes:
    return bytes([i + 1]) * 20


def test_relevant_markers_follow_successors_and_pruned_children() -> None:
    rewrite = Marker(_n(1), (_n(2),), 0, (), (1.0, 0), None)  # 1 -> 2
    older = Marker(_n(0), (_n(1),), 0, (), (0.0, 0), None)  # 0 -> 1: relevant through 1
    prune_child = Marker(_n(3), (), 0, (), (2.0, 0), (_n(2),))  # 3 pruned, a child of 2
    prune_self = Marker(_n(2), (), 0, (), (3.0, 0), None)
    unrelated = Marker(_n(5), (_n(6),), 0, (), (4.0, 0), None)
    store = ObsStore(1, [rewrite, older, prune_child, prune_self, unrelated])
    assert store.relevant([_n(2)]) == sorted([rewrite, older, prune_child, prune_self], key=obs.sort_key)
    assert store.relevant([_n(9)]) == []
    assert store.new([rewrite, unrelated._replace(flags=1), unrelated._replace(flags=1)]) == [unrelated._replace(flags=1)]


def test_hidden_revisions_as_hg_computes_them() -> None:
    # 0 public; 1 draft rewritten; 2 draft child of 1 (not obsolete: reveals 1); 3 draft pruned; 4 secret pruned
    parents = [(-1, -1), (0, -1), (1, -1), (0, -1), (0, -1)]
    phases = bytearray([0, 1, 1, 1, 2])
    store = ObsStore(1, [Marker(_n(i), (), 0, (), (0.0, 0), None) for i in (0, 1, 3, 4)])
    rev_of = {_n(i): i for i in range(5)}
    assert hidden_revs(store, rev_of, parents, phases, pinned=()) == {3, 4}
    assert hidden_revs(store, rev_of, parents, phases, pinned=[3]) == {4}
    archived = bytearray([0, 1, 1, 1, 32])
    assert hidden_revs(ObsStore(1, []), rev_of, parents, archived, pinned=()) == {4}


def test_dirstate_parents_of_both_formats() -> None:
    assert dirstate_parents(_n(1) + _n(2) + b"rest") == [_n(1), _n(2)]
    v2 = b"dirstate-v2\n" + _n(3) + b"\0" * 12 + _n(4) + b"\0" * 12
    assert dirstate_parents(v2) == [_n(3), _n(4)]


def test_pushkey_dumps_carry_every_marker_in_format_0() -> None:
    repo = MemoryHgRepository("m")
    many = [Marker(_n(i % 200), (), 0, ((b"note", b"x" * 200),), (float(i), 0), None) for i in range(60)]
    repo.store.replace(b"obsstore", b"".join(obs.encode(many, 1)))
    repo.plain.replace(b"hgrc", b"[experimental]\nevolution = all\n")
    keys = repo.listkeys(b"obsolete")
    assert len(keys) > 1 and b"dump0" in keys and b"obsolete" in repo.listkeys(b"namespaces")
    got = []
    for key in sorted(keys, reverse=True):
        data = base64.b85decode(keys[key])
        assert data[:1] == b"\0" and len(data) <= 5301 + 300
        got.extend(obs.decode(data)[1])
    assert sorted(got, key=obs.sort_key) == sorted(many, key=obs.sort_key)
    odd = Marker(_n(250), (), 0, ((b"a:b", b"v"),), (0.0, 0), None)  # format 1 only
    repo.store.replace(b"obsstore", b"".join(obs.encode([*many, odd], 1)))
    assert sum(len(obs.decode(base64.b85decode(v))[1]) for v in repo.listkeys(b"obsolete").values()) == len(many)
    repo.plain.replace(b"hgrc", b"")
    assert repo.listkeys(b"obsolete") == {} and b"obsolete" not in repo.listkeys(b"namespaces")


# ------------------------------------------------------------------ the exchange, on the engine in memory


def _engine(evolution: bool) -> MemoryHgRepository:
    repo = MemoryHgRepository("m")
    if evolution:
        repo.plain.replace(b"hgrc", b"[phases]\npublish = False\n[experimental]\nevolution = all\n")
    return repo


def _push(repo: MemoryHgRepository, payload: bytes, mandatory: bool = True) -> tuple[list[tuple[b2.InPart, bytes]], bytes]:
    parts = [b2.OutPart(b2.PART_REPLYCAPS, payload=[b"HG20\nerror=abort"]),
             b2.OutPart(b"obsmarkers", payload=[payload], mandatory=mandatory)]
    reply = hg_exchange.unbundle(repo, b"force".hex().encode(), iter([b"".join(b2.write_bundle2(parts))]))
    assert isinstance(reply, StreamResponse)
    return parts_of(b"".join(reply.chunks)), reply.output


def test_pushed_markers_are_stored_and_answered() -> None:
    repo = _engine(evolution=True)
    marker = Marker(PREC, (SUCC,), 0, ((b"user", b"t"),), (1.0, 0), None)
    parts, output = _push(repo, b"".join(obs.encode([marker, marker], 0)))
    (reply, _payload), = parts
    assert reply.type == b"reply:obsmarkers" and reply.params[b"new"] == b"1"
    assert output == b"1 new obsolescence markers\n"  # PREC is no changeset here: nothing obsoleted
    assert obs.decode(repo.store.read(b"obsstore")) == (1, [marker])
    parts, output = _push(repo, b"".join(obs.encode([marker], 1)))
    assert parts[0][0].params[b"new"] == b"0" and output == b""


@pytest.mark.parametrize("payload", [b"", b"\x01\x00\x00", b"\x05", AMEND_V1.replace(SUCC, obs.NULL)],
                         ids=["empty", "truncated", "version", "null"])
def test_bad_pushed_markers_are_an_abort_and_nothing_lands(payload: bytes) -> None:
    repo = _engine(evolution=True)
    parts, _output = _push(repo, payload)
    assert [p.type for p, _ in parts] == [b2.PART_ERROR_ABORT]
    assert not repo.store.exists(b"obsstore")


def test_markers_pushed_where_they_may_not_be_created() -> None:
    repo = _engine(evolution=False)
    parts, _output = _push(repo, AMEND_V1)
    assert [p.type for p, _ in parts] == [b2.PART_ERROR_ABORT]
    assert b"creating obsolete markers is not enabled" in parts[0][0].params[b"message"]
    parts, _output = _push(repo, AMEND_V1, mandatory=False)  # advisory: dropped, as by hg
    assert parts == [] and not repo.store.exists(b"obsstore")


def test_capabilities_and_getbundle_follow_the_hgrc() -> None:
    repo = _engine(evolution=False)
    assert b"obsmarkers" not in hg_exchange.server_bundle2_caps(repo)
    repo = _engine(evolution=True)
    assert hg_exchange.server_bundle2_caps(repo)[b"obsmarkers"] == (b"V0", b"V1")
    caps = b"HG20,bundle2=" + url_quote(b"HG20\nobsmarkers=V0,V1")
    request = hg_exchange.parse_getbundle_args({b"bundlecaps": caps, b"obsmarkers": b"1", b"cg": b"0"})
    assert request.obsmarkers
    chunks, _sent = hg_exchange.getbundle(repo, request)
    assert parts_of(b"".join(chunks)) == []  # no markers: no part
    no_caps = hg_exchange.parse_getbundle_args({b"bundlecaps": b"HG20", b"obsmarkers": b"1", b"cg": b"0"})
    chunks, _sent = hg_exchange.getbundle(repo, no_caps)
    assert [p.type for p, _ in parts_of(b"".join(chunks))] == [b2.PART_ERROR_ABORT]


def test_successors_sets_of_rewrites_splits_prunes_divergence_and_cycles() -> None:
    def m(prec: int, *succs: int) -> Marker:
        return Marker(_n(prec), tuple(_n(s) for s in succs), 0, (), (float(prec), 0), None)

    store = ObsStore(1, [m(0, 1), m(1, 2, 3), m(4), m(5, 6), m(5, 7), m(8, 9), m(9, 8), m(10, 11, 12)])
    known = {_n(i) for i in (2, 3, 6, 7, 11)}.__contains__
    cache: dict[bytes, list[tuple[bytes, ...]]] = {}
    assert successors_sets(store, _n(0), known, cache) == [(_n(2), _n(3))]  # rewritten, then split
    assert successors_sets(store, _n(4), known, cache) == []  # pruned
    assert sorted(successors_sets(store, _n(5), known, cache)) == [(_n(6),), (_n(7),)]  # divergent
    assert successors_sets(store, _n(8), known, cache) == []  # a cycle counts as pruned
    assert successors_sets(store, _n(10), known, cache) == [(_n(11),)]  # 12 is unknown: pruned
    assert successors_sets(store, _n(2), known, cache) == [(_n(2),)]


def test_instabilities_count_draft_changesets_only() -> None:
    # 0 public; 1 draft rewritten into 2 and into 3 (divergent); 4 draft child of 1 (orphan);
    # 5 secret child of 1 (orphan, but a server does not count it); 6 draft rewrite of public 0
    parents = [(-1, -1), (0, -1), (0, -1), (0, -1), (1, -1), (1, -1), (0, -1)]
    phases = bytearray([0, 1, 1, 1, 1, 2, 1])
    store = ObsStore(1, [Marker(_n(1), (_n(2),), 0, (), (0.0, 0), None),
                         Marker(_n(1), (_n(3),), 0, (), (1.0, 0), None),
                         Marker(_n(0), (_n(6),), 0, (), (2.0, 0), None)])
    rev_of = {_n(i): i for i in range(7)}
    assert instabilities(store, rev_of, _n, parents, phases, 7) == (1, 1, 2)
    assert instabilities(store, rev_of, _n, parents, phases, 4) == (0, 0, 2)
    fixed = ObsStore(1, [*store.markers[:2], store.markers[2]._replace(flags=1)])  # bumpedfix
    assert instabilities(fixed, rev_of, _n, parents, phases, 7) == (1, 0, 2)


def test_merge_pins_read_both_merge_state_formats() -> None:
    def record(kind: bytes, data: bytes) -> bytes:
        return kind + len(data).to_bytes(4, "big") + data

    local, other = _n(1).hex().encode(), _n(2).hex().encode()
    unresolved = record(b"F", b"f.txt\0u\0hash\0rest")
    state2 = record(b"L", local) + record(b"O", other) + record(b"t", b"l" + b"labels") + unresolved
    assert merge_pins(state2, None) == [_n(1), _n(2)]
    assert merge_pins(record(b"L", local) + record(b"O", other) + record(b"t", b"P" + b"d\0pu\0x"), None) == \
        [_n(1), _n(2)]  # a path conflict, wrapped in a "t" record
    assert merge_pins(record(b"L", local) + record(b"O", other) + record(b"F", b"f.txt\0r\0x"), None) == []
    assert merge_pins(None, local + b"\nf.txt\0u\0x\n") == [_n(1)]  # format 1 names no other side
    assert merge_pins(record(b"L", b"zz") + unresolved + b"\x01\x00", None) == []  # garbage: nothing pinned
    assert merge_pins(None, None) == []


def test_markers_pushed_through_the_obsolete_pushkey_namespace() -> None:
    source = _engine(evolution=True)
    many = [Marker(_n(i % 200), (), 0, ((b"note", b"x" * 200),), (float(i), 0), None) for i in range(40)]
    source.store.replace(b"obsstore", b"".join(obs.encode(many, 1)))
    target = _engine(evolution=True)
    for key, value in sorted(source.listkeys(b"obsolete").items(), reverse=True):  # as hg's _pushobsolete
        assert hg_exchange.pushkey(target, b"obsolete", key, b"", value)
    assert sorted(obs.decode(target.store.read(b"obsstore"))[1], key=obs.sort_key) == sorted(many, key=obs.sort_key)
    dump = source.listkeys(b"obsolete")[b"dump0"]
    assert not hg_exchange.pushkey(target, b"obsolete", b"other", b"", dump)
    assert not hg_exchange.pushkey(target, b"obsolete", b"dump0", b"old", dump)
    assert not hg_exchange.pushkey(_engine(evolution=False), b"obsolete", b"dump0", b"", dump)
    with pytest.raises(ProtocolError):
        hg_exchange.pushkey(target, b"obsolete", b"dump0", b"", b"\x00not base85")
