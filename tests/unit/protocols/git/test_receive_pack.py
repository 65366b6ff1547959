"""receive-pack v0: recorded git daemon pushes replayed through the core, bytes in, bytes out."""

from __future__ import annotations

import hashlib

import pytest

from backends.interfaces import ZERO_ID, ObjectId, RefResult, RefUpdate
from protocols import git_receive
from protocols.errors import LimitExceeded, ProtocolError
from protocols.git_receive import (
    BROKEN_SYMREF,
    DUPLICATE_REF,
    FUNNY_REFNAME,
    INCONSISTENT_ALIAS,
    REFNAME_TOO_LONG,
    NoCommands,
    PackData,
    PackEnd,
    PackScanner,
    ReceivePack,
    RefCommands,
    advertisement,
    check_ref_name,
    screen_commands,
)
from protocols.pktline import FLUSH, Signal, encode

from .transcript import band_one, load

MAIN = ObjectId(b"778366ac2029380b181718218a2533d460ff5115")
TIP = ObjectId(b"3bba56d2293932fb17fd7ad02c5458bdc402d243")
PARENT = ObjectId(b"582c6990896f41930f9cdb20ad386e2f6ce4d409")
TAG = ObjectId(b"e29d524b99449087cba78f9b7b6ee346749894ec")


def server(name: str) -> list[bytes]:
    return [d for t, d in load(name) if t == "s"]


def test_advertisement_matches_git_daemon() -> None:
    refs = {b"HEAD": TIP, b"refs/heads/main": TIP, b"refs/heads/topic2": PARENT,
            b"refs/tags/light": TIP, b"refs/tags/v1": TAG}
    recorded = server("push-ff")
    assert advertisement(refs, b"AGENT") == b"".join(recorded[: recorded.index(FLUSH) + 1])


def test_empty_repository_advertises_capabilities_line() -> None:
    recorded = server("push-empty-repo")
    assert advertisement({}, b"AGENT", push_options=False) == b"".join(recorded[: recorded.index(FLUSH) + 1])


def replay(name: str, results: list[RefResult]) -> tuple[list[object], bytes]:
    core = ReceivePack()
    events: list[object] = []
    report = b""
    for tag, data in load(name)[1:]:
        if tag != "c":
            continue
        core.receive_data(data)
        while (event := core.next_event()) not in (Signal.NEED_DATA, Signal.PAUSED):
            events.append(event)
            if isinstance(event, PackEnd):
                report = core.report_status(None, results)
    return events, report


def after_advertisement(name: str) -> bytes:
    packets = server(name)
    return b"".join(packets[packets.index(FLUSH) + 1 :])


def test_fast_forward_push() -> None:
    events, report = replay("push-ff", [RefResult(b"refs/heads/main")])
    commands = events[0]
    assert isinstance(commands, RefCommands)
    assert commands.updates == (RefUpdate(b"refs/heads/main", TIP, MAIN),)
    assert {b"report-status-v2", b"side-band-64k", b"quiet"} <= commands.caps
    pack = b"".join(e.data for e in events if isinstance(e, PackData))
    assert pack == b"".join(d for t, d in load("push-ff")[1:] if t == "c" and d.startswith(b"PACK"))
    assert isinstance(events[-1], PackEnd)
    assert report == after_advertisement("push-ff")


def test_delete_needs_no_pack() -> None:
    events, report = replay("push-delete", [RefResult(b"refs/tags/light")])
    assert events == [RefCommands((RefUpdate(b"refs/tags/light", TIP, ZERO_ID),), events[0].caps), PackEnd()]  # type: ignore[attr-defined]
    assert report == after_advertisement("push-delete")


def test_push_options_and_an_empty_pack() -> None:
    events, report = replay("push-with-options", [RefResult(b"refs/heads/topic2")])
    commands = events[0]
    assert isinstance(commands, RefCommands) and commands.options == (b"ci.skip",)
    assert isinstance(events[-1], PackEnd)
    assert report == after_advertisement("push-with-options")


