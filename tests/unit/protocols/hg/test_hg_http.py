"""The sans-IO HTTP transport of hg: arguments three ways, X-HgProto, media types, compression, rendering."""

from __future__ import annotations

import dataclasses
import ipaddress
import struct
import urllib.parse
import zlib
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st

from protocols.errors import LimitExceeded, ProtocolError
from protocols.hg_http import (
    PROTO_V2,
    HttpLimits,
    ProtoCaps,
    WireSettings,
    choose_encoding,
    encode_stream,
    http_capabilities,
    numbered_headers,
    parse_head,
    parse_proto,
    parse_urlencoded,
    render,
    with_post_args,
)
from protocols.hg_responses import BytesResponse, OobError, PushError, PushResponse, StreamResponse
from protocols.hg_ssh import bundle_engine

# What hg 7.2.4 sends after the handshake (PROTOCOL-NOTES §1.1), spelled out, not imported.
CLIENT_PROTO = b"0.1 0.2 comp=zstd,zlib,none,bzip2 partial-pull"
ARGS = {b"namespace": b"bookmarks", b"nodes": b"ab" * 20 + b" " + b"cd" * 20, b"odd": b"a=b&c;d:e f%"}
DEFAULT = WireSettings()
LIMITS = HttpLimits()


def _split(value: bytes, size: int) -> list[tuple[bytes, bytes]]:
    """Cut ``value`` into ``X-HgArg-N`` headers as httppeer's ``encodevalueinheaders`` does."""
    return [(b"X-HgArg-%d" % (i + 1), value[o:o + size]) for i, o in enumerate(range(0, len(value), size))]


def _encoded(args: dict[bytes, bytes]) -> bytes:
    return urllib.parse.urlencode(sorted(args.items())).encode()


def test_arguments_via_query_headers_and_post_body_are_the_same() -> None:
    encoded = _encoded(ARGS)
    via_query = parse_head(b"cmd=listkeys&" + encoded, [], None)
    via_headers = parse_head(b"cmd=listkeys", _split(encoded, 30), None)
    post = parse_head(b"cmd=listkeys", [(b"X-HgArgs-Post", b"%d" % len(encoded))], len(encoded) + 10)
    via_post = with_post_args(post, encoded)
    assert via_query.command == via_headers.command == post.command == b"listkeys"
    assert dict(via_query.args) == dict(via_headers.args) == via_post == ARGS
    assert post.post_args_length == len(encoded)


@pytest.mark.parametrize("query, headers, length, status", [
    (b"", [], None, 400),  # no cmd
    (b"cmd=heads&cmd=heads", [], None, 400),  # repeated
    (b"cmd=heads&x", [], None, 400),  # a field without '='
    (b"cmd=known&nodes=a", [(b"X-HgArg-1", b"nodes=b")], None, 400),  # twice across places
    (b"cmd=known", [(b"X-HgArg-2", b"nodes=b")], None, 400),  # a gap
    (b"cmd=known", [(b"X-HgArg-1", b"a=1"), (b"x-hgarg-1", b"b=2")], None, 400),  # repeated header
    (b"cmd=known", [(b"X-HgArg-01", b"a=1")], None, 400),
    (b"cmd=known", [(b"X-HgArg-1", b"n" * 1025)], None, 431),
    (b"cmd=known", _split(b"n=" + b"a" * (LIMITS.header_count + 1) * 100, 100), None, 431),  # one too many
    (b"cmd=known", [(b"X-HgArgs-Post", b"12")], 5, 400),  # longer than the body
    (b"cmd=known", [(b"X-HgArgs-Post", b"-1")], 5, 400),
    (b"cmd=known", [(b"X-HgArgs-Post", b"99999999999")], 10**12, 413),
    (b"cmd=known", [(b"X-HgArgs-Post", b"3"), (b"X-HgArg-1", b"a=1")], 5, 400),  # both carriers
    (b"cmd=heads&" + b"a=1&" * 5000, [], None, 414),
    (b"cmd=heads&" + b"&".join(b"a%d=1" % i for i in range(300)), [], None, 400),  # too many fields
    (b"cmd=known&nodes=a&nodes=a", [], None, 400),
], ids=lambda v: repr(v)[:30])
def test_bad_requests_are_refused_with_a_status(query: bytes, headers: list[tuple[bytes, bytes]],
                                                 length: int | None, status: int) -> None:
    with pytest.raises(ProtocolError) as refused:
        parse_head(query, headers, length, LIMITS)
    assert refused.value.http_status == status


