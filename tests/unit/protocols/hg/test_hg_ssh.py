"""The SSH v1 state machine: framing, incremental parsing, bounds and the push flow."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols import bundle2 as b2
from protocols.errors import LimitExceeded, ProtocolError
from protocols.hg_commands import Args
from protocols.hg_http import WireSettings
from protocols.hg_responses import BytesResponse, OobError, PushError, PushResponse, StreamResponse
from protocols.hg_ssh import (
    BUNDLE2_COMPRESSION,
    CommandRequest,
    ConnectionClosed,
    PushEnd,
    PushPayload,
    Signal,
    SshLimits,
    SshOutput,
    SshV1Server,
    State,
    bundle_engine,
    compressed_bundle2,
)

from .helpers import side

HANDSHAKE = side("lookup-branch.txt", "c")[: len(b"hello\nbetween\npairs 81\n") + 81]


def events_of(server: SshV1Server) -> list[object]:
    events: list[object] = []
    while True:
        event = server.next_event()
        if event in (Signal.NEED_DATA, Signal.PAUSED):
            return events
        events.append(event)
        if isinstance(event, CommandRequest):
            server.send(BytesResponse(b""))
        if isinstance(event, ConnectionClosed):
            return events


def test_handshake_of_a_real_client_byte_by_byte() -> None:
    server = SshV1Server()
    seen: list[object] = []
    for byte in HANDSHAKE:
        server.receive_data(bytes([byte]))
        seen += events_of(server)
    pairs = b"0" * 40 + b"-" + b"0" * 40
    assert seen == [CommandRequest(b"hello", Args({})), CommandRequest(b"between", Args({b"pairs": pairs}))]


def test_star_arguments_and_protocaps_are_parsed() -> None:
    server = SshV1Server()
    server.receive_data(b"protocaps\ncaps 38\ncomp=zstd,zlib,none,bzip2 partial-pull")
    server.receive_data(b"batch\n* 1\nx 1\nycmds 6\nheads ")
    first = server.next_event()
    assert first == CommandRequest(b"protocaps", Args({b"caps": b"comp=zstd,zlib,none,bzip2 partial-pull"}))
    assert server.protocaps == {b"comp=zstd,zlib,none,bzip2", b"partial-pull"}
    assert server.next_event() is Signal.PAUSED
    assert server.send(BytesResponse(b"OK")) == SshOutput(b"2\nOK")
    assert server.next_event() == CommandRequest(b"batch", Args({b"cmds": b"heads "}, {b"x": b"y"}))


def test_unknown_commands_and_upgrade_requests_are_plain_requests() -> None:
    server = SshV1Server()
    server.receive_data(b"upgrade 2e82 proto=exp-ssh-v2-0003\nnosuch\n\n")
    assert events_of(server) == [
        CommandRequest(b"upgrade 2e82 proto=exp-ssh-v2-0003", Args({})),
        CommandRequest(b"nosuch", Args({})),
        ConnectionClosed(),
    ]


def test_eof_between_requests_closes() -> None:
    server = SshV1Server()
    server.receive_data(b"heads\n")
    server.receive_data(b"")
    assert events_of(server) == [CommandRequest(b"heads", Args({})), ConnectionClosed()]
    assert server.state is State.CLOSED


def test_eof_inside_a_request_is_a_protocol_error() -> None:
    server = SshV1Server()
    server.receive_data(b"lookup\nkey 10\nabc")
    assert server.next_event() is Signal.NEED_DATA
    server.receive_data(b"")
    with pytest.raises(ProtocolError):
        server.next_event()


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"x" * 5000, LimitExceeded),
        (b"lookup\nkey 999999999999\n", LimitExceeded),
        (b"lookup\nkey -1\n", ProtocolError),
        (b"lookup\nkey\n", ProtocolError),
        (b"lookup\nnope 1\nx", ProtocolError),
        (b"known\nnodes 0\nnodes 0\n", ProtocolError),
        (b"getbundle\n* 1000\n", LimitExceeded),
        (b"getbundle\n* 2\na 0\na 0\n", ProtocolError),
    ],
)
def test_bad_requests(data: bytes, error: type[Exception]) -> None:
    server = SshV1Server(limits=SshLimits(max_line=4096))
    server.receive_data(data)
    with pytest.raises(error):
        server.next_event()


def test_a_request_is_bounded_as_a_whole() -> None:
    server = SshV1Server(limits=SshLimits(max_arg_length=100, max_request=150))
    server.receive_data(b"getbundle\n* 2\na 90\n" + b"x" * 90 + b"b 90\n")
    with pytest.raises(LimitExceeded):
        server.next_event()


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_garbage_raises_only_protocol_errors(garbage: bytes) -> None:
    server = SshV1Server()
    server.receive_data(garbage)
    server.receive_data(b"")
    try:
        for _ in range(50):
            event = server.next_event()
            if isinstance(event, ConnectionClosed):
                break
            if isinstance(event, CommandRequest):
                if server.state is State.PUSH_PENDING:
                    server.accept_push()
                else:
                    server.send(BytesResponse(b""))
            if isinstance(event, PushEnd):
                server.send(PushResponse(1))
    except ProtocolError:
        pass


def test_push_flow_streams_frames_without_buffering_them_whole() -> None:
    server = SshV1Server()
    server.receive_data(b"unbundle\nheads 10\n666f726365")
    assert server.next_event() == CommandRequest(b"unbundle", Args({b"heads": b"666f726365"}))
    assert server.next_event() is Signal.PAUSED
    assert server.accept_push() == b"0\n"
    server.receive_data(b"10\nHG20")
    assert server.next_event() == PushPayload(b"HG20")
    assert server.next_event() is Signal.NEED_DATA
    server.receive_data(b"abcdef3\nxyz0\n")
    assert server.next_event() == PushPayload(b"abcdef")
    assert server.next_event() == PushPayload(b"xyz")
    assert server.next_event() == PushEnd()
    assert server.next_event() is Signal.PAUSED
    assert server.send(PushResponse(1)) == SshOutput(b"0\n1\n1")
    assert server.state is State.IDLE


def test_push_refused_before_the_payload() -> None:
    server = SshV1Server()
    server.receive_data(b"unbundle\nheads 10\n666f726365")
    server.next_event()
    assert server.send(OobError(b"push not allowed")) == SshOutput(b"\n", stderr=b"push not allowed\n")
    assert server.state is State.IDLE


def test_an_out_of_band_error_ends_with_its_own_line_end_and_no_dash_line() -> None:
    """hg's client shows every stderr line as ``remote: <line>``: no ``remote: -``, no empty one."""
    server = SshV1Server()
    server.receive_data(b"heads\n")
    server.next_event()
    assert server.send(OobError(b"largefiles are needed\n")) == SshOutput(b"\n", stderr=b"largefiles are needed\n")


