"""Changegroup and bundle2 codecs: real ``hg bundle`` files, round trips, and garbage."""

from __future__ import annotations

import itertools
import random
import struct
from collections.abc import Iterator

import pytest
import zstandard
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from backends.interfaces import NULL_NODE, DeltaMode, Node, RevisionDelta, RevisionGroup, Section
from protocols import bundle2 as b2
from protocols.changegroup import (
    ChangegroupDecoder,
    ChangegroupLimits,
    StreamReader,
    encode_changegroup,
    read_bundle1,
)
from protocols.errors import LimitExceeded, ProtocolError, StorageError, UnsupportedContent

from .fake_repo import FakeRepo
from .helpers import load_getbundle_reply, reference_repo, repo_after_pushes, side

nodes = st.binary(min_size=20, max_size=20).map(Node)


def load_bundle(name: str) -> bytes:
    return side(name, "c")


def repo_from_groups(groups: Iterator[RevisionGroup]) -> FakeRepo:
    repo = FakeRepo()
    tx = repo.transaction()
    tx.add_changegroup(groups)
    tx.commit()
    return repo


def pieces(data: bytes, size: int) -> Iterator[bytes]:
    return iter([data[i : i + size] for i in range(0, len(data), size)])


# ---------------------------------------------------------------- real bundles


@pytest.mark.parametrize("name", ["bundle-none-v1.txt", "bundle-gzip-v1.txt", "bundle-bzip2-v1.txt"])
def test_bundle1_files_of_hg_decode_to_the_reference_revisions(name: str) -> None:
    repo = repo_from_groups(read_bundle1(StreamReader(pieces(load_bundle(name), 7))))
    assert repo.state.revlogs == repo_after_pushes().state.revlogs


@pytest.mark.parametrize(
    "name", ["bundle-none-v2.txt", "bundle-gzip-v2.txt", "bundle-bzip2-v2.txt", "bundle-zstd-v2.txt"]
)
def test_bundle2_files_of_hg_decode_in_every_compression(name: str) -> None:
    repo = FakeRepo()
    data = load_bundle(name)
    load_getbundle_reply(repo, b"".join(pieces(data, 5)))
    assert repo.state.revlogs == repo_after_pushes().state.revlogs


# ---------------------------------------------------------------- changegroup round trips


def sample_groups(repo: FakeRepo, version: bytes) -> list[tuple[Section, bytes, list[RevisionDelta]]]:
    mode = DeltaMode.PREVIOUS if version == b"01" else DeltaMode.ANY
    return [
        (g.section, g.path, list(g.revisions)) for g in repo.emit_groups(repo.missing([], repo.heads()), mode)
    ]


@pytest.mark.parametrize("version", [b"01", b"02", b"03"])
def test_changegroup_round_trips(version: bytes) -> None:
    repo = reference_repo()
    expected = sample_groups(repo, version)
    groups = iter([RevisionGroup(s, p, iter(r)) for s, p, r in expected])
    encoded = b"".join(encode_changegroup(groups, version))
    decoded = ChangegroupDecoder(StreamReader(pieces(encoded, 3)), version).groups()
    assert [(g.section, g.path, list(g.revisions)) for g in decoded] == expected


def test_cg03_closes_the_tree_manifest_segment() -> None:
    empty = b"".join(encode_changegroup(iter([]), b"03"))
    assert empty == b"\0\0\0\0" * 4
    assert b"".join(encode_changegroup(iter([]), b"02")) == b"\0\0\0\0" * 3


def test_cg01_refuses_a_delta_that_is_not_against_the_previous_revision() -> None:
    rev = RevisionDelta(Node(b"\1" * 20), NULL_NODE, NULL_NODE, Node(b"\1" * 20), Node(b"\2" * 20), b"")
    groups = iter([RevisionGroup(Section.CHANGELOG, b"", iter([rev]))])
    with pytest.raises(StorageError):
        b"".join(encode_changegroup(groups, b"01"))