def test_empty_fields_are_skipped_and_plus_is_a_space() -> None:
    assert parse_urlencoded(b"&a=1+2&&b=%2B&", LIMITS, "query") == {b"a": b"1 2", b"b": b"+"}


def test_post_args_shorter_than_announced_are_refused() -> None:
    head = parse_head(b"cmd=heads", [(b"X-HgArgs-Post", b"10")], 10)
    with pytest.raises(ProtocolError):
        with_post_args(head, b"a=1")


def test_vary_names_the_hg_headers_of_the_request() -> None:
    head = parse_head(b"cmd=heads", [(b"X-HgProto-1", CLIENT_PROTO), (b"X-HgArg-1", b"a=1"),
                                     (b"Accept", b"*/*")], None)
    assert head.vary == (b"x-hgarg-1", b"x-hgproto-1")


def test_proto_of_a_default_client() -> None:
    proto = parse_head(b"cmd=getbundle", [(b"X-HgProto-1", CLIENT_PROTO)], None).proto
    assert proto == ProtoCaps(frozenset({b"0.1", b"0.2"}), (b"zstd", b"zlib", b"none", b"bzip2"), True)


def test_proto_split_over_headers_and_unknown_tokens() -> None:
    headers = [(b"X-HgProto-1", b"0.2 comp=zl"), (b"X-HgProto-2", b"ib future-thing")]
    proto = parse_proto(numbered_headers(headers, b"X-HgProto", LIMITS), LIMITS)
    assert proto == ProtoCaps(frozenset({b"0.2"}), (b"zlib",), False)


@pytest.mark.parametrize("value", [
    b"0.2  comp=zstd",  # an empty token
    b"0.2 comp=zstd comp=zlib",
    b"0.2 comp=ZSTD!",
    b"0.2 comp=" + b",".join([b"e"] * 17),
    b"0.2 \x00",
    b"0.2 caf\xc3\xa9",
    b" ".join([b"t"] * 17),
])
def test_malformed_proto_is_refused(value: bytes) -> None:
    with pytest.raises(ProtocolError) as refused:
        parse_proto(value, LIMITS)
    assert refused.value.http_status == 400


def test_a_client_naming_no_engine_reads_zlib_and_none_and_an_empty_list_names_none() -> None:
    """hg's server: no ``comp=`` means zlib and none (the 0.2 media type with zlib is answered);
    an empty ``comp=`` names no engine (0.1 is answered)."""
    assert parse_proto(b"0.1 0.2", LIMITS).engines == (b"zlib", b"none")
    assert parse_proto(b"0.2 comp=", LIMITS).engines == ()


@pytest.mark.parametrize("proto, prefer_uncompressed, expected", [
    (CLIENT_PROTO, False, (b"application/mercurial-0.2", b"zstd")),
    (b"0.1 0.2 comp=zlib,none", False, (b"application/mercurial-0.2", b"zlib")),
    (b"0.1 0.2 comp=none,zlib,zstd", False, (b"application/mercurial-0.2", b"zstd")),  # server order wins
    (CLIENT_PROTO, True, (b"application/mercurial-0.2", b"none")),
    (b"0.1 0.2 comp=bzip2", False, (b"application/mercurial-0.1", b"zlib")),  # nothing in common
    (b"0.1", False, (b"application/mercurial-0.1", b"zlib")),
    (b"", True, (b"application/mercurial-0.1", b"zlib")),
    (b"0.2", False, (b"application/mercurial-0.2", b"zlib")),  # no comp=: zlib and none, as hg reads it
    (b"0.2 comp=", False, (b"application/mercurial-0.1", b"zlib")),  # no engine named
])
def test_media_type_and_engine_choice(proto: bytes, prefer_uncompressed: bool,
                                      expected: tuple[bytes, bytes]) -> None:
    encoding = choose_encoding(parse_proto(proto, LIMITS), DEFAULT, prefer_uncompressed)
    assert (encoding.media_type, encoding.engine) == expected


