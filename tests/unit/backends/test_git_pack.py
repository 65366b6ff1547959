"""backends.git_pack on a dulwich MemoryRepo: refs, negotiation, shallow boundaries, pack streams."""

from __future__ import annotations

import hashlib
import io
import subprocess
from pathlib import Path
from typing import Any

import pytest
from dulwich.object_format import DEFAULT_OBJECT_FORMAT
from dulwich.objects import Blob, Commit, Tag, Tree
from dulwich.pack import OFS_DELTA, PackData
from dulwich.refs import Ref
from dulwich.repo import MemoryRepo

from backends import git_pack
from backends.git_reach import tag_object
from backends.interfaces import ObjectId
from protocols.errors import ProtocolError
from protocols.git_upload import FetchRequest


class History:
    """main: c0 - c1 - ... - c5, a side branch s1 off c2 merged as m; an annotated tag on c1."""

    def __init__(self) -> None:
        self.repo = MemoryRepo()
        self.store = self.repo.object_store
        self.commits: dict[str, Commit] = {}
        self._time = 1_700_000_000
        for i in range(6):
            self.commit(f"c{i}", [f"c{i - 1}"] if i else [])
        self.commit("s1", ["c2"])
        self.commit("m", ["c5", "s1"])
        tag = Tag()
        tag.name, tag.message, tag.tagger = b"v1", b"v1\n", b"T <t@example.com>"
        tag.object = (Commit, self.commits["c1"].id)
        tag.tag_time, tag.tag_timezone = self._time, 0
        self.store.add_object(tag)
        self.tag = tag
        self.repo.refs[Ref(b"refs/heads/main")] = self.commits["m"].id
        self.repo.refs[Ref(b"refs/tags/v1")] = tag.id
        self.repo.refs.set_symbolic_ref(Ref(b"HEAD"), Ref(b"refs/heads/main"))

    def commit(self, name: str, parents: list[str]) -> None:
        blob = Blob.from_string(f"{name}\n".encode() * 50)
        tree = Tree()
        tree.add(b"file.txt", 0o100644, blob.id)
        tree.add(f"{name}.txt".encode(), 0o100644, Blob.from_string(name.encode()).id)
        for obj in (blob, Blob.from_string(name.encode()), tree):
            self.store.add_object(obj)
        commit = Commit()
        commit.tree, commit.parents = tree.id, [self.commits[p].id for p in parents]
        commit.author = commit.committer = b"T <t@example.com>"
        self._time += 100
        commit.author_time = commit.commit_time = self._time
        commit.author_timezone = commit.commit_timezone = 0
        commit.message = name.encode()
        self.store.add_object(commit)
        self.commits[name] = commit

    def id(self, name: str) -> ObjectId:
        return ObjectId(self.commits[name].id)


@pytest.fixture
def history() -> History:
    return History()


class Repo:
    def __init__(self, history: History) -> None:
        self.h = history
        self.object_store = history.store

    def refs(self) -> dict[bytes, ObjectId]:
        return {k: ObjectId(v) for k, v in self.h.repo.get_refs().items()}

    def symrefs(self) -> dict[bytes, bytes]:
        return {b"HEAD": b"refs/heads/main"}


def pack_objects(chunks: list[bytes]) -> tuple[set[bytes], list[int]]:
    data = PackData.from_file(io.BytesIO(b"".join(chunks)), object_format=DEFAULT_OBJECT_FORMAT)
    data.check()
    types = [u.pack_type_num for u in data.iter_unpacked()]
    ids = {entry[0].hex().encode() for entry in data.iterentries()}
    return ids, types


def test_snapshot_peels_annotated_tags(history: History) -> None:
    snap = git_pack.snapshot_refs(Repo(history))  # type: ignore[arg-type]
    assert snap.peeled == {b"refs/tags/v1": history.id("c1")}
    assert snap.symrefs == {b"HEAD": b"refs/heads/main"}


