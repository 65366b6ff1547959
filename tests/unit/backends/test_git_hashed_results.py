"""A pushed large blob that is a delta is named by hashing what the delta takes, never joined whole."""

from __future__ import annotations

import hashlib
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from dulwich.errors import ApplyDeltaError
from dulwich.object_format import DEFAULT_OBJECT_FORMAT
from dulwich.objects import Blob
from dulwich.pack import apply_delta, create_delta, pack_object_header
from dulwich.repo import Repo
from hypothesis import given, settings
from hypothesis import strategies as st

from backends import git_ingest
from tests.unit.backends.test_git_ingest import ingest_with_records, reader_of

BLOB = 3


def blob_id(text: bytes, new: object = hashlib.sha1) -> bytes:
    return git_ingest._object_id(BLOB, text, new)  # type: ignore[arg-type]


@st.composite
def edits(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """A base and a version of it with a few spans replaced, inserted or cut."""
    base = draw(st.binary(min_size=0, max_size=3000))
    target = bytearray(base)
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(target)))
        cut = draw(st.integers(0, min(64, len(target) - at)))
        target[at:at + cut] = draw(st.binary(max_size=300))
    return base, bytes(target)


@given(edits(), st.sampled_from([hashlib.sha1, hashlib.sha256]))
@settings(max_examples=300, deadline=None)
def test_the_hashed_result_is_the_applied_one(pair: tuple[bytes, bytes], new: object) -> None:
    base, target = pair
    delta = b"".join(create_delta(base, target))
    assert git_ingest.delta_result_id(BLOB, base, delta, new) == blob_id(target, new)  # type: ignore[arg-type]


def test_copies_of_every_encoding_and_the_implicit_64_kib_length() -> None:
    base = bytes(range(256)) * 1024  # 256 KiB
    for ops, result in [
        (b"\x80", base[:0x10000]),  # no offset or length byte: from 0, 64 KiB
        (b"\x93\x01\x02\x03" + b"\x02xy", base[0x201:0x204] + b"xy"),  # offset bytes 1-2, length byte 1
        (b"\xf4\x02\x10\x00\x00", base[0x20000:0x20010]),  # offset byte 3, length bytes 1-3
        (b"\x84\x02" + b"\x01z", base[0x20000:0x30000] + b"z"),  # no length byte: 64 KiB
    ]:
        delta = varint(len(base)) + varint(len(result)) + ops
        assert b"".join(apply_delta(base, delta)) == result
        assert git_ingest.delta_result_id(BLOB, base, delta) == blob_id(result)


def reference_patch(base: bytes, delta: bytes) -> bytes | None:
    """What a delta makes of ``base`` as git's ``patch_delta`` reads it, plainly; None where git refuses it."""
    def varint_at(pos: int) -> tuple[int, int]:
        value = shift = 0
        while True:
            if pos >= len(delta):
                raise IndexError
            byte = delta[pos]
            value |= (byte & 0x7F) << shift
            shift, pos = shift + 7, pos + 1
            if byte < 0x80:
                return value, pos

    try:
        base_size, pos = varint_at(0)
        size, pos = varint_at(pos)
        out = b""
        while pos < len(delta):
            cmd, pos = delta[pos], pos + 1
            if cmd == 0:
                return None
            if cmd < 0x80:
                piece, pos = delta[pos:pos + cmd], pos + cmd
                if len(piece) < cmd:
                    return None
            else:
                fields = []
                for bit in range(7):
                    if cmd & (1 << bit):
                        fields.append(delta[pos] << (8 * (bit % 4)))
                        pos += 1
                    else:
                        fields.append(0)
                offset, length = sum(fields[:4]), sum(fields[4:]) or 0x10000
                if offset + length > len(base):
                    return None
                piece = base[offset:offset + length]
            out += piece
            if len(out) > size:
                return None
        return out if base_size == len(base) and len(out) == size else None
    except IndexError:
        return None


GIT_CASES = {
    "exact": b"\x91\x00\x08",
    "a copy past the base, the result complete": b"\x91\x00\x08\x90\x00",
    "a copy within the base, the result complete": b"\x91\x00\x08\x91\x00\x01",
    "an insert cut short, the result complete": b"\x91\x00\x08\x01",
    "an insert, the result complete": b"\x91\x00\x08\x01z",
    "a copy past the base": b"\x91\x3c\x08",
    "an insert past the result": b"\x09abcdefghi",
    "a copy past the result": b"\x91\x00\x09",
    "operation 0, the result complete": b"\x91\x00\x08\x00",
    "a copy's bytes cut short": b"\x91\x00",
    "a result short of its size": b"\x91\x00\x07",
    "an implicit 64 KiB copy past the base": b"\x80",
}


