"""``filter`` lines of an upload-pack request, as git's upload-pack takes them: a second one in a
request is refused ("multiple filter-specs cannot be combined"), and in protocol v2 a filter the
``uploadpackfilter.*`` rules refuse is refused at its line.  hgwire kept the last filter line of a v2
request and judged it alone: a filter the rules refuse followed by one they allow was served, where
git refuses it."""

from __future__ import annotations

import pytest

from backends.interfaces import FilterRules
from protocols import pktline
from protocols.errors import ProtocolError
from protocols.git_upload import UploadPackV0
from protocols.git_v2 import Fetch, UploadPackV2
from protocols.pktline import FLUSH, Signal

OID = b"1" * 40
NO_TREES = FilterRules(allowed=(("tree", False),))


def pkt(line: bytes) -> bytes:
    return pktline.encode(line + b"\n")


def events(core: UploadPackV0 | UploadPackV2, wire: bytes) -> list[object]:
    core.receive_data(wire)
    seen: list[object] = []
    while (event := core.next_event()) not in (Signal.NEED_DATA, Signal.PAUSED):
        seen.append(event)
    return seen


def v2(*args: bytes) -> bytes:
    return pkt(b"command=fetch") + pktline.DELIM + pkt(b"want " + OID) + b"".join(map(pkt, args)) + pkt(b"done") + FLUSH


def v2_core() -> UploadPackV2:
    core = UploadPackV2()
    core.filter_rules = NO_TREES
    return core


def test_v2_a_refused_filter_followed_by_an_allowed_one_is_refused() -> None:
    with pytest.raises(ProtocolError, match="filter 'tree' not supported"):
        events(v2_core(), v2(b"filter tree:1", b"filter blob:none"))


def test_v2_a_refused_filter_is_refused_at_its_line() -> None:
    with pytest.raises(ProtocolError, match="filter 'tree' not supported"):
        events(v2_core(), v2(b"filter tree:1", b"bogus"))


@pytest.mark.parametrize("spec", [b"blob:none", b"blob:limit=1k"])
def test_two_filter_lines_are_refused_v0_and_v2(spec: bytes) -> None:
    with pytest.raises(ProtocolError, match="multiple filter-specs cannot be combined"):
        events(v2_core(), v2(b"filter blob:none", b"filter " + spec))
    v0 = pkt(b"want " + OID + b" filter") + pkt(b"filter blob:none") + pkt(b"filter " + spec) + FLUSH
    with pytest.raises(ProtocolError, match="multiple filter-specs cannot be combined"):
        events(UploadPackV0(), v0)


def test_v2_one_allowed_filter_is_taken() -> None:
    found = events(v2_core(), v2(b"filter blob:none"))
    assert isinstance(found[0], Fetch) and found[0].request.object_filter is not None


def test_v0_a_filter_line_the_client_did_not_ask_for_is_refused() -> None:
    """git's upload-pack takes a v0 ``filter`` line only from a client whose want line asked for the
    ``filter`` capability ("filtering capability not negotiated"); hgwire served the filter."""
    v0 = pkt(b"want " + OID + b" side-band-64k") + pkt(b"filter blob:none") + FLUSH
    with pytest.raises(ProtocolError, match="^git upload-pack: filtering capability not negotiated$"):
        events(UploadPackV0(), v0)
    asked = pkt(b"want " + OID + b" side-band-64k filter") + pkt(b"filter blob:none") + FLUSH
    assert events(UploadPackV0(), asked)
    later = pkt(b"want " + OID + b" side-band-64k") + pkt(b"want " + b"2" * 40 + b" filter") \
        + pkt(b"filter blob:none") + FLUSH  # (git reads a want line's capabilities at each)
    assert events(UploadPackV0(), later)
