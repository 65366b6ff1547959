"""A repository's commit-graph (``objects/info/commit-graph``, which git's gc writes) read for the
commits a fetch's walks meet: its view gives each commit's tree, parents and time as git's log
gives them (merges, an octopus, roots), a file of another layout or hash is not read; and a shallow
client's requests (its ``shallow`` lines, its haves, the count of its pack) take the commits the
graph holds from it, none of them read, with the same answers as without the graph and the
objects git's walk gives."""

from __future__ import annotations

import binascii
import random
import shutil
from pathlib import Path

import pytest
from dulwich.repo import Repo

from backends import git_commitgraph, git_objects
from backends.git_commitgraph import commit_graph, parse_commit_graph
from backends.git_fastpack import plan_pack
from backends.git_pack import Negotiator, check_shallows, plan_shallow
from backends.interfaces import ObjectId
from protocols import git_caps
from protocols.git_upload import FetchRequest
from tests.unit.backends.test_git_fastpack import git
from tests.unit.backends.test_git_kept_walks_random import commit, grow, sent, walk_of

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs a git binary")


def _source(tmp_path: Path, seed: int, object_format: str = "sha1") -> Path:
    """A mirror of a random history with merges and an octopus merge, repacked with a bitmap and
    its commit-graph written."""
    rng = random.Random(seed)
    work, src = tmp_path / "work", tmp_path / "src.git"
    git(tmp_path, "init", "-q", "-b", "main", f"--object-format={object_format}", str(work))
    commit(work, rng, "root")
    grow(work, rng, 30)
    git(work, "checkout", "-q", "--orphan", "other")
    commit(work, rng, "another root")
    heads = git(work, "for-each-ref", "--format=%(refname:short)", "refs/heads").decode().split()
    git(work, "checkout", "-q", "main")
    git(work, "merge", "-q", "--no-edit", "--allow-unrelated-histories", "-s", "ours", *[h for h in heads if h != "main"][:3])
    git(tmp_path, "clone", "-q", "--mirror", str(work), str(src))
    git(src, "repack", "-adbq")
    git(src, "commit-graph", "write", "--reachable")
    return src


@pytest.mark.parametrize("object_format", ["sha1", "sha256"])
def test_the_graph_gives_each_commit_s_tree_parents_and_time_as_git_s_log(tmp_path: Path, object_format: str) -> None:
    src = _source(tmp_path, 3, object_format)
    raw_len = 20 if object_format == "sha1" else 32
    graph = commit_graph(str(src / "objects"), raw_len)
    assert graph is not None
    log = git(src, "log", "--all", "--format=%H %T %ct %P").decode().splitlines()
    assert len(graph) == len(log)
    assert any(len(line.split()) > 5 for line in log), "an octopus merge"
    assert any(len(line.split()) == 3 for line in log), "roots"
    for line in log:
        oid, tree, when, *parents = line.split()
        assert graph.links(oid.encode()) == (tree.encode(), [p.encode() for p in parents], int(when))
    assert graph.links(b"0" * 2 * raw_len) is None
    assert graph.links(git(src, "rev-parse", "main^{tree}").strip()) is None  # (a tree: no commit)
    assert commit_graph(str(src / "objects"), 52 - raw_len) is None  # (a graph of the other hash)


def test_a_graph_of_another_layout_is_not_read(tmp_path: Path) -> None:
    src = _source(tmp_path, 4)
    data = (src / "objects" / "info" / "commit-graph").read_bytes()
    assert parse_commit_graph(data, 20) is not None
    assert parse_commit_graph(data[:100], 20) is None  # cut short
    assert parse_commit_graph(data[:4] + b"\x02" + data[5:], 20) is None  # another version
    assert parse_commit_graph(data[:7] + b"\x01" + data[8:], 20) is None  # base graphs (a split chain's)
    assert parse_commit_graph(b"not a graph at all", 20) is None
    (src / "objects" / "info" / "commit-graph").unlink()
    git(src, "commit-graph", "write", "--reachable", "--split")  # (a chain only: not read)
    assert commit_graph(str(src / "objects"), 20) is None


