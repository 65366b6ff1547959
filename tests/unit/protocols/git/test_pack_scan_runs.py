"""PackScanner: the small whole objects that lie wholly in a piece of a pushed pack are scanned in
one run (``_whole_objects``), not a Python call or more each (a step, its header read by two
helpers, its hash started by a third, its record made by the named tuple's constructor), and the
pack's checksum takes the run's bytes at once; the records are those the piece-by-piece scan makes."""

from __future__ import annotations

import hashlib
import struct
import sys
import zlib

import pytest
from dulwich.object_format import DEFAULT_OBJECT_FORMAT
from dulwich.pack import pack_object_header

from protocols.errors import LimitExceeded, ProtocolError
from protocols.git_receive import PackScanner

COUNT = 5000


def _whole(type_num: int, body: bytes) -> bytes:
    return bytes(pack_object_header(type_num, None, len(body), DEFAULT_OBJECT_FORMAT)) + zlib.compress(body)


def _pack(bodies: list[bytes], type_num: int = 3) -> bytes:
    out = b"PACK" + struct.pack(">II", 2, len(bodies)) + b"".join(_whole(type_num, body) for body in bodies)
    return out + hashlib.sha1(out).digest()


def _records(pack: bytes, step: int) -> list[tuple[object, ...]]:
    scanner = PackScanner()
    records: list[tuple[object, ...]] = []
    for at in range(0, len(pack), step):
        assert scanner.feed(pack[at:at + step]) == len(pack[at:at + step])
        records += [tuple(r) for r in scanner.take_objects()]
    assert scanner.complete
    return records


def test_a_run_of_small_objects_makes_no_python_call_for_each() -> None:
    bodies = [b"file %d\n" % n + b"x" * (n % 300) for n in range(COUNT)]
    pack = _pack(bodies)
    scanner = PackScanner()
    calls = 0

    def counted(_frame: object, event: str, _arg: object) -> None:
        nonlocal calls
        calls += event == "call"

    sys.setprofile(counted)
    try:
        assert scanner.feed(pack) == len(pack)
    finally:
        sys.setprofile(None)
    assert scanner.complete
    records = scanner.take_objects()
    assert [r.sha for r in records] == [hashlib.sha1(b"blob %d\0" % len(b) + b).digest() for b in bodies]
    assert calls < COUNT // 10, f"{calls} Python calls for {COUNT} objects"


@pytest.mark.parametrize("step", [1, 7, 61, 4096, 1 << 20])
def test_the_records_are_the_same_at_any_split(step: int) -> None:
    """Sizes of one to four varint bytes (up to 300,000), commits and trees carrying their texts,
    objects cut anywhere: the same records as one piece gives, and the checksum holds."""
    bodies = [b"%d\n" % n * (n * n % 40_000 + 1) for n in range(60)]
    pack = _pack(bodies)
    whole = _records(pack, len(pack))
    assert _records(pack, step) == whole
    assert [r[4] for r in whole] == list(map(len, bodies))
    trees = _pack([b"100644 f\0" + bytes(20), b"100644 g\0" + bytes(20)], type_num=2)
    assert [r[8] for r in _records(trees, step)] == [b"100644 f\0" + bytes(20), b"100644 g\0" + bytes(20)]


def test_a_bad_checksum_and_bad_headers_are_refused_as_before() -> None:
    pack = _pack([b"a\n", b"b\n"])
    with pytest.raises(ProtocolError, match="checksum does not match"):
        PackScanner().feed(pack[:-1] + bytes([pack[-1] ^ 1]))
    bad_type = pack[:12] + bytes([0x05]) + pack[13:]  # type 0
    with pytest.raises(ProtocolError, match="invalid object type 0"):
        PackScanner().feed(bad_type)
    big = b"PACK" + struct.pack(">II", 2, 1) + bytes(pack_object_header(3, None, 1 << 33, DEFAULT_OBJECT_FORMAT))
    with pytest.raises(LimitExceeded, match="exceeds the limit"):
        PackScanner().feed(big + b"\0" * 64)
    with pytest.raises(LimitExceeded, match="exceeds the limit of 10"):
        PackScanner(max_object=10).feed(_pack([b"0123456789abc"]))