def test_decoder_drains_unread_groups() -> None:
    repo = reference_repo()
    encoded = b"".join(
        encode_changegroup(repo.emit_groups(repo.missing([], repo.heads()), DeltaMode.ANY), b"02")
    )
    groups = list(ChangegroupDecoder(StreamReader(iter([encoded])), b"02").groups())
    assert [g.path for g in groups] == [b"", b"", b"a", b"b"]


@pytest.mark.parametrize("cut", [1, 4, 50, 200])
def test_truncated_changegroup_is_a_protocol_error(cut: int) -> None:
    repo = reference_repo()
    encoded = b"".join(
        encode_changegroup(repo.emit_groups(repo.missing([], repo.heads()), DeltaMode.ANY), b"02")
    )
    with pytest.raises(ProtocolError, match="truncated"):
        for group in ChangegroupDecoder(StreamReader(iter([encoded[:-cut]])), b"02").groups():
            list(group.revisions)


def test_changegroup_chunk_limit() -> None:
    data = struct.pack(">l", 1000) + b"x" * 996
    decoder = ChangegroupDecoder(StreamReader(iter([data])), b"02", ChangegroupLimits(max_chunk=100))
    with pytest.raises(LimitExceeded):
        for group in decoder.groups():
            list(group.revisions)


def test_cg03_tree_manifests_are_refused() -> None:
    data = b"\0\0\0\0" * 2 + struct.pack(">l", 8) + b"dir/"
    with pytest.raises(ProtocolError, match="tree manifests"):
        for group in ChangegroupDecoder(StreamReader(iter([data])), b"03").groups():
            list(group.revisions)


@settings(max_examples=300)
@given(st.binary(max_size=400), st.sampled_from([b"01", b"02", b"03"]))
def test_changegroup_decoder_raises_only_protocol_errors(garbage: bytes, version: bytes) -> None:
    try:
        for group in ChangegroupDecoder(StreamReader(iter([garbage])), version).groups():
            list(group.revisions)
    except ProtocolError:
        pass


@settings(max_examples=200)
@given(st.binary(max_size=200))
def test_bundle1_reader_raises_only_protocol_errors(tail: bytes) -> None:
    for header in (b"HG10UN", b"HG10GZ", b"HG10BZ", b"HG10XX", b""):
        try:
            for group in read_bundle1(StreamReader(iter([header + tail]))):
                list(group.revisions)
        except ProtocolError:
            pass


# ---------------------------------------------------------------- bundle2

params = st.lists(
    st.tuples(st.binary(min_size=1, max_size=12).map(lambda b: b"k" + b), st.binary(max_size=40)),
    max_size=3,
    unique_by=lambda kv: kv[0],
)
out_parts = st.builds(
    lambda t, m, a, payload, mandatory: b2.OutPart(
        b"x" + t, m, [(k + b"-adv", v) for k, v in a], payload, mandatory
    ),
    st.text(alphabet="abcdefghij:-", max_size=10).map(str.encode),
    params,
    params,
    st.lists(st.binary(max_size=40000), max_size=3),
    st.booleans(),
)


@settings(max_examples=100, deadline=None)
@given(st.lists(out_parts, max_size=4))
def test_bundle2_round_trips(parts: list[b2.OutPart]) -> None:
    data = b"".join(b2.write_bundle2(parts))
    read = [(p, p.read_all()) for p in b2.Bundle2Reader(pieces(data, 1000)).parts()]
    assert len(read) == len(parts)
    for part_id, (written, (part, payload)) in enumerate(zip(parts, read)):
        assert part.type == written.type.lower()
        assert part.id == part_id
        assert part.mandatory == written.mandatory
        assert part.params == dict([*written.mandatory_params, *written.advisory_params])
        assert part.mandatory_keys == tuple(k for k, _ in written.mandatory_params)
        assert payload == b"".join(written.payload)


def test_bundle2_reply_of_hg_parses() -> None:
    reply = side("push-bundle2.txt", "s")
    part = next(b2.Bundle2Reader(iter([reply[reply.index(b"HG20\0") :]])).parts())
    assert (part.type, part.mandatory, part.params) == (
        b"reply:changegroup",
        False,
        {b"in-reply-to": b"4", b"return": b"1"},
    )