@pytest.mark.parametrize("ops", GIT_CASES.values(), ids=GIT_CASES.keys())
def test_a_delta_is_refused_where_git_refuses_it(tmp_path: Path, ops: bytes) -> None:
    base = b"0123456789abcdef" * 4
    delta = varint(len(base)) + varint(8) + ops
    data, _texts = pack_of([("whole", BLOB, base), ("raw-ofs", 0, delta)])
    subprocess.run(["git", "init", "-q", "--bare", str(tmp_path / "g.git")], check=True)
    git_takes = subprocess.run(["git", "-C", str(tmp_path / "g.git"), "index-pack", "--stdin"], input=data,
                               capture_output=True, check=False).returncode == 0
    expected = reference_patch(base, delta)
    assert git_takes == (expected is not None)
    for ours in (lambda: git_ingest.delta_result_id(BLOB, base, delta), lambda: git_ingest._applied(base, delta)):
        if expected is None:
            with pytest.raises(ApplyDeltaError):
                ours()
        else:
            assert ours() in (blob_id(expected), expected)


@given(edits(), st.data())
@settings(max_examples=500, deadline=None)
def test_a_damaged_delta_is_refused_as_git_refuses_it(pair: tuple[bytes, bytes], data: st.DataObject) -> None:
    base, target = pair
    delta = bytearray(b"".join(create_delta(base, target)))
    how = data.draw(st.sampled_from(["flip", "cut", "extend", "base"]))
    if how == "flip" and delta:
        at = data.draw(st.integers(0, len(delta) - 1))
        delta[at] ^= data.draw(st.integers(1, 255))
    elif how == "cut" and delta:
        del delta[data.draw(st.integers(0, len(delta) - 1)):]
    elif how == "extend":
        delta += data.draw(st.binary(min_size=1, max_size=8))
    else:
        base = base + b"!"
    expected = reference_patch(base, bytes(delta))
    if expected is None:
        for ours in (git_ingest.delta_result_id, lambda _type, base, delta: git_ingest._applied(base, delta)):
            with pytest.raises(ApplyDeltaError):
                ours(BLOB, base, bytes(delta))
    else:
        assert git_ingest.delta_result_id(BLOB, base, bytes(delta)) == blob_id(expected)
        assert git_ingest._applied(base, bytes(delta)) == expected


def varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes(out) + bytes([n])


