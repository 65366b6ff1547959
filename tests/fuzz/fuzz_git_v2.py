"""UploadPackV2: command/capability/argument sections, each request answered so the session goes on."""

from __future__ import annotations

from backends.interfaces import SHA1_FORMAT, SHA256_FORMAT, ObjectId
from protocols.git_v2 import Fetch, LsRefs, ObjectInfo, UploadPackV2
from protocols.pktline import Signal

from .harness import Finding, Target, frame_lines, git_chunks, git_seeds
from .seeds import git_session

MAX_STEPS = 10_000
OID = ObjectId(b"3bba56d2293932fb17fd7ad02c5458bdc402d243")


def _answer(core: UploadPackV2, event: object) -> None:
    if isinstance(event, LsRefs):
        core.ls_refs(event, {b"refs/heads/main": OID}, {}, {b"HEAD": b"refs/heads/main"})
    elif isinstance(event, ObjectInfo):
        core.object_info(event, [(oid, 1) for oid in event.oids])
    elif isinstance(event, Fetch):
        _answer_fetch(core, event)


def _answer_fetch(core: UploadPackV2, fetch: Fetch) -> None:
    if not fetch.request.wants and not fetch.wait_for_done:
        core.empty_fetch()
        return
    if not fetch.sends_pack_now:
        ready = len(fetch.haves) % 2 == 0
        core.acknowledgments(fetch, fetch.haves[:1], ready)
        if not ready or fetch.wait_for_done:
            return
    core.pack_header(fetch.request.deepen, fetch.request.shallows)
    core.pack_data(b"PACK")
    core.pack_sent()


def _pump(core: UploadPackV2) -> bool:
    for _ in range(MAX_STEPS):
        event = core.next_event()
        if event is Signal.NEED_DATA:
            return False
        if event is Signal.PAUSED:
            return True
        _answer(core, event)
    raise Finding(f"more than {MAX_STEPS} events without needing data")


def run(data: bytes) -> None:
    core = UploadPackV2(stateless=data[-1:] == b"\n", allow_filter=data[-1:] != b"!",
                        object_format=SHA256_FORMAT if b"sha256" in data else SHA1_FORMAT)
    for piece in git_chunks(data):
        core.receive_data(piece)
        if _pump(core):
            return
    core.receive_data(b"")
    _pump(core)


def seeds() -> list[bytes]:
    names = ["clone-v2", "clone-depth1-v2", "deepen-v2", "fetch-incremental-v2", "ls-remote-v2-request"]
    extra = [frame_lines(b"command=ls-refs\n0001\npeel\nsymrefs\nref-prefix HEAD\n0000"),
             frame_lines(b"command=object-info\n0001\nsize\noid " + OID + b"\n0000"),
             frame_lines(b"command=fetch\n0001\nno-progress\nwant " + OID + b"\nfilter blob:none\n"
                         b"deepen 10\ndone\n0000"),
             frame_lines(b"command=fetch\n0001\nwant " + OID + b"\nfilter combine:object:type%3Dtree+tree:1"
                         b"+blob:limit=1k\ndone\n0000"),
             frame_lines(b"command=fetch\nobject-format=sha256\n0001\nthin-pack\nwant " + b"ab" * 32
                         + b"\nhave " + b"cd" * 32 + b"\nshallow " + b"ef" * 32 + b"\ndone\n0000"),
             frame_lines(b"command=ls-refs\nobject-format=sha256\n0001\npeel\n0000")]
    return [seed for stream in [git_session(n) for n in names] + extra for seed in git_seeds(stream)]


TARGET = Target("git_v2", run, seeds, max_size=16384)
