"""upload-pack v2: recorded git daemon v2 sessions replayed through the core, bytes in, bytes out."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from backends.interfaces import ObjectId
from protocols.errors import LimitExceeded, ProtocolError
from protocols.git_upload import ObjectFilter, RequestBounds, parse_filter
from protocols.git_v2 import ClientDone, Fetch, LsRefs, UploadPackV2, capability_advertisement, unknown_ref
from protocols.pktline import FLUSH, Signal

from .transcript import load

MAIN = ObjectId(b"778366ac2029380b181718218a2533d460ff5115")
TIP = ObjectId(b"3bba56d2293932fb17fd7ad02c5458bdc402d243")
PARENT = ObjectId(b"582c6990896f41930f9cdb20ad386e2f6ce4d409")
TAG = ObjectId(b"e29d524b99449087cba78f9b7b6ee346749894ec")
REFS = {b"HEAD": MAIN, b"refs/heads/main": MAIN, b"refs/heads/topic2": MAIN, b"refs/tags/v1": TAG}
PEELED = {b"refs/tags/v1": PARENT}
SYMREFS = {b"HEAD": b"refs/heads/main"}


def test_capability_advertisement_matches_git_daemon() -> None:
    packets = [d for t, d in load("clone-v2") if t == "s"]
    assert capability_advertisement(b"AGENT") == b"".join(packets[: packets.index(FLUSH) + 1])


FetchAnswer = Callable[[UploadPackV2, Fetch], bytes]


def replay(name: str, answer: FetchAnswer, refs: dict[bytes, ObjectId] | None = None,
           ref_in_want: bool = False) -> tuple[list[object], bytes]:
    """The client side of a recorded session fed to the core, answered as the server would: the
    refs of ``REFS``, or ``refs`` (then nothing peeled, ``HEAD`` -> ``main``); ``ref_in_want``:
    the repository sets ``uploadpack.allowRefInWant``."""
    core = UploadPackV2()
    core.allow_ref_in_want = ref_in_want
    events: list[object] = []
    out: list[bytes] = []
    for tag, data in load(name)[1:]:
        if tag != "c":
            continue
        core.receive_data(data)
        while (event := core.next_event()) not in (Signal.NEED_DATA, Signal.PAUSED):
            events.append(event)
            if isinstance(event, LsRefs):
                out.append(core.ls_refs(event, REFS, PEELED, SYMREFS) if refs is None
                           else core.ls_refs(event, refs, {}, {b"HEAD": b"refs/heads/main"}))
            elif isinstance(event, Fetch):
                out.append(answer(core, event) + core.pack_sent())
    return events, b"".join(out)


def recorded_without_pack(name: str) -> bytes:
    packets = [d for t, d in load(name) if t == "s"]
    rest = packets[packets.index(FLUSH) + 1 :]
    return b"".join(p for p in rest if p[4:5] != b"\x01")


def plain_pack(core: UploadPackV2, fetch: Fetch) -> bytes:
    return core.pack_header(False)


def test_clone() -> None:
    events, out = replay("clone-v2", plain_pack)
    assert events[0] == LsRefs(True, True, True, (b"HEAD", b"refs/heads/", b"refs/tags/"))
    fetch = events[1]
    assert isinstance(fetch, Fetch) and fetch.done and fetch.request.wants == (MAIN, MAIN, MAIN, TAG)
    assert fetch.request.thin_pack and fetch.request.ofs_delta
    assert out == recorded_without_pack("clone-v2")


def test_incremental_fetch_acknowledges_and_is_ready() -> None:
    def answer(core: UploadPackV2, fetch: Fetch) -> bytes:
        assert fetch.haves == (PARENT,) and not fetch.done
        return core.acknowledgments(fetch, [PARENT], ready=True) + core.pack_header(False)

    events, out = replay("fetch-incremental-v2", answer)
    assert events[0] == LsRefs(True, True, True, (b"refs/heads/", b"refs/heads/main"))
    assert out == recorded_without_pack("fetch-incremental-v2")


def test_shallow_clone() -> None:
    def answer(core: UploadPackV2, fetch: Fetch) -> bytes:
        assert fetch.request.depth == 1 and fetch.request.include_tag
        return core.pack_header(True, [MAIN])

    _, out = replay("clone-depth1-v2", answer)
    assert out == recorded_without_pack("clone-depth1-v2")


def test_deepen_relative() -> None:
    def answer(core: UploadPackV2, fetch: Fetch) -> bytes:
        assert fetch.request.shallows == (MAIN,) and fetch.request.deepen_relative
        return core.acknowledgments(fetch, [MAIN], ready=True) + core.pack_header(True, [TIP], [MAIN])

    _, out = replay("deepen-v2", answer)
    assert out == recorded_without_pack("deepen-v2")


def test_not_ready_ends_the_round_with_a_flush() -> None:
    core = UploadPackV2()
    core.receive_data(b"0012command=fetch\n0001" + b"0032want " + MAIN + b"\n" + b"0032have " + TAG + b"\n0000")
    fetch = core.next_event()
    assert isinstance(fetch, Fetch)
    assert core.acknowledgments(fetch, [], ready=False) == b"0014acknowledgments\n0008NAK\n0000"
    core.receive_data(b"0000")
    assert core.next_event() == ClientDone()


def test_a_fetch_with_no_wants_is_answered_with_nothing() -> None:
    """git's upload-pack sends no byte for it (not a flush), and reads the next command."""
    core = UploadPackV2()
    core.receive_data(b"0012command=fetch\n0001" + b"0032have " + TAG + b"\n0009done\n0000")
    fetch = core.next_event()
    assert isinstance(fetch, Fetch) and not fetch.request.wants
    assert core.empty_fetch() == b""
    core.receive_data(b"0000")
    assert core.next_event() == ClientDone()


