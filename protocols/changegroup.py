"""Changegroup versions 01, 02 and 03: a streaming encoder and a bounded decoder.

Spec: ``mercurial/helptext/internals/changegroups.txt`` and ``bundles.txt``
("HG10").  A changegroup is the changelog delta group, the manifest delta group,
(cg03: an empty tree-manifest segment), then per file a filename chunk and its
delta group, then an empty chunk.  Every chunk is a be32 length that counts
itself, then data; length 0 is the empty chunk.
"""

from __future__ import annotations

import bz2
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from backends.interfaces import FULL_HUNK, Node, RevisionDelta, RevisionGroup, Section, TextPieces
from protocols.errors import LimitExceeded, ProtocolError, StorageError

CHUNK_LENGTH = struct.Struct(">l")
EMPTY_CHUNK = CHUNK_LENGTH.pack(0)

_HEADER_V01 = struct.Struct(">20s20s20s20s")
_HEADER_V02 = struct.Struct(">20s20s20s20s20s")
_HEADER_V03 = struct.Struct(">20s20s20s20s20sH")

VERSIONS = (b"01", b"02", b"03")
"""Changegroup versions hgwire reads and writes, oldest first."""

BUNDLE1_MAGIC = b"HG10"

DECOMPRESS_STEP = 1 << 20
"""Most bytes a decompressor may produce per call, so a tiny bomb cannot fill memory."""

LARGE_READ = 1 << 20
"""A read this much beyond what ``StreamReader`` holds is gathered in a buffer of its own."""


@dataclass(frozen=True, slots=True)
class ChangegroupLimits:
    """Bounds of the decoder; hg's format has none, so we impose them."""

    max_chunk: int = 256 << 20
    max_filename: int = 64 << 10
    max_files: int = 1_000_000
    max_text: int | None = None
    """The largest text a pushed delta may rebuild, checked by the storage transaction (None: its own)."""


