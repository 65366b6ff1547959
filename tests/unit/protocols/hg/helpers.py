"""Transcript loading and a synchronous driver of ``SshV1Server`` for the hg protocol tests."""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from pathlib import Path

from backends.interfaces import HgRepository
from protocols import bundle2 as b2
from protocols.changegroup import ChangegroupDecoder, StreamReader
from protocols.hg_commands import COMMANDS, CommandContext, Permission, Transport, dispatch
from protocols.hg_exchange import decode_bookmarks, decode_phase_heads
from protocols.hg_ssh import (
    SSH_CAPS,
    CommandRequest,
    ConnectionClosed,
    PushEnd,
    PushPayload,
    SshV1Server,
)

from .fake_repo import FakeRepo

TRANSCRIPTS = Path(__file__).resolve().parents[3] / "transcripts" / "hg"


def load(name: str) -> list[tuple[str, bytes]]:
    """Read ``c:``/``s:``/``e:`` (client, server stdout, server stderr) lines of a transcript."""
    entries = []
    for line in (TRANSCRIPTS / name).read_text().splitlines():
        if line and not line.startswith("#"):
            direction, _, literal = line.partition(": ")
            entries.append((direction, ast.literal_eval(literal)))
    return entries


def side(name: str, direction: str) -> bytes:
    return b"".join(data for d, data in load(name) if d == direction)


def allow_all(permission: Permission) -> None:
    return None


def run_ssh(
    repo: HgRepository,
    client: bytes,
    check_permission: Callable[[Permission], None] = allow_all,
    server: SshV1Server | None = None,
) -> tuple[bytes, bytes]:
    """Feed all client bytes (then EOF) and run every command; return (stdout, stderr)."""
    server = server or SshV1Server()
    server.receive_data(client)
    server.receive_data(b"")
    out, err = bytearray(), bytearray()
    while not isinstance(event := server.next_event(), ConnectionClosed):
        assert isinstance(event, CommandRequest), event
        payload: Iterator[bytes] | None = None
        cmd = COMMANDS.get(event.name)
        if cmd is not None and cmd.takes_payload:
            out += server.accept_push()
            payload = _push_chunks(server)
        ctx = CommandContext(Transport.SSH, check_permission, SSH_CAPS, payload)
        reply = server.send(dispatch(repo, event.name, event.args, ctx))
        err += reply.stderr
        out += reply.stdout
        if reply.stream is not None:
            out += b"".join(reply.stream)
    return bytes(out), bytes(err)


def _push_chunks(server: SshV1Server) -> Iterator[bytes]:
    """The pushed bundle, pulled lazily from the server as an adapter's payload iterator is."""
    while not isinstance(event := server.next_event(), PushEnd):
        assert isinstance(event, PushPayload), event
        yield event.data


def bundle_in(stream: bytes) -> bytes:
    """The bundle2 (or bundle1) stream inside a server's stdout, from its magic on."""
    for magic in (b"HG20\0", b"HG10UN\0"):
        if (at := stream.find(magic)) >= 0:
            return stream[at:]
    raise AssertionError("no bundle in the stream")


def parts_of(bundle: bytes) -> list[tuple[b2.InPart, bytes]]:
    """Every part of a bundle2 stream with its whole payload."""
    return [(part, part.read_all(1 << 30)) for part in b2.Bundle2Reader(iter([bundle])).parts()]


def load_getbundle_reply(repo: FakeRepo, bundle: bytes) -> None:
    """Apply a real server's getbundle reply to the fake, as a pulling client would."""
    tx = repo.transaction()
    for part in b2.Bundle2Reader(iter([bundle])).parts():
        if part.type == b2.PART_CHANGEGROUP:
            version = part.params.get(b"version", b"01")
            tx.add_changegroup(ChangegroupDecoder(StreamReader(part.payload), version).groups())
        elif part.type == b2.PART_BOOKMARKS:
            for name, node in decode_bookmarks(part.read_all()):
                tx.set_bookmark(name, None, node)
        elif part.type == b2.PART_PHASE_HEADS:
            for phase, node in decode_phase_heads(part.read_all()):
                tx.set_phase(phase, [node])
    tx.commit()


def reference_repo() -> FakeRepo:
    """The fake loaded with what the real server sent for ``clone-bundle2``."""
    repo = FakeRepo("srv", publishing=False)
    load_getbundle_reply(repo, bundle_in(side("clone-bundle2.txt", "s")))
    return repo


def repo_after_pushes() -> FakeRepo:
    """The reference state after the recorded bundle2 and bundle1 pushes (replayed through our unbundle)."""
    repo = reference_repo()
    run_ssh(repo, side("push-bundle2.txt", "c"))
    run_ssh(repo, side("push-bundle1.txt", "c"))
    return repo
