"""SHA-256 repositories in the protocol cores: advertisements byte for byte as git 2.39's
``upload-pack``/``receive-pack`` of a ``--object-format=sha256`` repository, 64-digit ids taken
and 40-digit ones refused, and a client of the other format told so in git's words."""

from __future__ import annotations

import pytest

from backends.interfaces import SHA1_FORMAT, SHA256_FORMAT, ObjectId, RefUpdate
from protocols import git_caps
from protocols.errors import ProtocolError
from protocols.git_receive import ReceivePack, RefCommands
from protocols.git_receive import advertisement as receive_advertisement
from protocols.git_upload import FetchRequest, UploadPackV0, advertisement
from protocols.git_v2 import Fetch, LsRefs, UploadPackV2, capability_advertisement
from protocols.pktline import FLUSH, encode

TIP = ObjectId(b"307a1d90a76abb442f1bf704d7077ed410b9062f9fca394b5d66558def7f834f")
OLD = ObjectId(b"8aac70d78eecc423af5a944c9c72c89bcac4ff106689c1470858b5675218cef0")
AGENT = b"git/2.39.5"
UPLOAD_FLAGS = tuple(f for f in git_caps.UPLOAD_PACK_V0  # git 2.39's without allowTipSHA1InWant & co., allowFilter
                     if f not in (git_caps.ALLOW_TIP_SHA1_IN_WANT, git_caps.ALLOW_REACHABLE_SHA1_IN_WANT, git_caps.FILTER))


def test_upload_pack_advertisement_names_sha256_as_git_does() -> None:
    """``git upload-pack --advertise-refs`` of a SHA-256 repository (git 2.39.5)."""
    recorded = (b"0125" + TIP + b" HEAD\0multi_ack thin-pack side-band side-band-64k ofs-delta shallow deepen-since "
                b"deepen-not deepen-relative no-progress include-tag multi_ack_detailed no-done "
                b"symref=HEAD:refs/heads/main object-format=sha256 agent=git/2.39.5\n"
                b"0055" + TIP + b" refs/heads/main\n0000")
    refs = {b"HEAD": TIP, b"refs/heads/main": TIP}
    assert advertisement(refs, {}, {b"HEAD": b"refs/heads/main"}, AGENT, flags=UPLOAD_FLAGS,
                         object_format=SHA256_FORMAT) == recorded


def test_receive_pack_advertisement_of_an_empty_sha256_repository_has_a_64_digit_zero_id() -> None:
    recorded = (b"00cb" + b"0" * 64 + b" capabilities^{}\0report-status report-status-v2 delete-refs "
                b"side-band-64k quiet atomic ofs-delta object-format=sha256 agent=git/2.39.5\n0000")
    assert receive_advertisement({}, AGENT, push_options=False, object_format=SHA256_FORMAT) == recorded


def test_v2_capabilities_name_sha256() -> None:
    recorded = (b"000eversion 2\n0015agent=git/2.39.5\n0013ls-refs=unborn\n0020fetch=shallow wait-for-done\n"
                b"0012server-option\n0019object-format=sha256\n0010object-info\n0000")
    assert capability_advertisement(AGENT, allow_filter=False, object_format=SHA256_FORMAT) == recorded


def _v0(object_format: object, lines: list[bytes]) -> object:
    core = UploadPackV0()
    core.use_object_format(object_format)  # type: ignore[arg-type]
    core.receive_data(b"".join(encode(line) for line in lines) + FLUSH)
    return core.next_event()


def test_v0_wants_are_64_digits_in_a_sha256_repository() -> None:
    event = _v0(SHA256_FORMAT, [b"want " + TIP + b" ofs-delta object-format=sha256\n", b"want " + OLD + b"\n"])
    assert isinstance(event, FetchRequest) and event.wants == (TIP, OLD)
    with pytest.raises(ProtocolError, match="expected an object id"):
        _v0(SHA256_FORMAT, [b"want " + TIP[:40] + b"\n"])
    with pytest.raises(ProtocolError, match="expected an object id"):
        _v0(SHA1_FORMAT, [b"want " + TIP + b"\n"])
    with pytest.raises(ProtocolError, match="mismatched object format: server sha256; client sha1"):
        _v0(SHA256_FORMAT, [b"want " + TIP + b" object-format=sha1\n"])
    with pytest.raises(ProtocolError, match="unknown object format 'sha512'"):
        _v0(SHA256_FORMAT, [b"want " + TIP + b" object-format=sha512\n"])


def _v2(object_format: object, lines: list[bytes]) -> object:
    core = UploadPackV2()
    core.use_object_format(object_format)  # type: ignore[arg-type]
    core.receive_data(b"".join(encode(line) if line != b"|" else b"0001" for line in lines) + FLUSH)
    return core.next_event()


def test_v2_requests_must_name_the_repository_s_format() -> None:
    """A request that names no format speaks SHA-1 (git's serve.c: "mismatched object format")."""
    event = _v2(SHA256_FORMAT, [b"command=ls-refs\n", b"object-format=sha256\n"])
    assert isinstance(event, LsRefs)
    event = _v2(SHA256_FORMAT, [b"command=fetch\n", b"object-format=sha256\n", b"|", b"want " + TIP + b"\n",
                                b"have " + OLD + b"\n", b"done\n"])
    assert isinstance(event, Fetch) and event.request.wants == (TIP,) and event.haves == (OLD,)
    with pytest.raises(ProtocolError, match="mismatched object format: server sha256; client sha1"):
        _v2(SHA256_FORMAT, [b"command=ls-refs\n"])
    with pytest.raises(ProtocolError, match="mismatched object format: server sha1; client sha256"):
        _v2(SHA1_FORMAT, [b"command=ls-refs\n", b"object-format=sha256\n"])
    with pytest.raises(ProtocolError, match="expected an object id"):
        _v2(SHA256_FORMAT, [b"command=fetch\n", b"object-format=sha256\n", b"|", b"want " + TIP[:40] + b"\n"])
    assert isinstance(_v2(SHA1_FORMAT, [b"command=ls-refs\n"]), LsRefs)


def test_receive_pack_commands_are_64_digits_and_zero_is_64_zeros() -> None:
    core = ReceivePack()
    core.use_object_format(SHA256_FORMAT)
    zero = SHA256_FORMAT.zero
    core.receive_data(encode(zero + b" " + TIP + b" refs/heads/new\0report-status object-format=sha256\n")
                      + encode(OLD + b" " + zero + b" refs/heads/gone\n") + FLUSH)
    event = core.next_event()
    assert isinstance(event, RefCommands)
    assert event.updates == (RefUpdate(b"refs/heads/new", zero, TIP), RefUpdate(b"refs/heads/gone", OLD, zero))
    assert event.needs_pack

    deleting = ReceivePack()
    deleting.use_object_format(SHA256_FORMAT)
    deleting.receive_data(encode(OLD + b" " + zero + b" refs/heads/gone\0report-status\n") + FLUSH)
    deleted = deleting.next_event()
    assert isinstance(deleted, RefCommands) and not deleted.needs_pack

    mismatched = ReceivePack()
    mismatched.use_object_format(SHA256_FORMAT)
    mismatched.receive_data(encode(zero + b" " + TIP + b" refs/heads/new\0object-format=sha1\n") + FLUSH)
    with pytest.raises(ProtocolError, match="mismatched object format"):
        mismatched.next_event()
