"""The passes a fetch's pack makes after its walk ran to their end for a client that had left:
the generic path's ``tree:<depth>`` pass over the counted trees and its type lookups
(``object:type=``), include-tag's look at every tag ref on both paths (a mirror's 100,000 tags,
each read or peeled).  Each now asks ``PackPlan.abandoned`` every ``ABANDON_CHECK`` steps, as the
walk does, and stops with ``WalkAbandoned``."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from dulwich.object_store import MemoryObjectStore
from dulwich.objects import Blob, Commit, Tag, Tree
from dulwich.repo import Repo

from backends import git_fastpack, git_pack
from backends.git_objects import PackObjectReader
from backends.git_reach import ABANDON_CHECK, WalkAbandoned
from protocols import client_gone
from protocols.errors import ClientGone
from tests.unit.backends.test_git_generic_pack_abandoned import Asked, CountedStore

COMMITS = 600
TAGS = 2000


def _chain(store: MemoryObjectStore, commits: int) -> list[bytes]:
    """``commits`` commits, each with a file of its own in a directory: their ids, oldest first."""
    ids: list[Any] = []
    for i in range(commits):
        blob = Blob.from_string(b"%d\n" % i)
        inner = Tree()
        inner.add(b"f%d" % (i % 50), 0o100644, blob.id)
        tree = Tree()
        tree.add(b"d", 0o040000, inner.id)
        commit = Commit()
        commit.tree, commit.parents = tree.id, ids[-1:]
        commit.author = commit.committer = b"T <t@x>"
        commit.author_time = commit.commit_time = 1_700_000_000 + i
        commit.author_timezone = commit.commit_timezone = 0
        commit.message = b"%d\n" % i
        for obj in (blob, inner, tree, commit):
            store.add_object(obj)
        ids.append(commit.id)
    return ids


def _plan(want: bytes, asked: Asked, **filters: Any) -> git_pack.PackPlan:
    return git_pack.PackPlan((want,), (), git_pack.ShallowPlan(), False, True,  # type: ignore[arg-type]
                             filters.pop("include_tag", False), abandoned=asked, **filters)


def _gone_at(monkeypatch: pytest.MonkeyPatch, name: str, store: CountedStore, asked: Asked) -> None:
    """The client leaves as ``git_pack.<name>`` starts (the walk done): reads are counted from there."""
    original = getattr(git_pack, name)

    def left(*args: Any, **kwargs: Any) -> Any:
        asked.gone = True
        store.reads = 0
        return original(*args, **kwargs)

    monkeypatch.setattr(git_pack, name, left)


def test_tree_depth_pass_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    store = CountedStore()
    ids = _chain(store, COMMITS)
    asked = Asked(gone=False)
    _gone_at(monkeypatch, "_filter_tree_depth", store, asked)
    with pytest.raises(WalkAbandoned):  # (was: every commit and tree read again, the pack written)
        next(git_pack.generate_pack(store, _plan(ids[-1], asked, tree_depth=1), {}))
    assert store.reads <= ABANDON_CHECK, store.reads


def test_type_lookups_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    store = CountedStore()
    ids = _chain(store, COMMITS)
    asked = Asked(gone=False)
    looked = 0
    type_of = git_pack._type_of

    def counted(*args: Any) -> int:
        nonlocal looked
        looked += 1
        return type_of(*args)

    monkeypatch.setattr(git_pack, "_type_of", counted)
    _gone_at(monkeypatch, "_filter_types", store, asked)
    with pytest.raises(WalkAbandoned):
        next(git_pack.generate_pack(store, _plan(ids[-1], asked, object_types=frozenset({Commit.type_num})), {}))
    assert looked <= ABANDON_CHECK, looked  # (was: every object's type)


def _tags(store: MemoryObjectStore, target: bytes, count: int) -> dict[bytes, Any]:
    refs: dict[bytes, Any] = {}
    for i in range(count):
        tag = Tag()
        tag.object = (Commit, target)
        tag.name = b"t%d" % i
        tag.tagger = b"T <t@x>"
        tag.tag_time, tag.tag_timezone = 1_700_000_000, 0
        tag.message = b"t\n"
        store.add_object(tag)
        refs[b"refs/tags/t%d" % i] = tag.id
    return refs


def test_generic_include_tag_stops() -> None:
    store = CountedStore()
    ids = _chain(store, 10)  # a walk too short to look even once
    refs = _tags(store, ids[0], TAGS)
    store.reads = 0
    asked = Asked(gone=True)
    with pytest.raises(WalkAbandoned):  # (was: every tag read, the pack written)
        next(git_pack.generate_pack(store, _plan(ids[-1], asked, include_tag=True), refs))
    assert store.reads <= ABANDON_CHECK + 1, store.reads


def test_generic_include_tag_wanted() -> None:
    store = CountedStore()
    ids = _chain(store, 10)
    refs = _tags(store, ids[0], TAGS)
    asked = Asked(gone=False)
    pack = b"".join(git_pack.generate_pack(store, _plan(ids[-1], asked, include_tag=True), refs))
    assert int.from_bytes(pack[8:12], "big") > 4 * 10  # the history and its tags
    assert asked.times >= TAGS // ABANDON_CHECK


def _tagged_repo(path: Path) -> tuple[bytes, dict[bytes, bytes]]:
    """Ten commits and ``TAGS`` annotated tags of the first: main's id and the tag refs."""
    stream = []
    for i in range(1, 11):
        stream.append(b"commit refs/heads/main\nmark :%d\ncommitter T <t@x> %d +0000\ndata 2\n%d\n"
                      % (i, 1_700_000_000 + i, i % 10))
        stream.append(b"M 100644 inline f%d\ndata 2\n%d\n\n" % (i, i % 10))
    for i in range(TAGS):
        stream.append(b"tag t%d\nfrom :1\ntagger T <t@x> 1700000000 +0000\ndata 2\nt\n\n" % i)
    subprocess.run(["git", "init", "-q", "--bare", str(path)], check=True)
    subprocess.run(["git", "-C", str(path), "fast-import", "--quiet"], input=b"".join(stream), check=True)
    repo = Repo(str(path))
    try:
        refs = {bytes(name): bytes(sha) for name, sha in repo.get_refs().items()}
    finally:
        repo.close()
    return refs[b"refs/heads/main"], {name: sha for name, sha in refs.items() if name.startswith(b"refs/tags/")}


