"""backends.git_ingest: thin packs completed into a disk store, bad packs leave nothing, connectivity."""

from __future__ import annotations

import binascii
import hashlib
import itertools
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from dulwich.errors import ObjectFormatException
from dulwich.objects import Blob, Commit, Tree, parse_tree
from dulwich.repo import Repo
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from backends import git_ingest

ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent", "GIT_CONFIG_NOSYSTEM": "1",
       "GIT_AUTHOR_NAME": "A", "GIT_AUTHOR_EMAIL": "a@example.com", "GIT_COMMITTER_NAME": "C",
       "GIT_COMMITTER_EMAIL": "c@example.com", "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
       "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z"}


def git(cwd: Path, *args: str, input: bytes | None = None) -> bytes:
    return subprocess.run(["git", *args], cwd=cwd, env=ENV, input=input, check=True,
                          capture_output=True).stdout


def commit_files(work: Path, files: dict[str, str], message: str) -> bytes:
    for name, text in files.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(text)
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", message)
    return git(work, "rev-parse", "HEAD").strip()


@pytest.fixture
def pushed(tmp_path: Path) -> tuple[Path, bytes, bytes, bytes]:
    """(bare server repo at ``old``, work repo, old, new); new's blobs delta against old ones."""
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    big = "".join(f"line {i} of a long file that deltas well\n" for i in range(2000))
    old = commit_files(work, {"a.txt": big, "dir/b.txt": big[::-1]}, "one")
    server = tmp_path / "server.git"
    git(tmp_path, "clone", "-q", "--bare", str(work), str(server))
    git(server, "repack", "-a", "-d", "-q")
    new = old
    for i in range(3):
        new = commit_files(work, {"a.txt": big + f"change {i}\n", f"dir/n{i}.txt": f"new {i}\n"}, f"c{i}")
    return server, work, old, new


def thin_pack(work: Path, old: bytes, new: bytes, ofs_delta: bool = True) -> bytes:
    revs = new + b"\n^" + old + b"\n"
    flags = ["--delta-base-offset"] if ofs_delta else []
    return git(work, "pack-objects", "--thin", "--stdout", "--revs", *flags, input=revs)


def reader_of(data: bytes):  # noqa: ANN201 - a read(n) callable
    import io

    return io.BytesIO(data).read


def pack_dir_files(server: Path) -> set[str]:
    return set(os.listdir(server / "objects" / "pack"))


@pytest.mark.parametrize("ofs_delta", [True, False], ids=["ofs-delta", "ref-delta"])
def test_a_thin_pack_is_completed_indexed_and_named_by_its_checksum(
        pushed: tuple[Path, Path, bytes, bytes], ofs_delta: bool, lookups: str) -> None:
    """As git's index-pack names a pack: ``pack-<the completed pack's trailing checksum>``."""
    server, work, old, new = pushed
    data = thin_pack(work, old, new, ofs_delta)
    store = Repo(str(server)).object_store
    before = pack_dir_files(server)
    pack = git_ingest.ingest_pack(store, reader_of(data))  # type: ignore[arg-type]
    added = pack_dir_files(server) - before
    assert {name.rsplit(".", 1)[1] for name in added} == {"pack", "idx"}
    stem = next(name for name in added if name.endswith(".pack"))[:-5]
    assert stem == "pack-" + (server / "objects" / "pack" / f"{stem}.pack").read_bytes()[-20:].hex()
    assert data[-20:].hex() not in stem  # completed: bases appended, so a new checksum
    assert not [n for n in os.listdir(server / "objects") if n.startswith("tmp_pack_")]
    names = sorted(bytes(s) for s in pack)
    assert new in names
    # git itself accepts the repository with the new objects once a ref names them
    git(server, "update-ref", "refs/heads/main", new.decode(), old.decode())
    git(server, "fsck", "--full", "--strict")
    assert git(server, "rev-list", "--count", "main").strip() == b"4"
    # the same objects again: the stored pack is reused, not duplicated
    again = git_ingest.ingest_pack(Repo(str(server)).object_store, reader_of(data))  # type: ignore[arg-type]
    assert pack_dir_files(server) - before == added
    assert sorted(bytes(s) for s in again) == names


def test_a_completed_thin_pack_is_indexed_as_git_indexes_it(tmp_path: Path) -> None:
    """The bases a thin pack left out are appended and put among its sorted ids: the index is byte for
    byte the one git's ``index-pack`` writes for the completed pack (ids before, between and after the
    pack's own, several bases)."""
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    files = {f"f{i}.txt": "".join(f"line {j} of file {i}, which deltas well\n" for j in range(300)) for i in range(40)}
    old = commit_files(work, files, "one")
    server = tmp_path / "server.git"
    git(tmp_path, "clone", "-q", "--bare", str(work), str(server))
    git(server, "repack", "-a", "-d", "-q")
    new = commit_files(work, {name: text + "one more line\n" for name, text in files.items()}, "two")
    data = thin_pack(work, old, new)
    pack = git_ingest.ingest_pack(Repo(str(server)).object_store, reader_of(data))
    assert pack is not None
    path = Path(pack._basename + ".pack")
    assert len(pack) - int.from_bytes(data[8:12], "big") >= 40, "the bases appended"
    ours = path.with_suffix(".idx").read_bytes()
    copy = tmp_path / "copy.pack"
    copy.write_bytes(path.read_bytes())
    git(tmp_path, "index-pack", "-o", str(tmp_path / "copy.idx"), str(copy))
    assert ours == (tmp_path / "copy.idx").read_bytes()


