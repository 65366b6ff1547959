"""The pkt-line framing of every git protocol: encode, and decode incrementally.

gitprotocol-common(5) "pkt-line Format": four lowercase hex digits give the
length of the line *including* those four digits; ``0000`` (flush), ``0001``
(delim) and ``0002`` (response-end, protocol v2) are special.  A line is at
most 65520 bytes (LARGE_PACKET_MAX in git), so a payload is at most 65516.
"""

from __future__ import annotations

import enum

from protocols.errors import LimitExceeded, ProtocolError

FLUSH = b"0000"
DELIM = b"0001"
RESPONSE_END = b"0002"
MAX_PKT = 65520
HEADER_SIZE = 4
MAX_PAYLOAD = MAX_PKT - HEADER_SIZE
DEFAULT_MAX_BUFFER = 1 << 20


class Special(enum.Enum):
    """The zero-payload control packets."""

    FLUSH = 0
    DELIM = 1
    RESPONSE_END = 2


class Signal(enum.Enum):
    """What a core's ``next_event`` returns when it has no event.

    NEED_DATA: feed more bytes.  PAUSED: the core waits for its caller's answer
    (h11's PAUSED), e.g. the acknowledgements of a round of haves.
    """

    NEED_DATA = "need-data"
    PAUSED = "paused"


_SPECIALS = {0: Special.FLUSH, 1: Special.DELIM, 2: Special.RESPONSE_END}
_SPECIAL_BYTES = {Special.FLUSH: FLUSH, Special.DELIM: DELIM, Special.RESPONSE_END: RESPONSE_END}
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")


def encode(payload: bytes) -> bytes:
    """Frame one payload as a pkt-line; refuse payloads git could not read back."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"pkt-line payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    return b"%04x" % (len(payload) + HEADER_SIZE) + payload


def encode_special(special: Special) -> bytes:
    """The four bytes of a flush, delim or response-end packet."""
    return _SPECIAL_BYTES[special]


def parse_length(header: bytes, max_line: int = MAX_PKT) -> int:
    """Parse a 4-byte pkt-line length strictly.

    ``int(x, 16)`` would accept ``-001``, ``+0ff``, `` 0ff`` and ``0_ff``; a
    negative length once made a reader slurp the whole stream (dulwich #2267),
    so every byte must be a hex digit.  Lengths 3 and below (other than the
    specials 0, 1, 2) cannot hold their own header, and lengths above MAX_PKT are
    longer than any git writes; a server may accept less (``max_line``).
    """
    if len(header) != HEADER_SIZE or not all(b in _HEX_DIGITS for b in header):
        # shown as text ('GET '), not as a bytes literal (b'GET '): a person reads it; what is not
        # printable ASCII as \xNN, so no byte reaches their terminal as it came
        shown = "".join(chr(b) if 0x20 <= b < 0x7F else f"\\x{b:02x}" for b in header)
        raise ProtocolError(f"bad pkt-line length '{shown}': expected four hex digits")
    length = int(header, 16)
    if length == 3:
        raise ProtocolError("bad pkt-line length 0003: shorter than its own header")
    if length > max_line:
        raise LimitExceeded(f"pkt-line of {length} bytes exceeds the limit of {max_line}")
    return length


class PktLineDecoder:
    """Split a byte stream into payloads and Special packets, without reslicing per line.

    ``receive_data(b"")`` marks EOF.  ``next_packet()`` returns a payload,
    a ``Special`` or ``Signal.NEED_DATA``; ``take_raw()`` hands over unparsed
    bytes when the stream switches to raw data (a pushed pack).  The buffer is
    bounded by ``max_buffer`` so that a peer cannot make us hoard its input.
    """

    def __init__(self, max_buffer: int = DEFAULT_MAX_BUFFER, max_line: int = MAX_PKT) -> None:
        self._buffer = bytearray()
        self._offset = 0
        self._max_buffer = max(max_buffer, MAX_PKT)
        self._max_line = max(HEADER_SIZE + 1, min(max_line, MAX_PKT))
        self.eof = False

    def receive_data(self, data: bytes) -> None:
        """Buffer ``data``; b"" means the peer closed its side."""
        if not data:
            self.eof = True
            return
        if self._offset:
            del self._buffer[: self._offset]
            self._offset = 0
        if len(self._buffer) + len(data) > self._max_buffer:
            raise LimitExceeded(f"more than {self._max_buffer} unread bytes from the peer")
        self._buffer += data

    def next_packet(self) -> bytes | Special | Signal:
        """Return the next complete packet, or NEED_DATA."""
        available = len(self._buffer) - self._offset
        if available < HEADER_SIZE:
            return self._need_data(available)
        start = self._offset
        length = parse_length(bytes(self._buffer[start : start + HEADER_SIZE]), self._max_line)
        if length in _SPECIALS:
            self._offset += HEADER_SIZE
            return _SPECIALS[length]
        if available < length:
            return self._need_data(available)
        self._offset += length
        return bytes(self._buffer[start + HEADER_SIZE : start + length])

    def take_raw(self) -> bytes:
        """Remove and return every buffered byte not yet parsed."""
        data = bytes(self._buffer[self._offset :])
        self._buffer.clear()
        self._offset = 0
        return data

    def _need_data(self, available: int) -> Signal:
        if self.eof and available:
            raise ProtocolError("the peer closed the connection in the middle of a pkt-line")
        return Signal.NEED_DATA
