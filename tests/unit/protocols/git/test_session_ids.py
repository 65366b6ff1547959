"""``transfer.advertiseSID``: the ``session-id`` capability where git 2.39 puts it in each
advertisement (recorded from git daemon and git http-backend with every such setting on), and the
client's own ``session-id`` taken from its first want, its first command or a v2 request's
capabilities (a v2 request naming it was refused as an unknown capability)."""

from __future__ import annotations

from backends.interfaces import ObjectId, RefUpdate
from protocols import git_caps
from protocols.git_receive import ReceivePack, RefCommands
from protocols.git_receive import advertisement as receive_advertisement
from protocols.git_upload import FetchRequest, UploadPackV0, advertisement
from protocols.git_v2 import LsRefs, UploadPackV2, capability_advertisement
from protocols.pktline import DELIM, FLUSH, encode

TIP = ObjectId(b"699237f8d6f2c124f0646b4341c125106cf0f0ff")
AGENT = b"git/2.39.5"
SID = b"20261206T174854.582764Z-H0a7c9cdf-P00005fd0"
CLIENT_SID = b"20261206T174854.580071Z-H0a7c9cdf-P00005fcc"


def test_v0_upload_advertisement_orders_symref_filter_and_session_id_as_git() -> None:
    """git http-backend's (stateless: ``no-done``) with allowAnySHA1InWant, allowFilter, advertiseSID."""
    caps = (b"multi_ack thin-pack side-band side-band-64k ofs-delta shallow deepen-since deepen-not "
            b"deepen-relative no-progress include-tag multi_ack_detailed allow-tip-sha1-in-want "
            b"allow-reachable-sha1-in-want no-done symref=HEAD:refs/heads/main filter session-id=" + SID
            + b" object-format=sha1 agent=git/2.39.5")
    recorded = encode(TIP + b" HEAD\0" + caps + b"\n") + encode(TIP + b" refs/heads/main\n") + FLUSH
    refs = {b"HEAD": TIP, b"refs/heads/main": TIP}
    assert advertisement(refs, {}, {b"HEAD": b"refs/heads/main"}, AGENT, session_id=SID) == recorded
    without = advertisement(refs, {}, {b"HEAD": b"refs/heads/main"}, AGENT)
    assert b"session-id" not in without and b"symref=HEAD:refs/heads/main filter object-format=sha1" in without


def test_receive_advertisement_puts_session_id_after_push_options() -> None:
    nonce = b"1796579319-7c9196cfc153168bf6a6de86d2ebb87ba9f6a782"
    caps = (b"report-status report-status-v2 delete-refs side-band-64k quiet atomic ofs-delta push-cert=" + nonce
            + b" push-options session-id=" + SID + b" object-format=sha1 agent=git/2.39.5")
    recorded = encode(TIP + b" refs/heads/main\0" + caps + b"\n") + FLUSH
    assert receive_advertisement({b"refs/heads/main": TIP}, AGENT, cert_nonce=nonce, session_id=SID) == recorded


def test_v2_advertisement_offers_session_id_after_object_format() -> None:
    recorded = b"".join(encode(line + b"\n") for line in (
        b"version 2", b"agent=git/2.39.5", b"ls-refs=unborn", b"fetch=shallow wait-for-done filter", b"server-option",
        b"object-format=sha1", b"session-id=" + SID, b"object-info")) + FLUSH
    assert capability_advertisement(AGENT, session_id=SID) == recorded
    assert b"session-id" not in capability_advertisement(AGENT)


def test_v0_upload_keeps_the_session_id_of_the_first_want() -> None:
    core = UploadPackV0()
    core.receive_data(encode(b"want " + TIP + b" ofs-delta agent=git/2.39.5 session-id=" + CLIENT_SID + b"\n")
                      + FLUSH)
    assert isinstance(core.next_event(), FetchRequest)
    assert core.client_session_id == CLIENT_SID.decode()


def test_receive_keeps_the_session_id_of_the_first_command() -> None:
    core = ReceivePack()
    core.receive_data(encode(b"0" * 40 + b" " + TIP + b" refs/heads/x\0report-status session-id=" + CLIENT_SID
                             + b"\n") + FLUSH)
    event = core.next_event()
    assert isinstance(event, RefCommands) and event.updates == (RefUpdate(b"refs/heads/x", ObjectId(b"0" * 40), TIP),)
    assert core.client_session_id == CLIENT_SID.decode()


def test_v2_takes_a_session_id_capability_and_keeps_it_printable() -> None:
    core = UploadPackV2()
    core.receive_data(encode(b"command=ls-refs\n") + encode(b"agent=git/2.39.5\n")
                      + encode(b"session-id=" + CLIENT_SID + b"\x01\n") + DELIM + encode(b"symrefs\n") + FLUSH)
    assert isinstance(core.next_event(), LsRefs)
    assert core.client_session_id == CLIENT_SID.decode() + "?"


def test_session_id_of_is_bounded() -> None:
    assert git_caps.session_id_of({git_caps.SESSION_ID: b"x" * 1000}) == "x" * git_caps.MAX_SESSION_ID
    assert git_caps.session_id_of({git_caps.SESSION_ID: None}) is None
    assert git_caps.session_id_of({}) is None
