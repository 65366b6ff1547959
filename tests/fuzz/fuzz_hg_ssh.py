"""SshV1Server: command lines, ``name len`` arguments, ``*`` maps and unbundle frames, in any split."""

from __future__ import annotations

from protocols.hg_responses import BytesResponse, OobError, PushResponse
from protocols.hg_ssh import CommandRequest, ConnectionClosed, PushEnd, Signal, SshLimits, SshV1Server, State

from .harness import Finding, Target, chunked, with_split
from .seeds import client_bytes

MAX_STEPS = 10_000


def _answer(server: SshV1Server, refuse_push: bool) -> None:
    """Answer a PAUSED server: accept (or refuse) a pending push, else reply to the command."""
    if server.state is State.PUSH_PENDING:
        if refuse_push:
            server.send(OobError(b"no"))
        else:
            server.accept_push()
    else:
        server.send(BytesResponse(b"1"))


def _pump(server: SshV1Server, refuse_push: bool) -> bool:
    """Handle events until the server needs data; True once the session ended."""
    for _ in range(MAX_STEPS):
        event = server.next_event()
        if event is Signal.NEED_DATA:
            return False
        if isinstance(event, ConnectionClosed):
            return True
        if event is Signal.PAUSED:
            _answer(server, refuse_push)
        elif isinstance(event, PushEnd):
            server.send(PushResponse(1))
        elif isinstance(event, CommandRequest) and not isinstance(event.name, bytes):
            raise Finding("a command name that is not bytes")
    raise Finding(f"more than {MAX_STEPS} events without needing data")


WIDE = SshLimits(max_line=16384)
"""Limits are configurable (issue 8 item 2); a wider line must not change what may escape."""


def run(data: bytes) -> None:
    server = SshV1Server(limits=WIDE if data[-1:] == b"W" else SshLimits())
    refuse_push = data[-1:] == b"\n"
    for piece in chunked(data):
        server.receive_data(piece)
        if _pump(server, refuse_push):
            return
    server.receive_data(b"")
    _pump(server, refuse_push)


def seeds() -> list[bytes]:
    names = ["push-bundle2", "push-bundle1", "clone-bundle2", "clone-bundle1", "listkeys-and-known",
             "lookup-branch", "pull-nothing-new", "unknown-command", "upgrade-request"]
    sessions = [client_bytes("hg", n) for n in names]
    return [with_split(step, s[:8192]) + end for s in sessions for step in (0xFF, 13) for end in (b"", b"W")]


TARGET = Target("hg_ssh", run, seeds, max_size=16384)
