"""Who an HTTP request came from when a trusted reverse proxy forwarded it.

A reverse proxy (nginx's ``proxy_set_header X-Forwarded-For
$proxy_add_x_forwarded_for``, HAProxy's ``option forwardfor``) appends the
address it received the request from to ``X-Forwarded-For``, and tells the
scheme the client used in ``X-Forwarded-Proto``.  Anyone can send those
headers, so they are believed only from a peer the operator trusts, and only
as far as the chain of trusted proxies goes: reading ``X-Forwarded-For`` from
the right, each entry that is itself a trusted proxy is skipped, and the first
one that is not is the client (an entry further left was written by that
client, who may say anything).  If every entry is trusted, the leftmost one is
the client; an entry that is not an IP address ends the walk at the last
trusted hop.

A proxy that writes RFC 7239's ``Forwarded`` instead (HAProxy's ``option
forwarded``, ``for=192.0.2.43;proto=https``, one element per hop, comma
separated) is read the same way when the operator says so (``Trusted.header``):
the ``for=`` of each element from the right, its port dropped, and the ``proto=``
of the last element.  ``unknown``, an obfuscated name (``_hidden``) or an
element that does not parse ends the walk as a broken entry does.  Which header
is read is a setting, never a guess: a proxy passes on, untouched, the header
it does not write itself, and the client may have written that one.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_HOPS = 32
"""Entries of ``X-Forwarded-For`` looked at, from the right: a longer chain of trusted proxies is not real."""


X_FORWARDED_FOR = "x-forwarded-for"
FORWARDED = "forwarded"
HEADERS = (X_FORWARDED_FOR, FORWARDED)
"""The forwarding headers a trusted proxy may be said to write (``[http] forwarded_header``)."""


UNIX_PEER = "unix"
"""The name of a ``unix:`` listener's peer, which has no address: ``trusted_proxies = ["unix"]``
believes the proxies that reach hgwire through such a socket (only processes the socket's file
permissions let in can)."""


@dataclass(frozen=True, slots=True)
class Trusted:
    """The networks whose forwarding headers are believed, and which header they write."""

    networks: tuple[Network, ...] = ()
    header: str = X_FORWARDED_FOR
    """``x-forwarded-for`` (with ``X-Forwarded-Proto``) or ``forwarded`` (RFC 7239)."""
    unix: bool = False
    """Whether the peers of ``unix:`` listeners (``UNIX_PEER``) are trusted proxies."""

    @property
    def client_header(self) -> bytes:
        """The request header naming the client."""
        return self.header.encode("ascii")

    @property
    def proto_header(self) -> bytes:
        """The request header telling the client's scheme."""
        return b"forwarded" if self.header == FORWARDED else b"x-forwarded-proto"

    def __bool__(self) -> bool:
        return bool(self.networks) or self.unix

    def __contains__(self, host: object) -> bool:
        return (self.unix and host == UNIX_PEER) or in_networks(host, self.networks)


def in_networks(host: object, networks: Sequence[Network]) -> bool:
    """Whether ``host`` (an IP address in text, as ``parse_ip`` reads it) is in one of ``networks``."""
    if not networks:
        return False
    address = parse_ip(host)
    return address is not None and any(address in network for network in networks)


def parse_network(text: str) -> Network:
    """``10.0.0.0/8``, ``192.0.2.1`` or ``::1``: ValueError if it is none of these, or a network
    with bits set past its length (``10.0.0.5/8``: a slip that would trust all of 10/8), saying
    which network that would be."""
    try:
        return ipaddress.ip_network(text.strip())
    except ValueError:
        try:
            meant = ipaddress.ip_network(text.strip(), strict=False)
        except ValueError:
            raise ValueError(f"{text[:60]!r} is not an IP address or network") from None
        raise ValueError(f"{text[:60]!r} has bits set past its length: write {meant} if all of it is meant, "
                         "or the address alone") from None