class CountingStore:
    """An object store that counts the objects read from it."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.reads = 0

    def __getitem__(self, oid: bytes) -> Any:
        self.reads += 1
        return self.store[oid]

    def get_raw(self, oid: bytes) -> tuple[int, bytes]:
        self.reads += 1
        return self.store.get_raw(oid)  # type: ignore[no-any-return]

    def __contains__(self, oid: bytes) -> bool:
        return oid in self.store


def test_a_second_advertisement_reads_no_object_to_peel(history: History, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(git_pack, "_peeled", {})
    repo = Repo(history)
    repo.object_store = counting = CountingStore(history.store)  # type: ignore[assignment]
    first = git_pack.snapshot_refs(repo)  # type: ignore[arg-type]
    assert counting.reads == 3, "main's commit, the tag, and the tag's commit"
    second = git_pack.snapshot_refs(repo)  # type: ignore[arg-type]
    assert counting.reads == 3
    assert second == first and second.peeled == {b"refs/tags/v1": history.id("c1")}


def test_a_chain_cut_short_by_a_missing_object_is_not_remembered(
        history: History, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(git_pack, "_peeled", {})
    outer = Tag()
    outer.name, outer.message, outer.tagger = b"v1-signed", b"again\n", b"T <t@example.com>"
    outer.object = (Tag, history.tag.id)
    outer.tag_time, outer.tag_timezone = 1_700_000_000, 0
    partial = MemoryRepo().object_store
    partial.add_object(outer)  # the inner tag is missing here
    outer_id = ObjectId(outer.id)
    assert git_pack.peel(partial, outer_id) == ObjectId(history.tag.id)
    history.store.add_object(outer)
    assert git_pack.peel(history.store, outer_id) == history.id("c1")
    assert git_pack.peel(partial, outer_id) == history.id("c1"), "now known: the same in every store"


def test_the_peeled_cache_is_bounded(history: History, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(git_pack, "_peeled", {})
    monkeypatch.setattr(git_pack, "PEELED_CACHE_SIZE", 3)
    for name in ("c0", "c1", "c2", "c3", "c4", "c5", "s1", "m"):
        assert git_pack.peel(history.store, history.id(name)) == history.id(name)
        assert len(git_pack._peeled) <= 3


def test_unknown_wants_are_refused(history: History) -> None:
    snap = git_pack.snapshot_refs(Repo(history))  # type: ignore[arg-type]
    git_pack.check_wants(history.store, snap, [history.id("c3")])
    with pytest.raises(ProtocolError, match="not our ref"):
        git_pack.check_wants(history.store, snap, [ObjectId(b"1" * 40)])


def test_negotiator_acks_known_haves_and_knows_when_to_stop(history: History) -> None:
    negotiator = git_pack.Negotiator(history.store, [history.id("m")])
    first = negotiator.negotiate([ObjectId(b"2" * 40)], readiness=True)
    assert [v.common for v in first.verdicts] == [False] and not first.ready
    second = negotiator.negotiate([history.id("c5")], readiness=True)
    assert [v.common for v in second.verdicts] == [True]
    assert second.ready  # the only want, m, reaches c5, which the client has
    assert negotiator.ok_to_give_up()
    assert negotiator.common == [history.id("c5")]


def test_negotiator_reads_no_want_until_the_client_has_something(history: History) -> None:
    """A partial clone's checkout wants thousands of blobs and sends no have: none is read."""
    counting = CountingStore(history.store)
    blobs = [ObjectId(entry.sha) for name in ("c3", "c4") for entry in history.store[history.commits[name].tree].items()]
    negotiator = git_pack.Negotiator(counting, blobs + [history.id("m")])  # type: ignore[arg-type]
    assert not negotiator.negotiate([], readiness=True).ready
    assert not negotiator.ok_to_give_up()
    assert counting.reads == 0
    answer = negotiator.negotiate([history.id("c5")], readiness=True)
    assert answer.ready and counting.reads > 0  # the wanted commit m reaches c5; the blobs are no commits


def test_shallow_commits_by_depth(history: History) -> None:
    shallow, inner = git_pack.shallow_commits(history.store, [history.id("m")], 2)
    assert set(shallow) == {history.id("c5"), history.id("s1")}
    assert inner == {history.id("m")}


def test_deepen_relative_unshallows_the_old_boundary(history: History) -> None:
    request = FetchRequest((history.id("m"),), frozenset({b"deepen-relative"}), (history.id("c5"),), depth=1)
    plan = git_pack.plan_shallow(history.store, request, {b"refs/heads/main": history.id("m")})
    assert plan.unshallow == (history.id("c5"),)
    assert history.id("c4") in plan.shallow
    assert plan.extra_wants == (history.id("c4"),)


