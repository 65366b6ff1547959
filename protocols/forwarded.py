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
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_HOPS = 32
"""Entries of ``X-Forwarded-For`` looked at, from the right: a longer chain of trusted proxies is not real."""


@dataclass(frozen=True, slots=True)
class Trusted:
    """The networks whose forwarding headers are believed."""

    networks: tuple[Network, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __contains__(self, host: object) -> bool:
        if not self.networks:
            return False
        address = parse_ip(host)
        return address is not None and any(address in network for network in self.networks)


def parse_network(text: str) -> Network:
    """``10.0.0.0/8``, ``192.0.2.1`` or ``::1``: ValueError if it is none of these."""
    return ipaddress.ip_network(text.strip(), strict=False)


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
    """The client's address per ``X-Forwarded-For`` (every value of the header, in order) when
    ``peer`` is trusted; None when the headers do not apply (the peer is the client)."""
    if not trusted or peer not in trusted or not header_values:
        return None
    entries = [e.strip() for value in header_values for e in value.split(b",")][-MAX_HOPS:]
    client: str | None = None
    for entry in reversed(entries):
        address = parse_ip(entry)
        if address is None:
            return client  # a broken entry: the last trusted hop is all that is known
        client = str(address)
        if client not in trusted:
            return client
    return client


def forwarded_https(peer: str, header_values: Sequence[bytes], trusted: Trusted) -> bool:
    """Whether a trusted ``peer`` says the client used HTTPS (the last ``X-Forwarded-Proto`` value)."""
    if not trusted or peer not in trusted or not header_values:
        return False
    last = header_values[-1].split(b",")[-1].strip().lower()
    return last == b"https"
