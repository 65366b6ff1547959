"""Hostile bytes into every git core: events or ProtocolError, never another exception."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from protocols import pktline
from protocols.errors import ProtocolError
from protocols.git_receive import PackScanner, ReceivePack
from protocols.git_upload import FetchRequest, Haves, Negotiation, UploadPackV0
from protocols.git_v2 import UploadPackV2
from protocols.pktline import Signal

from .transcript import band_one, load

KEYWORDS = [b"want ", b"have ", b"shallow ", b"deepen ", b"deepen-since ", b"deepen-not ", b"done", b"filter ",
            b"command=ls-refs", b"command=fetch", b"command=object-info", b"agent=x", b"ref-prefix ",
            b"symrefs", b"peel", b"unborn", b"size", b"oid ", b"thin-pack", b"wait-for-done"]
OID = b"3bba56d2293932fb17fd7ad02c5458bdc402d243"

lines = st.one_of(
    st.binary(max_size=80),
    st.builds(lambda k, tail: k + tail, st.sampled_from(KEYWORDS),
              st.one_of(st.just(OID), st.just(OID + b" multi_ack side-band-64k"), st.binary(max_size=50))),
)
packets = st.lists(st.one_of(lines.map(pktline.encode), st.sampled_from([b"0000", b"0001", b"0002"]),
                             st.binary(max_size=8)), max_size=30)


def drive_upload(core: UploadPackV0, data: bytes) -> None:
    core.receive_data(data)
    for _ in range(100):
        event = core.next_event()
        if isinstance(event, FetchRequest):
            core.shallow_info()
        elif isinstance(event, Haves):
            core.acknowledge(Negotiation(()))
        elif isinstance(event, Signal):
            return


@settings(max_examples=150, deadline=None)
@given(packets)
def test_upload_pack_v0(chunks: list[bytes]) -> None:
    core = UploadPackV0()
    try:
        drive_upload(core, b"".join(chunks))
        core.receive_data(b"")
        drive_upload(core, b"")
    except ProtocolError:
        pass


@settings(max_examples=150, deadline=None)
@given(packets)
def test_upload_pack_v2(chunks: list[bytes]) -> None:
    core = UploadPackV2()
    try:
        core.receive_data(b"".join(chunks))
        for _ in range(50):
            if core.next_event() in (Signal.NEED_DATA, Signal.PAUSED):
                break
    except ProtocolError:
        pass


@settings(max_examples=150, deadline=None)
@given(packets, st.binary(max_size=200))
def test_receive_pack(chunks: list[bytes], tail: bytes) -> None:
    core = ReceivePack()
    try:
        core.receive_data(b"".join(chunks) + tail)
        for _ in range(50):
            if core.next_event() in (Signal.NEED_DATA, Signal.PAUSED):
                break
    except ProtocolError:
        pass


RECORDED_PACK = band_one([d for t, d in load("clone-v0") if t == "s"])


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=0, max_value=len(RECORDED_PACK) - 1), st.binary(min_size=1, max_size=4))
def test_pack_scanner_with_corrupted_bytes(position: int, garbage: bytes) -> None:
    corrupted = RECORDED_PACK[:position] + garbage + RECORDED_PACK[position + len(garbage):]
    try:
        PackScanner().feed(corrupted)
    except ProtocolError:
        pass