@pytest.mark.parametrize("damage", ["truncated", "bad-zlib", "missing-base"])
def test_a_bad_pack_raises_and_leaves_the_store_as_it_was(
        pushed: tuple[Path, Path, bytes, bytes], damage: str, tmp_path: Path) -> None:
    server, work, old, new = pushed
    data = thin_pack(work, old, new)
    if damage == "truncated":
        data = data[: len(data) // 2]
    elif damage == "bad-zlib":  # scramble bytes inside the first entries' compressed data
        data = data[:16] + bytes(b ^ 0x5A for b in data[16:60]) + data[60:]
    else:  # a thin pack against a store that lacks its bases
        empty = tmp_path / "empty.git"
        git(tmp_path, "init", "-q", "--bare", str(empty))
        server = empty
    snapshot = {p: p.read_bytes() for p in server.rglob("*") if p.is_file()}
    with pytest.raises(Exception) as caught:
        git_ingest.ingest_pack(Repo(str(server)).object_store, reader_of(data))  # type: ignore[arg-type]
    assert not isinstance(caught.value, (SystemExit, KeyboardInterrupt))
    after = {p: p.read_bytes() for p in server.rglob("*") if p.is_file()}
    assert after == snapshot, "nothing added, nothing left behind"


def raw_pack(entries: list[tuple[int, bytes]]) -> bytes:
    """A pack of whole (undeltified) objects written byte by byte, so that they may be malformed."""
    import hashlib
    import struct
    import zlib

    from dulwich.object_format import DEFAULT_OBJECT_FORMAT
    from dulwich.pack import pack_object_header

    out = b"PACK" + struct.pack(">II", 2, len(entries))
    for type_num, body in entries:
        out += bytes(pack_object_header(type_num, None, len(body), DEFAULT_OBJECT_FORMAT)) + zlib.compress(body)
    return out + hashlib.sha1(out).digest()


@pytest.mark.parametrize("tree", [b"100644 name-without-nul-and-sha", b"99999999 x\0" + b"\x01" * 20])
def test_a_malformed_tree_is_refused_before_it_is_stored(tmp_path: Path, tree: bytes) -> None:
    server = tmp_path / "s.git"
    git(tmp_path, "init", "-q", "--bare", str(server))
    with pytest.raises(Exception):
        git_ingest.ingest_pack(Repo(str(server)).object_store, reader_of(raw_pack([(2, tree)])))  # type: ignore[arg-type]
    assert os.listdir(server / "objects" / "pack") == []
    assert not [n for n in os.listdir(server / "objects") if n.startswith("tmp_pack_")]


@pytest.fixture(params=["viewed", "store-lookups"])
def lookups(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways ingest finds stored objects: index views, or the store's own lookups (large packs)."""
    if request.param == "store-lookups":
        monkeypatch.setattr(git_ingest, "SMALL_INDEX", 0)
    return str(request.param)


def test_connected_reads_only_what_the_push_added(
        pushed: tuple[Path, Path, bytes, bytes], lookups: str) -> None:
    server, work, old, new = pushed
    store = Repo(str(server)).object_store
    pack = git_ingest.ingest_pack(store, reader_of(thin_pack(work, old, new)))  # type: ignore[arg-type]
    added = {bytes(s) for s in pack}
    store = Repo(str(server)).object_store
    assert git_ingest.connected(store, [new], added)
    assert git_ingest.connected(store, [old], set()), "old objects are complete by the store's invariant"
    assert not git_ingest.connected(store, [b"1" * 40], set())


def test_a_tree_naming_a_missing_blob_is_not_connected(tmp_path: Path, lookups: str) -> None:
    import io

    from dulwich.object_format import DEFAULT_OBJECT_FORMAT
    from dulwich.pack import write_pack_objects

    server = tmp_path / "s.git"
    git(tmp_path, "init", "-q", "--bare", str(server))
    present, missing = Blob.from_string(b"here\n"), Blob.from_string(b"never sent\n")
    tree = Tree()
    tree.add(b"here", 0o100644, present.id)
    tree.add(b"gone", 0o100644, missing.id)
    commit = Commit()
    commit.tree = tree.id
    commit.author = commit.committer = b"A <a@example.com>"
    commit.author_time = commit.commit_time = 0
    commit.author_timezone = commit.commit_timezone = 0
    commit.message = b"m\n"
    out = io.BytesIO()
    write_pack_objects(out, [(o, None) for o in (present, tree, commit)], object_format=DEFAULT_OBJECT_FORMAT)
    store = Repo(str(server)).object_store
    pack = git_ingest.ingest_pack(store, reader_of(out.getvalue()))  # type: ignore[arg-type]
    added = {bytes(s) for s in pack}
    assert not git_ingest.connected(Repo(str(server)).object_store, [commit.id], added)
    assert git_ingest.connected(Repo(str(server)).object_store, [present.id], added)


def test_temporaries_of_a_killed_writer_are_swept_once_stale(pushed: tuple[Path, Path, bytes, bytes]) -> None:
    import time

    server, work, old, new = pushed
    objects = server / "objects"
    stale, fresh = objects / "tmp_pack_dead", objects / "tmp_pack_busy"
    stale.write_bytes(b"PACK")
    fresh.write_bytes(b"PACK")
    day_ago = time.time() - git_ingest.STALE_TEMPORARY_SECONDS - 60
    os.utime(stale, (day_ago, day_ago))
    git_ingest.ingest_pack(Repo(str(server)).object_store, reader_of(thin_pack(work, old, new)))  # type: ignore[arg-type]
    assert not stale.exists(), "a day-old temporary is a killed writer's"
    assert fresh.exists(), "a recent one may belong to a push in progress"


ID = b"1" * 40
GOOD_COMMIT = (b"tree " + ID + b"\nparent " + ID + b"\nauthor A U <a@example.com> 1700000000 +0100\n"
               b"committer C <c@example.com> 1700000000 +0000\n\nmessage\n")


def tree_of(*entries: tuple[bytes, bytes]) -> bytes:
    return b"".join(mode + b" " + name + b"\0" + b"\x11" * 20 for mode, name in entries)


@pytest.mark.parametrize("type_num, raw", [
    (1, GOOD_COMMIT),
    (2, tree_of((b"100644", b"a"), (b"40000", b"a.txt"), (b"100644", b"b"))),
    (2, tree_of((b"100644", b"a.txt"), (b"40000", b"a"))),       # "a/" sorts after "a.txt"
    (2, tree_of((b"0100644", b"x"))),                           # zero-padded mode: git only warns
    (4, b"object " + ID + b"\ntype commit\ntag v1\n\nold tag without a tagger\n"),
    (4, b"object " + ID + b"\ntype commit\ntag \n\nm\n"),  # an empty name: only "info" to git's fsck
    (4, b"object " + ID + b"\ntype commit\ntag v1\ntagger T <t@x> 1 +0100\nextra\n\nm\n"),
])
def test_objects_git_accepts_pass(type_num: int, raw: bytes) -> None:
    git_ingest.check_object(type_num, raw)


@pytest.mark.parametrize("type_num, raw, message", [
    (1, GOOD_COMMIT.replace(b"A U <a@example.com>", b"A U a@example.com"), "author"),
    (1, GOOD_COMMIT.replace(b"A U <a@example.com>", b"<a@example.com>"), "author"),
    (1, GOOD_COMMIT.replace(b"parent " + ID, b"parent xyz"), "parent"),
    (1, GOOD_COMMIT.replace(b"tree " + ID + b"\n", b""), "tree"),
    (2, tree_of((b"100644", b"b"), (b"100644", b"a")), "treeNotSorted"),
    (2, tree_of((b"40000", b"a"), (b"100644", b"a.txt")), "treeNotSorted"),
    (2, tree_of((b"100644", b"a"), (b"40000", b"a")), "duplicateEntries: .* twice"),
    (2, tree_of((b"+100644", b"a")), "badTree: malformed mode"),  # the parser reads it as 100644; git cannot
    (2, tree_of((b"100644", b"c++"), (b"+40000", b"d")), "badTree: malformed mode"),
    (2, tree_of((b"100644", b""), (b"100644", b"b")), "badTree: empty filename in tree entry"),
    (4, b"type commit\ntag v1\n\nm\n", "missingObject"),
    (4, b"object xyz\ntype commit\ntag v1\n\nm\n", "badObjectSha1"),
    (4, b"object " + ID + b"\ntype comit\ntag v1\n\nm\n", "badType"),
    (4, b"object " + ID + b"\ntype commit\n\nm\n", "missingTagEntry"),
    (4, b"object " + ID + b"\ntype commit\ntag v1\ntagger T <t@x> 1 +01\n\nm\n", "badTimezone"),
])
def test_objects_git_fsck_calls_errors_are_refused(type_num: int, raw: bytes, message: str) -> None:
    from dulwich.errors import ObjectFormatException

    with pytest.raises(ObjectFormatException, match=message):
        git_ingest.check_object(type_num, raw)


def test_a_pack_with_an_unsorted_tree_lands_nothing(tmp_path: Path) -> None:
    server = tmp_path / "s.git"
    git(tmp_path, "init", "-q", "--bare", str(server))
    unsorted = tree_of((b"100644", b"b"), (b"100644", b"a"))
    with pytest.raises(Exception, match="treeNotSorted"):
        git_ingest.ingest_pack(Repo(str(server)).object_store, reader_of(raw_pack([(2, unsorted)])))  # type: ignore[arg-type]
    assert os.listdir(server / "objects" / "pack") == []


def test_a_pack_holding_an_object_twice_lands_nothing(tmp_path: Path) -> None:
    """As git's strict index-pack: its ``verify-pack`` (and ``git fsck``) fails such a pack's index."""
    server = tmp_path / "s.git"
    git(tmp_path, "init", "-q", "--bare", str(server))
    blob = Blob.from_string(b"twice\n")
    with pytest.raises(git_ingest.ProtocolError, match=f"the same object {blob.id.decode()} appears twice"):
        git_ingest.ingest_pack(Repo(str(server)).object_store, reader_of(raw_pack([(3, b"twice\n")] * 2)))
    assert os.listdir(server / "objects" / "pack") == []


def test_connectivity_from_the_links_the_checks_parsed_reads_nothing(
        pushed: tuple[Path, Path, bytes, bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    server, work, old, new = pushed
    parsed = git_ingest.PushLinks()
    pack = git_ingest.ingest_pack(Repo(str(server)).object_store, reader_of(thin_pack(work, old, new)), parsed)
    added = {bytes(s) for s in pack}
    linked = parsed.linked()
    assert linked is not None and old.lower() in linked, "the first new commit's parent, outside the pack"
    assert not linked & added, "the links to the pack's own objects are settled"
    read_from_pack: list[bytes] = []
    original = git_ingest.PackObjectReader.read

    def counting(self: object, hexsha: bytes) -> tuple[int, bytes]:
        read_from_pack.append(hexsha)
        return original(self, hexsha)  # type: ignore[arg-type]

    monkeypatch.setattr(git_ingest.PackObjectReader, "read", counting)
    store = Repo(str(server)).object_store
    assert git_ingest.connected(store, [new], added, parsed)
    assert read_from_pack == []
    assert not git_ingest.connected(store, [b"1" * 40], added, parsed), "a tip that is nowhere"
    assert git_ingest.connected(store, [new], added)
    assert read_from_pack  # without the links the walk inflates the commits and trees from the pack
    few = git_ingest.PushLinks(max_links=3)
    git_ingest.ingest_pack(Repo(str(server)).object_store, reader_of(thin_pack(work, old, new)), few)
    assert few.linked() is None, "past the bound the links are dropped"
    assert git_ingest.connected(Repo(str(server)).object_store, [new], added, few), "and the walk decides"


def test_a_push_s_objects_are_found_by_its_pack_s_index_after_the_pack_moves(
        pushed: tuple[Path, Path, bytes, bytes], tmp_path: Path) -> None:
    """``PushedObjects`` answers from the ids of the pack's index, read when the pack landed: the
    pack may leave its quarantine (or go) meanwhile.  An index of version 1 is read through dulwich."""
    server, work, old, new = pushed
    pack = git_ingest.ingest_pack(Repo(str(server)).object_store, reader_of(thin_pack(work, old, new)))
    assert pack is not None
    ids = {bytes(sha) for sha in pack}
    added = git_ingest.PushedObjects()
    added.add_pack(pack)
    added.add(b"f" * 40)
    pack.close()
    moved = tmp_path / "moved"
    moved.mkdir()
    for path in (pack._data_path, pack._idx_path):
        os.rename(path, moved / os.path.basename(path))
    assert len(added) == len(ids) + 1
    assert set(added) == ids | {b"f" * 40}
    assert all(sha in added for sha in ids) and b"f" * 40 in added
    assert new in added and old not in added, "the new tip is pushed, its parent was stored"
    assert b"0" * 40 not in added and b"not hex" not in added and b"z" * 40 not in added
    from dulwich.pack import write_pack_index

    v1 = moved / "v1.idx"
    with open(v1, "wb") as f:
        write_pack_index(f, sorted((binascii.unhexlify(sha), 12, 0) for sha in ids), b"\0" * 20, version=1)
    legacy = git_ingest.PushedObjects()

    class Legacy:
        object_format = pack.object_format
        _idx_path = str(v1)

        def __iter__(self):  # as dulwich's Pack lists its ids
            return iter(ids)

    legacy.add_pack(Legacy())  # type: ignore[arg-type]
    assert set(legacy) == ids and new in legacy


def test_a_link_to_a_missing_object_falls_back_to_the_walk(tmp_path: Path) -> None:
    import io

    from dulwich.object_format import DEFAULT_OBJECT_FORMAT
    from dulwich.pack import write_pack_objects

    server = tmp_path / "s.git"
    git(tmp_path, "init", "-q", "--bare", str(server))
    kept, stray = Blob.from_string(b"kept\n"), Tree()
    stray.add(b"gone", 0o100644, Blob.from_string(b"never sent\n").id)  # an unreachable tree with a dangling link
    tree = Tree()
    tree.add(b"kept", 0o100644, kept.id)
    out = io.BytesIO()
    write_pack_objects(out, [(o, None) for o in (kept, tree, stray)], object_format=DEFAULT_OBJECT_FORMAT)
    parsed = git_ingest.PushLinks()
    pack = git_ingest.ingest_pack(Repo(str(server)).object_store, reader_of(out.getvalue()), parsed)
    added = {bytes(s) for s in pack}
    store = Repo(str(server)).object_store
    assert not parsed.closed(added, lambda sha: False)
    assert git_ingest.connected(store, [tree.id], added, parsed), "the tip's own objects are all there"
    assert not git_ingest.connected(store, [stray.id], added, parsed)


def test_the_walk_checks_each_link_s_type() -> None:
    """The walk (when the links were not kept, and for stores not on disk) refuses what the links'
    check refuses: an object of another type than its link says, pushed or stored, or linked to
    as two types; a submodule's commit is not looked for."""
    blob = Blob.from_string(b"x\n")
    sub = Tree()
    sub.add(b"f", 0o100644, blob.id)
    stored = {bytes(o.id): (o.type_num, o.as_raw_string()) for o in (blob, sub)}

    def walk(*pushed: Tree | Commit) -> bool:
        objects = {**stored, **{bytes(o.id): (o.type_num, o.as_raw_string()) for o in pushed}}
        added = {bytes(o.id) for o in pushed}
        reads: list[bytes] = []

        def read(sha: bytes) -> tuple[int, bytes]:
            reads.append(sha)
            return objects[sha]

        connected = git_ingest.walk_connected([bytes(pushed[-1].id)], added, read, objects.__contains__,
                                              lambda sha: objects[sha][0])
        assert bytes(blob.id) not in reads, "blobs are never read"
        return connected

    def tree(*entries: tuple[bytes, int, bytes]) -> Tree:
        made = Tree()
        for name, mode, sha in entries:
            made.add(name, mode, sha)
        return made

    assert walk(tree((b"d", 0o040000, sub.id), (b"f", 0o100644, blob.id), (b"m", 0o160000, b"2" * 40)))
    assert not walk(tree((b"d", 0o100644, sub.id)))
    assert not walk(tree((b"d", 0o040000, blob.id)))
    top = tree((b"d", 0o040000, sub.id))
    assert not walk(top, tree((b"a", 0o100644, top.id), (b"b", 0o040000, top.id))), "one object, two types"
    commit = Commit()
    commit.tree, commit.parents = sub.id, [sub.id]
    commit.author = commit.committer = b"T <t@example.com>"
    commit.author_time = commit.commit_time = commit.author_timezone = commit.commit_timezone = 0
    commit.message = b"m\n"
    assert not walk(commit), "a parent that is a tree"
    commit.parents = []
    assert walk(commit)


def test_links_to_one_object_as_two_types_are_a_mismatch() -> None:
    links = git_ingest.PushLinks()
    links.link([(b"a" * 40, git_ingest.ANY), (b"b" * 40, git_ingest.BLOB)])
    links.link([(b"a" * 40, git_ingest.TREE)])
    assert links.mismatch({b"a" * 40: git_ingest.TREE, b"b" * 40: git_ingest.BLOB}.__getitem__) is None
    assert "is a blob, not the tree" in str(links.mismatch({b"a" * 40: git_ingest.BLOB,
                                                          b"b" * 40: git_ingest.BLOB}.__getitem__))
    links.link([(b"b" * 40, git_ingest.COMMIT)])
    assert "linked to as a commit and as a blob" in str(links.mismatch(lambda sha: git_ingest.BLOB))


def _reference_tree_check(entries: list[tuple[bytes, bytes]]) -> bool:
    """The plain rule: keys (``name/`` for a subtree) strictly increasing, no name twice, no ``.`` or
    ``..`` entry (refused by default, as git's receive-pack refuses them)."""
    keys = [name + b"/" if mode == b"40000" else name for mode, name in entries]
    names = [name for _, name in entries]
    return (len(set(names)) == len(names) and all(a < b for a, b in itertools.pairwise(keys))
            and not {b".", b".."} & set(names))


@given(st.lists(st.tuples(st.sampled_from([b"100644", b"40000", b"120000"]),
                          st.text(alphabet="ab-.0", min_size=1, max_size=4).map(str.encode)), max_size=8),
       st.booleans())
def test_the_tree_check_agrees_with_the_plain_rule(entries: list[tuple[bytes, bytes]], sort: bool) -> None:
    if sort:  # sorted input exercises the accepting side as often as the refusing one
        entries = sorted(entries, key=lambda e: e[1] + b"/" if e[0] == b"40000" else e[1])
    try:
        git_ingest.check_object(2, tree_of(*entries))
        accepted = True
    except ObjectFormatException:
        accepted = False
    assert accepted == _reference_tree_check(entries)


IDENTS = [b"A U <a@example.com> 1700000000 +0100", b"<a@example.com> 1 +0000", b"A a@example.com> 1 +0000",
          b"C <c@example.com> x +0000", b"C <c@example.com> 1 0000", b"A <a@example.com> 99999999999999999999 +0000",
          b"C <c@example.com>", b" <a@b> 1 +0000", b"A <a@b> 01 +0000", b"A <a@b> 1 +01000", b"C<c@d> 1 +0000",
          b"C <c<d> 1 +0000", b"C <c@d>1 +0000", b"A <a@b> 9223372036854775806 -0130", b"A> <a@b> 1 +0000",
          b"A <a@b> 0 +0000", b"A <> 1 +0000", b"A <a@b> 1 +0000 x"]
# Not among them: a date after a second space or a '+' ("A <a@b>  1 +0000"), which git 2.39's fsck
# lets through its strtoumax and later git refuses (fsck_ident's digit check); hgwire refuses it.
TREE_LINES = [b"tree " + ID, b"tree " + b"b" * 40, b"tree " + b"B" * 40, b"tree xyz", b"tree " + ID + b" ",
              b"parent " + b"2" * 40]  # ids differ by role: git's parse also types the objects it names
OTHER_LINES = [b"encoding UTF-8", b"gpgsig -----BEGIN-----", b" continued", b"mergetag object " + ID,
               b"mergetag foo", b"novalue", b"parent " + b"4" * 40, b"author A <a@b> 1 +0000", b"x\0y", b""]


@st.composite
def commit_texts(draw: st.DrawFn) -> bytes:
    """Commits shaped as git writes them (tree, parents, author, committer, more headers, message),
    each part possibly wrong or left out: most examples reach the ident and header checks."""
    lines = [draw(st.sampled_from(TREE_LINES))] if draw(st.booleans()) or draw(st.booleans()) else []
    lines += [b"parent " + draw(st.sampled_from([b"2" * 40, b"3" * 40, b"C" * 40, b"xyz"])) for _ in range(
        draw(st.integers(0, 2)))]
    lines += [b"author " + draw(st.sampled_from(IDENTS)) for _ in range(draw(st.sampled_from([1, 1, 1, 0, 2])))]
    if draw(st.integers(0, 5)):
        lines.append(b"committer " + draw(st.sampled_from(IDENTS)))
    lines += draw(st.lists(st.sampled_from(OTHER_LINES), max_size=3))
    return b"\n".join(lines) + draw(st.sampled_from([b"\n\nmessage\n", b"\n", b"", b"\n\nm\0x\n"]))


FSCK_REFUSALS = (b"error in commit ", b"bogus commit object ", b"could not be parsed", b"error in tag ")


def git_fsck_accepts(raw: bytes, kind: str = "commit") -> bool:
    """git's own verdict: ``git fsck`` of the object written as is, in a repository of its own
    (its missing tree and parents are reported too, but as broken links, not as its errors)."""
    with tempfile.TemporaryDirectory() as where:
        subprocess.run(["git", "init", "-q", "--bare", where], check=True)
        sha = subprocess.run(["git", "hash-object", "--literally", "-w", "-t", kind, "--stdin"], cwd=where,
                             input=raw, capture_output=True, check=True).stdout.strip()
        report = subprocess.run(["git", "fsck", "--no-dangling"], cwd=where, capture_output=True)
    lines = (report.stdout + report.stderr).splitlines()
    return not any(sha in line and any(r in line for r in FSCK_REFUSALS) for line in lines)


@settings(max_examples=200, deadline=None)
@given(commit_texts())
def test_the_commit_check_agrees_with_git_fsck(raw: bytes) -> None:
    try:
        git_ingest.check_object(1, raw)
        ours = True
    except ObjectFormatException:
        ours = False
    assert ours == git_fsck_accepts(raw), raw


@pytest.mark.parametrize("raw", [
    GOOD_COMMIT.replace(b"\n\n", b"\nmergetag foo\nnovalue\n\n"),  # headers git leaves to the author
    GOOD_COMMIT.replace(b"A U <a@example.com>", b" <a@example.com>"),  # an empty name, with its space
    GOOD_COMMIT.replace(b"parent " + ID, b"parent " + ID.upper()),
])
def test_commits_git_fsck_accepts(raw: bytes) -> None:
    assert git_ingest.check_object(1, raw) == [(ID, git_ingest.TREE), (ID, git_ingest.COMMIT)]


@pytest.mark.parametrize(("raw", "message"), [
    (GOOD_COMMIT.replace(b"+0100", b"+01000"), "bad time zone"),
    (GOOD_COMMIT.rstrip(b"\n").split(b"\n\n")[0], "unterminated header"),
    (GOOD_COMMIT.replace(b"\nauthor", b"\nauthor A <a@b> 1 +0000\nauthor"), "multiple 'author' lines"),
    (GOOD_COMMIT.replace(b"1700000000 +0100", b"0170 +0100"), "zero-padded date"),
    (GOOD_COMMIT.replace(b"1700000000 +0100", b" 170 +0100"), "bad date"),
    (GOOD_COMMIT.replace(b"1700000000 +0100", b"+170 +0100"), "bad date"),
    (GOOD_COMMIT.replace(b"1700000000 +0100", b"9" * 5000 + b" +0100"), "overflow"),
    (GOOD_COMMIT.replace(b"message", b"tree\0"), None),  # a NUL in the message is fine
    (GOOD_COMMIT.replace(b"\ncommitter", b"\nx\0y\ncommitter"), "nulInHeader: unterminated header: NUL at offset"),
])
def test_commits_git_fsck_refuses(raw: bytes, message: str | None) -> None:
    if message is None:
        git_ingest.check_object(1, raw)
        return
    with pytest.raises(ObjectFormatException, match=message):
        git_ingest.check_object(1, raw)


def ingest_with_records(store: object, data: bytes, step: int = 4096) -> object:
    """The gateway's way: the pack in pieces, each with the records its scan found."""
    from protocols.git_receive import PackScanner

    scanner = PackScanner()
    ingest = git_ingest.PackIngest(store)  # type: ignore[arg-type]
    try:
        for i in range(0, len(data), step):
            piece = data[i:i + step]
            assert scanner.feed(piece) == len(piece)
            ingest.write(piece, scanner.take_objects())
        return ingest.commit()
    finally:
        ingest.abort()


@pytest.mark.parametrize("ofs_delta", [True, False], ids=["ofs-delta", "ref-delta"])
def test_the_gateways_records_index_the_same_pack_as_a_scan_of_its_own(
        pushed: tuple[Path, Path, bytes, bytes], ofs_delta: bool, tmp_path: Path) -> None:
    server, work, old, new = pushed
    data = thin_pack(work, old, new, ofs_delta)
    twin = tmp_path / "twin.git"
    git(tmp_path, "clone", "-q", "--bare", str(server), str(twin))
    own = git_ingest.ingest_pack(Repo(str(server)).object_store, reader_of(data))  # type: ignore[arg-type]
    given_records = ingest_with_records(Repo(str(twin)).object_store, data)
    assert own is not None and given_records is not None
    assert os.path.basename(own._basename) == os.path.basename(given_records._basename)  # type: ignore[attr-defined]
    assert Path(own._basename + ".idx").read_bytes() == Path(given_records._basename + ".idx").read_bytes()  # type: ignore[attr-defined]
    assert Path(own._basename + ".pack").read_bytes() == Path(given_records._basename + ".pack").read_bytes()  # type: ignore[attr-defined]
    git(twin, "update-ref", "refs/heads/main", new.decode(), old.decode())
    git(twin, "fsck", "--full", "--strict")


def ref_delta_pack(entries: list[tuple[bytes, bytes, bytes]]) -> bytes:
    """A pack of REF_DELTAs: (base id, base text, result text) each."""
    import hashlib
    import struct
    import zlib

    from dulwich.object_format import DEFAULT_OBJECT_FORMAT
    from dulwich.pack import create_delta, pack_object_header

    out = b"PACK" + struct.pack(">II", 2, len(entries))
    for base_id, base_text, text in entries:
        delta = b"".join(create_delta(base_text, text))
        out += bytes(pack_object_header(7, bytes.fromhex(base_id.decode()), len(delta), DEFAULT_OBJECT_FORMAT))
        out += zlib.compress(delta)
    return out + hashlib.sha1(out).digest()


@pytest.mark.parametrize("records", [True, False], ids=["gateway-records", "own-scan"])
def test_a_chain_of_ref_deltas_from_a_stored_base_resolves_in_any_order(tmp_path: Path, records: bool) -> None:
    server = tmp_path / "s.git"
    git(tmp_path, "init", "-q", "--bare", str(server))
    texts = [b"".join(b"row %d, version %d\n" % (i, v if i % 50 == 0 else 0) for i in range(500)) for v in range(4)]
    blobs = [Blob.from_string(t) for t in texts]
    store = Repo(str(server)).object_store
    store.add_object(blobs[0])
    # v3 on v2 on v1 on the stored v0, listed newest first: each base is named before it is built
    data = ref_delta_pack([(blobs[v - 1].id, texts[v - 1], texts[v]) for v in (3, 2, 1)])
    store = Repo(str(server)).object_store
    pack = ingest_with_records(store, data) if records else git_ingest.ingest_pack(store, reader_of(data))  # type: ignore[arg-type]
    assert pack is not None
    names = {bytes(s) for s in pack}
    assert names == {b.id for b in blobs}, "the three deltas and the stored base appended (a thin pack completed)"
    for blob in blobs:
        assert git(server, "cat-file", "-p", blob.id.decode()) == blob.data
    git(server, "fsck", "--full", "--strict")


def test_a_delta_whose_base_is_nowhere_is_refused(tmp_path: Path) -> None:
    server = tmp_path / "s.git"
    git(tmp_path, "init", "-q", "--bare", str(server))
    ghost = Blob.from_string(b"not stored anywhere\n")
    data = ref_delta_pack([(ghost.id, ghost.data, b"not stored anywhere, changed\n")])
    with pytest.raises(git_ingest.ProtocolError, match="neither it nor the repository holds"):
        ingest_with_records(Repo(str(server)).object_store, data)
    assert os.listdir(server / "objects" / "pack") == []
    assert not [n for n in os.listdir(server / "objects") if n.startswith("tmp_pack_")]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.binary(min_size=20, max_size=20), st.integers(min_value=12, max_value=1 << 40),
                          st.integers(min_value=0, max_value=(1 << 32) - 1)), max_size=300, unique_by=lambda e: e[0]))
def test_the_index_writer_writes_what_dulwich_writes(entries: list[tuple[bytes, int, int]]) -> None:
    """Byte for byte dulwich's version 2 index, offsets past 2 GiB (the 64-bit table) included."""
    import io

    from dulwich.pack import write_pack_index

    entries.sort()
    ours, theirs = io.BytesIO(), io.BytesIO()
    names, offsets, crcs = zip(*entries) if entries else ((), (), ())
    git_ingest.write_index_v2(ours, names, offsets, crcs, b"\x42" * 20)
    write_pack_index(theirs, entries, b"\x42" * 20, version=2)
    assert ours.getvalue() == theirs.getvalue()


def test_a_pushed_pack_is_removed_by_its_last_holder_only_if_none_was_accepted() -> None:
    claims = git_ingest.PackClaims()
    claims.claim("p", created=True)   # the first push put it in place
    claims.claim("p", created=False)  # a second push of the same objects found it
    assert not claims.release("p", accepted=False), "the first is declined: the second still holds it"
    assert claims.release("p", accepted=False), "both declined: the last one removes it"
    claims.claim("q", created=True)
    claims.claim("q", created=False)
    assert not claims.release("q", accepted=True)
    assert not claims.release("q", accepted=False), "a holder was accepted: its refs name the objects"
    claims.claim("r", created=False)  # on disk before any push held it
    assert not claims.release("r", accepted=False)
    assert claims.release("never-claimed", accepted=False) and not claims.release("never-claimed", accepted=True)
    assert claims.holders("p") == claims.holders("q") == claims.holders("r") == 0


def test_a_quarantined_pack_is_read_by_its_own_store_only_until_it_moves_in(
        pushed: tuple[Path, Path, bytes, bytes]) -> None:
    """A thin pack ingested into a quarantine: the pushing session's store reads it (an alternate of
    that instance), another store of the same repository does not, nor does git without the
    quarantine's variables; with them git does.  ``migrate`` moves it into the pack directory."""
    server, work, old, new = pushed
    store = Repo(str(server)).object_store
    before = pack_dir_files(server)
    quarantine = git_ingest.Quarantine(store)
    assert os.path.basename(quarantine.path).startswith("tmp_objdir-incoming-")
    pack = git_ingest.ingest_pack(store, reader_of(thin_pack(work, old, new)), into=quarantine)
    assert pack is not None and pack_dir_files(server) == before
    quarantine.expose()
    assert new.decode() in {sha.decode() for sha in pack}
    assert store.get_raw(new)[0] == 1  # a commit, read through the quarantine
    added = {sha for sha in pack}
    assert len(git_ingest.quarantine_views(store)) == 1
    assert git_ingest.connected(store, [new], added), "the walk reads the push's objects in the quarantine"
    assert new not in Repo(str(server)).object_store
    outside = subprocess.run(["git", "cat-file", "-e", new.decode()], cwd=server, env=ENV, check=False)
    assert outside.returncode != 0
    told = {**ENV, **git_ingest.quarantine_environment([quarantine])}
    assert told["GIT_ALTERNATE_OBJECT_DIRECTORIES"] == str(server / "objects")
    subprocess.run(["git", "cat-file", "-e", new.decode()], cwd=server, env=told, check=True)
    pack.close()
    keeps = quarantine.migrate()
    assert not os.path.exists(quarantine.path) and store.alternates == []
    arrived = pack_dir_files(server) - before  # the .pack and its .idx, kept until refs name them
    assert sorted(name.rsplit(".", 1)[1] for name in arrived) == ["idx", "keep", "pack"]
    assert [os.path.basename(k) for k in keeps] == [n for n in arrived if n.endswith(".keep")]
    assert Path(keeps[0]).read_bytes().startswith(b"receive-pack ")
    git_ingest.release_keeps(keeps)
    assert len(pack_dir_files(server) - before) == 2
    assert Repo(str(server)).object_store.get_raw(new)[0] == 1
    git(server, "fsck", "--full", "--strict")


def test_a_quarantine_keeps_a_stored_pack_of_the_same_name_and_drop_leaves_nothing(
        pushed: tuple[Path, Path, bytes, bytes]) -> None:
    server, work, old, new = pushed
    data = thin_pack(work, old, new)
    store = Repo(str(server)).object_store
    stored = git_ingest.ingest_pack(store, reader_of(data))  # the same objects, in the store already
    assert stored is not None
    kept = {name: (server / "objects" / "pack" / name).stat().st_ino for name in pack_dir_files(server)}
    again = git_ingest.Quarantine(store)
    assert git_ingest.ingest_pack(store, reader_of(data), into=again) is not None
    again.migrate()
    assert {name: (server / "objects" / "pack" / name).stat().st_ino for name in pack_dir_files(server)} == kept
    dropped = git_ingest.Quarantine(store)
    git_ingest.ingest_pack(store, reader_of(data), into=dropped)
    dropped.expose()
    dropped.drop()
    assert not os.path.exists(dropped.path) and store.alternates == []
    assert not [n for n in os.listdir(server / "objects") if n.startswith("tmp_")]


def test_stale_quarantines_and_temporary_packs_are_swept_and_fresh_ones_kept(tmp_path: Path) -> None:
    repo = Repo.init_bare(str(tmp_path / "r.git"), mkdir=True)
    objects = tmp_path / "r.git" / "objects"
    old_dir = objects / "tmp_objdir-incoming-old"
    (old_dir / "pack").mkdir(parents=True)
    (old_dir / "pack" / "tmp_pack_x").write_bytes(b"partial")
    (objects / "tmp_pack_old").write_bytes(b"partial")
    day_ago = os.path.getmtime(objects) - git_ingest.STALE_TEMPORARY_SECONDS - 60
    for path in (old_dir, objects / "tmp_pack_old"):
        os.utime(path, (day_ago, day_ago))
    live = git_ingest.Quarantine(repo.object_store)  # sweeps as it is made
    assert not old_dir.exists() and not (objects / "tmp_pack_old").exists()
    assert git_ingest.sweep_stale_temporaries(repo.object_store) == 0 and os.path.isdir(live.path)
    live.drop()


def test_the_hook_environment_names_absolute_directories_for_a_store_opened_by_a_relative_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server started with a relative root (``make serve``: ``repositories``) opens stores by
    relative paths; the hooks run in the git directory, so what they are told must be absolute."""
    Repo.init_bare(str(tmp_path / "r.git"), mkdir=True)
    monkeypatch.chdir(tmp_path)
    quarantine = git_ingest.Quarantine(Repo("r.git").object_store)
    told = git_ingest.quarantine_environment([quarantine])
    assert told["GIT_OBJECT_DIRECTORY"] == told["GIT_QUARANTINE_PATH"] == quarantine.path
    assert os.path.isabs(quarantine.path) and os.path.isdir(quarantine.path)
    assert told["GIT_ALTERNATE_OBJECT_DIRECTORIES"] == str(tmp_path / "r.git" / "objects")
    quarantine.drop()


def test_fsck_settings_are_read_as_git_reads_them() -> None:
    rules = git_ingest.fsck_rules([(b"badTimezone", b"ignore"), (b"HASDOTGIT", b"Error"), (b"noSuchId", b"ignore"),
                                   (b"badDate", b"maybe"), (b"nulInHeader", b"ignore")], [b"a" * 40])
    assert rules.severity("badtimezone") == "ignore" and rules.severity("hasDotgit") == "error"
    assert rules.severity("badDate") == "error", "a value git does not know is skipped"
    assert rules.severity("nulInHeader") == "error", "a fatal finding cannot be lowered"
    assert rules.tree_names and git_ingest.DEFAULT_FSCK.tree_names, "tree names are looked at by default"
    assert not rules.tree_modes and git_ingest.fsck_rules([(b"zeroPaddedFilemode", b"error")]).tree_modes
    lowered = git_ingest.fsck_rules([(name.encode(), b"warn") for name in ("hasDot", "hasDotdot", "hasDotgit",
                                                                          "emptyName", "fullPathname")])
    assert lowered.tree_names, "a name finding made a warning is still looked for: the client is told"
    ignored = git_ingest.fsck_rules([(name.encode(), b"ignore") for name in ("hasDot", "hasDotdot", "hasDotgit",
                                                                            "emptyName", "fullPathname")])
    assert not ignored.tree_names, "nothing to look for once every name finding is ignored"
    assert git_ingest.DEFAULT_FSCK.mode_warnings and not git_ingest.fsck_rules(
        [(b"zeroPaddedFilemode", b"ignore"), (b"nullSha1", b"error"), (b"badFilemode", b"ignore")]).mode_warnings
    assert rules.skip == frozenset({b"a" * 40})


BAD_ZONE = GOOD_COMMIT.replace(b"+0100", b"+01000")


@pytest.mark.parametrize(("raw", "msg_id"), [
    (BAD_ZONE, "badTimezone"),
    (GOOD_COMMIT.replace(b"parent " + ID, b"parent xyz"), "badParentSha1"),
    (GOOD_COMMIT.replace(b"\nauthor", b"\nauthor A <a@b> 1 +0000\nauthor"), "multipleAuthors"),
    (GOOD_COMMIT.replace(b"tree " + ID, b"tree nope"), "badTreeSha1"),
])
def test_a_finding_the_settings_lower_passes_and_the_links_stay(raw: bytes, msg_id: str) -> None:
    with pytest.raises(git_ingest.FsckError) as refused:
        git_ingest.check_object(1, raw)
    assert refused.value.msg_id == msg_id
    for severity in (b"ignore", b"warn"):
        rules = git_ingest.fsck_rules([(msg_id.encode(), severity)])
        links = git_ingest.check_object(1, raw, rules, b"c" * 40)
        assert (ID, git_ingest.COMMIT) in links or b"parent xyz" in raw, links  # what could be read is still linked
    skipped = git_ingest.fsck_rules([], [b"c" * 40])
    git_ingest.check_object(1, raw, skipped, b"c" * 40)
    with pytest.raises(git_ingest.FsckError, match=f"object {'d' * 40}: {msg_id}"):
        git_ingest.check_object(1, raw, skipped, b"d" * 40)


@pytest.mark.parametrize(("entries", "msg_id"), [
    (((b"40000", b".git"),), "hasDotgit"),
    (((b"40000", b".GIT"),), "hasDotgit"),
    (((b"40000", b"git~1"),), "hasDotgit"),
    (((b"40000", b".git. . "),), "hasDotgit"),
    (((b"40000", ".g\u200cit".encode()),), "hasDotgit"),
    (((b"40000", b".."),), "hasDotdot"),
    (((b"40000", b"."),), "hasDot"),
    (((b"100644", b"a/b"),), "fullPathname"),
])
def test_tree_names_a_checkout_cannot_honour_refuse_unless_lowered(entries: tuple[tuple[bytes, bytes], ...],
                                                                   msg_id: str) -> None:
    """As git's receive-pack with receive.fsckObjects (strict): refused, unless the repository's
    receive.fsck.<id> lowers it."""
    raw = tree_of(*entries)
    with pytest.raises(git_ingest.FsckError, match=msg_id):
        git_ingest.check_object(2, raw)
    git_ingest.check_object(2, raw, git_ingest.fsck_rules([(msg_id.encode(), b"warn")]))
    git_ingest.check_object(2, tree_of((b"100644", b"a~b"), (b"100644", b"fine.git"), (b"100644", b"gitx")))


@pytest.mark.parametrize(("entries", "msg_id"), [
    (((b"0100644", b"a"),), "zeroPaddedFilemode"),
    (((b"100600", b"a"),), "badFilemode"),
])
def test_tree_mode_warnings_pass_unless_made_errors(entries: tuple[tuple[bytes, bytes], ...], msg_id: str) -> None:
    raw = tree_of(*entries)
    git_ingest.check_object(2, raw)  # git's fsck only warns (or says nothing)
    with pytest.raises(git_ingest.FsckError, match=msg_id):
        git_ingest.check_object(2, raw, git_ingest.fsck_rules([(msg_id.encode(), b"error")]))
    git_ingest.check_object(2, tree_of((b"100644", b"fine.git"), (b"100644", b"gitx")),
                            git_ingest.fsck_rules([(msg_id.encode(), b"error")]))


def warnings_of(type_num: int, raw: bytes, rules: git_ingest.FsckRules = git_ingest.DEFAULT_FSCK,
                oid: bytes = b"c" * 40) -> list[str]:
    warnings = git_ingest.FsckWarnings()
    git_ingest.check_object(type_num, raw, rules, oid, warnings=warnings)
    return warnings.shown()


@pytest.mark.parametrize(("type_num", "raw", "told"), [
    (2, tree_of((b"0100644", b"a")), "zeroPaddedFilemode: contains zero-padded file modes"),
    (2, tree_of((b"100644", b"a"), (b"040000", b"b"), (b"100644", b"c")),
     "zeroPaddedFilemode: contains zero-padded file modes"),
    (2, b"100644 a\0" + b"\0" * 20, "nullSha1: contains entries pointing to null sha1"),
    (2, tree_of((b"100600", b"a")), "badFilemode: contains bad file modes"),
    (1, GOOD_COMMIT.replace(b"message", b"mess\0age"), "nulInCommit: NUL byte in the commit object body"),
])
def test_findings_let_through_are_told_in_gits_words(type_num: int, raw: bytes, told: str) -> None:
    """As git's receive-pack tells them (``remote: warning: object <id>: <msg-id>: <message>``);
    none once the setting ignores it or the skip list names the object."""
    assert warnings_of(type_num, raw) == [f"object {'c' * 40}: {told}"]
    msg_id = told.split(":")[0]
    assert warnings_of(type_num, raw, git_ingest.fsck_rules([(msg_id.encode(), b"ignore")])) == []
    assert warnings_of(type_num, raw, git_ingest.fsck_rules([], [b"c" * 40])) == []
    assert warnings_of(2, tree_of((b"100644", b"a"), (b"40000", b"b"), (b"120000", b"c"), (b"160000", b"d"))) == []


def test_a_name_finding_made_a_warning_is_told() -> None:
    rules = git_ingest.fsck_rules([(b"hasDotgit", b"warn")])
    assert warnings_of(2, tree_of((b"40000", b".GIT"),), rules) == [f"object {'c' * 40}: hasDotgit: contains '.git'"]


def test_the_warnings_told_are_bounded() -> None:
    warnings = git_ingest.FsckWarnings()
    for n in range(git_ingest.MAX_WARNINGS_SHOWN + 7):
        git_ingest.check_object(2, tree_of((b"0100644", b"a")), oid=b"%040x" % n, warnings=warnings)
    shown = warnings.shown()
    assert len(shown) == git_ingest.MAX_WARNINGS_SHOWN + 1 and shown[-1].startswith("7 more findings not shown")


TREE_MODES = [b"100644", b"0100644", b"00100644", b"100755", b"40000", b"040000", b"120000", b"0120000", b"160000",
              b"100600", b"100664", b"644"]
TREE_NAMES = [b"a", b"b.txt", b"c", b"dd", b".git", b"git~1", b"..", b"e~f"]
NAME_IDS = ("hasDot", "hasDotdot", "hasDotgit", "emptyName", "fullPathname")


def git_fsck_warnings(raw: bytes) -> set[str]:
    """The message ids ``git fsck`` warns about for a tree written as is, with ``badFilemode`` for a
    ``100664`` mode as git's strict check (receive-pack's ``receive.fsckObjects``) warns."""
    with tempfile.TemporaryDirectory() as where:
        subprocess.run(["git", "init", "-q", "--bare", where], check=True)
        sha = subprocess.run(["git", "hash-object", "--literally", "-w", "-t", "tree", "--stdin"], cwd=where,
                             input=raw, capture_output=True, check=True).stdout.strip().decode()
        report = subprocess.run(["git", "fsck", "--no-dangling"], cwd=where, capture_output=True, text=True,
                                check=False)
    prefix = f"warning in tree {sha}: "
    strict = {"badFilemode"} if re.search(rb"(?:^|\0.{20})100664 ", raw, re.DOTALL) else set()
    return strict | {line[len(prefix):].split(":")[0] for line in (report.stdout + report.stderr).splitlines()
                     if line.startswith(prefix)}


def test_a_100664_mode_is_what_git_s_strict_check_warns_about(tmp_path: Path) -> None:
    """``git fsck --strict`` (what receive-pack runs with ``receive.fsckObjects``) warns about a mode
    old gits wrote, which plain ``git fsck`` lets pass: so does a push's check."""
    raw = tree_of((b"100664", b"a"))
    subprocess.run(["git", "init", "-q", "--bare", str(tmp_path)], check=True)
    sha = subprocess.run(["git", "hash-object", "--literally", "-w", "-t", "tree", "--stdin"], cwd=tmp_path,
                         input=raw, capture_output=True, check=True).stdout.strip().decode()
    strict = subprocess.run(["git", "fsck", "--strict", "--no-dangling"], cwd=tmp_path, capture_output=True,
                            text=True, check=False)
    assert f"warning in tree {sha}: badFilemode: contains bad file modes" in strict.stdout + strict.stderr
    assert warnings_of(2, raw) == [f"object {'c' * 40}: badFilemode: contains bad file modes"]


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.sampled_from(TREE_NAMES),
                       st.tuples(st.sampled_from(TREE_MODES), st.sampled_from([b"\x11" * 20, b"\0" * 20,
                                                                              b"0" * 20, b"\0" * 19 + b"1"])),
                       min_size=1, max_size=6))
