"""Bundle2Reader: stream parameters, part headers, framed payloads, interrupts, compression."""

from __future__ import annotations

from protocols.bundle2 import Bundle2Limits, Bundle2Reader, parse_part_header

from .harness import Target, chunked, drain, with_split
from .seeds import client_bytes

LIMITS = Bundle2Limits(max_parts=1000, max_small_payload=1 << 20)


def run(data: bytes) -> None:
    if data[:1] == b"h":
        parse_part_header(data[1:])
        return
    reader = Bundle2Reader(chunked(data), LIMITS)
    for count, part in enumerate(reader.parts()):
        if count % 2:
            part.read_all(1 << 20)
        else:
            drain(part.payload)


def seeds() -> list[bytes]:
    names = ["bundle-none-v2", "bundle-gzip-v2", "bundle-bzip2-v2", "bundle-zstd-v2"]
    bundles = [client_bytes("hg", n) for n in names]
    return [with_split(step, b) for b in bundles for step in (0xFF, 200)]


TARGET = Target("bundle2", run, seeds, max_size=16384)