def test_deepen_relative_leaves_a_shallow_commit_no_ref_reaches(history: History) -> None:
    """A branch deleted since the clone fetched it (``git push origin :gone``): its tip is still the
    clone's shallow commit, which git's upload-pack does not deepen (``get_reachable_list``)."""
    history.commit("gone", ["c3"])
    request = FetchRequest((history.id("m"),), frozenset({b"deepen-relative"}),
                           (history.id("c5"), history.id("gone")), depth=1)
    plan = git_pack.plan_shallow(history.store, request, {b"refs/heads/main": history.id("m")})
    assert plan.unshallow == (history.id("c5"),)
    assert plan.shallow == (history.id("c4"),)
    assert plan.extra_wants == (history.id("c4"),)
    assert plan.boundary == {history.id("c4"), history.id("c5"), history.id("gone")}
    # (no ref: nothing is deepened, as git's upload-pack with no ref)
    assert git_pack.plan_shallow(history.store, request, {}).unshallow == ()


class Compared(bytes):
    """A name that counts how often it is compared for equality."""

    compared = 0

    def __eq__(self, other: object) -> bool:
        Compared.compared += 1
        return bytes.__eq__(self, other)

    __hash__ = bytes.__hash__


def test_a_fetch_of_many_shallow_lines_and_haves_compares_each_name_once(history: History) -> None:
    """What the client has: its common commits and the shallow commits it unshallows, each once.
    A fetch of 10,000 shallow lines and 10,000 haves compared each with each (100 million times,
    a second of server CPU), and read each unshallowed commit again for its parents."""
    common = tuple(ObjectId(Compared(b"%040x" % n)) for n in range(1000))
    unshallow = tuple(ObjectId(Compared(b"%040x" % (n + 500))) for n in range(1000))
    plan = git_pack.PackPlan((history.id("m"),), common, git_pack.ShallowPlan(unshallow=unshallow), True, True, False)
    Compared.compared = 0
    assert plan.known == (*common, *unshallow[500:])
    assert Compared.compared < 10_000

    store = RecordingStore(history.store)
    request = FetchRequest((history.id("m"),), frozenset({b"deepen-relative"}), (history.id("c4"),), depth=1)
    shallow = git_pack.plan_shallow(store, request, {b"refs/heads/main": history.id("m")})  # type: ignore[arg-type]
    assert shallow.extra_wants == (history.id("c3"),)
    # (c4 read as the client's shallow commit and twice where its deepening starts; not on the
    # walk from main, which has it, nor again for the extra wants)
    assert store.read.count(history.id("c4")) == 3


class RecordingStore(CountingStore):
    """An object store that records the objects read from it."""

    def __init__(self, store: Any) -> None:
        super().__init__(store)
        self.read: list[bytes] = []

    def get_raw(self, oid: bytes) -> tuple[int, bytes]:
        self.read.append(oid)
        return super().get_raw(oid)


def links_of(store: Any, names: list[ObjectId]) -> dict[ObjectId, Any]:
    return {name: git_pack._commit(store, name) for name in names}


def test_the_walk_for_reachable_shallow_commits_stops_below_them(history: History) -> None:
    """The refs' history is walked newest first, with the shallow commits' own, down to a few
    commits older than where those not reached yet meet the refs' history: a clone's shallow
    commits cost the walk from its tips to them, a commit no ref reaches the commits newer than
    where its branch left main, not the whole history (git's rev-list's walk)."""
    history.commit("x0", ["m"])
    for n in range(1, 100):
        history.commit(f"x{n}", [f"x{n - 1}"])
    history.commit("gone", ["x10"])  # (newer than every commit of main)
    refs = {b"refs/heads/main": history.id("x99"), b"refs/tags/v1": ObjectId(history.tag.id)}
    store = RecordingStore(history.store)
    shallows = links_of(history.store, [history.id("x97"), history.id("x99")])
    assert git_pack.reachable_shallows(store, shallows, refs) == {history.id("x97"), history.id("x99")}  # type: ignore[arg-type]
    assert len(store.read) <= 6  # the two tips (one through its tag), x99 to x96

    store = RecordingStore(history.store)
    shallows = links_of(history.store, [history.id("x50"), history.id("gone"), history.id("c1")])
    assert git_pack.reachable_shallows(store, shallows, refs) == {history.id("x50"), history.id("c1")}  # type: ignore[arg-type]
    store = RecordingStore(history.store)
    shallows = links_of(history.store, [history.id("x50"), history.id("gone")])
    main = {b"refs/heads/main": history.id("x99")}
    assert git_pack.reachable_shallows(store, shallows, main) == {history.id("x50")}  # type: ignore[arg-type]
    assert history.id("x11") in store.read and history.id("x9") in store.read  # (newer than where gone meets main, the slop)
    assert history.id("x3") not in store.read and history.id("c1") not in store.read  # (past the slop)