def test_first_push_to_an_empty_repository() -> None:
    events, report = replay("push-empty-repo", [RefResult(b"refs/heads/main")])
    assert isinstance(events[-1], PackEnd)
    assert report == after_advertisement("push-empty-repo")


def test_refusals_are_ng_lines() -> None:
    core = ReceivePack()
    line = ZERO_ID + b" " + MAIN + b" refs/heads/x\0report-status"
    core.receive_data(b"%04x" % (len(line) + 4) + line + b"0000")
    assert isinstance(core.next_event(), RefCommands)
    empty = b"PACK\x00\x00\x00\x02\x00\x00\x00\x00"
    core.receive_data(empty + hashlib.sha1(empty).digest())
    assert isinstance(core.next_event(), PackData) and isinstance(core.next_event(), PackEnd)
    assert core.report_status("index-pack failed", [RefResult(b"refs/heads/x", "unpacker error")]) == (
        b"001dunpack index-pack failed\n0023ng refs/heads/x unpacker error\n0000")


def test_bare_flush_means_nothing_to_push() -> None:
    core = ReceivePack()
    core.receive_data(b"0000")
    assert core.next_event() == NoCommands()


def commands_then(pack: bytes) -> ReceivePack:
    core = ReceivePack()
    line = ZERO_ID + b" " + MAIN + b" refs/heads/x\0report-status side-band-64k"
    core.receive_data(b"%04x" % (len(line) + 4) + line + b"0000" + pack)
    return core


def drain(core: ReceivePack) -> list[object]:
    events: list[object] = []
    while (event := core.next_event()) not in (Signal.NEED_DATA, Signal.PAUSED):
        events.append(event)
    return events


def test_take_pack_data_removes_only_the_leading_pack_pieces() -> None:
    pack = band_one(server("clone-v0"))
    core = commands_then(pack[:100])
    assert core.take_pack_data() == [], "the commands come first"
    assert isinstance(core.next_event(), RefCommands)
    taken = core.take_pack_data()
    assert [p.data for p in taken] == [pack[:100]]
    for i in range(100, len(pack), 1000):
        core.receive_data(pack[i : i + 1000])
        taken += core.take_pack_data()
    assert b"".join(p.data for p in taken) == pack
    assert core.take_pack_data() == []
    assert isinstance(core.next_event(), PackEnd), "the end stays for the session's own loop"


def test_truncated_pack_is_an_error() -> None:
    pack = band_one(server("clone-v0"))
    core = commands_then(pack[:-30])
    drain(core)
    core.receive_data(b"")
    with pytest.raises(ProtocolError, match="truncated"):
        core.next_event()


@pytest.mark.parametrize("garbage", [b"GARBAGE-NOT-A-PACK", b"PACK\x00\x00\x00\x07\x00\x00\x00\x01",
                                     b"PACK\x00\x00\x00\x02\x00\x00\x00\x01\x80"])
def test_malformed_pack_is_an_error(garbage: bytes) -> None:
    with pytest.raises(ProtocolError):
        drain(commands_then(garbage + b"\x00" * 80))


@pytest.mark.parametrize("step", [1, 2, 3, 7, 64, 4096])
def test_scanner_finds_the_end_of_a_recorded_pack_in_any_split(step: int) -> None:
    pack = band_one(server("clone-v0"))
    scanner = PackScanner()
    consumed = 0
    for i in range(0, len(pack), step):
        consumed += scanner.feed(pack[i : i + step])
    assert scanner.complete and consumed == len(pack)
    with_extra = PackScanner()
    assert with_extra.feed(pack + b"extra") == len(pack)


def test_scanner_bounds_the_pack_size() -> None:
    with pytest.raises(LimitExceeded):
        PackScanner(max_pack=100).feed(band_one(server("clone-v0")))


