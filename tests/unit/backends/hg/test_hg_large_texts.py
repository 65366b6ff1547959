"""Large revisions: stored whole, they are read and sent a piece at a time (``Revlog.text_pieces``,
``TextPieces``), compressed a step at a time when written, and a pushed one is read off the wire
with one copy (``StreamReader``)."""

from __future__ import annotations

import os
import random
import zlib
from collections.abc import Iterator

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from backends.hg.revlog import (
    COMPRESS_STEP,
    FLAG_GENERALDELTA,
    INDEX_ENTRY,
    STREAMED_TEXT,
    TEXT_STEP,
    Compressor,
    RevlogCache,
    decompress,
)
from backends.hg.vfs import MemoryVfs
from backends.interfaces import (
    FULL_HUNK,
    NULL_NODE,
    Node,
    RevisionDelta,
    RevisionGroup,
    Section,
    TextPieces,
    delta_bytes,
)
from protocols.changegroup import LARGE_READ, ChangegroupDecoder, StreamReader, encode_changegroup
from protocols.errors import ProtocolError, StorageError

HEADER = FLAG_GENERALDELTA | 1


def _text(size: int, seed: int = 1) -> bytes:
    """Compressible lines, ``size`` bytes."""
    rng = random.Random(seed)
    words = [b"alpha", b"beta", b"gamma", b"delta", b"epsilon"]
    out = bytearray()
    n = 0
    while len(out) < size:
        out += b"line %d %s %s\n" % (n, rng.choice(words), rng.choice(words))
        n += 1
    return bytes(out[:size])


def _revlog(stored: list[tuple[bytes, int]]) -> tuple[MemoryVfs, object]:
    """A split revlog whose revision ``r`` is stored whole as ``stored[r]`` = (chunk, text size)."""
    vfs = MemoryVfs()
    index = bytearray()
    data = bytearray()
    for rev, (chunk, size) in enumerate(stored):
        first = HEADER << 32 if rev == 0 else len(data) << 16
        index += INDEX_ENTRY.pack(first, len(chunk), size, rev, rev, -1, -1, rev.to_bytes(20, "big"))
        data += chunk
    vfs.replace(b"x.i", bytes(index))
    vfs.replace(b"x.d", bytes(data))
    return vfs, RevlogCache(vfs, HEADER).open(b"x.i")


def _hg_zstd(text: bytes) -> bytes:
    """A chunk as Mercurial writes a text over 1 MB: a zstd frame made in steps, without its size."""
    stream = zstandard.ZstdCompressor(level=3).compressobj()
    return b"".join([stream.compress(text[i:i + 65536]) for i in range(0, len(text), 65536)] + [stream.flush()])


TEXT = _text(3 * TEXT_STEP + 12345)
RANDOM = random.Random(7).randbytes(2 * TEXT_STEP + 99)
STORED = {
    "zstd, its size in the frame": (Compressor("zstd").compress(TEXT), TEXT),
    "zstd without its size (Mercurial's)": (_hg_zstd(TEXT), TEXT),
    "zlib": (Compressor("zlib").compress(TEXT), TEXT),
    "uncompressed (u)": (b"u" + RANDOM, RANDOM),
    "uncompressed, starting with NUL": (b"\0" + RANDOM, b"\0" + RANDOM),
}


@pytest.mark.parametrize("kind", list(STORED))
def test_a_large_text_is_read_in_pieces_of_a_step_whatever_its_compression(kind: str) -> None:
    chunk, text = STORED[kind]
    _, revlog = _revlog([(chunk, len(text))])
    assert revlog.streams_text(0)
    pieces = list(revlog.text_pieces(0))
    assert b"".join(pieces) == text == revlog.revision(0)
    assert len(pieces) > 1
    assert max(map(len, pieces)) <= TEXT_STEP


def test_a_zstd_bomb_is_given_a_step_at_a_time() -> None:
    """A frame of 64 MB of zeros is a few kilobytes: it is still given in steps, never whole."""
    size = 64 << 20
    chunk = zstandard.ZstdCompressor().compress(bytes(size))
    assert len(chunk) < 64 << 10
    _, revlog = _revlog([(chunk, size)])
    pieces = revlog.text_pieces(0)
    assert all(len(piece) <= TEXT_STEP for piece in pieces)


