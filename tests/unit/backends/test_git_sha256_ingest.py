"""Push ingest in a SHA-256 repository, and the same in a SHA-1 one: packs git wrote, and packs
written by hand to be broken, into stores that git itself then checks (``git fsck --full --strict``).

SHA-256 names objects and packs, sums packs and indexes (32 bytes), and sizes
the ids in trees (32 raw bytes), commits and tags (64 hex digits) and
REF_DELTAs; an id of the other length is a bad id.
"""

from __future__ import annotations

import os
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from dulwich.errors import ObjectFormatException
from dulwich.repo import Repo

from backends import git as git_backend
from backends import git_ingest
from backends.interfaces import MISSING_OBJECTS, OBJECT_FORMATS, ObjectFormat, RefUpdate, object_format_of
from protocols.errors import ProtocolError
from protocols.git_receive import PackScanner

ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent", "GIT_CONFIG_NOSYSTEM": "1",
       "GIT_AUTHOR_NAME": "A", "GIT_AUTHOR_EMAIL": "a@example.com", "GIT_COMMITTER_NAME": "C",
       "GIT_COMMITTER_EMAIL": "c@example.com", "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
       "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z"}
IDENT = b"A <a@example.com> 1767225600 +0000"


def git(cwd: Path, *args: str, input: bytes | None = None) -> bytes:
    return subprocess.run(["git", *args], cwd=cwd, env=ENV, input=input, check=True, capture_output=True).stdout


@pytest.fixture(params=["sha1", "sha256"])
def fmt(request: pytest.FixtureRequest) -> ObjectFormat:
    return OBJECT_FORMATS[request.param]


def bare(tmp_path: Path, fmt: ObjectFormat, name: str = "server.git") -> Path:
    path = tmp_path / name
    git(tmp_path, "init", "-q", "--bare", f"--object-format={fmt.name}", str(path))
    return path


@pytest.fixture
def history(tmp_path: Path, fmt: ObjectFormat) -> tuple[Path, Path, bytes, bytes]:
    """(bare server at ``base``, work repository, base, tip): three commits past the base edit a
    large file (deltas against the server's blob), and an annotated tag names the tip."""
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main", f"--object-format={fmt.name}")
    text = "".join(f"line {i} of a long file that deltas well\n" for i in range(2000))
    (work / "a.txt").write_text(text)
    (work / "dir").mkdir()
    (work / "dir" / "b.txt").write_text(text[::-1])
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "base")
    base = git(work, "rev-parse", "HEAD").strip()
    server = tmp_path / "server.git"
    git(tmp_path, "clone", "-q", "--bare", str(work), str(server))
    git(server, "repack", "-a", "-d", "-q")
    for k in range(3):
        (work / "a.txt").write_text(text + f"change {k}\n")
        (work / "dir" / f"n{k}.txt").write_text(f"new {k}\n")
        git(work, "add", "-A")
        git(work, "commit", "-q", "-m", f"c{k}")
    git(work, "tag", "-a", "v1", "-m", "the tip")
    return server, work, base, git(work, "rev-parse", "HEAD").strip()


def thin_pack(work: Path, base: bytes, tip: bytes, ofs_delta: bool) -> bytes:
    flags = ["--delta-base-offset"] if ofs_delta else []
    return git(work, "pack-objects", "--revs", "--thin", "--stdout", *flags, input=tip + b"\n^" + base + b"\n")


def ingest(store: object, data: bytes, records: bool = False, links: git_ingest.PushLinks | None = None
           ) -> git_ingest.PackIngest:
    """Ingest ``data`` into ``store`` (committed); with ``records``, in pieces with the records of a
    scan of the repository's format, as the gateway hands them over."""
    ingest = git_ingest.PackIngest(store, links)  # type: ignore[arg-type]
    try:
        if records:
            scanner = PackScanner(object_format=object_format_of(store))
            for i in range(0, len(data), 1000):
                piece = data[i:i + 1000]
                assert scanner.feed(piece) == len(piece)
                ingest.write(piece, scanner.take_objects())
        else:
            for i in range(0, len(data), 1000):
                ingest.write(data[i:i + 1000])
        ingest.pack = ingest.commit()  # type: ignore[attr-defined]
    finally:
        ingest.abort()
    return ingest


def snapshot(server: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in server.rglob("*") if p.is_file()}


