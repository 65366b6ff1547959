"""Forwarding headers of trusted reverse proxies (protocols.forwarded)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.forwarded import (
    FORWARDED,
    MAX_HOPS,
    Trusted,
    forwarded_client,
    forwarded_elements,
    forwarded_https,
    parse_network,
)

PROXIES = Trusted((parse_network("127.0.0.1"), parse_network("10.0.0.0/8"), parse_network("fd00::/8")))


@pytest.mark.parametrize(("peer", "values", "client"), [
    ("127.0.0.1", [b"203.0.113.9"], "203.0.113.9"),                      # one proxy
    ("127.0.0.1", [b"6.6.6.6, 203.0.113.9"], "203.0.113.9"),             # the client's own entry is not believed
    ("127.0.0.1", [b"6.6.6.6", b"203.0.113.9, 10.1.1.1"], "203.0.113.9"),  # two headers; a second proxy
    ("127.0.0.1", [b"10.1.1.1, 10.2.2.2"], "10.1.1.1"),                  # every hop trusted: the leftmost
    ("127.0.0.1", [b"203.0.113.9, junk, 10.1.1.1"], "10.1.1.1"),         # junk ends the walk at the last trusted hop
    ("127.0.0.1", [b"junk"], None),
    ("127.0.0.1", [b"[2001:db8::9]"], "2001:db8::9"),
    ("127.0.0.1", [b"2001:DB8::9 ,fd00::1"], "2001:db8::9"),
    ("::ffff:127.0.0.1", [b"203.0.113.9"], "203.0.113.9"),              # a dual-stack socket's IPv4 peer
    ("127.0.0.1", [b"::ffff:203.0.113.9"], "203.0.113.9"),
    ("192.0.2.1", [b"203.0.113.9"], None),                               # a peer not trusted
    ("127.0.0.1", [], None),
])
def test_the_client_is_the_first_entry_from_the_right_that_is_not_a_trusted_proxy(
        peer: str, values: list[bytes], client: str | None) -> None:
    assert forwarded_client(peer, values, PROXIES) == client


def test_no_trusted_proxies_believes_nothing() -> None:
    assert forwarded_client("127.0.0.1", [b"203.0.113.9"], Trusted()) is None
    assert not forwarded_https("127.0.0.1", [b"https"], Trusted())


def test_https_is_the_last_proto_a_trusted_peer_gives() -> None:
    assert forwarded_https("127.0.0.1", [b"HTTPS"], PROXIES)
    assert forwarded_https("127.0.0.1", [b"http, https"], PROXIES)
    assert not forwarded_https("127.0.0.1", [b"https, http"], PROXIES)
    assert not forwarded_https("192.0.2.1", [b"https"], PROXIES)
    assert not forwarded_https("127.0.0.1", [], PROXIES)


def test_only_the_last_hops_are_read() -> None:
    trusted_chain = b", ".join(b"10.0.0.%d" % i for i in range(1, 200))
    assert forwarded_client("127.0.0.1", [b"203.0.113.9, " + trusted_chain], PROXIES) == f"10.0.0.{200 - MAX_HOPS}"


addresses = st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)).map(str)


@given(st.lists(st.one_of(addresses, st.sampled_from(["10.0.0.1", "127.0.0.1", "junk", ""])), max_size=40))
def test_the_answer_is_an_entry_and_never_left_of_an_untrusted_one(entries: list[str]) -> None:
    client = forwarded_client("127.0.0.1", [", ".join(entries).encode()], PROXIES)
    if client is None:
        return
    canonical = [_canonical(e) if _is_ip(e) else e for e in entries]
    assert client in canonical
    position = len(canonical) - 1 - canonical[::-1].index(client)
    assert all(_is_ip(e) and e in PROXIES for e in canonical[position + 1:]), "only trusted hops are skipped"


def _canonical(text: str) -> str:
    address = ipaddress.ip_address(text)
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:a.b.c.d is the IPv4 client a.b.c.d
    return str(mapped or address)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


RFC_PROXIES = Trusted(PROXIES.networks, FORWARDED)


@pytest.mark.parametrize(("values", "client"), [
    ([b"for=203.0.113.9"], "203.0.113.9"),
    ([b"for=6.6.6.6, for=203.0.113.9;proto=https"], "203.0.113.9"),     # the client's own element is not believed
    ([b'for="[2001:db8:cafe::17]:4711"'], "2001:db8:cafe::17"),          # RFC 7239 §6: quoted, with a port
    ([b'For="203.0.113.9:8080";by=10.0.0.1'], "203.0.113.9"),            # names are case-insensitive
    ([b"for=203.0.113.9", b"for=10.1.1.1;proto=http"], "203.0.113.9"),   # two headers; a second proxy
    ([b"for=203.0.113.9, for=unknown, for=10.1.1.1"], "10.1.1.1"),       # unknown ends the walk
    ([b"for=_hidden"], None),                                            # an obfuscated name
    ([b'for="6.6.6.6, for=1.2.3.4", for=203.0.113.9'], "203.0.113.9"),   # a comma inside quotes is no element
    ([b'for=6.6.6.6;for=7.7.7.7, for=10.1.1.1'], "10.1.1.1"),            # a name twice: a broken element
    ([b"for=203.0.113.9;proto"], None),                                  # a pair with no value
    ([b"by=10.0.0.1"], None),                                            # no for=
    ([b"for=2001:db8::1"], None),                                        # IPv6 must be quoted in brackets
    ([b'for="[2001:db8::1]junk"'], None),
    ([b"203.0.113.9"], None),                                            # X-Forwarded-For's syntax
])
def test_rfc_7239_names_the_client_by_the_for_of_each_element_from_the_right(
        values: list[bytes], client: str | None) -> None:
    assert forwarded_client("127.0.0.1", values, RFC_PROXIES) == client
    assert forwarded_client("192.0.2.1", values, RFC_PROXIES) is None  # a peer not trusted


def test_rfc_7239_https_is_the_proto_of_the_last_element() -> None:
    assert forwarded_https("127.0.0.1", [b"for=203.0.113.9;proto=HTTPS"], RFC_PROXIES)
    assert forwarded_https("127.0.0.1", [b"for=1.2.3.4;proto=http, for=203.0.113.9;proto=https"], RFC_PROXIES)
    assert not forwarded_https("127.0.0.1", [b"for=1.2.3.4;proto=https, for=203.0.113.9"], RFC_PROXIES)
    assert not forwarded_https("127.0.0.1", [b'for=203.0.113.9;proto="https'], RFC_PROXIES)
    assert not forwarded_https("192.0.2.1", [b"proto=https"], RFC_PROXIES)
    assert not forwarded_https("127.0.0.1", [b"https"], RFC_PROXIES)  # X-Forwarded-Proto's syntax


def test_only_the_last_rfc_7239_elements_are_read() -> None:
    chain = b", ".join(b"for=10.0.0.%d" % i for i in range(1, 200))
    assert forwarded_client("127.0.0.1", [b"for=203.0.113.9, " + chain], RFC_PROXIES) == f"10.0.0.{200 - MAX_HOPS}"
    assert len(forwarded_elements([chain])) == MAX_HOPS


@given(st.lists(st.binary(max_size=60), max_size=5))
def test_any_forwarded_header_names_an_address_or_nobody(values: list[bytes]) -> None:
    client = forwarded_client("127.0.0.1", values, RFC_PROXIES)
    assert client is None or _is_ip(client)
    forwarded_https("127.0.0.1", values, RFC_PROXIES)