def test_texts_stored_as_deltas_or_small_are_not_streamed() -> None:
    small = _text(STREAMED_TEXT - 1)
    vfs = MemoryVfs()
    big = Compressor("zstd").compress(TEXT)
    index = INDEX_ENTRY.pack(HEADER << 32, len(big), len(TEXT), 0, 0, -1, -1, b"\0" * 20)
    delta = Compressor("zstd").compress(b"\0\0\0\0\0\0\0\0\0\0\0\1x")
    index += INDEX_ENTRY.pack(len(big) << 16, len(delta), len(TEXT) + 1, 0, 1, 0, -1, b"\1" * 20)
    packed_small = Compressor("zstd").compress(small)
    index += INDEX_ENTRY.pack((len(big) + len(delta)) << 16, len(packed_small), len(small), 2, 2, -1, -1, b"\2" * 20)
    vfs.replace(b"x.i", index)
    vfs.replace(b"x.d", big + delta + packed_small)
    revlog = RevlogCache(vfs, HEADER).open(b"x.i")
    assert [revlog.streams_text(rev) for rev in range(3)] == [True, False, False]
    assert list(revlog.sent_chunks([0, 1, 2])) == [None, delta, packed_small]
    assert list(revlog.raw_chunks([0, 1, 2])) == [big, delta, packed_small]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from([10, 5000, 70_000, STREAMED_TEXT, STREAMED_TEXT + 3]), min_size=1, max_size=8),
       st.data())
def test_sent_chunks_are_the_stored_ones_but_none_for_streamed_texts(sizes: list[int], data: st.DataObject) -> None:
    stored = [(b"u" + bytes([n % 250 + 1]) * size, size) for n, size in enumerate(sizes)]
    _, revlog = _revlog(stored)
    revs = sorted(data.draw(st.sets(st.integers(min_value=0, max_value=len(sizes) - 1), min_size=1)))
    assert list(revlog.sent_chunks(revs)) == [None if sizes[r] >= STREAMED_TEXT else stored[r][0] for r in revs]