def test_server_preference_order_is_configurable() -> None:
    zlib_first = WireSettings(engines=(b"zlib", b"zstd"))
    assert choose_encoding(parse_proto(CLIENT_PROTO, LIMITS), zlib_first, False).engine == b"zlib"
    assert b"compression=zlib,zstd" in http_capabilities(zlib_first)


def test_http_capabilities_as_hg_serve_plus_options() -> None:
    assert set(http_capabilities(DEFAULT)) == {
        b"httpheader=1024", b"httpmediatype=0.1rx,0.1tx,0.2tx", b"compression=zstd,zlib"}
    assert b"httppostargs" in http_capabilities(WireSettings(post_args=True))


def _body(chunks: Iterator[bytes]) -> bytes:
    return b"".join(chunks)


PAYLOAD = [b"HG20", b"\x00" * 10, bytes(range(256)) * 400, b"", b"end"]


def test_v2_zstd_framing_is_length_name_frame() -> None:
    body = _body(encode_stream(iter(PAYLOAD), choose_encoding(parse_proto(CLIENT_PROTO, LIMITS), DEFAULT, False),
                               DEFAULT))
    assert body[:9] == b"\x04zstd\x28\xb5\x2f\xfd"  # PROTOCOL-NOTES §1.1, measured
    reader = zstandard.ZstdDecompressor().decompressobj()
    assert reader.decompress(body[5:]) == b"".join(PAYLOAD)


def test_v2_zlib_and_none_framing() -> None:
    zlib_stream = _body(encode_stream(iter(PAYLOAD), choose_encoding(
        parse_proto(b"0.2 comp=zlib", LIMITS), DEFAULT, False), DEFAULT))
    assert zlib_stream[:5] == b"\x04zlib"
    assert zlib.decompress(zlib_stream[5:]) == b"".join(PAYLOAD)
    raw = _body(encode_stream(iter(PAYLOAD), choose_encoding(parse_proto(CLIENT_PROTO, LIMITS), DEFAULT, True),
                              DEFAULT))
    assert raw == struct.pack(">B", 4) + b"none" + b"".join(PAYLOAD)


def test_v1_stream_is_bare_zlib() -> None:
    body = _body(encode_stream(iter(PAYLOAD), choose_encoding(ProtoCaps(), DEFAULT, False), DEFAULT))
    assert zlib.decompress(body) == b"".join(PAYLOAD)


def test_compression_streams_chunk_by_chunk() -> None:
    """A generator transform: the first compressed bytes come before the source is exhausted."""
    pulled: list[int] = []

    def source() -> Iterator[bytes]:
        for i in range(100):
            pulled.append(i)
            yield bytes([i % 251]) * 65536 + bytes(range(256)) * 64

    stream = encode_stream(source(), choose_encoding(parse_proto(CLIENT_PROTO, LIMITS), DEFAULT, False), DEFAULT)
    next(stream)
    next(stream)
    assert len(pulled) < 100


PROTO = parse_proto(CLIENT_PROTO, LIMITS)


def test_render_string_replies_are_always_raw_0_1() -> None:
    reply = render(BytesResponse(b"1\n"), b"heads", PROTO, DEFAULT)
    assert (reply.content_type, reply.body, reply.stream) == (b"application/mercurial-0.1", b"1\n", None)