def test_the_tree_warnings_agree_with_git_fsck(entries: dict[bytes, tuple[bytes, bytes]]) -> None:
    """Every tree finding made a warning: the ones told are the ones ``git fsck`` warns about, also
    where a tree's length alone hides nothing (the modes and ids are looked at only when it hints)."""
    def key(name: bytes) -> bytes:
        return name + b"/" if entries[name][0].lstrip(b"0") == b"40000" else name

    raw = b"".join(mode + b" " + name + b"\0" + child
                   for name in sorted(entries, key=key) for mode, child in [entries[name]])
    rules = git_ingest.fsck_rules([(msg_id.encode(), b"warn") for msg_id in NAME_IDS])
    ours = {line.split(": ")[1] for line in warnings_of(2, raw, rules)}
    assert ours == git_fsck_warnings(raw), raw


def test_an_unsorted_tree_with_a_duplicate_reports_both() -> None:
    raw = tree_of((b"100644", b"b"), (b"100644", b"a"), (b"100644", b"a"))
    with pytest.raises(git_ingest.FsckError, match="duplicateEntries"):
        git_ingest.check_object(2, raw)
    with pytest.raises(git_ingest.FsckError, match="treeNotSorted"):
        git_ingest.check_object(2, raw, git_ingest.fsck_rules([(b"duplicateEntries", b"ignore")]))
    lenient = git_ingest.fsck_rules([(b"duplicateEntries", b"ignore"), (b"treeNotSorted", b"warn")])
    assert len(git_ingest.check_object(2, raw, lenient)) == 3