@pytest.mark.parametrize("name", [b"HEAD", b"refs/heads/a..b", b"refs/heads/x.lock", b"refs/heads/a b",
                                  b"refs//x", b"refs/heads/.hidden", b"refs/heads/x/", b"refs/heads/@{1}",
                                  b"refs/heads/\x01", b"../../etc/passwd"])
def test_bad_ref_names(name: bytes) -> None:
    with pytest.raises(ProtocolError):
        check_ref_name(name)


def test_good_ref_names() -> None:
    for name in (b"refs/heads/main", b"refs/tags/v1.0", "refs/heads/ünï".encode()):
        check_ref_name(name)


def _object(type_num: int, data: bytes, ofs_base: int | None = None) -> bytes:
    import zlib

    from dulwich.object_format import DEFAULT_OBJECT_FORMAT
    from dulwich.pack import pack_object_header

    return bytes(pack_object_header(type_num, ofs_base, len(data), DEFAULT_OBJECT_FORMAT)) + zlib.compress(data)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        out.append(value & 0x7F | (0x80 if value > 0x7F else 0))
        value >>= 7
        if not value:
            return bytes(out)


def _pack_with_delta(result_size: int) -> bytes:
    blob = _object(3, b"hello")
    delta = _object(6, _varint(5) + _varint(result_size) + b"\x05hello", ofs_base=len(blob))
    body = b"PACK\x00\x00\x00\x02\x00\x00\x00\x02" + blob + delta
    return body + hashlib.sha1(body).digest()


def test_scanner_bounds_object_sizes_and_what_a_delta_rebuilds() -> None:
    pack = _pack_with_delta(1_000_000)
    assert PackScanner().feed(pack) == len(pack)
    assert PackScanner(max_delta_result=1_000_000).feed(pack) == len(pack)
    for step in (1, 3, len(pack)):  # the delta's header may arrive a byte at a time
        scanner = PackScanner(max_delta_result=999_999)
        with pytest.raises(LimitExceeded, match="rebuilds an object of 1000000 bytes"):
            for i in range(0, len(pack), step):
                scanner.feed(pack[i : i + step])
    with pytest.raises(LimitExceeded, match="exceeds the limit of 4"):
        PackScanner(max_object=4).feed(pack)


def test_receive_bounds_limit_ref_updates_and_pkt_lines() -> None:
    from protocols import pktline
    from protocols.git_receive import ReceiveBounds

    def command(i: int) -> bytes:
        return pktline.encode(b"%s %s refs/heads/b%d\n" % (ZERO_ID, TIP, i))

    wire = command(0) + command(1) + FLUSH
    assert isinstance(drain(_fed(ReceivePack(bounds=ReceiveBounds(commands=2)), wire))[0], RefCommands)
    with pytest.raises(LimitExceeded, match="more than 1 ref updates"):
        drain(_fed(ReceivePack(bounds=ReceiveBounds(commands=1)), wire))
    with pytest.raises(LimitExceeded, match="exceeds the limit of 60"):
        drain(_fed(ReceivePack(bounds=ReceiveBounds(pkt_line=60)), wire))


def _fed(core: ReceivePack, data: bytes) -> ReceivePack:
    core.receive_data(data)
    return core


# --- a push's commands taken as a whole (screen_commands) ----------------------------------------

A = ObjectId(b"a" * 40)
B = ObjectId(b"b" * 40)
C = ObjectId(b"c" * 40)
ALIASES = {b"refs/heads/alias": b"refs/heads/main", b"refs/heads/other": b"refs/heads/main",
           b"refs/heads/loop1": b"refs/heads/loop2", b"refs/heads/loop2": b"refs/heads/loop1",
           b"refs/heads/chain": b"refs/heads/alias"}


def _screen(*updates: tuple[bytes, ObjectId, ObjectId]) -> list[tuple[str | None, bytes | None, bool]]:
    return [(s.reason, s.target, s.skipped)
            for s in screen_commands([RefUpdate(ref, old, new) for ref, old, new in updates], ALIASES)]


