"""Request bounds (``[limits]`` max_wants / max_haves / max_ref_prefixes) in the v0 and v2 cores."""

from __future__ import annotations

import pytest

from protocols import pktline
from protocols.errors import LimitExceeded, ProtocolError
from protocols.git_upload import FetchRequest, RequestBounds, UploadPackV0
from protocols.git_v2 import Fetch, LsRefs, UploadPackV2
from protocols.pktline import FLUSH, Signal

OIDS = [bytes(f"{i:040x}", "ascii") for i in range(1, 6)]


def pkt(line: bytes) -> bytes:
    return pktline.encode(line + b"\n")


def events(core: UploadPackV0 | UploadPackV2, wire: bytes) -> list[object]:
    core.receive_data(wire)
    seen = []
    while (event := core.next_event()) not in (Signal.NEED_DATA, Signal.PAUSED):
        seen.append(event)
    return seen


def test_v0_wants_over_the_bound_are_refused() -> None:
    wire = pkt(b"want " + OIDS[0] + b" ofs-delta") + b"".join(pkt(b"want " + o) for o in OIDS[1:3]) + FLUSH
    assert events(UploadPackV0(bounds=RequestBounds(wants=3)), wire)  # three is the bound: accepted
    with pytest.raises(LimitExceeded, match="more than 2 wants"):
        events(UploadPackV0(bounds=RequestBounds(wants=2)), wire)


def test_v2_fetch_wants_and_haves_over_the_bounds_are_refused() -> None:
    def fetch(wants: int, haves: int) -> bytes:
        args = [b"want " + o for o in OIDS[:wants]] + [b"have " + o for o in OIDS[:haves]]
        return pkt(b"command=fetch") + pktline.DELIM + b"".join(pkt(a) for a in args) + pkt(b"done") + FLUSH

    found = events(UploadPackV2(bounds=RequestBounds(wants=2, haves=3)), fetch(2, 3))
    assert isinstance(found[0], Fetch) and len(found[0].haves) == 3
    with pytest.raises(LimitExceeded, match="more than 2 wants"):
        events(UploadPackV2(bounds=RequestBounds(wants=2, haves=3)), fetch(3, 0))
    with pytest.raises(LimitExceeded, match="more than 3 haves"):
        events(UploadPackV2(bounds=RequestBounds(wants=2, haves=3)), fetch(1, 4))


def test_v2_ls_refs_past_the_prefix_bound_lists_every_ref() -> None:
    wire = pkt(b"command=ls-refs") + pktline.DELIM + b"".join(pkt(b"ref-prefix refs/" + bytes([97 + i]))
                                                               for i in range(3)) + FLUSH
    within = events(UploadPackV2(bounds=RequestBounds(ref_prefixes=3)), wire)
    assert isinstance(within[0], LsRefs) and len(within[0].prefixes) == 3
    past = events(UploadPackV2(bounds=RequestBounds(ref_prefixes=2)), wire)
    assert isinstance(past[0], LsRefs) and past[0].prefixes == ()


def test_a_clone_of_100000_tags_is_within_the_default_bounds() -> None:
    """A clone wants every tag it is shown: a mirror of 100,000 annotated tags had its clone refused
    "more than 65536 wants" (git daemon has no bound), over v0 and v2 alike."""
    many = [bytes(f"{i:040x}", "ascii") for i in range(1, 100_002)]
    v0 = pkt(b"want " + many[0] + b" ofs-delta") + b"".join(pkt(b"want " + o) for o in many[1:]) + FLUSH
    assert fed(UploadPackV0(), v0)
    v2 = (pkt(b"command=fetch") + pktline.DELIM + b"".join(pkt(b"want " + o) for o in many) + pkt(b"done")
          + FLUSH)
    found = fed(UploadPackV2(), v2)
    assert isinstance(found[0], Fetch) and len(found[0].request.wants) == len(many)


