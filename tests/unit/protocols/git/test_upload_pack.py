"""upload-pack v0: recorded git daemon exchanges replayed through the core, bytes in, bytes out."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from backends.interfaces import ObjectId
from protocols import git_caps
from protocols.errors import LimitExceeded, ProtocolError
from protocols.git_upload import (
    FetchRequest,
    Haves,
    HaveVerdict,
    Negotiation,
    NoWants,
    RequestBounds,
    SendPack,
    UploadPackV0,
    advertisement,
)
from protocols.pktline import FLUSH, Signal

from .transcript import load

TIP = ObjectId(b"3bba56d2293932fb17fd7ad02c5458bdc402d243")
PARENT = ObjectId(b"582c6990896f41930f9cdb20ad386e2f6ce4d409")
TAG = ObjectId(b"e29d524b99449087cba78f9b7b6ee346749894ec")
REFS = {b"HEAD": TIP, b"refs/heads/main": TIP, b"refs/tags/light": TIP, b"refs/tags/v1": TAG}
PEELED = {b"refs/tags/v1": PARENT}
SYMREFS = {b"HEAD": b"refs/heads/main"}
GIT_DAEMON_FLAGS = (b"multi_ack", b"thin-pack", b"side-band", b"side-band-64k", b"ofs-delta", b"shallow",
                    b"deepen-since", b"deepen-not", b"deepen-relative", b"no-progress", b"include-tag",
                    b"multi_ack_detailed")


def server_packets(name: str) -> list[bytes]:
    return [d for t, d in load(name) if t == "s"]


def test_advertisement_matches_git_daemon() -> None:
    recorded = b"".join(server_packets("ls-remote-v0"))
    assert advertisement(REFS, PEELED, SYMREFS, b"AGENT", flags=GIT_DAEMON_FLAGS) == recorded


def test_default_advertisement_adds_what_issue_2_requires() -> None:
    first_line = advertisement(REFS, PEELED, SYMREFS, b"hgwire/1").split(b"\n")[0]
    caps = set(first_line.split(b"\0")[1].split(b" "))
    required = {b"no-done", b"allow-tip-sha1-in-want", b"allow-reachable-sha1-in-want", b"filter",
                b"symref=HEAD:refs/heads/main", b"object-format=sha1", b"agent=hgwire/1"}
    assert set(GIT_DAEMON_FLAGS) | required == caps


def test_empty_repository_advertises_a_bare_flush() -> None:
    assert advertisement({}, {}, {b"HEAD": b"refs/heads/main"}, b"AGENT") == server_packets("clone-empty-v0")[0]


Responder = Callable[[Haves], Negotiation]


def replay(name: str, respond: Responder, shallow: tuple[tuple[ObjectId, ...], tuple[ObjectId, ...]] = ((), ())
           ) -> tuple[list[object], bytes]:
    """Feed the client side of a transcript (after its request line); answer as the server would."""
    core = UploadPackV0()
    events: list[object] = []
    out: list[bytes] = []
    for tag, data in load(name)[1:]:
        if tag != "c":
            continue
        core.receive_data(data)
        while (event := core.next_event()) not in (Signal.NEED_DATA, Signal.PAUSED):
            events.append(event)
            if isinstance(event, FetchRequest):
                out.append(core.shallow_info(*shallow))
            elif isinstance(event, Haves):
                out.append(core.acknowledge(respond(event)))
            elif isinstance(event, SendPack):
                out.append(core.pack_sent())
    return events, b"".join(out)


def after_advertisement_without_pack(name: str) -> bytes:
    packets = server_packets(name)
    rest = packets[packets.index(FLUSH) + 1 :]
    return b"".join(p for p in rest if p[4:5] != b"\x01")


def nothing_in_common(haves: Haves) -> Negotiation:
    return Negotiation(tuple(HaveVerdict(h, False) for h in haves.haves))


def everything_in_common(haves: Haves) -> Negotiation:
    return Negotiation(tuple(HaveVerdict(h, True) for h in haves.haves), ready=True)


def test_clone() -> None:
    events, out = replay("clone-v0", nothing_in_common)
    request = events[0]
    assert isinstance(request, FetchRequest)
    assert request.wants == (TIP, TIP, TIP, TAG)
    assert {b"multi_ack_detailed", b"side-band-64k", b"thin-pack", b"ofs-delta", b"no-progress"} <= request.caps
    assert events[1] == Haves((), True, True)
    assert isinstance(events[2], SendPack)
    assert out == after_advertisement_without_pack("clone-v0")


def test_incremental_fetch_acks_the_common_commit() -> None:
    events, out = replay("fetch-incremental-v0", everything_in_common)
    assert events[1] == Haves((PARENT,), True, True)
    assert out == after_advertisement_without_pack("fetch-incremental-v0")


def test_shallow_clone_sends_the_boundary() -> None:
    events, out = replay("clone-depth1-v0", nothing_in_common, ((TIP,), ()))
    request = events[0]
    assert isinstance(request, FetchRequest) and request.depth == 1 and request.deepen
    assert out == after_advertisement_without_pack("clone-depth1-v0")


def test_deepen_relative_unshallows() -> None:
    events, out = replay("deepen-v0", everything_in_common, ((PARENT,), (TIP,)))
    request = events[0]
    assert isinstance(request, FetchRequest)
    assert request.shallows == (TIP,) and request.depth == 1 and request.deepen_relative
    assert out == after_advertisement_without_pack("deepen-v0")


@pytest.mark.parametrize("name", ["ls-remote-v0", "clone-empty-v0"])
def test_no_wants_ends_the_session(name: str) -> None:
    events, out = replay(name, nothing_in_common)
    assert events == [NoWants()] and out == b""


def have(oid: bytes) -> bytes:
    return b"0032have " + oid + b"\n"


def fix_want(caps: bytes) -> bytes:
    payload = b"want " + TIP + b" " + caps + b"\n"
    return b"%04x" % (len(payload) + 4) + payload + b"0000"


def run_rounds(caps: bytes, rounds: list[tuple[bytes, Negotiation]], stateless: bool = False) -> list[bytes]:
    core = UploadPackV0(stateless=stateless)
    core.receive_data(fix_want(caps))
    out: list[bytes] = []
    for wire, answer in [(b"", Negotiation(()))] + rounds:
        if wire:
            core.receive_data(wire)
        while (event := core.next_event()) not in (Signal.NEED_DATA, Signal.PAUSED):
            if isinstance(event, FetchRequest):
                out.append(core.shallow_info())
            elif isinstance(event, Haves):
                out.append(core.acknowledge(answer))
            else:
                out.append(type(event).__name__.encode())
    return [o for o in out if o]


def test_multi_ack_detailed_ready_with_no_done_sends_the_pack_without_done() -> None:
    answer = Negotiation((HaveVerdict(PARENT, True),), ready=True)
    out = run_rounds(b"multi_ack_detailed no-done side-band-64k", [(have(PARENT) + b"0000", answer)])
    assert out == [b"0038ACK " + PARENT + b" common\n0037ACK " + PARENT + b" ready\n0008NAK\n0031ACK "
                   + PARENT + b"\n", b"SendPack"]


def test_multi_ack_continues_and_acks_the_last_common_at_done() -> None:
    first = Negotiation((HaveVerdict(PARENT, True), HaveVerdict(TAG, False)))
    out = run_rounds(b"multi_ack", [(have(PARENT) + have(TAG) + b"0000", first),
                                    (b"0009done\n", Negotiation(()))])
    assert out == [b"003aACK " + PARENT + b" continue\n0008NAK\n", b"0031ACK " + PARENT + b"\n", b"SendPack"]


def test_single_ack_mode_acks_the_first_common_only() -> None:
    first = Negotiation((HaveVerdict(PARENT, True), HaveVerdict(TIP, True)))
    out = run_rounds(b"side-band", [(have(PARENT) + have(TIP) + b"0000", first),
                                    (b"0009done\n", Negotiation(()))])
    assert out == [b"0031ACK " + PARENT + b"\n", b"SendPack"]


def test_stateless_round_without_done_ends_the_response() -> None:
    answer = Negotiation((HaveVerdict(TAG, False),))
    out = run_rounds(b"multi_ack_detailed", [(have(TAG) + b"0000", answer)], stateless=True)
    assert out == [b"0008NAK\n", b"EndOfRequest"]


@pytest.mark.parametrize("wire", [
    b"0009done\n",                      # done before the wants' flush
    b"000ahello\n0000",                 # unknown line
    b"0001",                            # delim is v2 only
    b"0032want " + b"z" * 40 + b"\n",    # not hex
    b"000edeepen -1\n",
])
def test_rejects_malformed_requests(wire: bytes) -> None:
    core = UploadPackV0()
    core.receive_data(wire)
    with pytest.raises(ProtocolError):
        core.next_event()


def test_wants_are_bounded() -> None:
    core = UploadPackV0(bounds=RequestBounds(wants=2))
    core.receive_data((b"0032want " + TIP + b"\n") * 3)
    with pytest.raises(LimitExceeded):
        core.next_event()


def test_sideband_framing_follows_the_clients_choice() -> None:
    core = UploadPackV0()
    core.receive_data(fix_want(b"side-band no-progress"))
    core.next_event()
    assert core.pack_data(b"P" * 1000)[:5] == b"03e8\x01"
    assert core.progress(b"counting\n") == b""
    plain = UploadPackV0()
    plain.receive_data(fix_want(git_caps.OFS_DELTA))
    plain.next_event()
    assert plain.pack_data(b"PACK") == b"PACK"
    assert plain.fatal(b"boom") == b"000cERR boom"


def test_multi_round_negotiation_matches_git() -> None:
    """Three flushed rounds of unknown haves, then a round with common ones ended by done."""
    name = "negotiation-multi-round-v0"
    recorded = [d for t, d in load(name) if t == "s"]
    common = {ObjectId(p[8:48]) for p in recorded if p[4:8] == b"ACK " and p.endswith(b" common\n")}

    def known(haves: Haves) -> Negotiation:
        return Negotiation(tuple(HaveVerdict(h, h in common) for h in haves.haves))

    events, out = replay(name, known)
    rounds = [e for e in events if isinstance(e, Haves)]
    assert [r.done for r in rounds] == [False, False, False, True]
    assert out == after_advertisement_without_pack(name)