@settings(max_examples=400)
@given(st.binary(max_size=300))
def test_bundle2_reader_raises_only_protocol_errors(tail: bytes) -> None:
    for head in (b"HG20", b"HG20\0\0\0\0", b"HG20\0\0\0\x0eCompression=GZ", b""):
        try:
            for part in b2.Bundle2Reader(iter([head + tail])).parts():
                part.read_all()
        except ProtocolError:
            pass


def test_bundle2_unknown_mandatory_stream_parameter() -> None:
    data = b"HG20" + struct.pack(">i", 7) + b"Unknown" + b"\0\0\0\0"
    with pytest.raises(UnsupportedContent, match="^unsupported bundle2 stream parameter 'Unknown'$"):
        list(b2.Bundle2Reader(iter([data])).parts())


def test_a_compression_the_server_does_not_know_is_named_as_text() -> None:
    data = b"HG20" + struct.pack(">i", 15) + b"Compression=X\x1bY" + b"\0\0\0\0"
    with pytest.raises(UnsupportedContent, match=r"^unsupported bundle2 compression 'X\\x1bY'$"):
        list(b2.Bundle2Reader(iter([data])).parts())


def test_bundle2_advisory_stream_parameter_is_ignored() -> None:
    data = b"HG20" + struct.pack(">i", 9) + b"unknown=1" + b"\0\0\0\0"
    assert list(b2.Bundle2Reader(iter([data])).parts()) == []


def _zstd_bundle2(payload: bytes) -> bytes:
    """A zstd-compressed bundle2 of one part carrying ``payload``."""
    inner = b"".join(b2.write_bundle2([b2.OutPart(b"x-data", payload=[payload])]))[8:]  # parts only
    params = b"Compression=ZS"
    return b"HG20" + struct.pack(">i", len(params)) + params + zstandard.ZstdCompressor().compress(inner)


@pytest.mark.parametrize("piece", [1 << 20, 131075, 4096])
def test_bundle2_zstd_stream_read_in_chunks_of_any_size(piece: int) -> None:
    # zstandard's C reader copies what read() returns into a buffer of the size it asked for
    # (128 KiB): a longer chunk, such as a whole pushed bundle at once, was written past its
    # end and crashed the process (found replaying a recorded push in one piece).
    payload = random.Random(7).randbytes(600_000)  # incompressible: the compressed stream is as long
    data = _zstd_bundle2(payload)
    parts = [(p.type, p.read_all()) for p in b2.Bundle2Reader(pieces(data, piece)).parts()]
    assert parts == [(b"x-data", payload)]


@settings(max_examples=200)
@given(st.lists(st.binary(max_size=300), max_size=8), st.lists(st.integers(-1, 400), min_size=1, max_size=20))
def test_zstd_input_reader_never_returns_more_than_asked(chunks: list[bytes], sizes: list[int]) -> None:
    assume(any(size != 0 for size in sizes))  # read(0) gives nothing: some size must make progress
    reader = b2._IteratorFile(iter(chunks))
    read = []
    for size in itertools.islice(itertools.cycle(sizes), 10_000):
        data = reader.read(size)
        if not data and size != 0:
            break
        assert size < 0 or len(data) <= size
        read.append(data)
    assert b"".join(read) == b"".join(chunks)


def _header(part: b2.OutPart, part_id: int = 0) -> bytes:
    return b2.encode_part_header(part, part_id)


def test_bundle2_limits() -> None:
    big_header = b"HG20\0\0\0\0" + struct.pack(">i", 1 << 20)
    with pytest.raises(LimitExceeded):
        list(b2.Bundle2Reader(iter([big_header])).parts())
    big_chunk = b"HG20\0\0\0\0" + _header(b2.OutPart(b"x")) + struct.pack(">i", 1 << 30)
    with pytest.raises(LimitExceeded):
        for part in b2.Bundle2Reader(iter([big_chunk])).parts():
            part.read_all()
    with pytest.raises(LimitExceeded):
        b2.InPart(b"x", 0, True, {}, (), iter([b"x" * 10])).read_all(limit=5)