def parse_ip(host: object) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An IP address in text (or bytes), maybe in ``[]``, an IPv4-mapped IPv6 address as its IPv4
    address; None for anything else."""
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return None
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:10.0.0.1 from a dual-stack socket is 10.0.0.1
    return address


def forwarded_client(peer: str, header_values: Sequence[bytes], trusted: Trusted) -> str | None:
    """The client's address per the trusted proxies' header (``trusted.client_header``, every value
    of it, in order) when ``peer`` is trusted; None when the headers do not apply (the peer is the
    client)."""
    if not trusted or peer not in trusted or not header_values:
        return None
    entries: Sequence[bytes | None]
    if trusted.header == FORWARDED:
        entries = [_for_host(element) for element in forwarded_elements(header_values)]
    else:
        entries = [e.strip() for value in header_values for e in value.split(b",")][-MAX_HOPS:]
    client: str | None = None
    for entry in reversed(entries):
        address = parse_ip(entry) if entry is not None else None
        if address is None:
            return client  # a broken entry: the last trusted hop is all that is known
        client = str(address)
        if client not in trusted:
            return client
    return client


def forwarded_https(peer: str, header_values: Sequence[bytes], trusted: Trusted) -> bool:
    """Whether a trusted ``peer`` says the client used HTTPS: the last ``X-Forwarded-Proto`` value,
    or the ``proto=`` of the last ``Forwarded`` element (``trusted.proto_header``)."""
    if not trusted or peer not in trusted or not header_values:
        return False
    if trusted.header == FORWARDED:
        elements = forwarded_elements(header_values[-1:])
        last_pairs = _pairs(elements[-1]) if elements else None
        return last_pairs is not None and last_pairs.get(b"proto", b"").lower() == b"https"
    last = header_values[-1].split(b",")[-1].strip().lower()
    return last == b"https"


def forwarded_elements(header_values: Sequence[bytes]) -> list[bytes]:
    """RFC 7239's elements (one per hop) of every ``Forwarded`` value, in order, the last
    ``MAX_HOPS``: split at the commas outside quoted strings, each left unparsed (``_pairs``)."""
    elements = [element for value in header_values for element in _split_quoted(value, 0x2C)]  # commas
    return [e.strip() for e in elements][-MAX_HOPS:]


_TOKEN = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_PAIR = re.compile(rb"[ \t]*(" + _TOKEN + rb")=(" + _TOKEN + rb'|"(?:[^"\\]|\\.)*")[ \t]*')


def _pairs(element: bytes) -> dict[bytes, bytes] | None:
    """``for=...;proto=...`` as {lowercased name: value, unquoted}; None when it does not parse
    (RFC 7239 §4: ``forwarded-pair *( ";" forwarded-pair )``, each name at most once)."""
    pairs: dict[bytes, bytes] = {}
    for part in _split_quoted(element, 0x3B):  # semicolons
        match = _PAIR.fullmatch(part)
        if match is None:
            return None
        name, value = match.group(1).lower(), match.group(2)
        if name in pairs:
            return None
        if value.startswith(b'"'):
            value = re.sub(rb"\\(.)", rb"\1", value[1:-1])
        pairs[name] = value
    return pairs


def _split_quoted(text: bytes, separator: int) -> list[bytes]:
    """``text`` split at each ``separator`` byte outside a quoted string."""
    parts, start, quoted, escaped = [], 0, False, False
    for i, byte in enumerate(text):
        if escaped:
            escaped = False
        elif quoted and byte == 0x5C:
            escaped = True
        elif byte == 0x22:
            quoted = not quoted
        elif byte == separator and not quoted:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _for_host(element: bytes) -> bytes | None:
    """The address an element's ``for=`` gives, its port dropped (``"[2001:db8::1]:4711"``,
    ``192.0.2.1:8080``); None for none, ``unknown``, an obfuscated name or a broken element."""
    pairs = _pairs(element)
    node = pairs.get(b"for") if pairs is not None else None
    if not node:
        return None
    if node.startswith(b"["):
        end = node.find(b"]")
        return node[: end + 1] if end > 0 and node[end + 1:end + 2] in (b"", b":") else None
    if node.count(b":") == 1:  # an IPv4 address and a port (a bare IPv6 address must be in brackets)
        return node.split(b":", 1)[0]
    return node if b":" not in node else None