def test_fast_include_tag_stops(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    main, tags = _tagged_repo(tmp_path / "r.git")
    peeled = 0
    peel = git_fastpack._peel

    def counted(*args: Any) -> Any:
        nonlocal peeled
        peeled += 1
        return peel(*args)

    monkeypatch.setattr(git_fastpack, "_peel", counted)
    repo = Repo(str(tmp_path / "r.git"))
    try:
        asked = Asked(gone=True)
        with pytest.raises(WalkAbandoned):  # (was: every tag peeled)
            git_fastpack.plan_pack(repo.object_store, [main], [], thin_pack=False, ofs_delta=True,
                                   tag_refs=tags, abandoned=asked)
        assert peeled < ABANDON_CHECK, peeled
        asked.gone, peeled = False, 0
        plan = git_fastpack.plan_pack(repo.object_store, [main], [], thin_pack=False, ofs_delta=True,
                                      tag_refs=tags, abandoned=asked)
        assert plan.count == 3 * 10 + TAGS and peeled == TAGS
    finally:
        repo.close()


def _history_repo(path: Path, bitmap: bool) -> bytes:
    """``COMMITS`` commits, each with a file of its own (two directories deep): main's id."""
    stream = []
    for i in range(1, COMMITS + 1):
        stream.append(b"commit refs/heads/main\ncommitter T <t@x> %d +0000\ndata 2\n%d\n" % (1_700_000_000 + i, i % 10))
        stream.append(b"M 100644 inline d%d/f%d\ndata 6\n%06d\n\n" % (i % 7, i, i))
    subprocess.run(["git", "init", "-q", "--bare", str(path)], check=True)
    subprocess.run(["git", "-C", str(path), "fast-import", "--quiet"], input=b"".join(stream), check=True)
    subprocess.run(["git", "-C", str(path), "repack", "-adq", *(["-b"] if bitmap else [])], check=True)
    return subprocess.run(["git", "-C", str(path), "rev-parse", "main"], check=True,
                          capture_output=True).stdout.strip()


@pytest.mark.parametrize(("bitmap", "blob_limit", "left_at"), [
    (False, None, "_place_others"),  # a walked pack's objects placed in their packs (a shallow clone's: all)
    (False, 3, "_leave_out"),  # blob:limit, each blob's size read from its entry
    (True, 3, "_leave_out"),  # the bitmapped pack's blobs, likewise
])
def test_fast_passes_after_the_walk_stop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bitmap: bool,
                                         blob_limit: int | None, left_at: str) -> None:
    main = _history_repo(tmp_path / "r.git", bitmap)
    asked = Asked(gone=False)
    original = getattr(git_fastpack, left_at)
    looked = 0
    size_of = PackObjectReader.size_of

    def left(*args: Any) -> Any:
        asked.gone = True  # the client leaves as the pass starts: the walk is done
        return original(*args)

    def counted(reader: Any, sha: Any) -> Any:
        nonlocal looked
        looked += 1
        return size_of(reader, sha)

    monkeypatch.setattr(git_fastpack, left_at, left)
    monkeypatch.setattr(PackObjectReader, "size_of", counted)
    omit = git_fastpack.omission(blob_limit, None, None) if blob_limit is not None else None
    repo = Repo(str(tmp_path / "r.git"))
    try:
        with pytest.raises(WalkAbandoned):  # (was: every object placed, or its size read, for nobody)
            git_fastpack.plan_pack(repo.object_store, [main], [], thin_pack=False, ofs_delta=True, omit=omit,
                                   use_bitmaps=bitmap, abandoned=asked)
        assert looked < ABANDON_CHECK, looked
        monkeypatch.setattr(git_fastpack, left_at, original)
        asked.gone = False
        plan = git_fastpack.plan_pack(repo.object_store, [main], [], thin_pack=False, ofs_delta=True, omit=omit,
                                      use_bitmaps=bitmap, abandoned=asked)
        assert plan.count == (COMMITS * 4 if omit is None else COMMITS * 3)  # (blobs of 7 bytes: none sent)
    finally:
        repo.close()


class _Refs:
    """A repository as ``snapshot_refs`` reads it: ``TAGS`` annotated tags in a store of its own."""

    def __init__(self) -> None:
        self.object_store = CountedStore()
        ids = _chain(self.object_store, 1)
        self._refs = _tags(self.object_store, ids[0], TAGS)

    def refs(self) -> dict[bytes, Any]:
        return dict(self._refs)

    def symrefs(self) -> dict[bytes, bytes]:
        return {}


def test_ref_snapshot_stops_for_a_gone_client() -> None:
    """A ref advertisement's snapshot (each tag peeled, read here) in a worker watched for its client."""
    repo = _Refs()
    git_pack._peeled.clear()
    repo.object_store.reads = 0
    with client_gone.watching(lambda: True), pytest.raises(ClientGone):  # (was: every tag read)
        git_pack.snapshot_refs(repo)  # type: ignore[arg-type]
    assert repo.object_store.reads < 2 * ABANDON_CHECK, repo.object_store.reads  # (a tag and its commit each)
    git_pack._peeled.clear()
    with client_gone.watching(lambda: False):
        assert len(git_pack.snapshot_refs(repo).peeled) == TAGS  # type: ignore[arg-type]
