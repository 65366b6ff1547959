"""PackScanner's records of a pushed pack: what the store indexes the pack from, without reading it again.

Every record is held to what dulwich reads from the same pack (offsets, types,
delta bases, whole objects' ids) and to the CRC-32 of the object's bytes, at
any split of the stream: whole objects take a one-call path, objects cut by a
split the piece-by-piece one, and both must agree.
"""

from __future__ import annotations

import io
import operator
import os
import subprocess
import tempfile
import zlib
from pathlib import Path

import pytest
from dulwich.object_format import DEFAULT_OBJECT_FORMAT
from dulwich.objects import Blob
from dulwich.pack import PackData, write_pack_objects
from hypothesis import given, settings
from hypothesis import strategies as st

from backends.interfaces import PackedObject
from protocols.errors import LimitExceeded, ProtocolError
from protocols.git_receive import OFS_DELTA, REF_DELTA, PackScanner


def git_pack() -> bytes:
    """A pack git itself wrote: commits, trees and blobs of a file edited a little each time (OFS_DELTAs)."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "HOME": tmp, "GIT_AUTHOR_NAME": "A",
               "GIT_AUTHOR_EMAIL": "a@example.com", "GIT_COMMITTER_NAME": "A", "GIT_COMMITTER_EMAIL": "a@example.com"}

        def git(*args: str, stdin: bytes | None = None) -> bytes:
            return subprocess.run(["git", "-C", tmp, *args], check=True, capture_output=True, input=stdin,
                                  env=env).stdout

        git("init", "-q")
        lines = [b"line %d of a file that changes a little\n" % i for i in range(300)]
        for k in range(6):
            lines[k * 37] = b"changed in commit %d\n" % k
            Path(tmp, "f.txt").write_bytes(b"".join(lines))
            git("add", "f.txt")
            git("commit", "-q", "-m", f"commit {k}")
        objects = git("rev-list", "--objects", "--all")
        return git("pack-objects", "--stdout", "--delta-base-offset", "-q", stdin=objects)


def ref_delta_pack() -> bytes:
    """A pack of similar blobs that dulwich deltifies against each other by id (REF_DELTA)."""
    text = b"".join(b"line %d of a file that changes a little\n" % i for i in range(400))
    blobs = [Blob.from_string(text.replace(b"line %d " % k, b"LINE %d " % k)) for k in range(0, 400, 40)]
    out = io.BytesIO()
    write_pack_objects(out.write, [(b, None) for b in blobs], deltify=True, object_format=DEFAULT_OBJECT_FORMAT)
    return out.getvalue()


PACKS = {"git": git_pack(), "ref-delta": ref_delta_pack()}


def expected(pack: bytes, tmp: Path) -> list[PackedObject]:
    """The records, from dulwich's own reading of the pack."""
    path = tmp / "p.pack"
    path.write_bytes(pack)
    with PackData(str(path), object_format=DEFAULT_OBJECT_FORMAT) as data:
        unpacked = list(data.iter_unpacked())
    ends = [u.offset for u in unpacked[1:]] + [len(pack) - 20]
    records = []
    for u, end in zip(unpacked, ends, strict=True):
        assert u.offset is not None
        if u.pack_type_num == OFS_DELTA:
            base: int | bytes | None = u.offset - u.delta_base
        elif u.pack_type_num == REF_DELTA:
            base = u.delta_base
        else:
            base = None
        start = end - len(b"".join(u.comp_chunks or [])) if u.comp_chunks else None
        records.append(PackedObject(u.offset, start if start is not None else -1, end, u.pack_type_num,
                                    u.decomp_len or 0, base, zlib.crc32(pack[u.offset:end]),
                                    None if base is not None else u.sha()))
    return records


def scan(pack: bytes, cuts: list[int]) -> list[PackedObject]:
    scanner = PackScanner()
    records: list[PackedObject] = []
    pos = 0
    for cut in [*sorted(set(cuts)), len(pack)]:
        if cut > pos:
            assert scanner.feed(pack[pos:cut]) == cut - pos
            records += scanner.take_objects()
            pos = cut
    assert scanner.complete
    return records


