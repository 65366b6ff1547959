"""A push's object lookups in packs too large to view for it (``Presence``, ``PackObjectReader``)
go through the packs' own ``.idx`` files mapped in place (``MappedPacks``), not through dulwich's
lookups (a ``stat`` of ``multi-pack-index`` at each), and answer as dulwich does: packed objects,
loose ones, absent ones, under a multi-pack index, after a repack that replaced the packs while the
lookups ran, and with a version-1 index (which dulwich is then asked about)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from dulwich.object_store import DiskObjectStore
from dulwich.objects import ObjectID, RawObjectID
from dulwich.pack import FilePackIndex
from dulwich.repo import Repo

from backends import git_ingest, git_packindex
from backends.git_objects import PackObjectReader

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs a git binary")

TYPES = {"commit": 1, "tree": 2, "blob": 3, "tag": 4}


def _git(cwd: Path, *args: str, stdin: bytes | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=True, input=stdin,
                          env={"GIT_CONFIG_NOSYSTEM": "1", "HOME": str(cwd), "GIT_AUTHOR_NAME": "A",
                               "GIT_AUTHOR_EMAIL": "a@b", "GIT_COMMITTER_NAME": "C", "GIT_COMMITTER_EMAIL": "c@d",
                               "PATH": "/usr/bin:/bin:/usr/local/bin"}).stdout.decode()


def _objects(repo: Path) -> dict[bytes, int]:
    """Every object of ``repo`` (packed or loose) and its type, as git lists them."""
    listed = _git(repo, "cat-file", "--batch-all-objects", "--batch-check=%(objectname) %(objecttype)")
    return {line.split()[0].encode(): TYPES[line.split()[1]] for line in listed.splitlines()}


@pytest.fixture(params=["sha1", "sha256"])
def repo(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """A bare repository of two packs (a history, then more commits packed apart) and loose objects."""
    work = tmp_path / "work"
    work.mkdir()
    _git(work, "init", "-q", f"--object-format={request.param}", "-b", "main")
    for n in range(40):
        (work / f"f{n % 7}.txt").write_text(f"{n}\n" * (n + 1))
        _git(work, "add", "-A")
        _git(work, "commit", "-q", "-m", f"c{n}")
        if n == 24:
            _git(work, "repack", "-q", "-a", "-d")
    _git(work, "repack", "-q", "-d")  # the commits since: a second pack
    for n in range(5):
        _git(work, "hash-object", "-w", "--stdin", stdin=b"loose %d\n" % n)
    target = tmp_path / "r.git"
    shutil.copytree(work / ".git", target)
    assert len(list((target / "objects" / "pack").glob("*.pack"))) == 2
    return target


def _absent(objects: dict[bytes, int]) -> list[bytes]:
    width = len(next(iter(objects)))
    return [b"0" * width, b"f" * width, bytes(reversed(next(iter(objects))))]


def _dulwich_answers(repo: Path, ids: list[bytes]) -> list[bool]:
    store = Repo(str(repo)).object_store
    try:
        return [ObjectID(sha) in store for sha in ids]
    finally:
        store.close()


@pytest.fixture
def dulwich_lookups(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Calls of dulwich's pack lookups (``contains_packed``, a pack index's ``object_offset``)."""
    calls: list[str] = []
    contains_packed = DiskObjectStore.contains_packed
    object_offset = FilePackIndex.object_offset

    def counted_contains(self: DiskObjectStore, sha: ObjectID | RawObjectID) -> bool:
        calls.append("contains_packed")
        return contains_packed(self, sha)

    def counted_offset(self: FilePackIndex, sha: ObjectID | RawObjectID) -> int:
        calls.append("object_offset")
        return object_offset(self, sha)

    monkeypatch.setattr(DiskObjectStore, "contains_packed", counted_contains)
    monkeypatch.setattr(FilePackIndex, "object_offset", counted_offset)
    yield calls


def _loose(repo: Path) -> set[bytes]:
    return {(path.parent.name + path.name).encode() for path in (repo / "objects").glob("??/*")}


def _check(repo: Path, ids: list[bytes], types: dict[bytes, int]) -> tuple[list[bool], dict[bytes, int]]:
    """Presence's answers about ``ids`` and the reader's types of the packed ones of ``types``, in
    a store whose packs have no view."""
    loose = _loose(repo)
    store = Repo(str(repo)).object_store
    try:
        presence = git_ingest.Presence(store, [], False)
        answers = [sha in presence for sha in ids]
        with PackObjectReader(store, []) as reader:
            found = {sha: reader.type_of(sha) for sha in types if sha not in loose}
        return answers, found
    finally:
        store.close()


def test_lookups_answer_as_dulwich_without_asking_it(repo: Path, dulwich_lookups: list[str]) -> None:
    objects = _objects(repo)
    ids = [*objects, *_absent(objects)]
    expected = _dulwich_answers(repo, ids)
    assert expected == [sha in objects for sha in ids]
    dulwich_lookups.clear()
    answers, types = _check(repo, ids, objects)
    assert answers == expected
    assert types == {sha: kind for sha, kind in objects.items() if sha not in _loose(repo)}
    assert len(types) > 100
    assert dulwich_lookups == [], "dulwich's lookups are not asked"


