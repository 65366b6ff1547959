"""A repository's commit-graph is a file on disk, read as input: damaged (cut short, bytes changed,
emptied) it is not used and every request's answer is what the objects say; one whose checksum was
made to fit what it says (a hostile or buggy writer) never crashes, hangs or reads past the file,
whatever its chunk table, fanout, lookup, parent positions or extra-edge lists hold."""

from __future__ import annotations

import hashlib
import random
import shutil
import struct
from pathlib import Path

import pytest
from dulwich.repo import Repo
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backends import git_commitgraph, git_fastpack
from backends.git_commitgraph import commit_graph, parse_commit_graph
from backends.git_fastpack import plan_pack
from backends.git_pack import Negotiator, plan_shallow
from backends.git_reach import MissingObject
from backends.interfaces import ObjectId
from gateway.errors import damaged_repository
from protocols import git_caps
from protocols.errors import ProtocolError
from protocols.git_upload import FetchRequest
from tests.unit.backends.test_git_fastpack import git
from tests.unit.backends.test_git_kept_walks_random import commit, grow

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs a git binary")

_SOURCES: dict[str, tuple[Path, bytes, dict[str, tuple[str, list[str], int]]]] = {}


def _source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes, dict[str, tuple[str, list[str], int]]]:
    """A mirror with merges and an octopus, repacked with a bitmap, its graph written; the graph's
    bytes and each commit's tree, parents and time as git's log gives them."""
    if "src" not in _SOURCES:
        tmp_path = tmp_path_factory.mktemp("graph")
        rng = random.Random(5)
        work, src = tmp_path / "work", tmp_path / "src.git"
        git(tmp_path, "init", "-q", "-b", "main", str(work))
        commit(work, rng, "root")
        grow(work, rng, 25)
        heads = git(work, "for-each-ref", "--format=%(refname:short)", "refs/heads").decode().split()
        git(work, "checkout", "-q", "main")
        others = [h for h in heads if h != "main"][:3]
        if others:
            git(work, "merge", "-q", "--no-edit", "-s", "ours", *others)
        git(tmp_path, "clone", "-q", "--mirror", str(work), str(src))
        git(src, "repack", "-adbq")
        git(src, "commit-graph", "write", "--reachable")
        truth = {}
        for line in git(src, "log", "--all", "--format=%H %T %ct %P").decode().splitlines():
            oid, tree, when, *parents = line.split()
            truth[oid] = (tree, parents, int(when))
        _SOURCES["src"] = (src, (src / "objects" / "info" / "commit-graph").read_bytes(), truth)
    return _SOURCES["src"]


def _chunks(data: bytes) -> dict[bytes, int]:
    return {cid: off for cid, off in (struct.unpack_from(">4sQ", data, 8 + 12 * n) for n in range(data[6] + 1))}


def _sealed(data: bytes) -> bytes:
    """``data`` with its trailing checksum made to fit."""
    return data[:-20] + hashlib.sha1(data[:-20]).digest()


def _answers(graph: git_commitgraph.CommitGraph | None, truth: dict[str, tuple[str, list[str], int]]) -> None:
    """The graph gives what the objects say of each commit, or nothing."""
    if graph is None:
        return
    for oid, (tree, parents, when) in truth.items():
        found = graph.links(oid.encode())
        assert found is None or found == (tree.encode(), [p.encode() for p in parents], when), oid


_MUTATION = st.one_of(
    st.tuples(st.just("byte"), st.integers(0, 10**9), st.integers(1, 255)),
    st.tuples(st.just("cut"), st.integers(0, 10**9), st.just(0)),
    st.tuples(st.just("word"), st.integers(0, 10**9), st.integers(0, 2**32 - 1)),
)


def _mutate(data: bytes, mutations: list[tuple[str, int, int]]) -> bytes:
    out = bytearray(data)
    for kind, at, value in mutations:
        if not out:
            break
        at %= len(out)
        if kind == "byte":
            out[at] ^= value
        elif kind == "cut":
            del out[at:]
        elif len(out) >= at + 4:
            struct.pack_into(">I", out, at - at % 4 if at >= 4 else at, value)
    return bytes(out)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutations=st.lists(_MUTATION, min_size=1, max_size=3))