def same(found: list[PackedObject], wanted: list[PackedObject]) -> None:
    assert len(found) == len(wanted)
    for got, want in zip(found, wanted, strict=True):
        assert (got.offset, got.end, got.type_num, got.base, got.crc32, got.sha) == (
            want.offset, want.end, want.type_num, want.base, want.crc32, want.sha)
        assert got.offset < got.data_offset < got.end
        if got.type_num < OFS_DELTA:
            assert got.size == want.size


@pytest.mark.parametrize("name", sorted(PACKS))
@pytest.mark.parametrize("step", [1, 5, 64, 4096, 1 << 20])
def test_records_match_dulwichs_reading_at_any_step(name: str, step: int, tmp_path: Path) -> None:
    pack = PACKS[name]
    wanted = expected(pack, tmp_path)
    assert {r.type_num for r in wanted} & {OFS_DELTA, REF_DELTA}, "the pack must hold deltas"
    same(scan(pack, list(range(step, len(pack), step))), wanted)


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(sorted(PACKS)), cuts=st.lists(st.integers(min_value=1, max_value=20000), max_size=12))
def test_records_do_not_depend_on_where_the_stream_is_cut(name: str, cuts: list[int]) -> None:
    pack = PACKS[name]
    assert scan(pack, [c for c in cuts if c < len(pack)]) == scan(pack, [])


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(sorted(PACKS)), data=st.data(), whole=st.booleans())
def test_any_changed_byte_is_refused(name: str, data: st.DataObject, whole: bool) -> None:
    pack = PACKS[name]
    at = data.draw(st.integers(min_value=0, max_value=len(pack) - 1))
    flip = data.draw(st.integers(min_value=1, max_value=255))
    damaged = pack[:at] + bytes([pack[at] ^ flip]) + pack[at + 1:]
    scanner = PackScanner()
    with pytest.raises(ProtocolError):
        if whole:
            used = scanner.feed(damaged)
        else:
            used = sum(scanner.feed(damaged[i:i + 1]) for i in range(len(damaged)))
        # What the session does with the scanner's answer: a pack that ends before the bytes
        # do (a smaller object count) is refused as bytes after the pack, and one still
        # unfinished when they end (a larger count) as a connection closed mid-request.
        # So the damage is caught unless the scanner takes the whole stream as a complete pack.
        if not (scanner.complete and used == len(damaged)):
            raise ProtocolError("refused by the session")


def test_a_damaged_checksum_is_refused() -> None:
    pack = PACKS["git"]
    with pytest.raises(ProtocolError, match="checksum"):
        PackScanner().feed(pack[:-1] + bytes([pack[-1] ^ 1]))


def test_an_ofs_delta_must_name_an_earlier_object() -> None:
    pack = PACKS["git"]
    delta = next(r for r in scan(pack, []) if r.type_num == OFS_DELTA)
    last = delta.data_offset - 1  # the distance back to the base ends the object's header
    assert not pack[last] & 0x80 and pack[last] < 0x7F
    damaged = pack[:last] + bytes([pack[last] + 1]) + pack[last + 1:]  # one byte further back: inside an object
    for step in (1, len(damaged)):
        scanner = PackScanner()
        with pytest.raises(ProtocolError, match="not an earlier object"):
            for i in range(0, len(damaged), step):
                scanner.feed(damaged[i:i + step])


def test_limits_hold_on_both_paths() -> None:
    pack = PACKS["ref-delta"]
    biggest = max(r.size for r in scan(pack, []) if r.type_num != REF_DELTA)
    for step in (1, len(pack)):
        scanner = PackScanner(max_object=biggest - 1)
        with pytest.raises(LimitExceeded, match="exceeds the limit"):
            for i in range(0, len(pack), step):
                scanner.feed(pack[i:i + step])


