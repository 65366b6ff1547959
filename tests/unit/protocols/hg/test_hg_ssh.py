"""The SSH v1 state machine: framing, incremental parsing, bounds and the push flow."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.errors import LimitExceeded, ProtocolError
from protocols.hg_commands import Args
from protocols.hg_responses import BytesResponse, OobError, PushError, PushResponse, StreamResponse
from protocols.hg_ssh import (
    CommandRequest,
    ConnectionClosed,
    PushEnd,
    PushPayload,
    Signal,
    SshLimits,
    SshOutput,
    SshV1Server,
    State,
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
    assert server.send(OobError(b"push not allowed")) == SshOutput(b"\n", stderr=b"push not allowed\n-\n")
    assert server.state is State.IDLE


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
