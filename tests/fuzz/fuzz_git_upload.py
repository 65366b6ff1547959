"""UploadPackV0: want/have/done negotiation driven to the end, answering every event."""

from __future__ import annotations

from protocols.git_upload import FetchRequest, Haves, HaveVerdict, Negotiation, SendPack, UploadPackV0
from protocols.pktline import Signal

from .harness import Finding, Target, git_chunks, git_seeds
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
    core = UploadPackV0(stateless=data[-1:] == b"\n")
    for piece in git_chunks(data):
        core.receive_data(piece)
        if _pump(core):
            return
    core.receive_data(b"")
    _pump(core)


def seeds() -> list[bytes]:
    names = ["clone-v0", "clone-depth1-v0", "deepen-v0", "fetch-incremental-v0", "clone-empty-v0", "ls-remote-v0"]
    return [seed for n in names for seed in git_seeds(git_session(n))]


TARGET = Target("git_upload", run, seeds, max_size=16384)