def test_unborn_head_and_prefixes() -> None:
    core = UploadPackV2()
    core.receive_data(b"0014command=ls-refs\n0001000csymrefs\n000bunborn\n0014ref-prefix HEAD\n0000")
    request = core.next_event()
    assert request == LsRefs(True, False, True, (b"HEAD",))
    assert core.ls_refs(request, {}, {}, SYMREFS) == b"002eunborn HEAD symref-target:refs/heads/main\n0000"


@pytest.mark.parametrize("wire", [
    b"0012command=frob\n0000",
    b"0014command=ls-refs\n000cbogus=1\n0000",
    b"0014command=ls-refs\n0001000ebad-arg x\n0000",
    b"0012command=fetch\n00010010sideband-all\n0000",
    b"0019object-format=sha256\n0000",
    b"0019command=ls-refs\n0019object-format=sha256\n0000",
])
def test_rejects_bad_requests(wire: bytes) -> None:
    core = UploadPackV2()
    core.receive_data(wire)
    with pytest.raises(ProtocolError):
        core.next_event()


def test_filter_specs() -> None:
    assert parse_filter(b"blob:none") == ObjectFilter(blob_limit=-1)
    assert parse_filter(b"blob:limit=2k") == ObjectFilter(blob_limit=2048)
    assert parse_filter(b"tree:0") == ObjectFilter(tree_depth=0)
    assert parse_filter(b"tree:3") == ObjectFilter(tree_depth=3)
    assert parse_filter(b"object:type=tag") == ObjectFilter(object_types=frozenset({4}))
    assert parse_filter(b"combine:blob:none+tree:1") == ObjectFilter(blob_limit=-1, tree_depth=1)
    assert parse_filter(b"combine:tree:3+blob:limit=1k+tree:2+blob:limit=5") == ObjectFilter(blob_limit=5,
                                                                                          tree_depth=2)
    assert parse_filter(b"combine:object:type%3dtree+object:type%3Dblob") == ObjectFilter(object_types=frozenset())
    assert parse_filter(b"combine:object:type=commit+tree:0") == ObjectFilter(tree_depth=0,
                                                                              object_types=frozenset({1}))
    for bad in (b"tree:", b"tree:-1", b"tree:x", b"tree:99999999", b"blob:limit=x", b"sparse:oid=abc",
                b"object:type=", b"object:type=file", b"combine:", b"combine:tree:1+", b"combine:+tree:1",
                b"combine:tree:1+combine:tree:2", b"combine:tree%3", b"combine:tree%zz1", b"combine:sparse:oid=x",
                b"combine:" + b"+".join([b"tree:1"] * 33)):
        with pytest.raises(ProtocolError):
            parse_filter(bad)