def test_a_damaged_graph_gives_what_the_objects_say_or_nothing(tmp_path_factory: pytest.TempPathFactory,
                                                               mutations: list[tuple[str, int, int]]) -> None:
    _, data, truth = _source(tmp_path_factory)
    damaged = _mutate(data, mutations)
    if damaged == data:
        return
    _answers(parse_commit_graph(damaged, 20), truth)


def test_an_empty_or_cut_graph_is_not_read(tmp_path_factory: pytest.TempPathFactory) -> None:
    _, data, _ = _source(tmp_path_factory)
    assert parse_commit_graph(data, 20) is not None
    for size in range(0, len(data), max(1, len(data) // 97)):
        assert parse_commit_graph(data[:size], 20) is None, size
    assert parse_commit_graph(data[:-1], 20) is None


FAST_PATH_DECLINES = git_fastpack._CannotServe
"""What ``plan_pack`` raises to decline a count: ``generate_pack_fast`` returns None, the generic path serves."""


def test_a_changed_parent_is_not_read(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A bit flipped in a commit's first parent (git's log would follow it; its fsck and ``git
    commit-graph verify`` name the commit): the file's checksum no longer fits, the graph is not read."""
    _, data, _ = _source(tmp_path_factory)
    at = _chunks(data)[b"CDAT"]
    damaged = bytearray(data)
    damaged[at + 20 + 3] ^= 1
    assert parse_commit_graph(bytes(damaged), 20) is None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutations=st.lists(_MUTATION, min_size=1, max_size=4), seed=st.integers(0, 2**16))
def test_a_hostile_graph_never_crashes_or_hangs_a_request(tmp_path_factory: pytest.TempPathFactory,
                                                          mutations: list[tuple[str, int, int]], seed: int) -> None:
    src, data, truth = _source(tmp_path_factory)
    hostile = _mutate(data, mutations)
    if len(hostile) > 20:
        hostile = _sealed(hostile)
    graph_file = src / "objects" / "info" / "commit-graph"
    graph_file.write_bytes(hostile)
    try:
        graph = commit_graph(str(src / "objects"), 20)
        if graph is not None:
            for oid in truth:
                graph.links(oid.encode())
        store = Repo(str(src)).object_store
        rng = random.Random(seed)
        commits = sorted(truth)
        refs = {b"refs/heads/main": ObjectId(git(src, "rev-parse", "main").strip())}
        caps = frozenset({git_caps.OFS_DELTA, git_caps.THIN_PACK})
        shallows = tuple(ObjectId(c.encode()) for c in rng.sample(commits, 2))
        request = FetchRequest((refs[b"refs/heads/main"],), caps, shallows, rng.randint(1, 4))
        try:
            shallow = plan_shallow(store, request, refs)
            negotiator = Negotiator(store, request.wants)
            haves = tuple(ObjectId(c.encode()) for c in rng.sample(commits, 3))
            verdicts = negotiator.negotiate(haves, readiness=True).verdicts
            negotiator.ok_to_give_up()
            common = [v.oid for v in verdicts if v.common]
            plan = plan_pack(store, [*request.wants, *shallow.extra_wants], common, thin_pack=True, ofs_delta=True,
                             shallow_boundary=shallow.boundary)
            if plan.reader is not None:
                plan.reader.close()
        except (ProtocolError, MissingObject, FAST_PATH_DECLINES):
            pass  # (a request refused in a sentence the client reads; the fast path declining a count (an
            # unknown want: a parent only the graph names), which the generic path then serves or refuses
            # naming the object the repository lacks)
        except Exception as exc:  # noqa: BLE001 - (a graph naming a tree or parent the store lacks: git's pack-objects
            # fails too; the client and the log are told the repository is damaged, in one sentence)
            assert damaged_repository(exc) is not None, repr(exc)
    finally:
        graph_file.write_bytes(data)


def _requests(src: Path, truth: dict[str, tuple[str, list[str], int]], seed: int) -> None:
    """A shallow fetch's planning, negotiation and counting against the repository as it is now."""
    store = Repo(str(src)).object_store
    rng = random.Random(seed)
    commits = sorted(truth)
    main = ObjectId(git(src, "rev-parse", "main").strip())
    refs = {b"refs/heads/main": main}
    caps = frozenset({git_caps.OFS_DELTA, git_caps.THIN_PACK})
    for depth in (1, 3, 1000):
        shallows = tuple(ObjectId(c.encode()) for c in rng.sample(commits, 2))
        for request in (FetchRequest((main,), caps, shallows, depth),
                        FetchRequest((main,), caps, shallows, 0, deepen_since=1),
                        FetchRequest((main,), caps, (), depth)):
            try:
                shallow = plan_shallow(store, request, refs)
                negotiator = Negotiator(store, request.wants)
                haves = tuple(ObjectId(c.encode()) for c in rng.sample(commits, 3))
                verdicts = negotiator.negotiate(haves, readiness=True).verdicts
                negotiator.ok_to_give_up()
                common = [v.oid for v in verdicts if v.common]
                plan = plan_pack(store, [*request.wants, *shallow.extra_wants], common, thin_pack=True,
                                 ofs_delta=True, shallow_boundary=shallow.boundary)
                if plan.reader is not None:
                    plan.reader.close()
            except (ProtocolError, MissingObject):
                pass
            except Exception as exc:  # noqa: BLE001 - (as above)
                assert damaged_repository(exc) is not None, repr(exc)


@pytest.mark.parametrize("shape", ["self", "cycle", "past-count", "none-first", "edges-unended", "edges-loop",
                                   "edges-past-count"])
def test_a_sealed_graph_with_odd_parents_never_hangs_or_crashes(tmp_path_factory: pytest.TempPathFactory,
                                                                shape: str) -> None:
    """Parents naming the commit itself, a cycle, positions past the count, GRAPH_PARENT_NONE first
    with a second parent, an octopus whose extra-edge list never ends, loops back or names a position
    past the count: each file's checksum made to fit."""
    src, data, truth = _source(tmp_path_factory)
    chunks = _chunks(data)
    cdat, count = chunks[b"CDAT"], struct.unpack_from(">I", data, chunks[b"OIDF"] + 255 * 4)[0]
    out = bytearray(data)
    for pos in range(count):
        at = cdat + pos * 36 + 20
        if shape == "self":
            struct.pack_into(">II", out, at, pos, 0x70000000)
        elif shape == "cycle":
            struct.pack_into(">II", out, at, (pos + 1) % count, 0x70000000)
        elif shape == "past-count":
            struct.pack_into(">II", out, at, count + pos, 0x70000000)
        elif shape == "none-first":
            struct.pack_into(">II", out, at, 0x70000000, (pos + 1) % count)
        else:
            struct.pack_into(">II", out, at, (pos + 1) % count, 0x80000000)
    if shape.startswith("edges"):
        # an Extra Edge List chunk in place of the terminating entry's: the table grows by one entry,
        # so every chunk moves 12 bytes on
        entries = [(cid, off) for cid, off in (struct.unpack_from(">4sQ", data, 8 + 12 * n) for n in range(data[6] + 1))]
        body = bytes(out[entries[0][1]:len(data) - 20])
        words = {"edges-unended": [1, 2, 3], "edges-loop": [0, 0, 0], "edges-past-count": [count + 5, 0x80000000 | count]}[shape]
        edges = b"".join(struct.pack(">I", w) for w in words)
        table = b"".join(struct.pack(">4sQ", cid, off + 12) for cid, off in entries[:-1])
        end = entries[-1][1] + 12
        table += struct.pack(">4sQ", b"EDGE", end) + struct.pack(">4sQ", b"\0\0\0\0", end + len(edges))
        out = bytearray(data[:6] + bytes([data[6] + 1]) + data[7:8] + table + body + edges + bytes(20))
    hostile = _sealed(bytes(out))
    graph = parse_commit_graph(hostile, 20)
    assert graph is not None
    for oid in truth:
        graph.links(oid.encode())
    graph_file = src / "objects" / "info" / "commit-graph"
    graph_file.write_bytes(hostile)
    try:
        _requests(src, truth, 7)
    finally:
        graph_file.write_bytes(data)