@pytest.mark.parametrize("seed", [1, 2])
def test_shallow_requests_take_commits_from_the_graph_with_git_s_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                          seed: int) -> None:
    src = _source(tmp_path, seed)
    store = Repo(str(src)).object_store
    graph_file = src / "objects" / "info" / "commit-graph"
    kinds = dict(line.split() for line in git(
        src, "cat-file", "--batch-all-objects", "--batch-check=%(objectname) %(objecttype)").decode().splitlines())
    commits = sorted(o for o, k in kinds.items() if k == "commit")
    refs = {name.encode(): ObjectId(oid.encode()) for oid, name in (
        line.split() for line in git(src, "for-each-ref", "--format=%(objectname) %(refname)").decode().splitlines())}
    heads = sorted({v for k, v in refs.items() if k.startswith(b"refs/heads/")})
    read: list[bytes] = []
    real_read = git_objects.PackObjectReader.read

    def reading(self: git_objects.PackObjectReader, hexsha: bytes) -> tuple[int, bytes]:
        read.append(hexsha)
        return real_read(self, hexsha)

    monkeypatch.setattr(git_objects.PackObjectReader, "read", reading)
    caps = frozenset({git_caps.OFS_DELTA, git_caps.THIN_PACK})
    rng = random.Random(seed)
    for _ in range(12):
        # a shallow clone's deepen: its boundary some commits, its haves those and others
        shallows = rng.sample(commits, rng.randint(1, 6))
        haves = sorted(set(shallows) | set(rng.sample(commits, 2)))
        wants = rng.sample(heads, rng.randint(1, len(heads)))
        request = FetchRequest(tuple(wants), caps, tuple(ObjectId(s.encode()) for s in shallows), rng.randint(1, 3))
        answers = []
        for with_graph in (True, False):
            if not with_graph:
                saved = graph_file.read_bytes()
                graph_file.unlink()
            shallow = plan_shallow(store, request, refs)
            read.clear()
            check_shallows(store, request.shallows)  # (its shallow lines' commits, as plan_shallow takes them)
            negotiator = Negotiator(store, request.wants)
            common = tuple(v.oid for v in negotiator.negotiate(tuple(ObjectId(h.encode()) for h in haves), readiness=False).verdicts
                           if v.common)
            plan = plan_pack(store, [*request.wants, *shallow.extra_wants], common, thin_pack=True, ofs_delta=True,
                             shallow_boundary=shallow.boundary)
            if plan.reader is not None:
                plan.reader.close()
            answers.append((shallow, common, sent(plan)))
            if with_graph:
                inflated = {r.decode() for r in read} & set(commits)
                assert not inflated, f"commits the graph holds read: {sorted(inflated)[:3]}"
            else:
                assert read, "without the graph they are read"
                graph_file.write_bytes(saved)
        assert answers[0] == answers[1]
        shallow, common, got = answers[0]
        boundary = sorted(b.decode() for b in shallow.boundary)
        wanted = [w.decode() for w in (*request.wants, *shallow.extra_wants)]
        expected = walk_of(src, wanted, boundary) - walk_of(src, [c.decode() for c in common], boundary)
        assert got == expected
    assert git_commitgraph._KEPT, "the graph was kept"


def test_a_have_the_graph_names_but_the_store_lacks_is_not_common(tmp_path: Path) -> None:
    """A graph written before a commit went (a stale one): the store is asked whether it has it."""
    src = _source(tmp_path, 5)
    store = Repo(str(src)).object_store
    graph = commit_graph(str(src / "objects"), 20)
    assert graph is not None
    oid = ObjectId(git(src, "rev-parse", "main").strip())
    absent = ObjectId(binascii.hexlify(b"\x01" * 20))
    monkeypatch_links = graph.links
    try:
        graph.links = lambda hexsha: monkeypatch_links(oid) if hexsha == absent else monkeypatch_links(hexsha)  # type: ignore[method-assign]
        negotiator = Negotiator(store, [oid])
        verdicts = negotiator.negotiate((absent, oid), readiness=False).verdicts
        assert [v.common for v in verdicts] == [False, True]
    finally:
        del graph.links


@pytest.mark.parametrize("shape", ["since", "exclude", "depth"])
def test_shallow_since_exclude_and_depth_take_their_walks_from_the_graph(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                         shape: str) -> None:
    """``--shallow-exclude`` walked every commit below the ref it names (and ``--shallow-since``,
    ``--depth`` those they select), each read through dulwich: with a graph none is read, and
    the boundary is the one planned without it."""
    src = _source(tmp_path, 6)
    store = Repo(str(src)).object_store
    graph_file = src / "objects" / "info" / "commit-graph"
    refs = {name.encode(): ObjectId(oid.encode()) for oid, name in (
        line.split() for line in git(src, "for-each-ref", "--format=%(objectname) %(refname)").decode().splitlines())}
    main = refs[b"refs/heads/main"]
    times = sorted(int(t) for t in git(src, "log", "--format=%ct", "main").decode().split())
    old = git(src, "rev-parse", "main~6").strip().decode()
    git(src, "branch", "old", old)
    refs[b"refs/heads/old"] = ObjectId(old.encode())
    caps = frozenset({git_caps.OFS_DELTA, git_caps.THIN_PACK, git_caps.DEEPEN_SINCE, git_caps.DEEPEN_NOT})
    request = FetchRequest((main,), caps, (), {"since": 0, "exclude": 0, "depth": 4}[shape],
                           deepen_since=times[len(times) // 2] if shape == "since" else None,
                           deepen_not=(b"old",) if shape == "exclude" else ())
    commits = {o for o, k in (line.split() for line in git(
        src, "cat-file", "--batch-all-objects", "--batch-check=%(objectname) %(objecttype)").decode().splitlines())
        if k == "commit"}
    read: list[bytes] = []
    real_read, real_get_raw = git_objects.PackObjectReader.read, type(store).get_raw

    def reading(self: git_objects.PackObjectReader, hexsha: bytes) -> tuple[int, bytes]:
        read.append(hexsha)
        return real_read(self, hexsha)

    def getting(self: object, sha: bytes) -> tuple[int, bytes]:
        read.append(sha)
        return real_get_raw(self, sha)  # type: ignore[arg-type]

    monkeypatch.setattr(git_objects.PackObjectReader, "read", reading)
    monkeypatch.setattr(type(store), "get_raw", getting)
    with_graph = plan_shallow(store, request, refs)
    assert not {r.decode() for r in read} & commits
    graph_file.unlink()
    read.clear()
    without = plan_shallow(store, request, refs)
    assert read
    assert (sorted(with_graph.shallow), with_graph.boundary, sorted(with_graph.extra_wants)) == (
        sorted(without.shallow), without.boundary, sorted(without.extra_wants))
    assert with_graph.shallow or shape == "since"  # (its commits' times are the same few seconds)