def test_a_lowered_pack_bound_refuses_a_larger_pack_naming_the_setting() -> None:
    pack = PACKS["ref-delta"]
    scanner = PackScanner()
    scanner.limit(len(pack) - 1, "receive.maxInputSize = 10 bytes")
    with pytest.raises(LimitExceeded, match=r"^pack exceeds maximum allowed size \(receive.maxInputSize = 10 bytes\)$"):
        scanner.feed(pack)
    fits = PackScanner(max_pack=1 << 20)
    fits.limit(len(pack), "receive.maxInputSize")  # exactly the size: accepted
    fits.limit(1 << 30, "a larger one")  # never raises the bound
    assert fits.feed(pack) == len(pack) and fits.complete


def _inflated(pack: bytes, record: PackedObject) -> bytes:
    return zlib.decompress(pack[record.data_offset:record.end])


@pytest.mark.parametrize("name", sorted(PACKS))
def test_records_carry_the_texts_inflated_but_blobs_within_a_bound(name: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from protocols import git_receive

    pack = PACKS[name]
    records = scan(pack, [])
    texts = [r for r in records if r.text is not None]
    assert texts, "the deltas' data, commits and trees come with their records"
    for record in records:
        if record.text is not None:
            assert record.type_num != 3 and record.text == _inflated(pack, record)
    assert all(r.text is not None for r in records if r.type_num != 3), "one take: all within the bound"
    bound = max(len(r.text or b"") for r in records) + 1
    monkeypatch.setattr(git_receive, "TEXT_BATCH_BYTES", bound)
    scanner = PackScanner()
    carrying = 0
    for i in range(0, len(pack), 600):
        scanner.feed(pack[i:i + 600])
        taken = scanner.take_objects()
        assert sum(len(r.text or b"") for r in taken) <= bound
        carrying += any(r.text is not None for r in taken)
        for record in taken:
            assert record.text is None or record.text == _inflated(pack, record)
    assert carrying > 1, "each take starts a new bound"


def test_a_record_with_its_text_is_the_record_without_it() -> None:
    """Records compare (and hash) by what the scan found of the object, not by the text it may hand on."""
    bare = PackedObject(12, 14, 40, 2, 30, None, 7, b"\1" * 20)
    carrying = bare._replace(text=b"tree text")
    assert carrying == bare and operator.ne(carrying, bare) is False and hash(carrying) == hash(bare)
    assert len({bare, carrying}) == 1 and b"tree text" not in repr(carrying).encode()
    assert bare != bare._replace(crc32=8) and bare != (*bare[:8], None) and bare != bare._replace(sha=None)


@pytest.mark.parametrize("step", [1 << 16, 1 << 20])
def test_a_highly_compressed_object_is_inflated_a_bounded_piece_at_a_time(step: int) -> None:
    """64 MiB of zeros deflate to 64 KiB: the scan asked zlib for all that a piece of the stream
    held at once (a 1 GiB blob of zeros, a 1 MB pack, took 140 MB of the server's memory); the
    record and its id stay the same."""
    import hashlib
    import struct
    import tracemalloc

    size = 64 << 20
    squeezed = zlib.compress(bytes(size), 9)
    head = bytearray([(3 << 4) | (size & 0x0F) | 0x80])
    rest = size >> 4
    while rest:
        head.append((rest & 0x7F) | (0x80 if rest > 0x7F else 0))
        rest >>= 7
    body = b"PACK" + struct.pack(">II", 2, 1) + bytes(head) + squeezed
    pack = body + hashlib.sha1(body).digest()
    wanted = hashlib.sha1(b"blob %d\0" % size)
    wanted.update(bytes(size))
    scanner = PackScanner()
    tracemalloc.start()
    try:
        for at in range(0, len(pack), step):
            scanner.feed(pack[at:at + step])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert scanner.complete
    [record] = scanner.take_objects()
    assert (record.size, record.sha) == (size, wanted.digest())
    assert peak < 8 << 20, f"{peak >> 20} MiB held"