TAG_HEAD = b"object " + ID + b"\ntype commit\ntag v1\n"


@pytest.mark.parametrize("raw", [
    TAG_HEAD + b"tagger T <t@x> 1 +0100\n\nm\n",
    TAG_HEAD + b"\nno tagger\n",
    TAG_HEAD + b"tagger T <t@x> 1 +01\n\nm\n",
    TAG_HEAD + b"tagger T t@x 1 +0100\n\nm\n",
    TAG_HEAD.replace(b"tag v1", b"tag ") + b"\nm\n",
    TAG_HEAD.replace(b"tag v1", b"tag a..b") + b"\nm\n",
    TAG_HEAD.replace(b"type commit", b"type comit") + b"\nm\n",
    TAG_HEAD.replace(b"type commit\n", b"") + b"\nm\n",
    TAG_HEAD.replace(ID, b"x" * 40) + b"\nm\n",
    TAG_HEAD + b"tagger T <t@x> 1 +0100\nextra header\n\nm\n",
    TAG_HEAD + b"tagger T <t@x> 1 +0100",
])
def test_the_tag_check_agrees_with_git_fsck(raw: bytes) -> None:
    try:
        git_ingest.check_object(4, raw)
        ours = True
    except ObjectFormatException:
        ours = False
    assert ours == git_fsck_accepts(raw, "tag"), raw


