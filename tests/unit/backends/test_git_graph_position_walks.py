"""Shallow planning walks the commits a commit-graph holds by their positions there
(``git_pack.shallow_commits``, ``CommitGraph.parents_at``), the graph's columns decoded in bulk:
over random histories with merges and skewed clocks, some commits written after the graph (read,
not taken from it), the walk through the graph gives what the walk of the commits themselves
gives, and the graph gives each commit's parents and time as git's log."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest
from dulwich.repo import Repo
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backends import git_commitgraph, git_pack
from backends.interfaces import ObjectId
from protocols.git_upload import FetchRequest
from tests.unit.backends.test_git_large_tree_counting import _file, git
from tests.unit.backends.test_git_shallow_exclude_walk import skewed

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs a git binary")


def _grown(root: Path, seed: int) -> Path:
    """``skewed``'s history of 120 commits with a commit-graph, then 15 more commits on its
    branches (some merging another), which the graph does not hold."""
    src = skewed(root, seed)
    git(src, "commit-graph", "write", "--reachable")
    rng = random.Random(seed)
    heads = {name: git(src, "rev-parse", name).decode().strip() for name in ["main", "a", "b"]}
    stream = []
    for n in range(15):
        branch = rng.choice(["main", "a", "b"])
        merge = f"merge {rng.choice([h for b, h in heads.items() if b != branch])}\n" if rng.random() < 0.3 else ""
        when = 1_700_010_000 + 60 * n - (3000 if rng.random() < 0.2 else 0)
        stream.append(f"commit refs/heads/{branch}\nmark :{n + 1}\ncommitter C <c@example.com> {when} +0000\n"
                      f"data 1\ny\nfrom {heads[branch]}\n{merge}" + _file("g", f"{n}\n"))
        heads[branch] = f":{n + 1}"
    git(src, "fast-import", "--quiet", input="".join(stream).encode())
    return src


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000))
def test_the_walk_through_the_graph_is_the_walk_of_the_commits(tmp_path_factory: pytest.TempPathFactory,
                                                                seed: int) -> None:
    src = _grown(tmp_path_factory.mktemp("walks"), seed)
    store = Repo(str(src)).object_store
    log = git(src, "log", "--all", "--format=%H %ct %P").decode().splitlines()
    with git_pack._commit_reading(store) as get_raw:
        graph = get_raw.graph  # type: ignore[attr-defined]
        assert graph is not None and 0 < len(graph) < len(log)
        for line in log:  # (the graph's answer where it holds the commit, as git's log says)
            oid, when, *parents = line.split()
            found = git_pack._graph_commit(graph, ObjectId(oid.encode()))
            assert found is None or (found.parents, found.commit_time) == ([p.encode() for p in parents], int(when))
        rng = random.Random(seed)
        commits = [ObjectId(line.split()[0].encode()) for line in log]
        for _ in range(6):
            heads = rng.sample(commits, rng.randrange(1, 6))
            depth = rng.randrange(1, 8)
            walked = git_pack.shallow_commits(store, heads, depth, get_raw)
            read = git_pack.shallow_commits(store, heads, depth)  # (no graph: each commit read)
            assert walked == read, (heads, depth)


def test_a_deepen_looks_each_shallow_commit_up_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """30 heads in the graph at depth 2: 30 look-ups of a name in the graph (on the code before,
    each head was looked up once for itself and once for its parents: 60, failing)."""
    src = skewed(tmp_path, 5)
    git(src, "commit-graph", "write", "--reachable")
    store = Repo(str(src)).object_store
    heads = [ObjectId(h) for h in git(src, "rev-list", "--all").split()[:30]]
    looked: list[bytes] = []
    position = git_commitgraph.CommitGraph.position

    def counted(graph: git_commitgraph.CommitGraph, binsha: bytes) -> int | None:
        looked.append(binsha)
        return position(graph, binsha)

    monkeypatch.setattr(git_commitgraph.CommitGraph, "position", counted)
    with git_pack._commit_reading(store) as get_raw:
        walked = git_pack.shallow_commits(store, heads, 2, get_raw)
    assert len(looked) == len(heads)
    assert walked == git_pack.shallow_commits(store, heads, 2)


@pytest.mark.parametrize("seed", [3, 41])
def test_a_shallow_since_through_the_graph_is_git_s(tmp_path: Path, seed: int) -> None:
    """--shallow-since over skewed clocks, the graph holding most of the history: the boundary is
    the commits ``git rev-list --max-age`` lists with a parent it does not list."""
    src = _grown(tmp_path, seed)
    store = Repo(str(src)).object_store
    refs = {b"refs/heads/" + name.encode(): ObjectId(git(src, "rev-parse", name).strip()) for name in ["main", "a", "b"]}
    for since in (1_700_003_000, 1_700_006_000):
        tip = refs[b"refs/heads/main"]
        listed = {}
        for line in git(src, "rev-list", "--parents", f"--max-age={since}", "main").decode().splitlines():
            oid, *parents = line.split()
            listed[oid] = parents
        shallow = {c for c, parents in listed.items() if any(p not in listed for p in parents)}
        plan = git_pack.plan_shallow(store, FetchRequest((tip,), frozenset(), (tip,), deepen_since=since), refs)
        found = {s.decode() for s in plan.shallow} | ({tip.decode()} if tip not in plan.unshallow else set())
        assert found == shallow, since
