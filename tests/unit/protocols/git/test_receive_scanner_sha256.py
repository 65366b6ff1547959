"""PackScanner in a SHA-256 repository (and, the same way, a SHA-1 one): git's own packs, full and thin.

The scanner names whole objects with the repository's hash, checks the
32-byte trailing checksum and reads 32-byte REF_DELTA base ids; every record
is held to what ``git verify-pack`` and ``git cat-file`` say of the same pack.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from backends.interfaces import OBJECT_FORMATS, SHA1_FORMAT, SHA256_FORMAT, ObjectFormat, PackedObject
from protocols.errors import ProtocolError
from protocols.git_receive import OFS_DELTA, REF_DELTA, PackScanner

ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent", "GIT_CONFIG_NOSYSTEM": "1",
       "GIT_AUTHOR_NAME": "A", "GIT_AUTHOR_EMAIL": "a@example.com", "GIT_COMMITTER_NAME": "C",
       "GIT_COMMITTER_EMAIL": "c@example.com", "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
       "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z"}


def git(cwd: Path, *args: str, input: bytes | None = None) -> bytes:
    return subprocess.run(["git", *args], cwd=cwd, env=ENV, input=input, check=True, capture_output=True).stdout


@pytest.fixture(scope="module", params=["sha1", "sha256"])
def history(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
            ) -> tuple[ObjectFormat, Path, bytes, bytes]:
    """(format, work repository, base commit, tip): the tip's versions of a file delta well."""
    fmt = OBJECT_FORMATS[request.param]
    work = tmp_path_factory.mktemp(f"scan-{fmt.name}")
    git(work, "init", "-q", "-b", "main", f"--object-format={fmt.name}")
    text = "".join(f"line {i} of a long file that deltas well\n" for i in range(1500))
    commits = []
    for k in range(4):
        (work / "a.txt").write_text(text + f"version {k}\n")
        (work / f"n{k}.txt").write_text(f"new {k}\n")
        git(work, "add", "-A")
        git(work, "commit", "-q", "-m", f"c{k}")
        commits.append(git(work, "rev-parse", "HEAD").strip())
    git(work, "tag", "-a", "v1", "-m", "a tag")
    return fmt, work, commits[0], commits[-1]


def scan(data: bytes, fmt: ObjectFormat, step: int) -> list[PackedObject]:
    scanner = PackScanner(object_format=fmt)
    records: list[PackedObject] = []
    for i in range(0, len(data), step):
        piece = data[i:i + step]
        assert scanner.feed(piece) == len(piece)
        records += scanner.take_objects()
    assert scanner.complete
    return records


def verify_pack(work: Path, data: bytes) -> dict[int, tuple[bytes, bytes]]:
    """offset -> (hex id, type) of every object of a (complete) pack, as git's verify-pack reads it."""
    path = work / ".git" / "scanned.pack"
    path.write_bytes(data)
    try:
        git(work, "index-pack", str(path))
        out = git(work, "verify-pack", "-v", str(path.with_suffix(".idx")))
    finally:
        for suffix in (".pack", ".idx"):
            path.with_suffix(suffix).unlink(missing_ok=True)
    found = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 5 and fields[1] in (b"commit", b"tree", b"blob", b"tag"):
            found[int(fields[4])] = (fields[0], fields[1])
    return found


@pytest.mark.parametrize("step", [1 << 20, 7], ids=["whole", "7-byte-pieces"])
def test_a_full_pack_is_named_with_the_repository_hash(history: tuple[ObjectFormat, Path, bytes, bytes],
                                                      step: int) -> None:
    fmt, work, _base, _tip = history
    data = git(work, "pack-objects", "--revs", "--all", "--stdout", "--delta-base-offset", input=b"")
    records = scan(data, fmt, step)
    listed = verify_pack(work, data)
    assert len(records) == len(listed) and {r.offset for r in records} == set(listed)
    whole = [r for r in records if r.sha is not None]
    assert whole and any(r.type_num == OFS_DELTA for r in records), "whole objects and deltas both"
    for record in whole:
        assert record.sha is not None and len(record.sha) == fmt.raw_len
        assert record.sha.hex().encode() == listed[record.offset][0]
    assert b"tag" in {kind for _sha, kind in listed.values()}


@pytest.mark.parametrize("step", [1 << 20, 5], ids=["whole", "5-byte-pieces"])
def test_a_thin_pack_names_its_stored_bases_by_full_ids(history: tuple[ObjectFormat, Path, bytes, bytes],
                                                       step: int) -> None:
    fmt, work, base, tip = history
    data = git(work, "pack-objects", "--revs", "--thin", "--stdout", input=tip + b"\n^" + base + b"\n")
    records = scan(data, fmt, step)
    refs = [r for r in records if r.type_num == REF_DELTA]
    assert refs, "git deltas against the base commit's blob by id"
    for record in refs:
        assert isinstance(record.base, bytes) and len(record.base) == fmt.raw_len
        assert git(work, "cat-file", "-t", record.base.hex()) in (b"blob\n", b"tree\n")
    for record in records:
        if record.sha is not None:
            assert git(work, "cat-file", "-t", record.sha.hex()).strip() in (b"commit", b"tree", b"blob")


def test_the_trailer_is_the_formats_checksum(history: tuple[ObjectFormat, Path, bytes, bytes]) -> None:
    fmt, work, base, tip = history
    data = git(work, "pack-objects", "--revs", "--stdout", input=tip + b"\n^" + base + b"\n")
    assert PackScanner(object_format=fmt).feed(data + b"extra") == len(data), "the pack ends at its trailer"
    with pytest.raises(ProtocolError, match="checksum"):
        PackScanner(object_format=fmt).feed(data[:-1] + bytes([data[-1] ^ 1]))
    other = SHA1_FORMAT if fmt is SHA256_FORMAT else SHA256_FORMAT
    scanner = PackScanner(object_format=other)
    try:  # a pack of the other format: REF_DELTA ids and the trailer are of another length
        scanner.feed(data)
    except ProtocolError:
        pass
    assert not scanner.complete, "never taken for a whole pack"