def test_under_a_multi_pack_index(repo: Path, dulwich_lookups: list[str]) -> None:
    _git(repo, "multi-pack-index", "write")
    assert (repo / "objects" / "pack" / "multi-pack-index").exists()
    objects = _objects(repo)
    ids = [*objects, *_absent(objects)]
    expected = _dulwich_answers(repo, ids)
    dulwich_lookups.clear()
    answers, types = _check(repo, ids, objects)
    assert answers == expected
    assert types == {sha: kind for sha, kind in objects.items() if sha not in _loose(repo)}
    assert dulwich_lookups == []


def test_a_multi_pack_index_s_pack_without_its_own_index_is_asked_of_dulwich(repo: Path,
                                                                              dulwich_lookups: list[str]) -> None:
    """A pack the multi-pack index names may have no ``.idx``: dulwich finds its objects through
    the multi-pack index, so it is asked about what the mapped indexes do not hold."""
    _git(repo, "multi-pack-index", "write")
    (idx,) = sorted((repo / "objects" / "pack").glob("*.idx"), key=os.path.getsize)[:1]
    idx.unlink()
    objects = _objects(repo)
    ids = [*objects, *_absent(objects)]
    expected = _dulwich_answers(repo, ids)
    answers, _types = _check(repo, ids, objects)
    assert answers == expected


def test_a_version_1_index_is_asked_of_dulwich(repo: Path, dulwich_lookups: list[str]) -> None:
    if len(next(iter(_objects(repo)))) != 40:
        pytest.skip("version-1 indexes are SHA-1 only")
    loose = "".join(sha.decode() + "\n" for sha in _loose(repo)).encode()
    _git(repo, "-c", "pack.indexVersion=1", "pack-objects", "-q", "objects/pack/pack", stdin=loose)
    _git(repo, "prune-packed")  # (a third pack, of the loose objects, with a version-1 index)
    assert not _loose(repo)
    objects = _objects(repo)
    ids = [*objects, *_absent(objects)]
    expected = _dulwich_answers(repo, ids)
    answers, types = _check(repo, ids, objects)
    assert answers == expected
    assert types == {sha: kind for sha, kind in objects.items() if sha not in _loose(repo)}
    assert dulwich_lookups, "the version-1 index's pack is found by dulwich"


def test_a_repack_that_replaces_the_packs_while_lookups_run(repo: Path, dulwich_lookups: list[str]) -> None:
    """The packs are mapped at the first lookup; a repack then packs everything anew (the loose
    objects too, whose files it removes) and a new object arrives in a pack of its own: every object
    is still found, the new one by listing the pack directory again, and the absent ones are not."""
    objects = _objects(repo)
    store = Repo(str(repo)).object_store
    try:
        presence = git_ingest.Presence(store, [], False)
        assert next(iter(objects)) in presence
        with PackObjectReader(store, []) as reader:
            assert reader.type_of(next(iter(objects))) == next(iter(objects.values()))
            old_packs = set((repo / "objects" / "pack").glob("*.pack"))
            _git(repo, "repack", "-q", "-a", "-d", "-k")  # (-k: the loose objects no ref reaches too)
            new = _git(repo, "hash-object", "-w", "--stdin", stdin=b"arrived after the repack\n").strip().encode()
            _git(repo, "pack-objects", "-q", "objects/pack/pack", stdin=new + b"\n")
            _git(repo, "prune-packed")
            assert not old_packs & set((repo / "objects" / "pack").glob("*.pack"))
            assert not list((repo / "objects").glob("??/*")), "no loose object left"
            ids = [*objects, new, *_absent(objects)]
            expected = _dulwich_answers(repo, ids)
            assert expected == [sha in objects or sha == new for sha in ids]
            dulwich_lookups.clear()
            assert [sha in presence for sha in ids] == expected
            assert [reader.type_of(sha) for sha in objects] == list(objects.values())
        assert dulwich_lookups == []
    finally:
        store.close()


def test_a_pack_looked_up_often_gets_its_view(repo: Path) -> None:
    """Past a quarter of a pack's objects in lookups, the pack's view is built and kept (in the
    views' cache, within its budget): the rest of the push's lookups, and the next push's, are
    answered from it, the same answers."""
    objects = _objects(repo)
    raw_len = len(next(iter(objects))) // 2
    bases = git_packindex.pack_basenames(str(repo / "objects" / "pack"))
    assert len(bases) == 2 and all(git_packindex.cached_view(base, raw_len) is None for base in bases)
    ids = [*objects, *_absent(objects)]
    expected = _dulwich_answers(repo, ids)
    store = Repo(str(repo)).object_store
    try:
        presence = git_ingest.Presence(store, [], False)
        assert [sha in presence for sha in ids] == expected
        assert [sha in presence for sha in ids] == expected
        assert all(git_packindex.cached_view(base, raw_len) is not None for base in bases)
        with PackObjectReader(store, []) as reader:
            assert {sha: reader.type_of(sha) for sha in objects if sha not in _loose(repo)} == \
                {sha: kind for sha, kind in objects.items() if sha not in _loose(repo)}
    finally:
        store.close()