def fed(core: UploadPackV0 | UploadPackV2, wire: bytes, piece: int = 65536) -> list[object]:
    """``events`` of ``wire`` given as a connection gives it, a piece at a time."""
    seen: list[object] = []
    for start in range(0, len(wire), piece):
        seen += events(core, wire[start:start + piece])
    return seen


def test_v2_fetch_arguments_are_parsed_as_they_come() -> None:
    """A v2 request's argument lines were all kept as sent until its flush (1,376,256 of them, each up
    to 64 KiB: tens of GB a connection); each is parsed as it comes, and a bad one refused at once."""
    core = UploadPackV2()
    assert events(core, pkt(b"command=fetch") + pktline.DELIM + pkt(b"want " + OIDS[0])) == []
    with pytest.raises(ProtocolError, match="expected an object id"):
        events(core, pkt(b"want " + b"0" * 60_000))  # no flush: refused as it arrives


def test_v2_ls_refs_past_64_mib_of_prefixes_lists_every_ref() -> None:
    """Prefixes under the count bound but of 64 KiB each were held whole (4 GB at 65,536); past
    64 MiB of them, as past their count, every ref is listed (and none kept)."""
    core = UploadPackV2()
    assert events(core, pkt(b"command=ls-refs") + pktline.DELIM) == []
    long_prefix = pkt(b"ref-prefix refs/" + b"p" * 65_000)
    for _ in range(1040):  # 67.6 MB
        assert events(core, long_prefix) == []
    found = events(core, FLUSH)
    assert isinstance(found[0], LsRefs) and found[0].prefixes == ()


def test_v2_want_ref_names_past_64_mib_are_refused() -> None:
    """want-ref names are counted with the wants (1,048,576) and may be 4 KiB each: 4 GB held until
    the request's flush; past 64 MiB of them the request is refused."""
    core = UploadPackV2()
    core.allow_ref_in_want = True
    assert events(core, pkt(b"command=fetch") + pktline.DELIM) == []
    name = pkt(b"want-ref refs/heads/" + b"n" * 4000)
    with pytest.raises(LimitExceeded, match="MiB of want-ref names"):
        for _ in range(17_000):  # 68 MB
            events(core, name)


def test_v0_later_want_lines_add_only_known_capabilities() -> None:
    """Every want line's capabilities were kept: a million want lines naming 64 made-up ones each held
    64 million names (8 GB); a later line adds only those upload-pack knows, as git reads them."""
    first = pkt(b"want " + OIDS[0] + b" ofs-delta agent=git/2.39 made-up")
    later = b"".join(pkt(b"want %040x " % i + b" ".join(b"x%d_%d" % (i, j) for j in range(63)) + b" thin-pack")
                     for i in range(2, 1002))
    found = events(UploadPackV0(), first + later + FLUSH)
    request = found[0]
    assert isinstance(request, FetchRequest) and len(request.wants) == 1001
    assert request.caps == {b"ofs-delta", b"agent", b"made-up", b"thin-pack"}


def test_the_default_bound_refuses_a_request_past_262144_wants() -> None:
    """One anonymous connection naming a million made-up ids held about 90 MB and 3.5 s of CPU under
    the default of 1,048,576 (git daemon stops at the first id it lacks); the default is 262,144."""
    many = [bytes(f"{i:040x}", "ascii") for i in range(1, 262_146)]
    v0 = pkt(b"want " + many[0] + b" ofs-delta") + b"".join(pkt(b"want " + o) for o in many[1:]) + FLUSH
    with pytest.raises(LimitExceeded, match="more than 262144 wants"):
        fed(UploadPackV0(), v0)
    v2 = pkt(b"command=fetch") + pktline.DELIM + b"".join(pkt(b"want " + o) for o in many) + FLUSH
    with pytest.raises(LimitExceeded, match="more than 262144 wants"):
        fed(UploadPackV2(), v2)
