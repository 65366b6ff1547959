"""SSH packet openers (chacha20-poly1305, AES-GCM, etm): any bytes give payloads or a typed error.

The first byte picks the codec; the rest is read as the transport reads its
buffer.  The seeds are genuine packets, so the edits reach past the length and
tag checks: an altered packet must be refused, and one that opens must still
hold a message number.
"""

from __future__ import annotations

from collections.abc import Callable

from protocols.ssh_packets import AesGcm, ChaChaPoly, EncryptThenMac, PacketCodec

from .harness import Finding, Target

KEY = bytes(range(64))
IV = bytes(range(100, 116))


def _zeros(n: int) -> bytes:
    return bytes(n)


CODECS: tuple[Callable[[], PacketCodec], ...] = (
    lambda: ChaChaPoly(KEY, random=_zeros),
    lambda: AesGcm(KEY[:16], IV[:12], random=_zeros),
    lambda: EncryptThenMac(KEY[:32], IV, KEY, "sha256", random=_zeros),
)


def run(data: bytes) -> None:
    if not data:
        return
    opener = CODECS[data[0] % len(CODECS)]()
    buffered, seq = data[1:], 0
    while len(buffered) >= (size := opener.needed(seq, buffered)):
        if not opener.open(seq, buffered[:size]):
            raise Finding("a packet opened to an empty payload")
        buffered, seq = buffered[size:], seq + 1


def seeds() -> list[bytes]:
    payloads = [b"^", b"^hello", bytes((94,)) + bytes(range(200))]
    out = []
    for index, make in enumerate(CODECS):
        sealer = make()
        out.append(bytes((index,)) + b"".join(sealer.seal(seq, p) for seq, p in enumerate(payloads)))
    return out


TARGET = Target("ssh_packets", run, seeds)