ONE = ObjectId(b"6a81dd2f4ed0e2a5bdc9f27b3f7946fe51530c7c")
TWO = ObjectId(b"479919141a61e5feabc4b38983a2e0393b51bf47")


def test_ref_in_want_is_offered_as_git_offers_it() -> None:
    packets = [d for t, d in load("ref-in-want-clone-v2") if t == "s"]
    assert capability_advertisement(b"AGENT", ref_in_want=True) == b"".join(packets[: packets.index(FLUSH) + 1])


def test_a_clone_by_want_ref_gets_the_wanted_refs_section() -> None:
    refs = {b"HEAD": ONE, b"refs/heads/main": ONE, b"refs/tags/v1": ONE}

    def answer(core: UploadPackV2, fetch: Fetch) -> bytes:
        assert fetch.want_refs == (b"HEAD", b"refs/heads/main", b"refs/tags/v1") and fetch.wants_anything
        assert fetch.request.wants == () and fetch.done
        return core.pack_header(False, wanted_refs=[(refs[name], name) for name in fetch.want_refs])

    _, out = replay("ref-in-want-clone-v2", answer, refs, ref_in_want=True)
    assert out == recorded_without_pack("ref-in-want-clone-v2")


def test_a_fetch_by_want_ref_acknowledges_then_names_the_ref() -> None:
    def answer(core: UploadPackV2, fetch: Fetch) -> bytes:
        assert fetch.want_refs == (b"refs/heads/main",) and fetch.haves == (ONE,) and not fetch.done
        return core.acknowledgments(fetch, [ONE], ready=True) + core.pack_header(
            False, wanted_refs=[(TWO, b"refs/heads/main")])

    _, out = replay("ref-in-want-fetch-v2", answer, {b"refs/heads/main": TWO, b"refs/tags/v1": ONE},
                    ref_in_want=True)
    assert out == recorded_without_pack("ref-in-want-fetch-v2")


def test_want_ref_only_where_offered_and_bounded() -> None:
    request = b"0012command=fetch\n0001" + b"001dwant-ref refs/heads/main\n" + b"0009done\n0000"
    core = UploadPackV2()
    core.receive_data(request)
    with pytest.raises(ProtocolError, match="unexpected line"):  # not offered: as any unknown line
        core.next_event()
    core = UploadPackV2(bounds=RequestBounds(wants=2))
    core.allow_ref_in_want = True
    core.receive_data(b"0012command=fetch\n0001" + b"0032want " + MAIN + b"\n"
                      + b"001dwant-ref refs/heads/main\n" * 2 + b"0000")
    with pytest.raises(LimitExceeded):  # want and want-ref lines count together
        core.next_event()
    core = UploadPackV2()
    core.allow_ref_in_want = True
    long_ref = b"want-ref refs/" + b"r" * 4092 + b"\n"
    core.receive_data(b"0012command=fetch\n0001" + b"%04x" % (len(long_ref) + 4) + long_ref + b"0000")
    with pytest.raises(ProtocolError, match="invalid want-ref"):
        core.next_event()


def test_an_unknown_wanted_ref_is_gits_err_line() -> None:
    core = UploadPackV2()
    core.allow_ref_in_want = True
    core.receive_data(b"0012command=fetch\n0001" + b"001fwant-ref refs/heads/nosuch\n" + b"0009done\n0000")
    fetch = core.next_event()
    assert isinstance(fetch, Fetch) and fetch.want_refs == (b"refs/heads/nosuch",)
    assert core.fatal(str(unknown_ref(b"refs/heads/nosuch")).encode()) == b"0025ERR unknown ref refs/heads/nosuch"
    assert str(unknown_ref(b"refs/heads/\x1b[31m")) == "unknown ref refs/heads/\\x1b[31m"
