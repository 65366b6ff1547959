"""The PROXY protocol header a TCP proxy (HAProxy, nginx's stream module, AWS/GCP load
balancers) sends first on each connection it opens to a server: who the client is.

Version 1 is one text line of at most 107 bytes::

    PROXY TCP4 203.0.113.7 192.0.2.1 56324 443\\r\\n
    PROXY TCP6 2001:db8::7 2001:db8::1 56324 443\\r\\n
    PROXY UNKNOWN\\r\\n                      (anything may follow UNKNOWN on the line)

Version 2 is binary: a 12-byte signature, one byte of version (2) and command
(0 LOCAL: the proxy's own connection, a health check; 1 PROXY), one byte of
address family and transport, a 2-byte big-endian length, then that many bytes:
the addresses (IPv4: source, destination, source port, destination port, 12
bytes; IPv6: 36 bytes; UNIX: 216 bytes) and type-length-value extensions, which
are skipped.

A listener that expects the header requires it: the specification forbids
guessing, since a client that could leave it out could also forge it.  A
connection whose header is not valid is refused.  ``LOCAL``, ``UNKNOWN``, an
unspecified family and UNIX sockets give no client address: the connection's
own addresses stand.

``ProxyHeaderReader`` is fed bytes as they arrive; ``feed`` returns None until
the header is complete, then the header and the bytes after it (the client's
own first bytes).  It never buffers more than one header (v1: 107 bytes; v2:
16 + 65535 bytes, the most its length field can say).
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from protocols.errors import ProtocolError

V1_PREFIX = b"PROXY "
V1_MAX = 107
"""The longest v1 line, CRLF included (the specification's own bound)."""
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V2_HEAD = struct.Struct(">12sBBH")
V2_VERSION = 0x20
V2_LOCAL = 0x00
V2_PROXY = 0x01
V2_TCP4 = 0x11
V2_TCP6 = 0x21
_V2_ADDRESSES = {V2_TCP4: struct.Struct(">4s4sHH"), V2_TCP6: struct.Struct(">16s16sHH")}
_V1_FAMILIES = {b"TCP4": 4, b"TCP6": 6}
_DIGITS = frozenset(b"0123456789")


class ProxyHeaderError(ProtocolError):
    """The bytes a PROXY listener read first are not a valid PROXY protocol header."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One side of the proxied connection: an IP address in its canonical text, and a port."""

    host: str
    port: int


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    """What the proxy said: the client (``source``) and the address it connected to, or None for
    both when the header names no TCP connection (``LOCAL``, ``UNKNOWN``, another family)."""

    version: int
    source: Endpoint | None = None
    destination: Endpoint | None = None


class ProxyHeaderReader:
    """Reads one PROXY header (v1 or v2) from the start of a connection."""

    def __init__(self) -> None:
        self._buffer = b""
        self.done = False

    def feed(self, data: bytes) -> tuple[ProxyHeader, bytes] | None:
        """The header and the bytes after it once complete; None while more bytes are needed.

        Raises ``ProxyHeaderError`` as soon as the bytes cannot begin a valid header.
        """
        if self.done:
            raise ProxyHeaderError("the PROXY header was already read")
        buffer = self._buffer + data
        self._buffer = b""
        if buffer[:len(V2_SIGNATURE)] == V2_SIGNATURE[:len(buffer)] and buffer:
            result = _read_v2(buffer)
        elif buffer[:len(V1_PREFIX)] == V1_PREFIX[:len(buffer)]:
            result = _read_v1(buffer)
        else:
            raise ProxyHeaderError("the connection did not begin with a PROXY protocol header")
        if result is None:
            self._buffer = buffer
            return None
        self.done = True
        return result


def _read_v1(buffer: bytes) -> tuple[ProxyHeader, bytes] | None:
    end = buffer.find(b"\r\n", 0, V1_MAX)
    if end < 0:
        if len(buffer) >= V1_MAX or b"\n" in buffer[:V1_MAX]:
            raise ProxyHeaderError(f"the PROXY v1 line does not end with CRLF within {V1_MAX} bytes")
        return None
    return parse_v1_line(buffer[:end]), buffer[end + 2:]


def parse_v1_line(line: bytes) -> ProxyHeader:
    """One v1 line without its CRLF."""
    if not line.startswith(V1_PREFIX):
        raise ProxyHeaderError("the PROXY v1 line does not begin with 'PROXY '")
    fields = line[len(V1_PREFIX):].split(b" ")
    if fields[0] == b"UNKNOWN":
        return ProxyHeader(1)  # the rest of the line is ignored, as the specification says
    version = _V1_FAMILIES.get(fields[0])
    if version is None:
        raise ProxyHeaderError("the PROXY v1 line names an unknown protocol (TCP4, TCP6 or UNKNOWN)")
    if len(fields) != 5:
        raise ProxyHeaderError("the PROXY v1 line must give two addresses and two ports")
    source = Endpoint(_v1_address(fields[1], version), _v1_port(fields[3]))
    destination = Endpoint(_v1_address(fields[2], version), _v1_port(fields[4]))
    return ProxyHeader(1, source, destination)


def _v1_address(text: bytes, version: int) -> str:
    try:
        address = ipaddress.ip_address(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise ProxyHeaderError("the PROXY v1 line has an address that is not an IP address") from None
    if address.version != version:
        raise ProxyHeaderError(f"the PROXY v1 line has an address that is not IPv{version}")
    return str(address)


def _v1_port(text: bytes) -> int:
    if not text or not _DIGITS.issuperset(text) or (len(text) > 1 and text[:1] == b"0") or len(text) > 5:
        raise ProxyHeaderError("the PROXY v1 line has a port that is not a number from 0 to 65535")
    port = int(text)
    if port > 65535:
        raise ProxyHeaderError("the PROXY v1 line has a port that is not a number from 0 to 65535")
    return port


def _read_v2(buffer: bytes) -> tuple[ProxyHeader, bytes] | None:
    if len(buffer) < V2_HEAD.size:
        return None
    _, version_command, family, length = V2_HEAD.unpack_from(buffer)
    if version_command & 0xF0 != V2_VERSION:
        raise ProxyHeaderError("the PROXY v2 header has a version other than 2")
    command = version_command & 0x0F
    if command not in (V2_LOCAL, V2_PROXY):
        raise ProxyHeaderError("the PROXY v2 header has an unknown command")
    end = V2_HEAD.size + length
    if len(buffer) < end:
        return None
    body = buffer[V2_HEAD.size:end]
    rest = buffer[end:]
    if command == V2_LOCAL or family not in _V2_ADDRESSES:
        return ProxyHeader(2), rest  # no client address: the connection's own stand
    layout = _V2_ADDRESSES[family]
    if length < layout.size:
        raise ProxyHeaderError("the PROXY v2 header is too short for its addresses")
    src, dst, src_port, dst_port = layout.unpack_from(body)
    source = Endpoint(str(ipaddress.ip_address(src)), src_port)
    destination = Endpoint(str(ipaddress.ip_address(dst)), dst_port)
    return ProxyHeader(2, source, destination), rest


def encode_v1(source: Endpoint | None, destination: Endpoint | None) -> bytes:
    """A v1 line (``UNKNOWN`` without addresses): what a proxy sends; for tests and tools."""
    if source is None or destination is None:
        return b"PROXY UNKNOWN\r\n"
    family = b"TCP6" if ":" in source.host else b"TCP4"
    return b"PROXY %s %s %s %d %d\r\n" % (family, source.host.encode(), destination.host.encode(),
                                          source.port, destination.port)


def encode_v2(source: Endpoint | None, destination: Endpoint | None, tlvs: bytes = b"") -> bytes:
    """A v2 header (``LOCAL`` without addresses): what a proxy sends; for tests and tools."""
    if source is None or destination is None:
        return V2_HEAD.pack(V2_SIGNATURE, V2_VERSION | V2_LOCAL, 0, len(tlvs)) + tlvs
    family = V2_TCP6 if ":" in source.host else V2_TCP4
    body = _V2_ADDRESSES[family].pack(ipaddress.ip_address(source.host).packed,
                                      ipaddress.ip_address(destination.host).packed,
                                      source.port, destination.port) + tlvs
    return V2_HEAD.pack(V2_SIGNATURE, V2_VERSION | V2_PROXY, family, len(body)) + body