def ordered_pack(objects: list[tuple[int, bytes] | tuple[str, int, bytes]]) -> bytes:
    """A pack of whole objects ``(type, raw)`` and OFS_DELTAs ``("ofs", index of the base, result)``,
    in the order given."""
    import hashlib
    import struct
    import zlib

    from dulwich.object_format import DEFAULT_OBJECT_FORMAT
    from dulwich.pack import create_delta, pack_object_header

    out = b"PACK" + struct.pack(">II", 2, len(objects))
    offsets: list[int] = []
    texts: list[bytes] = []
    for entry in objects:
        offsets.append(len(out))
        if entry[0] == "ofs":
            _, base, text = entry
            delta = b"".join(create_delta(texts[base], text))
            out += bytes(pack_object_header(6, offsets[-1] - offsets[base], len(delta), DEFAULT_OBJECT_FORMAT))
            out += zlib.compress(delta)
        else:
            type_num, text = entry  # type: ignore[misc]
            out += bytes(pack_object_header(type_num, None, len(text), DEFAULT_OBJECT_FORMAT)) + zlib.compress(text)
        texts.append(text)
    return out + hashlib.sha1(out).digest()


EVIL_GITMODULES = b'[submodule "../../modules/evil"]\n\tpath = evil\n\turl = ./evil\n'


@pytest.mark.parametrize("how", ["blob-first", "delta-blob-first", "tree-first"])
def test_a_gitmodules_file_is_checked_wherever_the_pack_puts_it(tmp_path: Path, how: str) -> None:
    server = tmp_path / "s.git"
    git(tmp_path, "init", "-q", "--bare", str(server))
    innocent = b'[submodule "lib"]\n\tpath = lib\n\turl = ./lib\n' + b"# padding\n" * 20
    evil = innocent.replace(b'"lib"', b'"../../modules/evil"')
    evil_id = Blob.from_string(evil).id
    tree = b"100644 .gitmodules\0" + bytes.fromhex(evil_id.decode())
    objects: list[tuple[int, bytes] | tuple[str, int, bytes]] = {
        "blob-first": [(3, evil), (2, tree)],
        "delta-blob-first": [(3, innocent), ("ofs", 0, evil), (2, tree)],
        "tree-first": [(2, tree), (3, evil)],
    }[how]
    data = ordered_pack(objects)
    before = sorted(p.name for p in (server / "objects" / "pack").iterdir())
    for records in (True, False):
        store = Repo(str(server)).object_store
        with pytest.raises(git_ingest.FsckError, match="gitmodulesName: disallowed submodule name: ../../modules/evil"):
            if records:
                ingest_with_records(store, data)  # type: ignore[arg-type]
            else:
                git_ingest.ingest_pack(store, reader_of(data))  # type: ignore[arg-type]
    assert sorted(p.name for p in (server / "objects" / "pack").iterdir()) == before
    lenient = git_ingest.fsck_rules([(b"gitmodulesName", b"ignore")])
    pack = git_ingest.ingest_pack(Repo(str(server)).object_store, reader_of(data), rules=lenient)  # type: ignore[arg-type]
    assert pack is not None and evil_id in {bytes(s) for s in pack}


def test_a_tree_naming_a_stored_gitmodules_file_reads_it_from_the_store(tmp_path: Path) -> None:
    server = tmp_path / "s.git"
    git(tmp_path, "init", "-q", "--bare", str(server))
    store = Repo(str(server)).object_store
    stored = Blob.from_string(EVIL_GITMODULES)
    store.add_object(stored)
    tree = b"100644 .gitmodules\0" + bytes.fromhex(stored.id.decode())
    with pytest.raises(git_ingest.FsckError, match="gitmodulesName"):
        git_ingest.ingest_pack(Repo(str(server)).object_store, reader_of(ordered_pack([(2, tree)])))  # type: ignore[arg-type]
    missing = b"100644 .gitmodules\0" + b"\x01" * 20
    with pytest.raises(git_ingest.FsckError, match="gitmodulesMissing"):
        git_ingest.ingest_pack(Repo(str(server)).object_store, reader_of(ordered_pack([(2, missing)])))  # type: ignore[arg-type]


DELTA_NAMES = [b"a", b"a.c", b"a-b", b"ab", b"b", b".gitmodules", b"z", b".git", b".GITMODULES", b"git~1", b"..", b""]
DELTA_MODES = [b"100644", b"100755", b"40000", b"120000", b"160000", b"0100644", b"040000", b"100664", b"100600",
               b"+100644"]
INNOCENT_GITMODULES = b'[submodule "lib"]\n\tpath = lib\n\turl = ./lib\n'
DELTA_IDS = [b"\x11" * 20, b"\x22" * 20] + [bytes.fromhex(Blob.from_string(text).id.decode())
                                            for text in (INNOCENT_GITMODULES, EVIL_GITMODULES)] + [b"\0" * 20]


def _tree_bytes(entries: list[tuple[bytes, bytes, bytes]]) -> bytes:
    return b"".join(mode + b" " + name + b"\0" + raw_id for name, mode, raw_id in entries)


