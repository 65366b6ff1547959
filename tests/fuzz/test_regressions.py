"""Inputs the fuzzers found that once let an untyped exception escape (or never returned).

Each case must now end in one of hgwire's typed errors.
"""

from __future__ import annotations

import pytest

from backends.hg.revlog import FLAG_GENERALDELTA, FLAG_INLINE, INDEX_ENTRY, Revlog, parse_index
from backends.hg.vfs import MemoryVfs
from backends.names import validate_name
from protocols import pktline
from protocols.errors import ProtocolError, StorageError, UnsafeName
from protocols.git_request import parse_daemon_request, parse_git_protocol, protocol_version
from protocols.git_upload import UploadPackV0
from protocols.git_v2 import UploadPackV2
from protocols.hg_ssh import CommandRequest, SshLimits, SshV1Server

INLINE_GD = FLAG_INLINE | FLAG_GENERALDELTA | 1


def _entry(rev: int, length: int = 0, base: int | None = None, p1: int = -1, p2: int = -1) -> bytes:
    offset_flags = INLINE_GD << 32 if rev == 0 else 0
    return INDEX_ENTRY.pack(offset_flags, length, 0, rev if base is None else base, rev, p1, p2, b"\x01" * 20)


def _read_all(index_bytes: bytes) -> None:
    vfs = MemoryVfs()
    vfs.replace(b"f.i", index_bytes)
    revlog = Revlog(vfs, b"f.i", parse_index(index_bytes, vfs.stamp(b"f.i"), INLINE_GD))
    for rev in range(len(revlog)):
        revlog.parents(revlog.node(rev))
        revlog.revision(rev)


@pytest.mark.parametrize(
    "index_bytes",
    [
        pytest.param(b"\x00", id="shorter-than-header"),
        pytest.param(_entry(0, length=-64), id="inline-length-minus-64-loops-forever"),
        pytest.param(_entry(0, length=-1000), id="inline-negative-length"),
        pytest.param(_entry(0) + _entry(1, base=7), id="delta-base-past-the-end"),
        pytest.param(_entry(0, base=1) + _entry(1, base=0), id="delta-base-cycle"),
        pytest.param(_entry(0) + _entry(1, p1=5), id="parent-past-the-end"),
        pytest.param(_entry(0) + _entry(1, p1=-3), id="negative-parent-indexes-from-the-end"),
    ],
)
def test_revlog_index_corruption_is_a_storage_error(index_bytes: bytes) -> None:
    with pytest.raises(StorageError):
        _read_all(index_bytes)


LONG_NUMBER = b"9" * 5000
"""More digits than ``int()`` converts (sys.get_int_max_str_digits() is 4300): it raised ValueError."""
OID = b"3bba56d2293932fb17fd7ad02c5458bdc402d243"


def test_v0_deepen_with_thousands_of_digits_is_a_protocol_error() -> None:
    core = UploadPackV0()
    core.receive_data(pktline.encode(b"want " + OID + b"\n") + pktline.encode(b"deepen " + LONG_NUMBER))
    with pytest.raises(ProtocolError):
        core.next_event()


def test_v2_deepen_with_thousands_of_digits_is_a_protocol_error() -> None:
    core = UploadPackV2()
    core.receive_data(pktline.encode(b"command=fetch\n") + pktline.DELIM + pktline.encode(b"want " + OID + b"\n")
                      + pktline.encode(b"deepen " + LONG_NUMBER + b"\n") + pktline.FLUSH)
    with pytest.raises(ProtocolError):
        core.next_event()


@pytest.mark.parametrize("value", [b"version=" + LONG_NUMBER, b"version=2:version=" + LONG_NUMBER])
def test_git_protocol_version_with_thousands_of_digits_is_ignored(value: bytes) -> None:
    assert protocol_version(parse_git_protocol(value)) in (0, 2)
    request = parse_daemon_request(b"git-upload-pack /r.git\0host=h\0\0" + value.replace(b":", b"\0") + b"\0")
    assert request.protocol_version in (0, 2)


WIDE_SSH = SshLimits(max_line=16384)


@pytest.mark.parametrize(
    "session",
    [
        pytest.param(b"known\nnodes " + LONG_NUMBER + b"\n", id="argument-length"),
        pytest.param(b"unbundle\nheads 0\n" + LONG_NUMBER + b"\n", id="push-frame-length"),
    ],
)
def test_hg_ssh_lengths_with_thousands_of_digits_are_protocol_errors(session: bytes) -> None:
    server = SshV1Server(limits=WIDE_SSH)
    server.receive_data(session)
    with pytest.raises(ProtocolError):
        for _ in range(5):
            if isinstance(server.next_event(), CommandRequest):
                server.accept_push()


@pytest.mark.parametrize("raw", ["team/a\x85b", "a\x9bb", "caf\udcc3/r", "\udcff"])
def test_names_with_c1_controls_or_lone_surrogates_are_unsafe(raw: str) -> None:
    with pytest.raises(UnsafeName):
        validate_name(raw)


def test_names_keep_non_ascii_letters() -> None:
    assert validate_name("/équipe/café.git") == "équipe/café.git"