@pytest.mark.parametrize("data", [b"x\n", b"-1\n", b"99999999999\n"])
def test_bad_push_frames(data: bytes) -> None:
    server = SshV1Server()
    server.receive_data(b"unbundle\nheads 0\n")
    server.next_event()
    server.accept_push()
    server.receive_data(data)
    with pytest.raises(ProtocolError):
        server.next_event()


def test_eof_inside_a_push_is_a_protocol_error() -> None:
    server = SshV1Server()
    server.receive_data(b"unbundle\nheads 0\n")
    server.next_event()
    server.accept_push()
    server.receive_data(b"10\nabc")
    assert server.next_event() == PushPayload(b"abc")
    server.receive_data(b"")
    with pytest.raises(ProtocolError):
        server.next_event()


@pytest.mark.parametrize(("request_", "what"), [(b"unbundle\nheads 0\n", "push"),
                                                (b"putlfile\nsha 40\n" + b"a" * 40, "largefile upload")])
@pytest.mark.parametrize("sent", [b"", b"10\nabc"])
def test_a_cut_payload_is_named_for_what_it_was(request_: bytes, what: str, sent: bytes) -> None:
    server = SshV1Server()
    server.receive_data(request_)
    server.next_event()
    server.accept_push()
    server.receive_data(sent)
    if sent:
        assert server.next_event() == PushPayload(b"abc")
    server.receive_data(b"")
    with pytest.raises(ProtocolError) as cut:
        server.next_event()
    assert str(cut.value) == f"the connection closed in the middle of a {what}"