@st.composite
def delta_trees(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """A tree without findings and a tree made of it by a few edits (an id, a mode, a name changed in
    place, an entry added or dropped, two swapped): the second is pushed as a delta of the first."""
    names = draw(st.lists(st.sampled_from(DELTA_NAMES[:9]), min_size=1, max_size=6, unique=True))
    base = [(name, draw(st.sampled_from(DELTA_MODES[:2] if name.lower() == b".gitmodules" else DELTA_MODES[:5])),
             DELTA_IDS[2] if name.lower() == b".gitmodules" else draw(st.sampled_from(DELTA_IDS[:2])))
            for name in names]
    base.sort(key=lambda e: e[0] + b"/" if e[1] == b"40000" else e[0])
    child = list(base)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(child) - 1))
        name, mode, raw_id = child[at]
        edit = draw(st.sampled_from(["id", "id", "mode", "mode", "name", "add", "drop", "swap"]))
        if edit == "id":
            child[at] = (name, mode, draw(st.sampled_from(DELTA_IDS)))
        elif edit == "mode":
            child[at] = (name, draw(st.sampled_from(DELTA_MODES)), raw_id)
        elif edit == "name":
            child[at] = (draw(st.sampled_from(DELTA_NAMES)), mode, raw_id)
        elif edit == "add":
            child.insert(at, (draw(st.sampled_from(DELTA_NAMES)), mode, raw_id))
        elif edit == "drop" and len(child) > 1:
            del child[at]
        elif edit == "swap" and at + 1 < len(child):
            child[at], child[at + 1] = child[at + 1], child[at]
    return _tree_bytes(base), _tree_bytes(child)


RULE_SETS = {
    "default": [],
    "strict-modes": [(b"zeroPaddedFilemode", b"error"), (b"nullSha1", b"error")],
    "dotgit-warns": [(b"hasDotgit", b"warn"), (b"hasDotdot", b"warn")],
    "lenient": [(b"treeNotSorted", b"ignore"), (b"duplicateEntries", b"ignore"), (b"gitmodulesSymlink", b"warn")],
    "modes-ignored": [(b"zeroPaddedFilemode", b"ignore"), (b"nullSha1", b"ignore"), (b"badFilemode", b"ignore")],
}


def _outcome(tmp: Path, objects: list[tuple[int, bytes] | tuple[str, int, bytes]], rules: git_ingest.FsckRules
             ) -> tuple[str, list[str], set[bytes] | None]:
    return _pack_outcome(tmp, ordered_pack(objects), rules)


def _edited(base: list[tuple[bytes, bytes, bytes]], at: int, mode: bytes, raw_id: bytes) -> tuple[bytes, bytes]:
    child = list(base)
    child[at] = (child[at][0], mode, raw_id)
    return _tree_bytes(base), _tree_bytes(child)


_AB = [(b"a", b"100644", DELTA_IDS[0]), (b"a-b", b"100644", DELTA_IDS[0]), (b"z", b"100644", DELTA_IDS[0])]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(trees=delta_trees(), rules_name=st.sampled_from(sorted(RULE_SETS)), skip_base=st.booleans())
@example(trees=_edited(_AB, 0, b"40000", DELTA_IDS[0]), rules_name="default", skip_base=False)  # "a/" > "a-b"
@example(trees=_edited(_AB, 2, b"040000", DELTA_IDS[0]), rules_name="default", skip_base=False)  # as long as before
@example(trees=_edited(_AB, 0, b"100644", DELTA_IDS[1]), rules_name="default", skip_base=False)  # the first link
@example(trees=_edited(_AB, 1, b"+100644", DELTA_IDS[0]), rules_name="modes-ignored", skip_base=False)  # git: malformed
@example(trees=_edited([(b".git", b"40000", DELTA_IDS[0]), *_AB], 1, b"100644", DELTA_IDS[1]),
         rules_name="dotgit-warns", skip_base=False)  # a base with a finding: the tree has its own
@example(trees=_edited([(b".git", b"40000", DELTA_IDS[0]), *_AB], 1, b"100644", DELTA_IDS[1]),
         rules_name="default", skip_base=True)  # the base is let through by the skip list, the tree is not
@example(trees=_edited([(b".gitmodules", b"100644", DELTA_IDS[2]), *_AB], 0, b"100644", DELTA_IDS[3]),
         rules_name="default", skip_base=False)  # an evil .gitmodules in place of an innocent one
def test_a_tree_checked_against_its_delta_base_is_checked_as_a_whole(tmp_path: Path, trees: tuple[bytes, bytes],
                                                                     rules_name: str, skip_base: bool) -> None:
    """A tree pushed as a delta of a tree without findings is checked where it differs, and links
    only what differs: the answer, the warnings told and the links are those of the whole check."""
    base, child = trees
    base_id = Tree.from_string(base).id if base else b""
    rules = git_ingest.fsck_rules(RULE_SETS[rules_name], [base_id] if skip_base else [])
    blobs: list[tuple[int, bytes] | tuple[str, int, bytes]] = [(3, INNOCENT_GITMODULES), (3, EVIL_GITMODULES)]
    whole = _outcome(tmp_path, [*blobs, (2, base), (2, child)], rules)
    as_delta = _outcome(tmp_path, [*blobs, (2, base), ("ofs", 2, child)], rules)
    assert as_delta == whole


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _copy_op(offset: int, size: int) -> bytes:
    cmd, args = 0x80, bytearray()
    for i in range(4):
        if offset >> (8 * i) & 0xFF:
            cmd |= 1 << i
            args.append(offset >> (8 * i) & 0xFF)
    for i in range(3):
        if size >> (8 * i) & 0xFF:
            cmd |= 0x10 << i
            args.append(size >> (8 * i) & 0xFF)
    return bytes([cmd]) + bytes(args)


def _overwritten(base: bytes, edits: list[tuple[int, bytes]]) -> tuple[bytes, bytes]:
    """``base`` with each ``(position, bytes)`` written over it (as far as it goes), and a delta that
    makes that of ``base``: copies of the base's bytes to the same place, inserts of the new ones."""
    text = bytearray(base)
    for at, data in edits:
        at = min(at, len(base))
        text[at:at + len(data)] = data[:max(0, len(base) - at)]
    result = bytes(text)
    ops, pos = [], 0
    while pos < len(result):
        same = pos
        while same < len(result) and result[same] == base[same]:
            same += 1
        if same > pos:
            for start in range(pos, same, 0xFFFF):
                ops.append(_copy_op(start, min(0xFFFF, same - start)))
            pos = same
            continue
        differ = pos
        while differ < len(result) and result[differ] != base[differ] and differ - pos < 127:
            differ += 1
        ops.append(bytes([differ - pos]) + result[pos:differ])
        pos = differ
    return result, _varint(len(base)) + _varint(len(result)) + b"".join(ops)


def _pack_with_delta(objects: list[tuple[int, bytes]], *deltas: tuple[int, bytes]) -> bytes:
    """A pack of whole objects, then OFS_DELTAs ``(index of the base among the objects before, delta)``."""
    import hashlib
    import struct
    import zlib

    from dulwich.object_format import DEFAULT_OBJECT_FORMAT
    from dulwich.pack import pack_object_header

    out = b"PACK" + struct.pack(">II", 2, len(objects) + len(deltas))
    offsets = []
    for type_num, text in objects:
        offsets.append(len(out))
        out += bytes(pack_object_header(type_num, None, len(text), DEFAULT_OBJECT_FORMAT)) + zlib.compress(text)
    for base, delta in deltas:
        offsets.append(len(out))
        out += bytes(pack_object_header(6, offsets[-1] - offsets[base], len(delta), DEFAULT_OBJECT_FORMAT))
        out += zlib.compress(delta)
    return out + hashlib.sha1(out).digest()


def _pack_outcome(tmp: Path, data: bytes, rules: git_ingest.FsckRules) -> tuple[str, list[str], set[bytes] | None]:
    server = tmp / "s.git"
    shutil.rmtree(server, ignore_errors=True)
    Repo.init_bare(str(server), mkdir=True)
    links = git_ingest.PushLinks()
    ingest = git_ingest.PackIngest(Repo(str(server)).object_store, links, None, rules)
    try:
        ingest.write(data)
        ingest.commit()
        result = "accepted"
    except Exception as exc:  # noqa: BLE001 (the refusal, in the words the client would see)
        result = f"{type(exc).__name__}: {exc}"
    finally:
        ingest.abort()
    return result, ingest.warnings.shown(), links.linked()


EDIT_BYTES = st.binary(min_size=1, max_size=24) | st.sampled_from(
    [b"\0", b" ", b"40000", b"100644", b"100755", b"120000", b"160000", b"\0" * 20, b"a\0", b" a", b"/", b".git",
     *DELTA_IDS])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(trees=delta_trees(), edits=st.lists(st.tuples(st.integers(0, 200), EDIT_BYTES), min_size=1, max_size=4),
       rules_name=st.sampled_from(sorted(RULE_SETS)))
@example(trees=_edited(_AB, 0, b"100644", DELTA_IDS[1]), edits=[(20, b"\0")], rules_name="default")  # a NUL in a name
@example(trees=_edited(_AB, 0, b"100644", DELTA_IDS[1]), edits=[(0, b"100755")], rules_name="default")
@example(trees=_edited(_AB, 0, b"100644", DELTA_IDS[1]), edits=[(0, b"040000")], rules_name="default")
@example(trees=_edited(_AB, 0, b"100644", DELTA_IDS[1]), edits=[(9, b"\0" * 20)], rules_name="default")  # null id
@example(trees=_edited(_AB, 0, b"100644", DELTA_IDS[1]), edits=[(7, b"b")], rules_name="default")  # "b" < "a-b"
@example(trees=_edited([(b".gitmodules", b"100644", DELTA_IDS[2]), *_AB], 0, b"100644", DELTA_IDS[2]),
         edits=[(20, DELTA_IDS[3])], rules_name="default")  # the evil .gitmodules by an insert
def test_a_tree_delta_of_inserts_in_place_is_checked_as_the_whole_tree(
        tmp_path: Path, trees: tuple[bytes, bytes], edits: list[tuple[int, bytes]], rules_name: str) -> None:
    """A delta that copies its base's bytes to the same place and inserts others (any bytes, anywhere)
    is checked from its inserts alone when they rewrite whole entries under the base's names
    (``_checked_from_delta``): the answer, the warnings and the links are those of the whole check."""
    base = trees[0]
    child, delta = _overwritten(base, edits)
    rules = git_ingest.fsck_rules(RULE_SETS[rules_name], [])
    blobs = [(3, INNOCENT_GITMODULES), (3, EVIL_GITMODULES)]
    whole = _pack_outcome(tmp_path, ordered_pack([*blobs, (2, base), (2, child)]), rules)
    as_delta = _pack_outcome(tmp_path, _pack_with_delta([*blobs, (2, base)], (2, delta)), rules)
    assert as_delta == whole


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(trees=delta_trees(), edits=st.lists(st.tuples(st.integers(0, 200), EDIT_BYTES), min_size=1, max_size=3),
       rules_name=st.sampled_from(sorted(RULE_SETS)))
@example(trees=_edited(_AB, 0, b"40000", DELTA_IDS[0]), edits=[(40, DELTA_IDS[1])], rules_name="default")
@example(trees=_edited(_AB, 2, b"40000", DELTA_IDS[1]), edits=[(60, DELTA_IDS[0])], rules_name="default")
def test_a_chain_of_tree_deltas_is_checked_as_its_whole_trees(
        tmp_path: Path, trees: tuple[bytes, bytes], edits: list[tuple[int, bytes]], rules_name: str) -> None:
    """A tree, a delta of it (any edit: a subtree turned file moves the entries after it), and a delta
    of inserts in place of that one, which its base's entry offsets check: as their whole trees."""
    from dulwich.pack import create_delta

    base, middle = trees
    child, delta = _overwritten(middle, edits)
    rules = git_ingest.fsck_rules(RULE_SETS[rules_name], [])
    blobs = [(3, INNOCENT_GITMODULES), (3, EVIL_GITMODULES)]
    whole = _pack_outcome(tmp_path, ordered_pack([*blobs, (2, base), (2, middle), (2, child)]), rules)
    chain = _pack_with_delta([*blobs, (2, base)], (2, b"".join(create_delta(base, middle))), (3, delta))
    assert _pack_outcome(tmp_path, chain, rules) == whole


def _true_offsets(raw: bytes) -> list[int]:
    """Where each entry of a tree starts, then its end, read from its bytes."""
    offsets, pos = [0], 0
    while pos < len(raw):
        pos = raw.index(b"\0", pos) + 21
        offsets.append(pos)
    return offsets