def test_render_getbundle_stream_is_negotiated() -> None:
    reply = render(StreamResponse(iter([b"HG20"])), b"getbundle", PROTO, DEFAULT)
    assert reply.content_type == b"application/mercurial-0.2"
    assert reply.stream is not None and b"".join(reply.stream).startswith(b"\x04zstd")


@pytest.mark.parametrize("command", [b"stream_out", b"unbundle"])
def test_render_legacy_streams_are_raw_0_1(command: bytes) -> None:
    reply = render(StreamResponse(iter([b"0\n", b"1 2\n"]), prefer_uncompressed=True), command, PROTO, DEFAULT)
    assert reply.content_type == b"application/mercurial-0.1"
    assert reply.stream is not None and b"".join(reply.stream) == b"0\n1 2\n"


def test_render_push_results_and_errors() -> None:
    assert render(PushResponse(1, b"added 1\n"), b"unbundle", PROTO, DEFAULT).body == b"1\nadded 1\n"
    assert render(PushError(b"race"), b"unbundle", PROTO, DEFAULT).body == b"0\nrace\n"
    error = render(OobError(b"no such thing"), b"batch", PROTO, DEFAULT)
    assert (error.content_type, error.body) == (b"application/hg-error", b"no such thing")


# ------------------------------------------------------------------ properties

arg_names = st.binary(min_size=1, max_size=12).filter(lambda k: k != b"cmd")
arg_maps = st.dictionaries(arg_names, st.binary(max_size=200), max_size=12)