def test_transitions_out_of_order_are_protocol_errors() -> None:
    server = SshV1Server()
    with pytest.raises(ProtocolError):
        server.send(BytesResponse(b""))
    with pytest.raises(ProtocolError):
        server.accept_push()
    server.receive_data(b"heads\n")
    server.next_event()
    with pytest.raises(ProtocolError):
        server.accept_push()


def test_response_rendering() -> None:
    server = SshV1Server()
    server.receive_data(b"heads\nheads\nheads\n")
    server.next_event()
    assert server.send(PushError(b"repository changed", b"out")) == SshOutput(
        b"18\nrepository changed", b"out"
    )
    server.next_event()
    chunks = iter([b"a", b"b"])
    assert server.send(StreamResponse(chunks)) == SshOutput(b"", stream=chunks)
    server.next_event()
    assert server.send(BytesResponse(b"x" * 12)) == SshOutput(b"12\n" + b"x" * 12)


def _events_with_pushes(server: SshV1Server, pieces: list[bytes]) -> list[object]:
    """Feed pieces one by one, answering every command (and accepting pushes); return all events."""
    seen: list[object] = []
    for piece in [*pieces, b""]:
        server.receive_data(piece)
        while (event := server.next_event()) not in (Signal.NEED_DATA, Signal.PAUSED):
            seen.append(event)
            if isinstance(event, ConnectionClosed):
                return seen
            if isinstance(event, CommandRequest) and server.state is State.PUSH_PENDING:
                server.accept_push()
            elif isinstance(event, (CommandRequest, PushEnd)):
                server.send(BytesResponse(b""))
    return seen


def _merged(events: list[object]) -> list[object]:
    """Join consecutive PushPayload events: how the payload is split depends on the reads."""
    merged: list[object] = []
    for event in events:
        if isinstance(event, PushPayload) and merged and isinstance(merged[-1], PushPayload):
            merged[-1] = PushPayload(merged[-1].data + event.data)
        else:
            merged.append(event)
    return merged


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 400), max_size=60))
def test_any_split_of_a_real_push_session_gives_the_same_events(cuts: list[int]) -> None:
    data = side("push-bundle2.txt", "c")
    pieces, pos = [], 0
    for cut in cuts:
        pieces.append(data[pos : pos + cut])
        pos += cut
    pieces.append(data[pos:])
    whole = _merged(_events_with_pushes(SshV1Server(), [data]))
    assert _merged(_events_with_pushes(SshV1Server(), pieces)) == whole
    names = [type(e).__name__ for e in whole]
    assert (names.count("CommandRequest"), names.count("PushEnd"), names[-1]) == (10, 1, "ConnectionClosed")


# ---------------------------------------------------------------- compressed getbundle answers

ZSTD_CLIENT = frozenset({b"partial-pull", b"comp=zstd,zlib,none"})


@pytest.mark.parametrize(
    ("protocaps", "engines", "chosen"),
    [
        (ZSTD_CLIENT, (b"zstd", b"zlib"), b"zstd"),
        (frozenset({b"comp=zlib,none"}), (b"zstd", b"zlib"), b"zlib"),  # a client without zstd
        (ZSTD_CLIENT, (b"zlib", b"zstd"), b"zlib"),  # the server's order decides
        (frozenset({b"comp=none"}), (b"zstd", b"zlib"), None),
        (frozenset({b"partial-pull"}), (b"zstd", b"zlib"), None),  # no comp=: an old client
        (frozenset(), (b"zstd", b"zlib"), None),
        (ZSTD_CLIENT, (b"none",), None),  # the operator turned compression off
        (ZSTD_CLIENT, (b"none", b"zstd"), None),  # the operator prefers none, as HTTP answers too
    ],
)
def test_the_bundle_engine_is_the_first_of_the_server_s_that_the_client_names(
        protocaps: frozenset[bytes], engines: tuple[bytes, ...], chosen: bytes | None) -> None:
    assert bundle_engine(protocaps, WireSettings(engines=engines)) == chosen