@pytest.mark.parametrize("damage", ["cut", "garbage", "header"])
def test_a_damaged_chunk_is_a_storage_error_when_read(damage: str) -> None:
    chunk = Compressor("zstd" if damage != "header" else "zlib").compress(TEXT)
    chunk = {"cut": chunk[: len(chunk) // 2], "garbage": chunk[:8] + os.urandom(len(chunk) - 8),
             "header": b"?" + chunk[1:]}[damage]
    _, revlog = _revlog([(chunk, len(TEXT))])
    with pytest.raises(StorageError):
        b"".join(TextPieces(len(TEXT), lambda: revlog.text_pieces(0)))


def test_a_cut_zlib_chunk_and_a_truncated_file_are_storage_errors() -> None:
    chunk = Compressor("zlib").compress(TEXT)
    _, revlog = _revlog([(chunk[: len(chunk) // 2], len(TEXT))])
    with pytest.raises(StorageError, match="cut short"):
        b"".join(revlog.text_pieces(0))
    vfs, revlog = _revlog([(chunk, len(TEXT))])
    vfs.replace(b"x.d", chunk[:-10])
    with pytest.raises(StorageError, match="truncated"):
        b"".join(revlog.text_pieces(0))


@pytest.mark.parametrize("told", [len(TEXT) - 1, len(TEXT) + 1])
def test_a_text_of_another_size_than_its_index_says_is_refused(told: int) -> None:
    _, revlog = _revlog([(Compressor("zstd").compress(TEXT), told)])
    with pytest.raises(StorageError, match=f"not the {told} bytes its index says"):
        b"".join(revlog.text_pieces(0))
    with pytest.raises(StorageError, match="stored text"):  # another backend's pieces: checked as sent
        b"".join(TextPieces(told, lambda: iter([TEXT])))


def test_text_pieces_are_the_full_replacement_delta() -> None:
    pieces = TextPieces(5, lambda: iter([b"ab", b"cde"]))
    assert len(pieces) == 17
    assert pieces.join() == b"\0\0\0\0\0\0\0\0\0\0\0\5abcde" == delta_bytes(pieces)
    assert list(pieces)[1:] == [b"ab", b"cde"]  # read again: each iteration reads anew
    assert delta_bytes(b"xyz") == b"xyz"


def test_a_changegroup_sends_text_pieces_as_they_come_and_decodes_to_the_same_delta() -> None:
    node = Node(b"\7" * 20)
    handed: list[int] = []

    def read() -> Iterator[bytes]:
        for i in range(0, len(TEXT), TEXT_STEP):
            handed.append(i)
            yield TEXT[i:i + TEXT_STEP]

    rev = RevisionDelta(node, NULL_NODE, NULL_NODE, node, NULL_NODE, TextPieces(len(TEXT), read))
    groups = [RevisionGroup(Section.CHANGELOG, b"", iter([])), RevisionGroup(Section.MANIFEST, b"", iter([])),
              RevisionGroup(Section.FILE, b"big", iter([rev]))]
    out = encode_changegroup(iter(groups), b"02")
    sizes = []
    for piece in out:
        sizes.append(len(piece))
        if len(handed) == 1:  # the first step is out before the second is read
            assert sum(sizes) < TEXT_STEP + 4096
    assert max(sizes) <= TEXT_STEP
    whole = rev._replace(delta=delta_bytes(rev.delta))
    plain = b"".join(encode_changegroup(iter([groups[0], groups[1], RevisionGroup(Section.FILE, b"big",
                                                                                   iter([whole]))]), b"02"))
    decoded = [list(g.revisions) for g in ChangegroupDecoder(StreamReader(iter([plain])), b"02").groups()]
    [got] = decoded[2]
    assert isinstance(got.delta, TextPieces) and got.delta.text() == TEXT  # held as it came
    assert got._replace(delta=delta_bytes(got.delta)) == whole


@pytest.mark.parametrize("hunks", [[(0, 0, len(TEXT))], [(0, 0, 10), (0, 0, len(TEXT) - 10)], [(0, 5, len(TEXT))]])
def test_only_a_single_hunk_on_the_empty_text_is_taken_as_a_whole_text(hunks: list[tuple[int, int, int]]) -> None:
    delta = b"".join(FULL_HUNK.pack(start, end, length) + TEXT[:length] for start, end, length in hunks)
    node = Node(b"\7" * 20)
    rev = RevisionDelta(node, NULL_NODE, NULL_NODE, node, NULL_NODE, delta)
    groups = [RevisionGroup(Section.CHANGELOG, b"", iter([])), RevisionGroup(Section.MANIFEST, b"", iter([])),
              RevisionGroup(Section.FILE, b"f", iter([rev]))]
    encoded = b"".join(encode_changegroup(iter(groups), b"02"))
    chunks = iter([encoded[i:i + 70_000] for i in range(0, len(encoded), 70_000)])
    [got] = [rev for group in ChangegroupDecoder(StreamReader(chunks), b"02").groups() for rev in group.revisions]
    assert isinstance(got.delta, TextPieces) == (len(hunks) == 1 and hunks[0][1] == 0)
    assert delta_bytes(got.delta) == delta


def test_a_large_text_is_compressed_in_steps_and_its_zstd_frame_names_its_size() -> None:
    text = _text(5 * COMPRESS_STEP)
    chunk = Compressor("zstd").compress(text)
    assert zstandard.get_frame_parameters(chunk).content_size == len(text)
    assert decompress(chunk) == text
    assert len(chunk) < len(text) // 3
    packed = Compressor("zlib").compress(text)
    assert zlib.decompress(packed) == text == decompress(packed)
    noise = random.Random(3).randbytes(3 * COMPRESS_STEP)
    for engine in ("zstd", "zlib"):
        assert Compressor(engine).compress(noise) == b"u" + noise


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=3 * LARGE_READ), min_size=1, max_size=6),
       st.integers(min_value=1, max_value=LARGE_READ // 2), st.data())
def test_reads_of_any_size_over_chunks_of_any_size_give_the_stream(
        reads: list[int], chunk: int, data: st.DataObject) -> None:
    stream = random.Random(sum(reads)).randbytes(sum(reads) + data.draw(st.integers(0, 100)))
    reader = StreamReader(iter([stream[i:i + chunk] for i in range(0, len(stream), chunk)]))
    held = data.draw(st.lists(st.booleans(), min_size=len(reads), max_size=len(reads)))
    pos = 0
    for size, whole in zip(reads, held, strict=True):
        if whole:
            assert reader.peek(3) == stream[pos:pos + 3]
            got = reader.read_held(size)
            assert isinstance(got, bytearray)
        else:
            got = reader.read_exact(size)
        assert got == stream[pos:pos + size]
        pos += size
    assert b"".join(reader.remaining()) == stream[pos:]


def test_a_large_read_past_the_end_is_a_truncated_bundle() -> None:
    reader = StreamReader(iter([b"x" * 1000] * 10))
    reader.read_exact(10)
    with pytest.raises(ProtocolError, match="truncated"):
        reader.read_exact(LARGE_READ + 1)