def large_text(seed: int, size: int = 3 << 20) -> bytes:
    lines = (f"{seed} line {i} of a large file pushed whole\n".encode() for i in range(size // 32))
    return b"".join(lines)[:size]


def pack_of(entries: list[tuple[str, object, bytes]]) -> tuple[bytes, list[bytes]]:
    """A pack of ``("whole", type, text)``, ``("ofs", index of the base, result)``,
    ``("ref", index of the base, result)`` and ``("raw-ofs", index of the base, delta)`` entries;
    with each entry's text (a raw delta's: the delta)."""
    out = b"PACK" + struct.pack(">II", 2, len(entries))
    offsets: list[int] = []
    texts: list[bytes] = []
    for kind, ref, text in entries:
        offsets.append(len(out))
        if kind == "whole":
            head = pack_object_header(ref, None, len(text), DEFAULT_OBJECT_FORMAT)  # type: ignore[arg-type]
            out += bytes(head) + zlib.compress(text)
        else:
            base = texts[ref]  # type: ignore[index]
            delta = text if kind == "raw-ofs" else b"".join(create_delta(base, text))
            kind = "ofs" if kind == "raw-ofs" else kind
            where = offsets[-1] - offsets[ref] if kind == "ofs" else Blob.from_string(base).id  # type: ignore[index]
            if kind == "ref":
                where = bytes.fromhex(where.decode())  # type: ignore[union-attr]
            head = pack_object_header(6 if kind == "ofs" else 7, where, len(delta), DEFAULT_OBJECT_FORMAT)
            out += bytes(head) + zlib.compress(delta)
        texts.append(text)
    return out + hashlib.sha1(out).digest(), texts


@pytest.fixture
def joined(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the results ``apply_delta`` made during an ingest."""
    sizes: list[int] = []

    def recording(base: bytes, delta: bytes) -> list[bytes]:
        result = apply_delta(base, delta)
        sizes.append(sum(map(len, result)))
        return result

    monkeypatch.setattr(git_ingest, "apply_delta", recording)
    return sizes


def ingested_names(tmp_path: Path, data: bytes, records: bool) -> set[bytes]:
    server = tmp_path / ("records.git" if records else "plain.git")
    Repo.init_bare(str(server), mkdir=True)
    store = Repo(str(server)).object_store
    pack = ingest_with_records(store, data) if records else git_ingest.ingest_pack(store, reader_of(data))  # type: ignore[arg-type]
    assert pack is not None
    idx = next((server / "objects" / "pack").glob("*.idx"))
    subprocess.run(["git", "verify-pack", str(idx)], check=True, capture_output=True)
    return {bytes(sha) for sha in pack}  # type: ignore[attr-defined]


@pytest.mark.parametrize("records", [True, False], ids=["scanned-records", "own-scan"])
def test_a_large_blob_delta_with_nothing_below_it_is_never_joined(
        tmp_path: Path, joined: list[int], records: bool) -> None:
    base = large_text(1)
    newer = base[:1000] + b"an edit near the start\n" + base[1000:-500] + b"and one at the end\n"
    data, texts = pack_of([("whole", BLOB, base), ("ofs", 0, newer), ("whole", BLOB, b"small"),
                           ("ofs", 2, b"small, edited")])
    assert ingested_names(tmp_path, data, records) == {Blob.from_string(text).id for text in texts}
    assert joined == [len(b"small, edited")]  # the large one hashed, the small one applied


@pytest.mark.parametrize("below", ["ofs", "ref"])
def test_a_large_blob_delta_that_is_a_base_itself_is_rebuilt(
        tmp_path: Path, joined: list[int], below: str) -> None:
    base = large_text(2)
    middle = base + b"appended once\n"
    last = middle + b"appended twice\n"
    data, texts = pack_of([("whole", BLOB, base), ("ofs", 0, middle), (below, 1, last)])
    assert ingested_names(tmp_path, data, records=False) == {Blob.from_string(text).id for text in texts}
    assert sorted(joined) == [len(middle)], "the middle rebuilt for the delta below it, the last hashed"


def test_a_large_delta_of_mostly_inserts_is_applied(tmp_path: Path, joined: list[int]) -> None:
    base = large_text(3)
    rewritten = large_text(5, 1 << 20)
    pieces = (rewritten[i:i + 127] for i in range(0, len(rewritten), 127))
    inserts = b"".join(bytes([len(piece)]) + piece for piece in pieces)
    delta = varint(len(base)) + varint(len(rewritten)) + inserts  # 127 bytes an operation
    data, _texts = pack_of([("whole", BLOB, base), ("raw-ofs", 0, delta)])
    names = ingested_names(tmp_path, data, records=False)
    assert names == {Blob.from_string(base).id, Blob.from_string(rewritten).id}
    assert joined == [len(rewritten)]


@pytest.mark.parametrize("damage", ["result-size", "copy-past-base"])
def test_a_large_delta_that_lies_is_refused_and_leaves_nothing(tmp_path: Path, damage: str) -> None:
    base = large_text(4)
    good = b"".join(create_delta(base, base + b"more\n"))
    ops = good[len(varint(len(base))) + len(varint(len(base) + 5)):]
    if damage == "result-size":  # one byte less than its ops make
        bad = varint(len(base)) + varint(len(base) + 4) + ops
    else:  # a last copy of 64 KiB from the base's last byte, counted in the result's size
        bad = varint(len(base)) + varint(len(base) + 5 + 0x10000) + ops + b"\x8f" + struct.pack("<I", len(base) - 1)
    data, _texts = pack_of([("whole", BLOB, base), ("raw-ofs", 0, bad)])
    server = tmp_path / "s.git"
    Repo.init_bare(str(server), mkdir=True)
    with pytest.raises(ApplyDeltaError):
        git_ingest.ingest_pack(Repo(str(server)).object_store, reader_of(data))  # type: ignore[arg-type]
    assert not list((server / "objects" / "pack").iterdir())
    assert [p.name for p in (server / "objects").iterdir()] in (["pack", "info"], ["info", "pack"])