def test_a_full_pack_is_named_and_indexed_as_git_indexes_it(
        tmp_path: Path, history: tuple[Path, Path, bytes, bytes], fmt: ObjectFormat) -> None:
    _server, work, _base, tip = history
    empty = bare(tmp_path, fmt, "empty.git")
    data = git(work, "pack-objects", "--revs", "--all", "--stdout", "--delta-base-offset", input=b"")
    pack = ingest(Repo(str(empty)).object_store, data).pack  # type: ignore[attr-defined]
    basename = pack._basename
    assert len(os.path.basename(basename)) == len("pack-") + fmt.hex_len
    assert Path(basename + ".pack").read_bytes() == data, "a full pack is stored as it came"
    assert all(len(sha) == fmt.hex_len for sha in pack)
    # git's own index of the same pack, byte for byte
    copy = tmp_path / "copy.pack"
    copy.write_bytes(data)
    git(empty, "index-pack", "-o", str(tmp_path / "copy.idx"), str(copy))
    assert Path(basename + ".idx").read_bytes() == (tmp_path / "copy.idx").read_bytes()
    tag = git(work, "rev-parse", "v1").strip()
    git(empty, "update-ref", "refs/heads/main", tip.decode())
    git(empty, "update-ref", "refs/tags/v1", tag.decode())
    git(empty, "fsck", "--full", "--strict")
    assert git(empty, "cat-file", "-p", "v1") == git(work, "cat-file", "-p", "v1")
    assert git(empty, "cat-file", "-p", "main:a.txt") == (work / "a.txt").read_bytes()


@pytest.mark.parametrize("records", [False, True], ids=["own-scan", "gateway-records"])
@pytest.mark.parametrize("ofs_delta", [True, False], ids=["ofs-delta", "ref-delta"])
def test_a_thin_pack_gets_its_stored_bases_appended(
        history: tuple[Path, Path, bytes, bytes], fmt: ObjectFormat, ofs_delta: bool, records: bool) -> None:
    server, work, base, tip = history
    data = thin_pack(work, base, tip, ofs_delta)
    sent = struct.unpack(">I", data[8:12])[0]
    before = set(os.listdir(server / "objects" / "pack"))
    pack = ingest(Repo(str(server)).object_store, data, records).pack  # type: ignore[attr-defined]
    assert len(pack) > sent, "the bases the thin pack deltas against are appended"
    assert tip.decode() in {sha.decode() for sha in pack}
    stored = Path(pack._basename + ".pack").read_bytes()
    assert stored[-fmt.raw_len:] == fmt.hasher(stored[:-fmt.raw_len]).digest()
    assert len(set(os.listdir(server / "objects" / "pack")) - before) == 2
    git(server, "update-ref", "refs/heads/main", tip.decode(), base.decode())
    git(server, "fsck", "--full", "--strict")
    assert git(server, "rev-list", "--count", "main").strip() == b"4"
    assert git(server, "cat-file", "-p", "main:a.txt") == (work / "a.txt").read_bytes()
    git(server, "verify-pack", pack._basename + ".idx")


def entry_header(type_num: int, size: int) -> bytes:
    out, byte, size = bytearray(), (type_num << 4) | (size & 0x0F), size >> 4
    while size:
        out.append(byte | 0x80)
        byte, size = size & 0x7F, size >> 7
    return bytes(out + bytes([byte]))


def raw_pack(fmt: ObjectFormat, entries: list[tuple[int, bytes]]) -> bytes:
    """A pack of whole objects written byte by byte (so they may be malformed), summed with ``fmt``."""
    out = b"PACK" + struct.pack(">II", 2, len(entries))
    for type_num, body in entries:
        out += entry_header(type_num, len(body)) + zlib.compress(body)
    return out + fmt.hasher(out).digest()


KINDS = {1: b"commit", 2: b"tree", 3: b"blob", 4: b"tag"}


def oid(fmt: ObjectFormat, type_num: int, body: bytes) -> bytes:
    return fmt.hasher(KINDS[type_num] + b" %d\0" % len(body) + body).hexdigest().encode()


def tree(*entries: tuple[bytes, bytes, bytes]) -> bytes:
    """(mode, name, hex id) each, as written (not sorted)."""
    return b"".join(mode + b" " + name + b"\0" + bytes.fromhex(child.decode()) for mode, name, child in entries)