def test_the_walk_for_reachable_shallow_commits_stops_at_a_bitmap(tmp_path: Path) -> None:
    """In a store with a pack bitmap, a commit with a bitmap is not walked below: its bitmap says
    which shallow commits it reaches (10,000 shallow lines over 50,000 commits: 0.02 s of walk
    against 0.33 s)."""
    from dulwich.repo import Repo as DiskRepo

    work, bare = tmp_path / "work", tmp_path / "bare.git"
    env = {"GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "T",
           "GIT_COMMITTER_EMAIL": "t@e", "HOME": str(tmp_path), "GIT_CONFIG_NOSYSTEM": "1",
           "PATH": "/usr/bin:/bin", "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "pack.threads",
           "GIT_CONFIG_VALUE_0": "1"}

    def git(*args: str | Path) -> str:
        return subprocess.run(["git", *map(str, args)], check=True, capture_output=True, text=True,
                              env=env).stdout.strip()

    git("init", "-q", "-b", "main", work)
    for n in range(60):
        git("-C", work, "commit", "-q", "--allow-empty", "-m", f"c{n}", "--date", f"@{1_700_000_000 + n} +0000")
        if n == 20:
            git("-C", work, "checkout", "-q", "-b", "gone")
            git("-C", work, "commit", "-q", "--allow-empty", "-m", "gone", "--date", "@1800000000 +0000")
            git("-C", work, "checkout", "-q", "main")
    for n in range(0, 60, 3):  # (a mirror's tags: each read before the walk, 20,000 of them 0.33 s)
        git("-C", work, "tag", "-a", "-m", f"v{n}", f"v{n}", f"main~{59 - n}")
    git("clone", "-q", "--bare", work, bare)
    git("-C", bare, "repack", "-adbq")
    gone = git("-C", bare, "rev-parse", "gone")
    git("-C", bare, "update-ref", "-d", "refs/heads/gone")
    deep = git("-C", bare, "rev-parse", "main~50")
    store = DiskRepo(str(bare)).object_store
    shallows = links_of(store, [ObjectId(deep.encode()), ObjectId(gone.encode())])
    read: list[bytes] = []

    def get_raw(oid: bytes) -> tuple[int, bytes]:
        read.append(oid)
        return store.get_raw(oid)  # type: ignore[arg-type]

    refs, peeled = {}, {}
    for line in git("-C", bare, "for-each-ref", "--format=%(refname) %(objectname) %(*objectname)").splitlines():
        name, oid, *target = line.split()
        refs[name.encode()] = ObjectId(oid.encode())
        if target:
            peeled[name.encode()] = ObjectId(target[0].encode())
    assert len(refs) == 21
    assert git_pack.reachable_shallows(store, shallows, refs, get_raw, peeled) == {ObjectId(deep.encode())}
    assert not read  # main's tip and the tags' commits have bitmaps or are covered; walked, the 50 commits


def test_deepen_since_cuts_by_commit_time(history: History) -> None:
    since = history.commits["c4"].commit_time
    request = FetchRequest((history.id("m"),), frozenset(), deepen_since=since)
    plan = git_pack.plan_shallow(history.store, request, {})
    assert set(plan.shallow) == {history.id("c4"), history.id("s1")}


def test_deepen_not_excludes_a_ref(history: History) -> None:
    refs = {b"refs/tags/v1": ObjectId(history.tag.id)}
    request = FetchRequest((history.id("c3"),), frozenset(), deepen_not=(b"v1",))
    plan = git_pack.plan_shallow(history.store, request, refs)
    assert plan.shallow == (history.id("c2"),)


def plan(history: History, common: list[str], thin: bool = True, ofs: bool = True,
         include_tag: bool = False) -> git_pack.PackPlan:
    return git_pack.PackPlan((history.id("m"),), tuple(history.id(c) for c in common),
                             git_pack.ShallowPlan(), thin, ofs, include_tag)


def test_full_pack_has_every_reachable_object(history: History) -> None:
    chunks = list(git_pack.generate_pack(history.store, plan(history, []), {}))
    ids, _ = pack_objects(chunks)
    assert {c.id for c in history.commits.values()} <= ids
    assert len(ids) == 8 * 4  # per commit: the commit, its tree, two blobs


