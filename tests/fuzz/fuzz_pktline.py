"""PktLineDecoder: any byte stream, in any split, gives packets or a typed error; encode round-trips."""

from __future__ import annotations

from protocols import pktline
from protocols.pktline import PktLineDecoder, Signal

from .harness import Finding, Target, chunked, with_split
from .seeds import client_bytes, transcript_names


def run(data: bytes) -> None:
    decoder = PktLineDecoder(max_buffer=data[0] * 1024 if data else 0)
    payloads: list[bytes] = []
    for piece in chunked(data):
        decoder.receive_data(piece)
        _read(decoder, payloads)
    decoder.receive_data(b"")
    _read(decoder, payloads)
    for payload in payloads:
        if len(payload) > pktline.MAX_PAYLOAD:
            raise Finding(f"a {len(payload)}-byte payload is over MAX_PAYLOAD")
        if _decode_one(pktline.encode(payload)) != payload:
            raise Finding("encode() does not round-trip through the decoder")


def _read(decoder: PktLineDecoder, payloads: list[bytes]) -> None:
    while (packet := decoder.next_packet()) is not Signal.NEED_DATA:
        if isinstance(packet, bytes):
            payloads.append(packet)


def _decode_one(frame: bytes) -> bytes | object:
    decoder = PktLineDecoder()
    decoder.receive_data(frame)
    return decoder.next_packet()


def seeds() -> list[bytes]:
    streams = [client_bytes("git", name) for name in transcript_names("git")]
    return [with_split(step, s[:1024]) for s in streams if s for step in (0, 5, 0xFF)]


TARGET = Target("pktline", run, seeds)
