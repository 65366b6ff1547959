"""UploadPackV0: want/have/done negotiation driven to the end, answering every event."""

from __future__ import annotations

from backends.interfaces import SHA1_FORMAT, SHA256_FORMAT
from protocols.git_upload import FetchRequest, Haves, HaveVerdict, Negotiation, SendPack, UploadPackV0
from protocols.pktline import Signal

from .harness import Finding, Target, frame_lines, git_chunks, git_seeds
from .seeds import git_session

MAX_STEPS = 10_000


def _answer(core: UploadPackV0, event: object) -> None:
    if isinstance(event, FetchRequest):
        core.shallow_info()
    elif isinstance(event, Haves):
        verdicts = tuple(HaveVerdict(oid, i % 2 == 0, i % 3 == 0) for i, oid in enumerate(event.haves))
        core.acknowledge(Negotiation(verdicts, ready=bool(verdicts)))
    elif isinstance(event, SendPack):
        core.pack_data(b"PACK")
        core.pack_sent()


def _pump(core: UploadPackV0) -> bool:
    """Answer events until the core needs data or is done; True when it stopped for good."""
    for _ in range(MAX_STEPS):
        event = core.next_event()
        if event is Signal.NEED_DATA:
            return False
        if event is Signal.PAUSED:
            return True
        _answer(core, event)
    raise Finding(f"more than {MAX_STEPS} events without needing data")


def run(data: bytes) -> None:
    # a SHA-256 repository's core for an input that names that format (64-digit ids)
    core = UploadPackV0(stateless=data[-1:] == b"\n",
                        object_format=SHA256_FORMAT if b"sha256" in data else SHA1_FORMAT)
    for piece in git_chunks(data):
        core.receive_data(piece)
        if _pump(core):
            return
    core.receive_data(b"")
    _pump(core)


def seeds() -> list[bytes]:
    names = ["clone-v0", "clone-depth1-v0", "deepen-v0", "fetch-incremental-v0", "clone-empty-v0", "ls-remote-v0"]
    tip, base = b"ab" * 32, b"cd" * 32
    sha256 = frame_lines(b"want " + tip + b" multi_ack_detailed side-band-64k ofs-delta object-format=sha256\n"
                         b"shallow " + base + b"\ndeepen 2\n0000\nhave " + base + b"\ndone")
    return [seed for stream in [*(git_session(n) for n in names), sha256] for seed in git_seeds(stream)]


TARGET = Target("git_upload", run, seeds, max_size=16384)