@given(arg_maps, st.integers(min_value=20, max_value=1024))
def test_three_carriers_agree_for_any_arguments(args: dict[bytes, bytes], size: int) -> None:
    encoded = urllib.parse.urlencode(sorted(args.items())).encode()
    limits = HttpLimits(header_count=1 + len(encoded) // size + 1)
    via_headers = parse_head(b"cmd=x", _split(encoded, size), None, limits)
    post = parse_head(b"cmd=x", [(b"X-HgArgs-Post", b"%d" % len(encoded))] if encoded else [], len(encoded),
                      limits)
    via_post = with_post_args(post, encoded, limits) if encoded else dict(post.args)
    via_query = parse_head(b"cmd=x" + (b"&" + encoded if encoded else b""), [], None, limits)
    assert dict(via_headers.args) == via_post == dict(via_query.args) == args


@given(st.binary(max_size=300))
def test_urlencoded_parser_returns_or_raises_protocol_error(data: bytes) -> None:
    try:
        parsed = parse_urlencoded(data, LIMITS, "test")
    except ProtocolError:
        return
    assert len(parsed) <= LIMITS.fields


@given(st.lists(st.tuples(st.sampled_from([b"X-HgArg-1", b"X-HgArg-2", b"x-hgarg-3", b"X-HgArg-x", b"Other"]),
                          st.binary(max_size=40)), max_size=6))
def test_header_reassembly_returns_or_raises_protocol_error(headers: list[tuple[bytes, bytes]]) -> None:
    try:
        value = numbered_headers(headers, b"X-HgArg", LIMITS)
    except ProtocolError:
        return
    assert len(value) <= LIMITS.header_count * LIMITS.header_value


@given(st.binary(max_size=200))
def test_proto_parser_returns_or_raises_protocol_error(value: bytes) -> None:
    try:
        proto = parse_proto(value, LIMITS)
    except ProtocolError:
        return
    assert proto.media_types <= {b"0.1", b"0.2"}
    assert len(proto.engines) <= LIMITS.engines


def _unzstd(data: bytes) -> bytes:
    return bytes(zstandard.ZstdDecompressor().decompressobj().decompress(data))


DECODERS: dict[bytes, Callable[[bytes], bytes]] = {b"zstd": _unzstd, b"zlib": zlib.decompress, b"none": bytes}


@given(st.lists(st.binary(max_size=5000), max_size=8), st.sampled_from([b"zstd", b"zlib", b"none"]))
def test_any_stream_round_trips(chunks: list[bytes], engine: bytes) -> None:
    encoding = choose_encoding(parse_proto(b"0.2 comp=" + engine, LIMITS), DEFAULT, engine == b"none")
    body = _body(encode_stream(iter(chunks), encoding, DEFAULT))
    assert body[1:1 + body[0]] == engine
    payload = body[1 + body[0]:]
    assert DECODERS[engine](payload) == b"".join(chunks)


def test_limit_errors_are_limit_exceeded() -> None:
    with pytest.raises(LimitExceeded, match=r"X-HgArg-N headers \(a request naming very many heads: pull over SSH, "
                                            r"or ask the server's operator to turn on \[hg_http\] httppostargs\)"):
        numbered_headers(_split(b"a" * (LIMITS.header_count + 1) * 100, 100), b"X-HgArg", LIMITS)


def _zstd_window(settings: WireSettings) -> int:
    body = _body(encode_stream(iter([b"x" * 100_000]), choose_encoding(
        parse_proto(CLIENT_PROTO, LIMITS), settings, False), settings))
    return zstandard.get_frame_parameters(body[5:]).window_size


def test_zstd_streams_use_a_256_kib_window_unless_the_operator_chose_a_level() -> None:
    """The client's decoder needs no more memory than the window, nor does the server's encoder."""
    assert DEFAULT.zstd_window_log == 18
    assert _zstd_window(DEFAULT) == 256 << 10
    assert _zstd_window(dataclasses.replace(DEFAULT, zstd_level=19, zstd_window_log=None)) > 256 << 10


def _authorizer(**chosen: Any) -> SimpleNamespace:
    """What ``gateway.policy.wire_settings`` reads: the ``[hg_http]`` of a policy file in force."""
    from gateway.policy import HgHttp

    return SimpleNamespace(policy=SimpleNamespace(current=SimpleNamespace(hg_http=HgHttp(**chosen))))


def test_a_level_from_the_config_file_keeps_its_own_window() -> None:
    from gateway.policy import SETTINGS, wire_settings

    authorizer = _authorizer
    assert wire_settings(authorizer()) == SETTINGS
    assert wire_settings(authorizer(zlib_level=1)).zstd_window_log == 18
    chosen = wire_settings(authorizer(zstd_level=9))
    assert (chosen.zstd_level, chosen.zstd_window_log) == (9, None)
    assert _zstd_window(chosen) > 256 << 10


def test_clients_of_the_uncompressed_networks_get_none_first() -> None:
    from gateway.policy import SETTINGS, wire_settings

    networks = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8"))
    lan = _authorizer(uncompressed_networks=networks)
    assert wire_settings(lan, "10.1.2.3").engines == (b"none", b"zstd", b"zlib")
    assert wire_settings(lan, "::ffff:10.1.2.3").engines[0] == b"none"  # from a dual-stack socket
    assert wire_settings(lan, "fd12::1").engines[0] == b"none"
    for elsewhere in ("192.0.2.1", "11.0.0.1", "::1", "?", "", None):
        assert wire_settings(lan, elsewhere) == SETTINGS
    ordered = _authorizer(compression=("zlib", "none"), uncompressed_networks=networks)
    assert wire_settings(ordered, "10.0.0.1").engines == (b"none", b"zlib")
    assert wire_settings(ordered, "192.0.2.1").engines == (b"zlib", b"none")
    assert wire_settings(_authorizer(compression=("zstd",), uncompressed_networks=networks),
                         "10.0.0.1").engines == (b"none", b"zstd")
    # a LAN client of either transport then gets its answer as it is
    lan_settings = wire_settings(lan, "10.1.2.3")
    assert choose_encoding(ProtoCaps(frozenset({PROTO_V2}), (b"zstd", b"zlib", b"none")), lan_settings, False).engine == b"none"
    assert bundle_engine(frozenset({b"comp=zstd,zlib,none"}), lan_settings) is None
