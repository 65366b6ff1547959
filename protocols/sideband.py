"""Side-band multiplexing of a git response: pack data, progress and errors.

gitprotocol-pack(5) "Packfile Data": with ``side-band`` or ``side-band-64k``
each pkt-line payload starts with a band byte.  ``side-band`` lines are at
most 1000 bytes (995 of data), ``side-band-64k`` lines at most 65520 (65515).
"""

from __future__ import annotations

import enum

from protocols import pktline


class Band(enum.IntEnum):
    """The three channels: 1 pack data, 2 progress for stderr, 3 fatal error."""

    DATA = 1
    PROGRESS = 2
    ERROR = 3


MAX_PAYLOAD_64K = pktline.MAX_PKT - pktline.HEADER_SIZE - 1
KEEPALIVE = pktline.encode(bytes([Band.DATA]))
"""A band-1 pkt-line with no data (``0005\\1``): git's keepalive while a pack is counted or
committed, which a client reads as no data; a proxy or a firewall sees the connection live."""
MAX_PAYLOAD_SMALL = 1000 - pktline.HEADER_SIZE - 1


def encode(band: Band, data: bytes | memoryview, max_payload: int) -> bytes:
    """Frame ``data`` on ``band`` as as many pkt-lines as the limit needs."""
    if not 0 < max_payload <= MAX_PAYLOAD_64K:
        raise ValueError(f"side-band payload limit {max_payload} out of range")
    # One copy of the data: each line's header and band byte, then a view of its piece (a 27 MB
    # archive was copied four times more, a piece, the band byte before it, the header, the join).
    view = memoryview(data)
    parts: list[bytes | memoryview] = []
    for i in range(0, len(view), max_payload):
        piece = view[i : i + max_payload]
        parts.append(b"%04x%c" % (len(piece) + pktline.HEADER_SIZE + 1, band))
        parts.append(piece)
    return b"".join(parts)
