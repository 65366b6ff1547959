"""Replay sessions recorded from the real ``hg serve --stdio`` (hg 7.2.4) and compare the bytes.

The transcripts come from ``record_transcripts.sh``.  The fake repository is
loaded from the real server's clone reply, and each later session runs on the
state the real server had when it was recorded (pushes are replayed through
our own unbundle).  The ``hello`` reply is compared as a capability set (we
advertise a subset of hg's); everything else is compared byte for byte, except
changegroup payloads, which are compared after decoding (delta choices differ),
and getbundle answers, which hgwire compresses and hg's own server does not.
"""

from __future__ import annotations

import re
import struct

import pytest
import zstandard

from protocols import bundle2 as b2
from protocols.changegroup import ChangegroupDecoder, StreamReader
from protocols.hg_wire import decode_bundle2_caps, url_unquote

from .fake_repo import FakeRepo
from .helpers import (
    bundle_in,
    load_getbundle_reply,
    parts_of,
    reference_repo,
    repo_after_pushes,
    run_ssh,
    side,
)

CAPS_FRAME = re.compile(rb"\d+\ncapabilities: ([^\n]*)\n")


def without_caps(stdout: bytes) -> bytes:
    return CAPS_FRAME.sub(b"<CAPS>", stdout)


def caps_of(stdout: bytes) -> dict[bytes, bytes]:
    match = CAPS_FRAME.search(stdout)
    assert match is not None
    return dict((c.split(b"=", 1) + [b""])[:2] for c in match.group(1).split(b" "))


def session(name: str, repo: FakeRepo) -> tuple[bytes, bytes]:
    ours, _ = run_ssh(repo, side(name, "c"))
    return ours, side(name, "s")


EXTENSION_CAPS = {b"exp-narrow-1"}
"""What hg serve advertises with its narrow extension on (the reference ran without it)."""


def test_capabilities_are_a_subset_of_the_reference() -> None:
    ours, theirs = session("unknown-command.txt", reference_repo())
    our_caps, their_caps = caps_of(ours), caps_of(theirs)
    assert EXTENSION_CAPS <= set(our_caps)
    for cap in EXTENSION_CAPS:
        del our_caps[cap]
    assert set(our_caps) <= set(their_caps)
    assert {k: v for k, v in our_caps.items() if k != b"bundle2"} == {
        k: their_caps[k] for k in our_caps if k != b"bundle2"
    }
    our_b2 = decode_bundle2_caps(url_unquote(our_caps[b"bundle2"]))
    their_b2 = decode_bundle2_caps(url_unquote(their_caps[b"bundle2"]))
    assert {k: their_b2[k] for k in our_b2} == our_b2


@pytest.mark.parametrize("name", ["unknown-command.txt", "upgrade-request.txt", "lookup-branch.txt"])
def test_string_sessions_match_byte_for_byte(name: str) -> None:
    repo = repo_after_pushes() if name == "unknown-command.txt" else reference_repo()
    ours, theirs = session(name, repo)
    assert without_caps(ours) == without_caps(theirs)


def test_listkeys_branchmap_known_lookup_match_after_pushes() -> None:
    ours, theirs = session("listkeys-and-known.txt", repo_after_pushes())
    assert ours == theirs


def plain_bundle(stdout: bytes) -> bytes:
    """``stdout`` with a zstd-compressed bundle2 at its end (hgwire's getbundle over SSH, for a
    client that names zstd in ``protocaps``) as hg's own server sends it: uncompressed."""
    compressed = b"HG20" + struct.pack(">i", len(b"Compression=ZS")) + b"Compression=ZS"
    at = stdout.find(compressed)
    if at < 0:
        return stdout
    reader = zstandard.ZstdDecompressor().decompressobj()
    plain = reader.decompress(stdout[at + len(compressed):])
    assert reader.eof and not reader.unused_data, "the bundle ends the session's output"
    return stdout[:at] + b"HG20" + struct.pack(">i", 0) + plain


def test_pull_with_nothing_new_matches_byte_for_byte_once_uncompressed() -> None:
    ours, theirs = session("pull-nothing-new.txt", reference_repo())
    assert b"Compression=ZS" in ours  # the recorded client said comp=zstd,zlib,none
    assert without_caps(plain_bundle(ours)) == without_caps(theirs)


def _revisions(bundle: bytes) -> FakeRepo:
    repo = FakeRepo()
    load_getbundle_reply(repo, bundle)
    return repo


def test_clone_bundle2_sends_the_same_parts_and_revisions() -> None:
    ours, theirs = session("clone-bundle2.txt", reference_repo())
    our_bundle, their_bundle = bundle_in(ours), bundle_in(theirs)
    assert without_caps(ours[: len(ours) - len(our_bundle)]) == without_caps(
        theirs[: len(theirs) - len(their_bundle)]
    )
    our_parts, their_parts = parts_of(our_bundle), parts_of(their_bundle)
    assert [(p.type, p.mandatory, p.params, p.mandatory_keys) for p, _ in our_parts] == [
        (p.type, p.mandatory, p.params, p.mandatory_keys) for p, _ in their_parts
    ]
    for (part, ours_data), (_, theirs_data) in zip(our_parts, their_parts):
        if part.type != b2.PART_CHANGEGROUP:
            assert ours_data == theirs_data
    assert _revisions(our_bundle).state == _revisions(their_bundle).state


