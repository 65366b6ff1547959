"""ReceivePack: ref-update commands (bare, or in a push certificate), push options, shallow lines, then the
pack walked by PackScanner."""

from __future__ import annotations

import struct
import zlib

from backends.interfaces import SHA1_FORMAT, SHA256_FORMAT
from protocols import pktline
from protocols.git_receive import PackScanner, ReceivePack, check_ref_name
from protocols.pktline import Signal

from .harness import Finding, Target, git_chunks, git_seeds
from .seeds import git_session, transcript

MAX_STEPS = 10_000


def _pump(core: ReceivePack) -> bool:
    for _ in range(MAX_STEPS):
        event = core.next_event()
        if event is Signal.NEED_DATA:
            return False
        if event is Signal.PAUSED:
            return True
    raise Finding(f"more than {MAX_STEPS} events without needing data")


def run(data: bytes) -> None:
    if data[:1] in (b"s", b"S"):  # S: a SHA-256 repository's pack (32-byte ids and trailer)
        PackScanner(max_pack=1 << 16, object_format=SHA256_FORMAT if data[:1] == b"S" else SHA1_FORMAT
                    ).feed(data[1:])
        return
    if data[:1] == b"n":
        check_ref_name(data[1:])
        return
    core = ReceivePack(max_pack=1 << 16, object_format=SHA256_FORMAT if b"sha256" in data else SHA1_FORMAT)
    if data[:1] == b"c":  # a repository that takes signed pushes
        core.offer_push_cert(b"1796324306-7eccef3f94c74e3703f86eb5d9de3a0c8f608114")
        data = data[1:]
    for piece in git_chunks(data):
        core.receive_data(piece)
        if _pump(core):
            break
    else:
        core.receive_data(b"")
        _pump(core)
    if core.commands is not None:
        core.report_status(None if data[-1:] != b"x" else "bad\npack", [])


def _pack(name: str) -> bytes:
    """The pack a recorded clone sent, out of its side-band channel 1."""
    packets = [data for direction, data in transcript("git", name) if direction == "s"]
    return b"".join(p[5:] for p in packets if len(p) > 5 and p[4:5] == b"\x01")


def seeds() -> list[bytes]:
    names = ["push-ff", "push-delete", "push-empty-repo", "push-with-options"]
    pushes = [seed for n in names for seed in git_seeds(git_session(n))]
    pushes += [b"c" + seed for seed in git_seeds(git_session("push-signed"))]
    pushes += git_seeds(_sha256_push())
    return [*pushes, b"s" + _pack("clone-v0"), b"s" + _pack("fetch-incremental-v0"), b"S" + _sha256_pack(),
            b"nrefs/heads/main", b"nrefs/tags/v1.0"]


def _sha256_pack() -> bytes:
    """A SHA-256 repository's pack of one blob and a REF_DELTA against another (32-byte base id)."""
    body = b"PACK" + struct.pack(">II", 2, 2)
    body += bytes([0x30 | 6]) + zlib.compress(b"hello\n")                       # blob, 6 bytes
    body += bytes([0x70 | 6]) + b"\x11" * 32 + zlib.compress(b"\x06\x07\x90\x06\x01!")  # copy 6, add "!"
    return body + SHA256_FORMAT.hasher(body).digest()


def _sha256_push() -> bytes:
    """A push to a SHA-256 repository: a create and a delete (64-digit ids), then its pack."""
    zero, tip, old = SHA256_FORMAT.zero, b"ab" * 32, b"cd" * 32
    commands = (pktline.encode(zero + b" " + tip + b" refs/heads/new\0report-status side-band-64k "
                               b"object-format=sha256\n")
                + pktline.encode(old + b" " + zero + b" refs/heads/old\n") + pktline.FLUSH)
    return commands + _sha256_pack()


TARGET = Target("git_receive", run, seeds, max_size=16384)