def test_incremental_pack_excludes_what_the_client_has(history: History) -> None:
    full, _ = pack_objects(list(git_pack.generate_pack(history.store, plan(history, []), {})))
    part, _ = pack_objects(list(git_pack.generate_pack(history.store, plan(history, ["c5"]), {})))
    assert part < full and len(part) == 2 * 4  # m and s1: commit, tree, two blobs each


def test_include_tag_adds_the_annotated_tag(history: History) -> None:
    refs = {b"refs/tags/v1": ObjectId(history.tag.id)}
    ids, _ = pack_objects(list(git_pack.generate_pack(history.store, plan(history, [], include_tag=True), refs)))
    assert history.tag.id in ids


def test_no_ofs_delta_when_the_client_did_not_ask(history: History) -> None:
    _, types = pack_objects(list(git_pack.generate_pack(history.store, plan(history, [], ofs=False), {})))
    assert OFS_DELTA not in types


def test_generic_path_serves_a_repository_with_and_without_bitmaps(tmp_path: Path) -> None:
    """One pack with a .bitmap and one without (a push after ``git repack -adb``): haves must still work."""
    from dulwich.repo import Repo as DiskRepo

    work, bare = tmp_path / "work", tmp_path / "bare.git"
    env = {"GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "T",
           "GIT_COMMITTER_EMAIL": "t@e", "HOME": str(tmp_path), "GIT_CONFIG_NOSYSTEM": "1",
           "PATH": "/usr/bin:/bin"}

    def git(*args: str | Path) -> str:
        return subprocess.run(["git", *map(str, args)], check=True, capture_output=True, text=True,
                              env=env).stdout.strip()

    git("init", "-q", "-b", "main", work)
    for i in range(3):
        (work / "f.txt").write_text(f"v{i}\n" * 100)
        git("-C", work, "commit", "-qam" if i else "-qm", f"c{i}", *([] if i else ["--allow-empty"]))
        if not i:
            git("-C", work, "add", "f.txt")
            git("-C", work, "commit", "-qm", "add f")
    git("clone", "-q", "--bare", work, bare)
    git("-C", bare, "repack", "-adb")
    old = git("-C", bare, "rev-parse", "main")
    (work / "f.txt").write_text("new\n")
    git("-C", work, "commit", "-qam", "after the repack")
    git("-C", work, "push", "-q", bare, "main")
    git("-C", bare, "repack", "-d")  # a second pack, without a bitmap
    packs = sorted(p.suffix for p in (bare / "objects" / "pack").iterdir())
    assert packs.count(".pack") == 2 and packs.count(".bitmap") == 1
    store = DiskRepo(str(bare)).object_store
    new = ObjectId(git("-C", bare, "rev-parse", "main").encode())
    for blob_limit in (None, -1):
        fetch = git_pack.PackPlan((new,), (ObjectId(old.encode()),), git_pack.ShallowPlan(), True, True, False,
                                  blob_limit)
        ids, _ = pack_objects(list(git_pack.generate_pack(store, fetch, {})))
        assert new in ids and old.encode() not in ids


def test_tree_depth_filter_keeps_what_lies_above_the_depth_at_its_shallowest() -> None:
    """``filter=tree:<d>``: a commit's root tree is at 0; a subtree reached at depths 1 and 2 counts at 1."""
    repo = MemoryRepo()
    blobs = {name: Blob.from_string(name.encode()) for name in ("top", "mid", "deep")}
    shared = Tree()
    shared.add(b"deep.txt", 0o100644, blobs["deep"].id)
    middle = Tree()
    middle.add(b"mid.txt", 0o100644, blobs["mid"].id)
    middle.add(b"sub", 0o040000, shared.id)
    root = Tree()
    root.add(b"top.txt", 0o100644, blobs["top"].id)
    root.add(b"dir", 0o040000, middle.id)
    root.add(b"alias", 0o040000, shared.id)  # the same tree one level up
    commit = Commit()
    commit.tree, commit.parents, commit.message = root.id, [], b"nested"
    commit.author = commit.committer = b"T <t@example.com>"
    commit.author_time = commit.commit_time = 1_700_000_000
    commit.author_timezone = commit.commit_timezone = 0
    for obj in (*blobs.values(), shared, middle, root, commit):
        repo.object_store.add_object(obj)

    def sent(depth: int | None) -> set[bytes]:
        fetch = git_pack.PackPlan((ObjectId(commit.id),), (), git_pack.ShallowPlan(), False, True, False,
                                  tree_depth=depth)
        return pack_objects(list(git_pack.generate_pack(repo.object_store, fetch, {})))[0]

    everything = {commit.id, root.id, middle.id, shared.id, *(b.id for b in blobs.values())}
    assert sent(None) == everything == sent(3)
    assert sent(0) == {commit.id}
    assert sent(1) == {commit.id, root.id}
    assert sent(2) == {commit.id, root.id, blobs["top"].id, middle.id, shared.id}