@settings(max_examples=300, deadline=None)
@given(trees=delta_trees(), edits=st.lists(st.tuples(st.integers(0, 200), EDIT_BYTES), min_size=1, max_size=3))
@example(trees=_edited(_AB, 0, b"40000", DELTA_IDS[0]), edits=[(40, DELTA_IDS[1])])
@example(trees=(_tree_bytes(_AB), _tree_bytes([(b"a", b"0100644", DELTA_IDS[0]), _AB[1], (b"z", b"10064", DELTA_IDS[0])])),
         edits=[(40, DELTA_IDS[1])])  # a padded mode and a short one: the length kept, the entries moved
def test_a_checked_trees_entry_offsets_are_where_its_entries_are(trees: tuple[bytes, bytes],
                                                                 edits: list[tuple[int, bytes]]) -> None:
    """Whichever way a tree was checked (whole, against its base, from a delta's inserts), the entry
    offsets it keeps for the deltas of it are where its entries start (or there are none)."""
    from dulwich.pack import create_delta

    base, middle = trees
    shapes: list[tuple[bytes, git_ingest.TreeShape]] = []
    try:
        shape, clean = git_ingest.check_tree(base)
        shapes.append((base, shape))
        if clean:
            shape, clean = git_ingest.check_tree(middle, base=shape, delta=b"".join(create_delta(base, middle)))
            shapes.append((middle, shape))
        if clean:
            child, delta = _overwritten(middle, edits)
            shape, clean = git_ingest.check_tree(child, base=shape, delta=delta)
            shapes.append((child, shape))
    except (git_ingest.FsckError, ObjectFormatException):
        pass
    for raw, shape in shapes:
        assert shape.entries == list(parse_tree(raw, 20))
        if shape.offsets is not None:
            assert shape.offsets == _true_offsets(raw)


@pytest.mark.parametrize("order", [(1, 0), (1, 1), (0, 0)])  # swapped (out of order), one entry twice
def test_a_tree_delta_that_moves_bytes_is_checked_whole(tmp_path: Path, order: tuple[int, int]) -> None:
    """A delta whose copies take the base's entries elsewhere (no insert, the length kept) is parsed
    whole: the tree is not its base."""
    entries = [(b"aa", b"100644", DELTA_IDS[0]), (b"bb", b"100644", DELTA_IDS[1])]
    base = _tree_bytes(entries)
    size = len(base) // 2
    child = b"".join(base[i * size:(i + 1) * size] for i in order)
    delta = _varint(len(base)) + _varint(len(child)) + b"".join(_copy_op(i * size, size) for i in order)
    rules = git_ingest.fsck_rules([], [])
    whole = _pack_outcome(tmp_path, ordered_pack([(2, base), (2, child)]), rules)
    as_delta = _pack_outcome(tmp_path, _pack_with_delta([(2, base)], (0, delta)), rules)
    assert as_delta == whole and whole[0] != "accepted"


