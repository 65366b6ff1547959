"""ChangegroupDecoder (cg01/02/03) and the bundle1 reader: chunk lengths, headers, decompression."""

from __future__ import annotations

from protocols.changegroup import ChangegroupDecoder, ChangegroupLimits, StreamReader, read_bundle1

from .harness import Target, chunked, drain, with_split
from .seeds import client_bytes

LIMITS = ChangegroupLimits(max_chunk=1 << 20, max_files=1000)
VERSIONS = {ord("1"): b"01", ord("2"): b"02", ord("3"): b"03"}


def run(data: bytes) -> None:
    if not data:
        return
    version = VERSIONS.get(data[0])
    reader = StreamReader(chunked(data[1:]))
    groups = read_bundle1(reader, LIMITS) if version is None else ChangegroupDecoder(reader, version, LIMITS).groups()
    for group in groups:
        drain(group.revisions)


def _cg02() -> bytes:
    """The changegroup inside the uncompressed bundle2 recording (its only part's payload)."""
    bundle = client_bytes("hg", "bundle-none-v2")
    header_end = 4 + 4 + 4 + int.from_bytes(bundle[8:12], "big")
    payload = bytearray()
    pos = header_end
    while (size := int.from_bytes(bundle[pos : pos + 4], "big", signed=True)) > 0:
        payload += bundle[pos + 4 : pos + 4 + size]
        pos += 4 + size
    return bytes(payload)


def seeds() -> list[bytes]:
    bundles = [client_bytes("hg", n) for n in ("bundle-none-v1", "bundle-gzip-v1", "bundle-bzip2-v1")]
    out = [b"b" + with_split(step, b) for b in bundles for step in (0xFF, 100)]
    return [*out, b"2" + with_split(0xFF, _cg02()), b"2" + with_split(50, _cg02())]


TARGET = Target("changegroup", run, seeds, max_size=16384)