def test_screening_passes_plain_commands_untouched() -> None:
    assert _screen((b"refs/heads/main", A, B), (b"refs/tags/v1", ZERO_ID, C)) == [(None, None, False)] * 2


def test_screening_refuses_a_bad_name_alone() -> None:
    assert _screen((b"refs/heads/a..b", A, B), (b"refs/heads/main", A, B), (b"r" * 5000, A, B)) == [
        (FUNNY_REFNAME, None, False), (None, None, False), (REFNAME_TOO_LONG, None, False)]


def test_screening_makes_a_ref_named_twice_once() -> None:
    assert _screen((b"refs/heads/main", A, B), (b"refs/heads/main", A, B), (b"refs/heads/main", B, C)) == [
        (None, None, False), (DUPLICATE_REF, None, False), (DUPLICATE_REF, None, False)]


def test_screening_sends_a_symbolic_refs_update_to_its_target() -> None:
    assert _screen((b"refs/heads/alias", A, B)) == [(None, b"refs/heads/main", False)]
    assert _screen((b"refs/heads/chain", A, B)) == [(None, b"refs/heads/main", False)]  # followed through two


def test_screening_skips_a_symbolic_ref_its_target_updates_alike_and_refuses_both_otherwise() -> None:
    assert _screen((b"refs/heads/alias", A, B), (b"refs/heads/main", A, B)) == [
        (None, b"refs/heads/main", True), (None, None, False)]
    assert _screen((b"refs/heads/main", A, C), (b"refs/heads/alias", A, B)) == [
        (INCONSISTENT_ALIAS, None, False), (INCONSISTENT_ALIAS, b"refs/heads/main", False)]


def test_screening_makes_a_ref_reached_through_two_symbolic_refs_once() -> None:
    """git finds no target command for either, makes the first and fails the second (its old id moved)."""
    assert _screen((b"refs/heads/alias", A, B), (b"refs/heads/other", A, B)) == [
        (None, b"refs/heads/main", False), (DUPLICATE_REF, b"refs/heads/main", False)]


def test_screening_refuses_deleting_through_a_symbolic_ref_and_a_loop() -> None:
    [(deleted, target, _)] = _screen((b"refs/heads/alias", A, ZERO_ID))
    assert target == b"refs/heads/main" and deleted is not None
    assert deleted.startswith("cannot delete a symbolic ref by a push (it points to refs/heads/main)")
    assert _screen((b"refs/heads/loop1", A, B)) == [(BROKEN_SYMREF, None, False)]


def test_a_name_git_refuses_reaches_the_commands_to_be_refused_there() -> None:
    core = ReceivePack()
    core.receive_data(encode(ZERO_ID + b" " + A + b" refs/heads/sp ace\0report-status") + FLUSH)
    commands = core.next_event()
    assert isinstance(commands, RefCommands)
    assert commands.updates == (RefUpdate(b"refs/heads/sp ace", ZERO_ID, A),)


def test_a_control_character_in_a_name_is_a_protocol_error_with_the_name_escaped() -> None:
    core = ReceivePack()
    core.receive_data(encode(ZERO_ID + b" " + A + b" refs/heads/\x1b[2J\0report-status") + FLUSH)
    with pytest.raises(ProtocolError, match=r"invalid ref name 'refs/heads/\\x1b\[2J': control characters"):
        core.next_event()


def test_the_names_of_one_push_are_bounded_as_a_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(git_receive, "MAX_NAMES_SIZE", 100)
    core = ReceivePack()
    lines = [encode(ZERO_ID + b" " + A + b" refs/heads/" + b"x" * 40 + bytes([48 + i])
                    + (b"\0report-status" if not i else b"")) for i in range(3)]
    core.receive_data(b"".join(lines) + FLUSH)
    with pytest.raises(LimitExceeded, match="MiB of ref names in one push"):
        core.next_event()