def test_a_tree_delta_of_inserts_in_place_is_not_parsed_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check of such a delta reads the entries it touches, not the whole tree."""
    entries = [(b"f%03d" % i, b"100644", DELTA_IDS[i % 2]) for i in range(200)]
    base = _tree_bytes(entries)
    shape, clean = git_ingest.check_tree(base)
    assert clean and shape.offsets is not None and shape.offsets[-1] == len(base)
    at = shape.offsets[150] + len(b"100644 f150\0")
    child, delta = _overwritten(base, [(at, DELTA_IDS[1])])  # another id for f150 (it had DELTA_IDS[0])
    monkeypatch.setattr(git_ingest, "parse_tree", lambda *_args: pytest.fail("the tree was parsed whole"))
    checked, clean = git_ingest.check_tree(child, base=shape, delta=delta)
    assert clean and checked.fresh == [(b"f150", 0o100644, binascii.hexlify(DELTA_IDS[1]))]
    assert checked.entries[150] == checked.fresh[0] and checked.entries[:150] == shape.entries[:150]
    assert checked.offsets is shape.offsets


def _chain_pack(objects: list[tuple[str, bytes, bytes]]) -> bytes:
    """A pack of blobs: ``("whole", b"", text)``, ``("ofs", base text, text)`` (a delta against the
    object before it) and ``("ref", base text, text)`` (a delta naming its base's id); and trees,
    ``("tree", b"", raw)``."""
    import hashlib
    import struct
    import zlib

    from dulwich.object_format import DEFAULT_OBJECT_FORMAT
    from dulwich.pack import create_delta, pack_object_header

    out = b"PACK" + struct.pack(">II", 2, len(objects))
    previous = 0
    for how, base, text in objects:
        at = len(out)
        if how in ("whole", "tree"):
            kind = 3 if how == "whole" else 2
            out += bytes(pack_object_header(kind, None, len(text), DEFAULT_OBJECT_FORMAT)) + zlib.compress(text)
        else:
            delta = b"".join(create_delta(base, text))
            base_ref: int | bytes = at - previous if how == "ofs" else bytes.fromhex(Blob.from_string(base).id.decode())
            out += bytes(pack_object_header(6 if how == "ofs" else 7, base_ref, len(delta), DEFAULT_OBJECT_FORMAT))
            out += zlib.compress(delta)
        previous = at
    return out + hashlib.sha1(out).digest()


def test_a_chain_of_deltas_holds_one_text_at_a_time(tmp_path: Path) -> None:
    """Each delta copies its base whole and adds a byte: the chain's texts were all held until its
    end (a 21 KB pack of 400 such deltas of a 1 MB blob took 434 MiB)."""
    import tracemalloc

    texts = [bytes(range(256)) * 1000]
    for i in range(40):
        texts.append(texts[-1] + b"%d" % i)
    data = _chain_pack([("whole", b"", texts[0])] + [("ofs", texts[i], texts[i + 1]) for i in range(40)])
    server = tmp_path / "s.git"
    Repo.init_bare(str(server), mkdir=True)
    tracemalloc.start()
    try:
        pack = git_ingest.ingest_pack(Repo(str(server)).object_store, reader_of(data))  # type: ignore[arg-type]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert pack is not None and {bytes(s) for s in pack} == {Blob.from_string(t).id for t in texts}
    assert peak < 12 * len(texts[0]), f"{peak} bytes at the peak for texts of {len(texts[0])}"  # not 41 texts


def _comb(levels: int) -> tuple[bytes, list[bytes]]:
    """Each object of a chain has two deltas below it, both naming it by id: the next of the chain
    first, then a leaf; so every object waits on the stack for its leaf while the chain goes on."""
    spine = [bytes(range(256)) * 400]
    objects = [("whole", b"", spine[0])]
    texts = [spine[0]]
    for i in range(levels):
        spine.append(spine[-1] + b"<%d>" % i)
        leaf = spine[-2] + b"leaf %d" % i
        objects += [("ref", spine[-2], spine[-1]), ("ref", spine[-2], leaf)]
        texts += [spine[-1], leaf]
    return _chain_pack(objects), texts


def test_texts_past_the_budget_are_dropped_and_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data, texts = _comb(30)
    monkeypatch.setattr(git_ingest, "RESOLVE_TEXT_BUDGET", 4 * len(texts[0]))  # four texts of thirty
    server = tmp_path / "s.git"
    Repo.init_bare(str(server), mkdir=True)
    rebuilt: list[int] = []
    inflate = git_ingest.PackIngest._inflate

    def counted(self: git_ingest.PackIngest, at: int) -> bytes:
        rebuilt.append(at)
        return inflate(self, at)

    monkeypatch.setattr(git_ingest.PackIngest, "_inflate", counted)
    pack = git_ingest.ingest_pack(Repo(str(server)).object_store, reader_of(data))  # type: ignore[arg-type]
    assert pack is not None and {bytes(s) for s in pack} == {Blob.from_string(t).id for t in texts}
    assert len(rebuilt) > len(texts), "some bases were rebuilt"
    for text in texts[::7]:
        assert git(server, "cat-file", "-p", Blob.from_string(text).id.decode()) == text
    git(server, "fsck", "--full", "--strict")


def test_a_pack_whose_bases_cost_too_much_to_rebuild_is_refused(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    data, texts = _comb(30)
    monkeypatch.setattr(git_ingest, "RESOLVE_TEXT_BUDGET", 2 * len(texts[0]))
    monkeypatch.setattr(git_ingest, "REBUILD_LIMIT", 20 * len(texts[0]))
    server = tmp_path / "s.git"
    Repo.init_bare(str(server), mkdir=True)
    before = sorted(p.name for p in (server / "objects").rglob("*"))
    with pytest.raises(git_ingest.ProtocolError, match=r"deltas cost too much to resolve .*git repack -adf"):
        git_ingest.ingest_pack(Repo(str(server)).object_store, reader_of(data))  # type: ignore[arg-type]
    assert sorted(p.name for p in (server / "objects").rglob("*")) == before


def test_a_gitmodules_file_at_the_end_of_a_costly_chain_is_refused(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The checks of a push's ``.gitmodules`` files rebuild each from its chain: that counts too."""
    texts = [INNOCENT_GITMODULES + b"# padding\n" * 5000]
    for i in range(20):
        texts.append(texts[-1] + b"# %d\n" % i)
    tree = b"100644 .gitmodules\0" + bytes.fromhex(Blob.from_string(texts[-1]).id.decode())
    data = _chain_pack([("whole", b"", texts[0])] + [("ofs", texts[i], texts[i + 1]) for i in range(20)]
                       + [("tree", b"", tree)])
    server = tmp_path / "s.git"
    Repo.init_bare(str(server), mkdir=True)
    pack = git_ingest.ingest_pack(Repo(str(server)).object_store, reader_of(data))  # type: ignore[arg-type]
    assert pack is not None and Tree.from_string(tree).id in {bytes(s) for s in pack}
    server = tmp_path / "t.git"
    Repo.init_bare(str(server), mkdir=True)
    monkeypatch.setattr(git_ingest, "REBUILD_LIMIT", 10 * len(texts[0]))
    with pytest.raises(git_ingest.ProtocolError, match="deltas cost too much to resolve"):
        git_ingest.ingest_pack(Repo(str(server)).object_store, reader_of(data))  # type: ignore[arg-type]


@pytest.mark.parametrize(("raw", "told"), [
    (tree_of((b"100644", b"a"), (b"+100644", b"b")), "malformed mode in tree entry"),
    (tree_of((b"100644", b""), (b"100644", b"b")), "empty filename in tree entry"),
])
def test_a_tree_git_cannot_read_is_refused_whatever_the_rules(raw: bytes, told: str) -> None:
    """``+100644`` parses as 100644 here, and an empty name parses; git's tree reader refuses both
    (its fsck: the tree's links are broken) and no git can read the tree: no setting lets it in."""
    lenient = git_ingest.fsck_rules([(name.encode(), b"ignore") for name in git_ingest.FSCK_MESSAGES])
    with pytest.raises(git_ingest.FsckError, match=f"badTree: {told}"):
        git_ingest.check_object(2, raw, lenient)
    with tempfile.TemporaryDirectory() as where:
        subprocess.run(["git", "init", "-q", "--bare", where], check=True)
        subprocess.run(["git", "hash-object", "--literally", "-w", "-t", "tree", "--stdin"], cwd=where, input=raw,
                       check=True, capture_output=True)
        report = subprocess.run(["git", "fsck", "--no-dangling"], cwd=where, capture_output=True, text=True,
                                check=False)
    assert told in report.stderr


@pytest.mark.parametrize("how", ["mapped", "pages-released-at-each-read", "no-map"])
def test_the_pack_is_read_mapped_or_not_alike(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    """Resolution reads the pack through a map (its pages released every ``VIEW_RELEASE`` bytes),
    or with ``pread`` where the file cannot be mapped."""
    import mmap

    data, texts = _comb(6)
    if how == "pages-released-at-each-read":
        monkeypatch.setattr(git_ingest, "VIEW_RELEASE", 0)
    elif how == "no-map":
        def refuse(*args: object, **kwargs: object) -> mmap.mmap:
            raise OSError("no map here")
        monkeypatch.setattr(git_ingest.mmap, "mmap", refuse)
    server = tmp_path / "s.git"
    Repo.init_bare(str(server), mkdir=True)
    pack = git_ingest.ingest_pack(Repo(str(server)).object_store, reader_of(data))  # type: ignore[arg-type]
    assert pack is not None and {bytes(s) for s in pack} == {Blob.from_string(t).id for t in texts}
    git(server, "fsck", "--full", "--strict")


def test_the_scan_s_texts_spare_inflating_again_and_index_the_same_pack(
        pushed: tuple[Path, Path, bytes, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import zlib

    server, work, old, new = pushed
    data = thin_pack(work, old, new)
    own = git_ingest.ingest_pack(Repo(str(server)).object_store, reader_of(data))  # type: ignore[arg-type]
    assert own is not None
    inflated: list[int] = []

    class CountingZlib:
        error = zlib.error

        @staticmethod
        def decompress(raw: bytes, *args: int) -> bytes:
            inflated.append(len(raw))
            return zlib.decompress(raw, *args)

    monkeypatch.setattr(git_ingest, "zlib", CountingZlib)
    counts = {}
    everything = git_ingest.KEPT_TEXT_BYTES
    for kept in (everything, 0, 300):  # all, none, some of them
        monkeypatch.setattr(git_ingest, "KEPT_TEXT_BYTES", kept)
        twin = tmp_path / f"twin-{kept}.git"
        git(tmp_path, "clone", "-q", "--bare", str(server), str(twin))
        inflated.clear()
        pack = ingest_with_records(Repo(str(twin)).object_store, data)
        assert pack is not None
        counts[kept] = len(inflated)
        assert Path(own._basename + ".idx").read_bytes() == Path(pack._basename + ".idx").read_bytes()  # type: ignore[attr-defined]
        git(twin, "update-ref", "refs/heads/main", new.decode(), old.decode())
        git(twin, "fsck", "--full", "--strict")
    blobs_whole = sum(1 for line in git(server, "verify-pack", "-v", own._basename + ".idx").splitlines()  # type: ignore[attr-defined]
                      if b" blob " in line and len(line.split()) == 5)
    assert counts[everything] <= blobs_whole, "only whole blobs (bases of deltas) are inflated again"
    assert counts[everything] < counts[300] < counts[0], counts


def test_reads_that_jump_across_the_mapped_pack_release_its_pages_as_often_as_they_map_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A read through the map maps the kernel's fault-around window of pages, however few bytes it
    reads: small trees between large blobs (a migration's push reads so, jumping across its pack)
    hold at most ``VIEW_RELEASE`` of the pack's pages mapped, not every window they touched."""
    import hashlib
    import mmap
    import random

    window = 64 << 10  # Linux's fault_around_bytes
    monkeypatch.setattr(git_ingest, "VIEW_RELEASE", 4 * window)
    monkeypatch.setattr(git_ingest, "KEPT_TEXT_BYTES", 0)  # every tree read through the map
    rng = random.Random(7)
    entries = []
    for i in range(40):
        blob = rng.randbytes(window + 4096)  # incompressible: each tree in a window of its own
        blob_id = hashlib.sha1(b"blob %d\0" % len(blob) + blob).digest()
        entries += [(2, b"100644 f%d\0" % i + blob_id), (3, blob)]
    mapped: list[set[int]] = [set()]

    class CountingMap(mmap.mmap):
        def __getitem__(self, key: slice) -> bytes:  # type: ignore[override]
            if key.start is not None and key.stop is not None:
                mapped[-1].update(range(key.start // window, (key.stop - 1) // window + 1))
            return super().__getitem__(key)

        def madvise(self, option: int, start: int = 0, length: int = 0) -> None:
            mapped.append(set())
            super().madvise(option, start, length)

    monkeypatch.setattr(git_ingest.mmap, "mmap", CountingMap)
    server = tmp_path / "s.git"
    Repo.init_bare(str(server), mkdir=True)
    pack = git_ingest.ingest_pack(Repo(str(server)).object_store, reader_of(raw_pack(entries)))  # type: ignore[arg-type]
    assert pack is not None and len(pack) == 80
    assert sum(map(len, mapped)) >= 40, "every tree was read through the map"
    assert max(map(len, mapped)) * window <= git_ingest.VIEW_RELEASE + window, [len(m) for m in mapped]
    git(server, "fsck", "--full", "--strict")


def test_the_scan_s_kept_texts_cost_their_own_bytes_and_a_few_per_object(tmp_path: Path) -> None:
    """What the ingest keeps of a scanned pack (the columns, the ids, the texts it will not inflate
    again) is the texts' bytes and about 130 bytes an object besides: a dict of the texts by index
    took 220 (the dict, its keys, a bytes object each), in the server and in the helper it forks."""
    import gc
    import hashlib
    import tracemalloc

    count = 4000
    entries = [(2, b"100644 f%d\0" % i + hashlib.sha1(b"%d" % i).digest()) for i in range(count)]
    texts = sum(len(body) for _type, body in entries)
    data = raw_pack(entries)
    server = tmp_path / "s.git"
    Repo.init_bare(str(server), mkdir=True)
    store = Repo(str(server)).object_store
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        ingest = git_ingest.PackIngest(store)  # type: ignore[arg-type]
        for at in range(0, len(data), 1 << 16):
            ingest.write(data[at:at + (1 << 16)])
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        if not tracing:
            tracemalloc.stop()
    try:
        assert held - texts < 160 * count, (held - texts) / count
        pack = ingest.commit()
        assert pack is not None and len(pack) == count
        git(server, "fsck", "--full", "--strict")
    finally:
        ingest.abort()


def _growing_chain(deltas: int) -> tuple[bytes, bytes]:
    """A pack of a 100-byte blob and ``deltas`` OFS_DELTAs, each of the one before it, copying it
    whole and adding a byte: a chain ``deltas`` deep in a pack of some 20 bytes a delta; and the
    text of its last object."""
    import hashlib
    import struct
    import zlib

    def varint(n: int) -> bytes:
        out = bytearray()
        while True:
            out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
            n >>= 7
            if not n:
                return bytes(out)

    def entry_header(kind: int, size: int) -> bytes:
        out = bytearray([(kind << 4) | (size & 0x0F) | (0x80 if size > 0x0F else 0)])
        size >>= 4
        while size:
            out.append((size & 0x7F) | (0x80 if size > 0x7F else 0))
            size >>= 7
        return bytes(out)

    def distance(n: int) -> bytes:
        out = [n & 0x7F]
        n >>= 7
        while n:
            n -= 1
            out.append(0x80 | (n & 0x7F))
            n >>= 7
        return bytes(reversed(out))

    text = b"x" * 100
    out = bytearray(b"PACK" + struct.pack(">II", 2, deltas + 1))
    previous = len(out)
    out += entry_header(3, len(text)) + zlib.compress(text)
    for _ in range(deltas):
        n = len(text)  # copy bytes 0..n of the base (offset omitted, two size bytes), insert one byte
        delta = varint(n) + varint(n + 1) + bytes([0x80 | 0x10 | 0x20]) + n.to_bytes(2, "little") + b"\x01y"
        at = len(out)
        out += entry_header(6, len(delta)) + distance(at - previous) + zlib.compress(delta)
        previous, text = at, text + b"y"
    return bytes(out + hashlib.sha1(out).digest()), text


def test_a_pushed_delta_chain_deeper_than_git_writes_is_refused(tmp_path: Path) -> None:
    """git's pack-objects writes chains at most 4,095 deep; a deeper one was taken in, and one past
    the readers' bound (12,000) then failed every fetch with ``remote: internal error``."""
    deepest, text = _growing_chain(git_ingest.MAX_DEPTH)
    server = tmp_path / "s.git"
    Repo.init_bare(str(server), mkdir=True)
    pack = git_ingest.ingest_pack(Repo(str(server)).object_store, reader_of(deepest))  # type: ignore[arg-type]
    assert pack is not None and Blob.from_string(text).id in {bytes(s) for s in pack}
    assert git(server, "cat-file", "-p", Blob.from_string(text).id.decode()) == text
    server = tmp_path / "t.git"
    Repo.init_bare(str(server), mkdir=True)
    before = {p: p.read_bytes() for p in server.rglob("*") if p.is_file()}
    too_deep, _ = _growing_chain(git_ingest.MAX_DEPTH + 1)
    with pytest.raises(git_ingest.ProtocolError, match=r"delta chain more than 4095 deltas deep; repack with a "
                                                       r"smaller depth \(git repack -adf --depth=50\)"):
        git_ingest.ingest_pack(Repo(str(server)).object_store, reader_of(too_deep))  # type: ignore[arg-type]
    assert {p: p.read_bytes() for p in server.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("how", ["whole", "delta", "stored"])
def test_a_dotfile_too_large_to_parse_is_refused_without_being_inflated(tmp_path: Path, how: str) -> None:
    """A ``.gitmodules`` of 64 MiB of zeros is 64 KiB in a pack (or a delta of a few bytes rebuilds
    it from a small base): it was inflated or rebuilt whole to be found too large (a 1 GiB
    ``.gitattributes`` pushed in a 1 MB pack took 1.1 GB of the server's memory)."""
    import tracemalloc
    import zlib

    from backends import git_dotfiles
    big = 64 << 20
    assert big > git_dotfiles.MAX_GITMODULES
    hasher = hashlib.sha1(b"blob %d\0" % big)
    hasher.update(bytes(big))
    big_id = hasher.digest()
    tree = b"100644 .gitmodules\0" + big_id
    base = bytes(1 << 20)
    squeezed = zlib.compress(bytes(big), 9)
    if how == "delta":  # 64 copies of the whole 1 MiB base
        ops = (bytes([0x80 | 0x40]) + b"\x10") * (big // len(base))
        delta = _delta_varint(len(base)) + _delta_varint(big) + bytes(ops)
        entries = [_entry(3, len(base), zlib.compress(base)), ("ofs", len(delta), zlib.compress(delta)),
                   _entry(2, len(tree), zlib.compress(tree))]
    else:
        entries = [_entry(3, big, squeezed)] if how == "whole" else []
        entries.append(_entry(2, len(tree), zlib.compress(tree)))
    server = tmp_path / "s.git"
    Repo.init_bare(str(server), mkdir=True)
    if how == "stored":
        stored = git_ingest.ingest_pack(Repo(str(server)).object_store,  # type: ignore[arg-type]
                                        reader_of(_packed([_entry(3, big, squeezed)])))
        assert stored is not None and binascii.hexlify(big_id) in {bytes(s) for s in stored}
    before = {p: p.read_bytes() for p in server.rglob("*") if p.is_file()}
    tracemalloc.start()
    try:
        with pytest.raises(ObjectFormatException, match="gitmodulesLarge: .gitmodules too large to parse"):
            git_ingest.ingest_pack(Repo(str(server)).object_store, reader_of(_packed(entries)))  # type: ignore[arg-type]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, f"{peak >> 20} MiB held to refuse it"
    assert {p: p.read_bytes() for p in server.rglob("*") if p.is_file()} == before


def _delta_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _entry(kind: int, size: int, deflated: bytes) -> tuple[int | str, int, bytes]:
    return kind, size, deflated


def _packed(entries: list[tuple[int | str, int, bytes]]) -> bytes:
    """A pack of entries given as (type, declared size, deflated data); an ``"ofs"`` entry is an
    OFS_DELTA of the entry before it."""
    import struct
    out = bytearray(b"PACK" + struct.pack(">II", 2, len(entries)))
    previous = 0
    for kind, size, deflated in entries:
        at = len(out)
        type_num = 6 if kind == "ofs" else kind
        assert isinstance(type_num, int)
        head = bytearray([(type_num << 4) | (size & 0x0F) | (0x80 if size > 0x0F else 0)])
        size >>= 4
        while size:
            head.append((size & 0x7F) | (0x80 if size > 0x7F else 0))
            size >>= 7
        out += head
        if kind == "ofs":
            out += bytes([at - previous]) if at - previous < 0x80 else bytes([0x80 | ((at - previous) >> 7) - 1,
                                                                               (at - previous) & 0x7F])
        out += deflated
        previous = at
    return bytes(out + hashlib.sha1(out).digest())