def test_peeling_reads_objects_raw_and_parses_none(history: History, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from dulwich.objects import ShaFile
    from dulwich.repo import Repo as DiskRepo

    disk = DiskRepo.init_bare(str(tmp_path / "d.git"), mkdir=True)  # (a memory store copies by parsing)
    disk.object_store.add_objects([(history.store[sha], None) for sha in history.store])
    history.store = disk.object_store  # type: ignore[assignment]
    monkeypatch.setattr(git_pack, "_peeled", {})

    def parse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an object was parsed to peel a ref")

    monkeypatch.setattr(ShaFile, "from_raw_string", parse)
    monkeypatch.setattr(ShaFile, "from_raw_chunks", parse)
    snap = git_pack.snapshot_refs(Repo(history))  # type: ignore[arg-type]
    assert snap.peeled == {b"refs/tags/v1": history.id("c1")}


@pytest.mark.parametrize(("raw", "target"), [
    (b"object " + b"a" * 40 + b"\ntype commit\ntag v1\n", b"a" * 40),
    (b"object " + b"0123456789abcdef" * 4 + b"\ntype commit\n", b"0123456789abcdef" * 4),
    (b"object " + b"A" * 40 + b"\ntype commit\n", b"a" * 40),  # another tool's capitals: read as git reads them
    (b"object " + b"a" * 39 + b"\n", None),
    (b"type commit\nobject " + b"a" * 40 + b"\n", None),
    (b"", None),
])
def test_a_tag_s_first_line_names_its_object(raw: bytes, target: bytes | None) -> None:
    assert tag_object(raw, len(target) if target else 40) == target


def test_the_walks_read_a_commit_s_links_as_git_s_parse_commit(history: History, tmp_path: Path) -> None:
    """Parents and committer time as dulwich parses them, and as git's parse_commit reads a
    header dulwich cannot parse (a time that is no number reads as 0), on a memory and a disk
    store; a tag reads as its commit, a tree and a missing id as none."""
    from dulwich.repo import Repo as DiskRepo

    odd = Commit()  # a committer time git would not write
    odd.tree, odd.parents = history.commits["c0"].tree, [history.commits["c0"].id]
    odd.author = odd.committer = b"T <t@example.com>"
    odd.author_time, odd.commit_time, odd.author_timezone, odd.commit_timezone = 0, -5, 0, 0
    odd.message = b"odd"
    history.store.add_object(odd)
    parent = history.commits["c1"].id
    unparsable = {  # raw commits dulwich refuses to parse (a history an old tool wrote): id -> links
        header: (git_pack.ObjectId(hashlib.sha1(b"commit %d\0" % len(header) + header).hexdigest().encode()),
                 parents, when)
        for header, parents, when in (
            (b"tree %s\nparent %s\nauthor A <a@b> 1 +0000\ncommitter C <c@d> soon +0000\n\nm\n"
             % (odd.tree, parent), [parent], 0),
            (b"tree %s\nparent %s\nparent XYZ\nauthor A <a@b> 1 +0000\ncommitter C <c@d> 1234" % (odd.tree, parent),
             [parent], 1234),  # no zone, no message, no newline; a parent line that names nothing
        )}
    disk = DiskRepo.init_bare(str(tmp_path / "d.git"), mkdir=True)
    disk.object_store.add_objects([(history.store[sha], None) for sha in history.store])
    expected = {c.id: (list(c.parents), c.commit_time) for c in history.commits.values()}
    expected[odd.id] = ([history.commits["c0"].id], 0)
    for store in (history.store, disk.object_store):
        for oid, (parents, when) in expected.items():
            links = git_pack._commit(store, oid)
            assert links is not None and (links.id, list(links.parents), links.commit_time) == (oid, parents, when)
        for header, (oid, parents, when) in unparsable.items():
            links = git_pack._commit(store, oid, (Commit.type_num, header))
            assert links is not None and (links.id, links.parents, links.commit_time) == (oid, parents, when)
        tagged = git_pack._commit(store, history.tag.id)
        assert tagged is not None and tagged.id == history.commits["c1"].id
        assert git_pack._commit(store, history.commits["c1"].tree) is None
        assert git_pack._commit(store, b"3" * 40) is None