def _split_bare_changegroup(stdout: bytes) -> tuple[bytes, FakeRepo, bytes]:
    """(string replies before, a repo holding the cg01 revisions, bytes after) of a bundle1 clone."""
    start = stdout.index(b";") + 1  # the getbundle reply follows the batch reply
    reader = StreamReader(iter([stdout[start:]]))
    repo = FakeRepo()
    tx = repo.transaction()
    tx.add_changegroup(ChangegroupDecoder(reader, b"01").groups())
    tx.commit()
    return stdout[:start], repo, b"".join(reader.remaining())


def test_clone_bundle1_sends_the_same_bare_cg01_revisions() -> None:
    ours, theirs = session("clone-bundle1.txt", reference_repo())
    our_head, our_repo, our_tail = _split_bare_changegroup(ours)
    their_head, their_repo, their_tail = _split_bare_changegroup(theirs)
    assert without_caps(our_head) == without_caps(their_head)
    assert our_repo.state.revlogs == their_repo.state.revlogs
    assert our_tail == their_tail


def test_push_bundle2_replies_like_hg_and_lands() -> None:
    repo = reference_repo()
    ours, our_stderr = run_ssh(repo, side("push-bundle2.txt", "c"))
    assert without_caps(ours) == without_caps(side("push-bundle2.txt", "s"))
    assert our_stderr == side("push-bundle2.txt", "e")
    assert repo.bookmarks()[b"pushed-bm"].hex() == "d408a57b42875c0221266b70cabe8a80883df0fd"
    assert [h.hex() for h in repo.heads()] == ["d408a57b42875c0221266b70cabe8a80883df0fd"]


def test_push_bundle1_replies_like_hg_and_lands() -> None:
    repo = reference_repo()
    run_ssh(repo, side("push-bundle2.txt", "c"))
    ours, our_stderr = run_ssh(repo, side("push-bundle1.txt", "c"))
    assert without_caps(ours) == without_caps(side("push-bundle1.txt", "s"))
    assert our_stderr == side("push-bundle1.txt", "e")
    assert repo.bookmarks()[b"pushed-bm"].hex() == "01a4fcbf8ba3269e542771b7068c2b36687ba48f"


def _uvarint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _stream2_entries(payload: bytes) -> list[tuple[bytes, bytes, bytes]]:
    entries, pos = [], 0
    while pos < len(payload):
        source = payload[pos : pos + 1]
        name_len, pos = _uvarint(payload, pos + 1)
        size, pos = _uvarint(payload, pos)
        entries.append(
            (source, payload[pos : pos + name_len], payload[pos + name_len : pos + name_len + size])
        )
        pos += name_len + size
    return entries


def test_stream_clone_v2_sends_the_store_files_as_hg_does() -> None:
    """hg also streams its caches (source ``c``); we send the store (``s``) entries identically."""
    theirs = side("clone-stream2.txt", "s")
    (their_part, their_payload), *their_rest = parts_of(bundle_in(theirs))
    store = [(name, data) for source, name, data in _stream2_entries(their_payload) if source == b"s"]
    repo = reference_repo()
    repo.store_files = store
    ours, _ = run_ssh(repo, side("clone-stream2.txt", "c"))
    (our_part, our_payload), *our_rest = parts_of(bundle_in(ours))
    assert without_caps(ours[: ours.index(b"HG20\0")]) == without_caps(theirs[: theirs.index(b"HG20\0")])
    assert our_part.type == their_part.type == b"stream2"
    assert our_part.mandatory_keys == their_part.mandatory_keys
    assert our_part.params == {
        b"bytecount": b"%d" % sum(len(data) for _, data in store),
        b"filecount": b"%d" % len(store),
        b"requirements": their_part.params[b"requirements"],
    }
    assert _stream2_entries(our_payload) == [(b"s", name, data) for name, data in store]
    assert [(p.type, p.params, data) for p, data in our_rest] == [
        (p.type, p.params, d) for p, d in their_rest
    ]


def test_stream_clone_v1_matches_byte_for_byte() -> None:
    theirs = side("clone-stream1.txt", "s")
    reply = theirs[theirs.index(b"0\n", theirs.index(b"stable ")) :]
    header, _, body = reply.partition(b"\n")[2].partition(b"\n")
    count = int(header.split()[0])
    files = []
    for _ in range(count):
        line, _, body = body.partition(b"\n")
        name, _, size = line.partition(b"\0")
        files.append((name, body[: int(size)]))
        body = body[int(size) :]
    repo = reference_repo()
    repo.store_files = files
    ours, _ = run_ssh(repo, side("clone-stream1.txt", "c"))
    assert without_caps(ours) == without_caps(theirs)