def commit(tree_id: bytes, *parents: bytes) -> bytes:
    lines = [b"tree " + tree_id] + [b"parent " + p for p in parents]
    return b"\n".join([*lines, b"author " + IDENT, b"committer " + IDENT, b"", b"message", b""])


def broken(fmt: ObjectFormat, case: str) -> tuple[list[tuple[int, bytes]], str | None]:
    """A pack's entries with one bad object, and git's message id for it (None: not parseable)."""
    blob = b"content\n"
    blob_id = oid(fmt, 3, blob)
    good_tree = tree((b"100644", b"f", blob_id))
    other_len = 64 if fmt.hex_len == 40 else 40
    if case == "id-of-the-other-length":
        return [(3, blob), (2, good_tree), (1, commit(b"1" * other_len))], "badTreeSha1"
    if case == "parent-of-the-other-length":
        return [(3, blob), (2, good_tree), (1, commit(oid(fmt, 2, good_tree), b"2" * other_len))], "badParentSha1"
    if case == "tag-of-the-other-length":
        tag = b"object " + b"3" * other_len + b"\ntype commit\ntag v1\ntagger " + IDENT + b"\n\nm\n"
        return [(4, tag)], "badObjectSha1"
    if case == "unsorted-tree":
        return [(3, blob), (2, tree((b"100644", b"b", blob_id), (b"100644", b"a", blob_id)))], "treeNotSorted"
    assert case == "tree-id-of-the-other-length"
    return [(2, b"100644 f\0" + b"\x01" * (other_len // 2))], None


@pytest.mark.parametrize("case", ["id-of-the-other-length", "parent-of-the-other-length", "tag-of-the-other-length",
                                  "unsorted-tree", "tree-id-of-the-other-length"])
def test_a_malformed_object_is_refused_and_leaves_nothing(tmp_path: Path, fmt: ObjectFormat, case: str) -> None:
    server = bare(tmp_path, fmt)
    entries, msg_id = broken(fmt, case)
    before = snapshot(server)
    with pytest.raises((ObjectFormatException, ProtocolError, ValueError)) as caught:
        ingest(Repo(str(server)).object_store, raw_pack(fmt, entries))
    if msg_id is not None:
        assert isinstance(caught.value, git_ingest.FsckError) and caught.value.msg_id == msg_id
    assert snapshot(server) == before
    assert not [n for n in os.listdir(server / "objects") if n.startswith("tmp_")]


def test_a_valid_hand_written_pack_lands_with_its_warnings(tmp_path: Path, fmt: ObjectFormat) -> None:
    """Null ids and zero-padded modes are found at the format's id length (warnings, by default)."""
    server = bare(tmp_path, fmt)
    blob = b"content\n"
    odd = tree((b"0100644", b"a", oid(fmt, 3, blob)), (b"100644", b"b", fmt.zero))
    plain = tree((b"100644", b"a", oid(fmt, 3, blob)))
    done = ingest(Repo(str(server)).object_store, raw_pack(fmt, [(3, blob), (2, odd), (2, plain)]))
    shown = " ".join(done.warnings.shown())
    assert "nullSha1" in shown and "zeroPaddedFilemode" in shown
    assert oid(fmt, 2, odd).decode() in shown and oid(fmt, 2, plain).decode() not in shown
    assert git(server, "cat-file", "-p", oid(fmt, 2, plain).decode()).endswith(b"\ta\n")


def test_the_connectivity_check_finds_a_missing_blob(tmp_path: Path, fmt: ObjectFormat) -> None:
    server = bare(tmp_path, fmt)
    here, gone = b"here\n", b"never sent\n"
    root = tree((b"100644", b"gone", oid(fmt, 3, gone)), (b"100644", b"here", oid(fmt, 3, here)))
    top = commit(oid(fmt, 2, root))
    tip, present = oid(fmt, 1, top), oid(fmt, 3, here)
    links = git_ingest.PushLinks()
    pack = ingest(Repo(str(server)).object_store, raw_pack(fmt, [(3, here), (2, root), (1, top)]),
                  links=links).pack  # type: ignore[attr-defined]
    added = {bytes(sha) for sha in pack}
    assert tip in added
    store = Repo(str(server)).object_store
    assert not git_ingest.connected(store, [tip], added, links)
    assert not git_ingest.connected(store, [tip], added), "and the walk from the tip finds it too"
    assert git_ingest.connected(store, [present], added, links)
    # the missing blob arrives in a later pack: now the push is whole
    ingest(Repo(str(server)).object_store, raw_pack(fmt, [(3, gone)]))
    store = Repo(str(server)).object_store
    assert git_ingest.connected(store, [tip], added, links)
    assert git_ingest.connected(store, [tip], added)
    git(server, "update-ref", "refs/heads/main", tip.decode())
    git(server, "fsck", "--full", "--strict")


def test_the_walk_of_any_store_reads_ids_of_its_format(fmt: ObjectFormat) -> None:
    blob = b"x\n"
    root = tree((b"100644", b"x", oid(fmt, 3, blob)))
    first = commit(oid(fmt, 2, root))
    second = commit(oid(fmt, 2, root), oid(fmt, 1, first))
    tag = b"object " + oid(fmt, 1, second) + b"\ntype commit\ntag v1\ntagger " + IDENT + b"\n\nm\n"
    objects = {oid(fmt, t, body): (t, body) for t, body in [(3, blob), (2, root), (1, first), (1, second), (4, tag)]}
    tip = oid(fmt, 4, tag)
    assert git_ingest.walk_connected([tip], set(objects), objects.__getitem__, objects.__contains__,
                                     object_format=fmt)
    del objects[oid(fmt, 1, first)]
    assert not git_ingest.walk_connected([tip], set(objects), objects.__getitem__, objects.__contains__,
                                         object_format=fmt)


def test_a_push_through_the_repository_lands_or_is_refused_as_incomplete(
        history: tuple[Path, Path, bytes, bytes], fmt: ObjectFormat) -> None:
    """``DiskPackSink`` into a quarantine, then the ref updates' connectivity check."""
    server, work, base, tip = history
    repo = git_backend.DulwichGitRepository("server.git", Repo(str(server)))
    sink = repo.begin_pack()
    assert isinstance(sink, git_backend.DiskPackSink)
    data = thin_pack(work, base, tip, ofs_delta=False)
    sink.write(data[:100])
    sink.write(data[100:])
    sink.commit()
    results = repo.update_refs([RefUpdate(b"refs/heads/main", base, tip)], atomic=False)  # type: ignore[arg-type]
    assert [r.reason for r in results] == [None]
    git(server, "fsck", "--full", "--strict")
    assert git(server, "rev-parse", "refs/heads/main").strip() == tip

    repo = git_backend.DulwichGitRepository("server.git", Repo(str(server)))
    root = tree((b"100644", b"gone", oid(fmt, 3, b"never sent\n")))
    top = commit(oid(fmt, 2, root), tip)
    sink = repo.begin_pack()
    sink.write(raw_pack(fmt, [(2, root), (1, top)]))
    sink.commit()
    update = RefUpdate(b"refs/heads/other", fmt.zero, oid(fmt, 1, top))  # type: ignore[arg-type]
    assert [r.reason for r in repo.update_refs([update], atomic=False)] == [MISSING_OBJECTS]
    assert not git(server, "for-each-ref", "refs/heads/other")
    git(server, "fsck", "--full", "--strict")


def test_a_memory_store_checks_ids_of_its_format(fmt: ObjectFormat) -> None:
    """Objects that landed in a memory store are checked (``_check_landed``) with its format's ids;
    a pack into a SHA-256 memory store is refused (dulwich's files objects by SHA-1 ids)."""
    from dulwich.object_format import get_object_format
    from dulwich.object_store import MemoryObjectStore
    from dulwich.repo import MemoryRepo

    memory = MemoryRepo()
    memory.object_store = MemoryObjectStore(object_format=get_object_format(fmt.name))
    repo = git_backend.DulwichGitRepository("m", memory)
    assert object_format_of(repo.object_store) == fmt
    entries, _msg_id = broken(fmt, "id-of-the-other-length")
    landed = [(oid(fmt, t, body), t, body) for t, body in entries]
    with pytest.raises(ProtocolError, match="badTreeSha1"):
        repo._check_landed(landed)
    good = landed[:2] + [(oid(fmt, 1, commit(landed[1][0])), 1, commit(landed[1][0]))]
    assert repo._check_landed(good) == []
    sink = repo.begin_pack()
    sink.write(raw_pack(fmt, [(t, body) for _sha, t, body in good]))
    if fmt.name == "sha1":
        sink.commit()
        assert {sha for sha, _t, _body in good} <= {bytes(sha) for sha in memory.object_store}
    else:
        with pytest.raises(ProtocolError, match="not supported"):
            sink.commit()