def _bundle() -> list[bytes]:
    parts = [
        b2.OutPart(b"changegroup", [(b"version", b"02")], payload=[b"\x00" * 70_000, bytes(range(256)) * 40]),
        b2.OutPart(b"phase-heads", payload=[b"x" * 40]),
    ]
    return list(b2.write_bundle2(parts))


def _decoded(stream: list[bytes]) -> list[tuple[bytes, dict[bytes, bytes], bytes]]:
    return [(p.type, p.params, p.read_all(1 << 30)) for p in b2.Bundle2Reader(iter(stream)).parts()]


@settings(max_examples=40, deadline=None)
@given(engine=st.sampled_from([b"zstd", b"zlib"]), cuts=st.lists(st.integers(1, 20), max_size=8))
def test_a_compressed_bundle_has_the_same_parts_however_it_was_chunked(engine: bytes, cuts: list[int]) -> None:
    whole = b"".join(_bundle())
    pieces, pos = [], 0
    for cut in cuts:  # small first chunks: the eight-byte head may span several
        pieces.append(whole[pos : pos + cut])
        pos += cut
    pieces.append(whole[pos:])
    out = list(compressed_bundle2(iter(pieces), engine, WireSettings()))
    param = b"Compression=" + BUNDLE2_COMPRESSION[engine]
    assert out[0] == b"HG20" + len(param).to_bytes(4, "big") + param
    assert _decoded(out) == _decoded([whole])
    assert len(b"".join(out)) < len(whole) // 2


def test_anything_but_a_plain_bundle2_passes_as_it_is() -> None:
    bundle1 = [b"HG10UN", b"\x00\x00\x00\x00"]
    assert b"".join(compressed_bundle2(iter(bundle1), b"zstd", WireSettings())) == b"".join(bundle1)
    with_params = list(b2.write_bundle2([], params=[(b"Compression", b"UN")]))
    assert b"".join(compressed_bundle2(iter(with_params), b"zstd", WireSettings())) == b"".join(with_params)


def test_closing_the_compressed_stream_closes_the_source() -> None:
    closed: list[bool] = []

    def source() -> Iterator[bytes]:
        try:
            yield from _bundle()
        finally:
            closed.append(True)

    out = compressed_bundle2(source(), b"zstd", WireSettings())
    next(out)
    out.close()
    assert closed == [True]


def test_only_a_getbundle_answer_is_compressed_and_only_for_a_client_that_asked() -> None:
    server = SshV1Server()
    caps = b"partial-pull comp=zstd"
    server.receive_data(b"protocaps\ncaps %d\n%s" % (len(caps), caps) + b"getbundle\n* 0\nbetween\npairs 0\n")
    assert isinstance(server.next_event(), CommandRequest)
    server.send(BytesResponse(b""))
    assert isinstance(server.next_event(), CommandRequest)  # getbundle
    out = server.send(StreamResponse(iter(_bundle()), compressible_bundle=True))
    assert out.engine == b"zstd" and out.stream is not None
    assert b"".join(out.stream).startswith(b"HG20\x00\x00\x00\x0eCompression=ZS")
    assert isinstance(server.next_event(), CommandRequest)  # a push reply: a bundle2, not compressed
    plain = server.send(StreamResponse(iter(_bundle())))
    assert plain.engine == b"" and plain.stream is not None and b"".join(plain.stream) == b"".join(_bundle())
