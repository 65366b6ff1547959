"""The PROXY protocol header codec (protocols.proxy_header): transcripts, bounds, round trips."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.proxy_header import (
    V1_MAX,
    V2_SIGNATURE,
    Endpoint,
    ProxyHeader,
    ProxyHeaderError,
    ProxyHeaderReader,
    encode_v1,
    encode_v2,
)


def read_all(data: bytes) -> tuple[ProxyHeader, bytes]:
    result = ProxyHeaderReader().feed(data)
    assert result is not None
    return result


def read_bytewise(data: bytes) -> tuple[ProxyHeader, bytes] | None:
    """Feed one byte at a time, as a slow proxy would; the first complete answer."""
    reader = ProxyHeaderReader()
    for i in range(len(data)):
        result = reader.feed(data[i:i + 1])
        if result is not None:
            header, rest = result
            return header, rest + data[i + 1:]
    return None


def test_a_v1_tcp4_line_names_the_client_and_leaves_the_client_s_bytes() -> None:
    header, rest = read_all(b"PROXY TCP4 203.0.113.7 192.0.2.1 56324 443\r\nGET / HTTP/1.1\r\n")
    assert header == ProxyHeader(1, Endpoint("203.0.113.7", 56324), Endpoint("192.0.2.1", 443))
    assert rest == b"GET / HTTP/1.1\r\n"


def test_a_v1_tcp6_line_gives_canonical_addresses() -> None:
    header, rest = read_all(b"PROXY TCP6 2001:DB8:0:0::7 2001:db8::1 0 65535\r\n")
    assert header.source == Endpoint("2001:db8::7", 0)
    assert header.destination == Endpoint("2001:db8::1", 65535)
    assert rest == b""


def test_v1_unknown_gives_no_address_whatever_follows_on_the_line() -> None:
    assert read_all(b"PROXY UNKNOWN\r\nx") == (ProxyHeader(1), b"x")
    assert read_all(b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n") == (ProxyHeader(1), b"")


@pytest.mark.parametrize("line", [
    b"PROXY TCP4 203.0.113.7 192.0.2.1 56324\r\n",          # a field missing
    b"PROXY TCP4 203.0.113.7  192.0.2.1 56324 443\r\n",     # two spaces
    b"PROXY TCP4 2001:db8::7 192.0.2.1 56324 443\r\n",      # an IPv6 address under TCP4
    b"PROXY TCP6 203.0.113.7 2001:db8::1 1 2\r\n",          # an IPv4 address under TCP6
    b"PROXY TCP4 203.0.113.256 192.0.2.1 1 2\r\n",
    b"PROXY TCP4 203.0.113.7 192.0.2.1 65536 443\r\n",
    b"PROXY TCP4 203.0.113.7 192.0.2.1 0443 443\r\n",        # a leading zero
    b"PROXY TCP4 203.0.113.7 192.0.2.1 -1 443\r\n",
    b"PROXY TCP4 203.0.113.7 192.0.2.1 +1 443\r\n",
    b"PROXY UDP4 203.0.113.7 192.0.2.1 1 2\r\n",
    b"PROXY tcp4 203.0.113.7 192.0.2.1 1 2\r\n",
    b"PROXY TCP4 203.0.113.7 192.0.2.1 1 2\n",              # LF without CR
    b"proxy TCP4 203.0.113.7 192.0.2.1 1 2\r\n",
    b"GET / HTTP/1.1\r\n",                                  # a client that did not come through the proxy
    b"SSH-2.0-OpenSSH_9.2\r\n",
    b"0032git-upload-pack /x.git\x00",
])
def test_a_bad_v1_line_or_no_header_is_refused(line: bytes) -> None:
    with pytest.raises(ProxyHeaderError):
        ProxyHeaderReader().feed(line)


def test_a_v1_line_must_end_within_107_bytes() -> None:
    reader = ProxyHeaderReader()
    assert reader.feed(b"PROXY UNKNOWN " + b"x" * (V1_MAX - len(b"PROXY UNKNOWN ") - 1)) is None
    with pytest.raises(ProxyHeaderError, match="107"):
        reader.feed(b"x")
    longest = b"PROXY UNKNOWN " + b"x" * (V1_MAX - len(b"PROXY UNKNOWN ") - 2) + b"\r\n"
    assert len(longest) == V1_MAX
    assert read_all(longest) == (ProxyHeader(1), b"")


def test_a_v2_proxy_header_for_tcp4_with_extensions() -> None:
    data = (V2_SIGNATURE + b"\x21\x11\x00\x11"
            + bytes([198, 51, 100, 9, 192, 0, 2, 1]) + b"\x12\x34\x01\xbb"
            + b"\x04\x00\x02ok"  # a TLV (PP2_TYPE_NOOP), skipped
            + b"SSH-2.0-x\r\n")
    header, rest = read_all(data)
    assert header == ProxyHeader(2, Endpoint("198.51.100.9", 0x1234), Endpoint("192.0.2.1", 443))
    assert rest == b"SSH-2.0-x\r\n"


def test_a_v2_local_header_is_the_proxy_s_own_connection() -> None:
    assert read_all(V2_SIGNATURE + b"\x20\x00\x00\x00rest") == (ProxyHeader(2), b"rest")
    # LOCAL with addresses: they are ignored, as the specification says
    local = encode_v2(Endpoint("10.0.0.1", 1), Endpoint("10.0.0.2", 2))
    local = local[:12] + b"\x20" + local[13:]
    assert read_all(local) == (ProxyHeader(2), b"")


def test_v2_unspecified_and_unix_families_give_no_address() -> None:
    assert read_all(V2_SIGNATURE + b"\x21\x00\x00\x00")[0] == ProxyHeader(2)
    unix = V2_SIGNATURE + b"\x21\x31" + (216).to_bytes(2, "big") + b"\x00" * 216
    assert read_all(unix) == (ProxyHeader(2), b"")


@pytest.mark.parametrize("data", [
    V2_SIGNATURE + b"\x11\x11\x00\x0c" + b"\x00" * 12,   # version 1 in a v2 header
    V2_SIGNATURE + b"\x22\x11\x00\x0c" + b"\x00" * 12,   # command 2
    V2_SIGNATURE + b"\x21\x11\x00\x0b" + b"\x00" * 11,   # too short for two IPv4 addresses and ports
    V2_SIGNATURE + b"\x21\x21\x00\x0c" + b"\x00" * 12,   # too short for IPv6
    V2_SIGNATURE[:11] + b"X",
])
def test_a_bad_v2_header_is_refused(data: bytes) -> None:
    with pytest.raises(ProxyHeaderError):
        ProxyHeaderReader().feed(data)


def test_a_v2_header_is_read_whatever_its_length_and_never_past_it() -> None:
    tlvs = b"\x04" + (65535 - 12 - 3).to_bytes(2, "big") + b"\x00" * (65535 - 12 - 3)
    data = encode_v2(Endpoint("10.1.2.3", 9), Endpoint("10.0.0.1", 22), tlvs)
    reader = ProxyHeaderReader()
    assert reader.feed(data[:-1]) is None
    header, rest = reader.feed(data[-1:] + b"more") or (None, None)
    assert header is not None and header.source == Endpoint("10.1.2.3", 9) and rest == b"more"


def test_the_reader_reads_one_header_only() -> None:
    reader = ProxyHeaderReader()
    assert reader.feed(b"PROXY UNKNOWN\r\n") is not None
    with pytest.raises(ProxyHeaderError):
        reader.feed(b"PROXY UNKNOWN\r\n")


ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(lambda a: str(ipaddress.IPv6Address(a)))
ports = st.integers(0, 65535)


@st.composite
def endpoints(draw: st.DrawFn) -> tuple[Endpoint, Endpoint]:
    hosts = draw(st.one_of(st.tuples(ipv4, ipv4), st.tuples(ipv6, ipv6)))
    return Endpoint(hosts[0], draw(ports)), Endpoint(hosts[1], draw(ports))


@given(endpoints(), st.binary(max_size=64), st.booleans())
def test_either_version_round_trips_fed_whole_or_byte_by_byte(
        pair: tuple[Endpoint, Endpoint], after: bytes, v2: bool) -> None:
    source, destination = pair
    data = (encode_v2(source, destination) if v2 else encode_v1(source, destination)) + after
    expected = (ProxyHeader(2 if v2 else 1, source, destination), after)
    assert read_all(data) == expected
    assert read_bytewise(data) == expected


@given(st.binary(max_size=200))
def test_any_bytes_give_a_header_an_error_or_a_wait_within_the_bound(data: bytes) -> None:
    reader = ProxyHeaderReader()
    try:
        result = reader.feed(data)
    except ProxyHeaderError:
        return
    if result is None:  # still waiting: only on the beginning of a header that may yet be valid
        v1 = data.startswith(b"PROXY ") or b"PROXY ".startswith(data)
        v2 = data.startswith(V2_SIGNATURE) or V2_SIGNATURE.startswith(data)
        assert v2 or (v1 and len(data) < V1_MAX and b"\n" not in data)
