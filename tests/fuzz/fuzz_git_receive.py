"""ReceivePack: ref-update commands (bare, or in a push certificate), push options, shallow lines, then the
pack walked by PackScanner."""

from __future__ import annotations

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
    if data[:1] == b"s":
        PackScanner(max_pack=1 << 16).feed(data[1:])
        return
    if data[:1] == b"n":
        check_ref_name(data[1:])
        return
    core = ReceivePack(max_pack=1 << 16)
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
    return [*pushes, b"s" + _pack("clone-v0"), b"s" + _pack("fetch-incremental-v0"), b"nrefs/heads/main", b"nrefs/tags/v1.0"]


TARGET = Target("git_receive", run, seeds, max_size=16384)
