"""The generic pack path (a store not on disk, a filter the fast path does not serve) counted a gone
client's pack to its end: its walk (dulwich's, the haves' ancestry included) never asked
``PackPlan.abandoned``.  It now asks every ``ABANDON_CHECK`` objects read or commits whose parents a
commit-graph gives, and stops with ``WalkAbandoned``."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, cast

import pytest
from dulwich.object_store import MemoryObjectStore
from dulwich.objects import Blob, Commit, Tree
from dulwich.repo import Repo

from backends import git_pack
from backends.git_reach import ABANDON_CHECK, WalkAbandoned

COMMITS = 2000


class CountedStore(MemoryObjectStore):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def __getitem__(self, sha: Any) -> Any:
        self.reads += 1
        return super().__getitem__(sha)


def _chain(store: MemoryObjectStore) -> list[bytes]:
    """``COMMITS`` commits, each with a file of its own: their ids, oldest first."""
    ids: list[Any] = []
    for i in range(COMMITS):
        blob = Blob.from_string(b"%d\n" % i)
        tree = Tree()
        tree.add(b"f%d" % (i % 50), 0o100644, blob.id)
        commit = Commit()
        commit.tree, commit.parents = tree.id, ids[-1:]
        commit.author = commit.committer = b"T <t@x>"
        commit.author_time = commit.commit_time = 1_700_000_000 + i
        commit.author_timezone = commit.commit_timezone = 0
        commit.message = b"%d\n" % i
        for obj in (blob, tree, commit):
            store.add_object(obj)
        ids.append(commit.id)
    return ids


class Asked:
    def __init__(self, gone: bool) -> None:
        self.gone = gone
        self.times = 0

    def __call__(self) -> bool:
        self.times += 1
        return self.gone


def _plan(want: bytes, common: tuple[bytes, ...], abandoned: Asked) -> git_pack.PackPlan:
    return git_pack.PackPlan((want,), common, git_pack.ShallowPlan(), False, True, False,  # type: ignore[arg-type]
                             abandoned=abandoned)


def test_a_gone_clients_walk_stops_at_its_first_look() -> None:
    store = CountedStore()
    ids = _chain(store)
    store.reads = 0
    asked = Asked(gone=True)
    with pytest.raises(WalkAbandoned):
        next(git_pack.generate_pack(store, _plan(ids[-1], (ids[9],), asked), {}))
    assert asked.times == 1
    assert store.reads <= ABANDON_CHECK + 1, store.reads  # (was: every commit, tree and blob; a whole pack)


def test_a_wanted_walk_is_asked_and_sends_everything() -> None:
    store = CountedStore()
    ids = _chain(store)
    asked = Asked(gone=False)
    chunks = list(git_pack.generate_pack(store, _plan(ids[-1], (ids[9],), asked), {}))
    assert b"".join(chunks)[:12] == b"PACK\x00\x00\x00\x02" + (3 * (COMMITS - 10)).to_bytes(4, "big")
    assert asked.times >= 3 * (COMMITS - 10) // ABANDON_CHECK


def test_a_commit_graphs_parents_are_looks_too(tmp_path: Path) -> None:
    """The ancestry walks take a commit's parents from the commit-graph without reading it: each
    lookup is a step, so a gone client's walk stops before any tree is read."""
    path = tmp_path / "r.git"
    stream = []
    for i in range(1, COMMITS + 1):
        stream.append(b"commit refs/heads/main\ncommitter T <t@x> %d +0000\ndata 2\n%d\n" % (1_700_000_000 + i, i % 10))
        stream.append(b"M 100644 inline f%d\ndata 2\n%d\n\n" % (i % 50, i % 10))
    subprocess.run(["git", "init", "-q", "--bare", str(path)], check=True)
    subprocess.run(["git", "-C", str(path), "fast-import", "--quiet"], input=b"".join(stream), check=True)
    subprocess.run(["git", "-C", str(path), "commit-graph", "write", "--reachable"], check=True)
    repo = Repo(str(path))
    try:
        main = repo.refs[cast(Any, b"refs/heads/main")]
        assert repo.object_store.get_commit_graph() is not None
        reads = 0
        read = type(repo.object_store).__getitem__

        def counted(store: Any, sha: Any) -> Any:
            nonlocal reads
            reads += 1
            return read(store, sha)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(type(repo.object_store), "__getitem__", counted)
            with pytest.raises(WalkAbandoned):
                next(git_pack.generate_pack(repo.object_store, _plan(main, (), Asked(gone=True)), {}))
        assert reads <= 2, reads  # the want (the graph's lookups not counted: 255, stopped in the trees' walk)
    finally:
        repo.close()