class StreamReader:
    """Read exact byte counts from an iterator of chunks, buffering at most one request."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = bytearray()

    def read_exact(self, size: int) -> bytes:
        """Return exactly ``size`` bytes; a short stream is a truncated bundle.

        A large read (a file's revision of 100 MB) is gathered by ``read_held``, not
        grown in this reader's buffer and copied out of it twice."""
        if size - len(self._buffer) >= LARGE_READ:
            return bytes(self.read_held(size))
        if not self._fill(size):
            raise ProtocolError("the bundle is truncated")
        with memoryview(self._buffer) as view:
            data = view[:size].tobytes()
        del self._buffer[:size]
        return data

    def peek(self, size: int) -> bytes:
        """The next ``size`` bytes (fewer at the end of the stream), left to be read."""
        self._fill(size)
        return bytes(self._buffer[:size])

    def read_held(self, size: int) -> bytearray:
        """``read_exact`` into a buffer of its own, grown as the chunks come and given as it is (a
        revision of many megabytes is then held once: joining its chunks held it twice)."""
        held = self._buffer
        self._buffer = bytearray()
        if len(held) > size:
            self._buffer = held[size:]
            del held[size:]
        while len(held) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                raise ProtocolError("the bundle is truncated")
            cut = size - len(held)
            if len(chunk) > cut:  # the rest of it is the next read's
                self._buffer += memoryview(chunk)[cut:]
                held += memoryview(chunk)[:cut]
            else:
                held += chunk
        return held

    def at_eof(self) -> bool:
        """True when no byte is left (pulls one chunk to find out)."""
        return not self._fill(1)

    def _fill(self, size: int) -> bool:
        """Pull chunks until ``size`` bytes are held; False if the stream ends first."""
        while len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                return False
            self._buffer += chunk
        return True

    def remaining(self) -> Iterator[bytes]:
        """The unread bytes as an iterator (hand the rest to a decompressor)."""
        if self._buffer:
            yield bytes(self._buffer)
            self._buffer.clear()
        yield from self._chunks


def _frame(data: bytes) -> bytes:
    return CHUNK_LENGTH.pack(len(data) + CHUNK_LENGTH.size) + data


def _header_v01(rev: RevisionDelta, previous: Node | None) -> bytes:
    expected = rev.p1 if previous is None else previous
    if rev.base != expected:
        raise StorageError("a cg01 delta must apply to the previous revision of its group")
    return _HEADER_V01.pack(rev.node, rev.p1, rev.p2, rev.linknode)


def _header_v02(rev: RevisionDelta, previous: Node | None) -> bytes:
    return _HEADER_V02.pack(rev.node, rev.p1, rev.p2, rev.base, rev.linknode)


def _header_v03(rev: RevisionDelta, previous: Node | None) -> bytes:
    return _HEADER_V03.pack(rev.node, rev.p1, rev.p2, rev.base, rev.linknode, rev.flags)


_HEADER_WRITERS: dict[bytes, Callable[[RevisionDelta, Node | None], bytes]] = {
    b"01": _header_v01,
    b"02": _header_v02,
    b"03": _header_v03,
}
_MANIFEST_END: dict[bytes, bytes] = {b"01": b"", b"02": b"", b"03": EMPTY_CHUNK}
"""cg03 closes an (empty) tree-manifest segment after the manifest group."""


def _delta_group(revisions: Iterator[RevisionDelta], version: bytes) -> Iterator[bytes]:
    write_header = _HEADER_WRITERS[version]
    previous: Node | None = None
    for rev in revisions:
        header = write_header(rev, previous)
        delta = rev.delta
        # The delta goes out as its own piece: a large revision is not copied to be framed, and
        # one the backend reads a piece at a time (``TextPieces``) is sent as it is read.
        yield CHUNK_LENGTH.pack(CHUNK_LENGTH.size + len(header) + len(delta)) + header
        if isinstance(delta, bytes):
            yield delta
        else:
            yield from delta
        previous = rev.node
    yield EMPTY_CHUNK


def encode_changegroup(groups: Iterator[RevisionGroup], version: bytes) -> Iterator[bytes]:
    """Stream a changegroup: one framed chunk per revision, never the whole group."""
    if version not in _HEADER_WRITERS:
        raise ProtocolError(f"changegroup version {version!r} is not supported")
    expected = [Section.CHANGELOG, Section.MANIFEST]
    for group in groups:
        if expected:
            if group.section is not expected.pop(0):
                raise StorageError("changegroup sections must be changelog, manifest, then files")
        elif group.section is not Section.FILE:
            raise StorageError("only file groups may follow the manifest group")
        if group.section is Section.FILE:
            yield _frame(group.path)
        yield from _delta_group(group.revisions, version)
        if group.section is Section.MANIFEST:
            yield _MANIFEST_END[version]
    for missing in expected:
        yield EMPTY_CHUNK
        if missing is Section.MANIFEST:
            yield _MANIFEST_END[version]
    yield EMPTY_CHUNK


def _read_length(reader: StreamReader, limit: int) -> int:
    """Read one chunk's length field: the bytes that follow it (0 for the empty chunk)."""
    length: int
    (length,) = CHUNK_LENGTH.unpack(reader.read_exact(CHUNK_LENGTH.size))
    if length == 0:
        return 0
    # A length below 4 cannot count its own field: hg treats it as corrupt too.
    if length < CHUNK_LENGTH.size:
        raise ProtocolError(f"invalid changegroup chunk length {length}")
    if length - CHUNK_LENGTH.size > limit:
        raise LimitExceeded(f"a changegroup chunk of {length} bytes is over the {limit}-byte limit")
    return length - CHUNK_LENGTH.size


def _read_chunk(reader: StreamReader, limit: int) -> bytes:
    """Read one framed chunk; b"" for the empty chunk."""
    length = _read_length(reader, limit)
    return reader.read_exact(length) if length else b""


def _parse_v01(data: bytes, previous: Node | None) -> tuple[RevisionDelta, int]:
    node, p1, p2, link = _HEADER_V01.unpack_from(data)
    base = p1 if previous is None else previous
    return RevisionDelta(Node(node), Node(p1), Node(p2), Node(link), Node(base), b""), _HEADER_V01.size


def _parse_v02(data: bytes, previous: Node | None) -> tuple[RevisionDelta, int]:
    node, p1, p2, base, link = _HEADER_V02.unpack_from(data)
    return RevisionDelta(Node(node), Node(p1), Node(p2), Node(link), Node(base), b""), _HEADER_V02.size


def _parse_v03(data: bytes, previous: Node | None) -> tuple[RevisionDelta, int]:
    node, p1, p2, base, link, flags = _HEADER_V03.unpack_from(data)
    return (
        RevisionDelta(Node(node), Node(p1), Node(p2), Node(link), Node(base), b"", flags),
        _HEADER_V03.size,
    )


_HEADER_READERS: dict[bytes, tuple[int, Callable[[bytes, Node | None], tuple[RevisionDelta, int]]]] = {
    b"01": (_HEADER_V01.size, _parse_v01),
    b"02": (_HEADER_V02.size, _parse_v02),
    b"03": (_HEADER_V03.size, _parse_v03),
}


class ChangegroupDecoder:
    """Decode a changegroup from a byte stream into ``RevisionGroup``s, lazily.

    Each group's ``revisions`` must be consumed (or is drained) before the next
    group is read, as the stream is sequential.
    """

    def __init__(
        self, reader: StreamReader, version: bytes, limits: ChangegroupLimits = ChangegroupLimits()
    ) -> None:
        if version not in _HEADER_READERS:
            raise ProtocolError(f"changegroup version {version!r} is not supported")
        self._reader = reader
        self._version = version
        self._limits = limits

    def groups(self) -> Iterator[RevisionGroup]:
        """Yield the changelog, manifest and file groups in stream order."""
        for section in (Section.CHANGELOG, Section.MANIFEST):
            yield from self._drained(RevisionGroup(section, b"", self._revisions()))
        if self._version == b"03" and _read_chunk(self._reader, self._limits.max_filename):
            raise ProtocolError("tree manifests are not supported")
        for _ in range(self._limits.max_files):
            path = _read_chunk(self._reader, self._limits.max_filename)
            if not path:
                return
            yield from self._drained(RevisionGroup(Section.FILE, path, self._revisions()))
        raise LimitExceeded(f"a changegroup may touch at most {self._limits.max_files} files")

    @staticmethod
    def _drained(group: RevisionGroup) -> Iterator[RevisionGroup]:
        yield group
        for _ in group.revisions:
            pass

    def _revisions(self) -> Iterator[RevisionDelta]:
        """The group's revisions; each delta is read by itself after its header (a slice of the
        chunk would copy a large revision once more)."""
        header_size, parse = _HEADER_READERS[self._version]
        previous: Node | None = None
        while length := _read_length(self._reader, self._limits.max_chunk):
            if length < header_size:
                raise ProtocolError("a changegroup chunk is shorter than its delta header")
            rev, _ = parse(self._reader.read_exact(header_size), previous)
            size = length - header_size
            delta: bytes | TextPieces
            if size >= LARGE_READ and self._reader.peek(FULL_HUNK.size) == FULL_HUNK.pack(0, 0, size - FULL_HUNK.size):
                self._reader.read_exact(FULL_HUNK.size)  # a whole text: held as it came, once
                delta = TextPieces.held(self._reader.read_held(size - FULL_HUNK.size))
            else:
                delta = self._reader.read_exact(size)
            yield RevisionDelta(rev.node, rev.p1, rev.p2, rev.linknode, rev.base, delta, rev.flags)
            previous = rev.node


def _decompressed(chunks: Iterator[bytes], decompress: Callable[[bytes, int], bytes]) -> Iterator[bytes]:
    """Yield decompressed output in bounded steps (``decompress(data, max_length)``)."""
    for chunk in chunks:
        out = decompress(chunk, DECOMPRESS_STEP)
        while out:
            yield out
            out = decompress(b"", DECOMPRESS_STEP)


def zlib_decompressed(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Inflate a zlib stream in bounded steps."""
    decoder = zlib.decompressobj()

    def step(data: bytes, limit: int) -> bytes:
        try:
            return decoder.decompress(decoder.unconsumed_tail + data, limit)
        except zlib.error as exc:
            raise ProtocolError("the bundle's zlib data is corrupt") from exc

    return _decompressed(chunks, step)


def bz2_decompressed(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Decompress a bzip2 stream (with its ``BZh`` magic) in bounded steps."""
    decoder = bz2.BZ2Decompressor()

    def step(data: bytes, limit: int) -> bytes:
        if decoder.eof:
            return b""
        try:
            return decoder.decompress(data, limit)
        except (OSError, EOFError) as exc:
            raise ProtocolError("the bundle's bzip2 data is corrupt") from exc

    return _decompressed(chunks, step)


def _bundle1_bz2(chunks: Iterator[bytes]) -> Iterator[bytes]:
    # bundles.txt "BZ": the stream's own "BZ" magic doubles as the compression id.
    return bz2_decompressed(_prepend(b"BZ", chunks))


def _prepend(first: bytes, chunks: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from chunks


def _plain_chunks(chunks: Iterator[bytes]) -> Iterator[bytes]:
    return chunks


BUNDLE1_DECOMPRESSORS: dict[bytes, Callable[[Iterator[bytes]], Iterator[bytes]]] = {
    b"UN": _plain_chunks,
    b"GZ": zlib_decompressed,
    b"BZ": _bundle1_bz2,
}


def read_bundle1(
    reader: StreamReader, limits: ChangegroupLimits = ChangegroupLimits()
) -> Iterator[RevisionGroup]:
    """Read an ``HG10UN|GZ|BZ`` bundle (magic included) as cg01 groups."""
    header = reader.read_exact(6)
    if header[:4] != BUNDLE1_MAGIC or header[4:] not in BUNDLE1_DECOMPRESSORS:
        raise ProtocolError(f"not a bundle1 stream (header {header!r})")
    plain = BUNDLE1_DECOMPRESSORS[header[4:]](reader.remaining())
    return ChangegroupDecoder(StreamReader(plain), b"01", limits).groups()