def test_bundle2_interrupt_with_output_then_resume() -> None:
    output = _header(b2.OutPart(b"output", mandatory=False)) + struct.pack(">i", 2) + b"hi" + b"\0\0\0\0"
    data = (
        b"HG20\0\0\0\0"
        + _header(b2.OutPart(b"data"))
        + struct.pack(">i", 3)
        + b"abc"
        + struct.pack(">i", -1)
        + output
        + struct.pack(">i", 3)
        + b"def"
        + b"\0\0\0\0"
        + b"\0\0\0\0"
    )
    seen: list[tuple[bytes, bytes]] = []
    reader = b2.Bundle2Reader(iter([data]), on_interrupt=lambda p, payload: seen.append((p.type, payload)))
    assert [p.read_all() for p in reader.parts()] == [b"abcdef"]
    assert seen == [(b"output", b"hi")]


def test_bundle2_error_abort_interrupt_is_raised() -> None:
    def failing() -> Iterator[bytes]:
        yield b"some"
        raise ProtocolError("the storage went away")

    data = b"".join(b2.write_bundle2([b2.OutPart(b"changegroup", payload=failing())]))
    with pytest.raises(ProtocolError, match="the storage went away"):
        for part in b2.Bundle2Reader(iter([data])).parts():
            part.read_all()


def test_bundle2_writer_reraises_unexpected_errors_after_the_interrupt() -> None:
    def failing() -> Iterator[bytes]:
        raise RuntimeError("bug")
        yield b""

    chunks: list[bytes] = []
    with pytest.raises(RuntimeError):
        chunks.extend(b2.write_bundle2([b2.OutPart(b"changegroup", payload=failing())]))
    assert struct.pack(">i", -1) in chunks


def test_bundle2_nested_interrupts_are_refused() -> None:
    inner = _header(b2.OutPart(b"output", mandatory=False)) + struct.pack(">i", -1)
    data = b"HG20\0\0\0\0" + _header(b2.OutPart(b"data")) + struct.pack(">i", -1) + inner + b"\0" * 64
    with pytest.raises(ProtocolError):
        for part in b2.Bundle2Reader(iter([data])).parts():
            part.read_all()


def test_bundle2_parameter_too_long_for_the_format() -> None:
    with pytest.raises(ValueError):
        b2.encode_part_header(b2.OutPart(b"x", [(b"k", b"v" * 256)]), 0)


def test_bundle2_writer_gathers_small_payload_pieces() -> None:
    data = list(b2.write_bundle2([b2.OutPart(b"x", payload=[b"a"] * 100_000)]))
    frames = data[2:-2]  # between the part header and the end-of-payload/end-of-stream markers
    assert [len(f) for f in frames] == [4 + b2.OUT_CHUNK_SIZE] * 3 + [4 + 100_000 - 3 * b2.OUT_CHUNK_SIZE]


def test_bundle2_writer_frames_a_large_piece_without_gathering_it_first() -> None:
    piece = bytes(range(256)) * 1000  # 256,000 bytes in one payload piece, after 10 small ones
    data = list(b2.write_bundle2([b2.OutPart(b"x", payload=[b"a"] * 10 + [piece])]))
    frames = data[2:-2]
    assert [len(f) for f in frames] == [4 + b2.OUT_CHUNK_SIZE] * 7 + [4 + 256_010 - 7 * b2.OUT_CHUNK_SIZE]
    assert b"".join(f[4:] for f in frames) == b"a" * 10 + piece


@given(st.lists(st.binary(max_size=3000), max_size=30), st.integers(min_value=1, max_value=5000))
def test_coalesce_joins_chunks_into_blocks_of_at_least_the_size(chunks: list[bytes], size: int) -> None:
    blocks = list(b2.coalesce(iter(chunks), size))
    assert b"".join(blocks) == b"".join(chunks)
    assert all(len(block) >= size for block in blocks[:-1])
    assert all(blocks)


def test_coalesce_closes_the_stream_it_reads() -> None:
    closed = []

    def source() -> Iterator[bytes]:
        try:
            yield from [b"x" * 10] * 100
        finally:
            closed.append(True)

    blocks = b2.coalesce(source(), 25)
    assert next(blocks) == b"x" * 30
    blocks.close()
    assert closed == [True]
