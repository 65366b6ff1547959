"""The ``HG20`` bundle2 container: a streaming writer and a bounded reader.

Spec: ``mercurial/helptext/internals/bundle2.txt``.  A stream is ``HG20``, a
be32-sized block of url-quoted stream parameters, then parts.  A part is a
be32 header size (0 ends the stream), the header (type, id, parameters), and a
payload of be32-framed chunks ending with 0; -1 interrupts the payload with a
complete out-of-band part (``output``, ``error:*``).  The format has no size
limits, so the reader imposes ``Bundle2Limits``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, cast

import zstandard

from protocols.changegroup import DECOMPRESS_STEP, StreamReader, bz2_decompressed, zlib_decompressed
from protocols.errors import ClientGone, HgwireError, LimitExceeded, ProtocolError, UnsupportedContent
from protocols.hg_wire import url_quote, url_unquote
from protocols.text import quoted

MAGIC = b"HG20"

_SIZE = struct.Struct(">i")
_UINT8 = struct.Struct(">B")
_PART_ID = struct.Struct(">I")
_PARAM_COUNTS = struct.Struct(">BB")

END_OF_STREAM = _SIZE.pack(0)
END_OF_PAYLOAD = _SIZE.pack(0)
INTERRUPT = _SIZE.pack(-1)
_FLAG_INTERRUPT = -1

OUT_CHUNK_SIZE = 32768
"""Payload bytes gathered per written frame (hg's ``preferedchunksize``)."""
_FULL_FRAME = struct.pack(">i", OUT_CHUNK_SIZE)
MAX_PARAM_LEN = 255
"""A parameter key or value is sized by one byte."""

STREAM_PARAM_COMPRESSION = b"Compression"

PART_CHANGEGROUP = b"changegroup"
PART_OUTPUT = b"output"
PART_REPLYCAPS = b"replycaps"
PART_CHECK_HEADS = b"check:heads"
PART_CHECK_UPDATED_HEADS = b"check:updated-heads"
PART_CHECK_PHASES = b"check:phases"
PART_CHECK_BOOKMARKS = b"check:bookmarks"
PART_PHASE_HEADS = b"phase-heads"
PART_BOOKMARKS = b"bookmarks"
PART_PUSHKEY = b"pushkey"
PART_LISTKEYS = b"listkeys"
PART_HGTAGSFNODES = b"hgtagsfnodes"
PART_STREAM2 = b"stream2"
PART_REPLY_CHANGEGROUP = b"reply:changegroup"
PART_REPLY_PUSHKEY = b"reply:pushkey"
PART_ERROR_ABORT = b"error:abort"
PART_ERROR_PUSHRACED = b"error:pushraced"
PART_ERROR_UNSUPPORTEDCONTENT = b"error:unsupportedcontent"
PART_ERROR_PUSHKEY = b"error:pushkey"


@dataclass(frozen=True, slots=True)
class Bundle2Limits:
    """Bounds of the reader."""

    max_stream_params: int = 64 << 10
    max_part_header: int = 64 << 10
    max_payload_chunk: int = 16 << 20
    max_parts: int = 100_000
    max_small_payload: int = 16 << 20
    """Most bytes a part read whole (``read_all``) may hold: everything but changegroups."""


DEFAULT_LIMITS = Bundle2Limits()


@dataclass(frozen=True, slots=True)
class OutPart:
    """A part to write; ``payload`` is consumed lazily while the bundle streams."""

    type: bytes
    mandatory_params: Sequence[tuple[bytes, bytes]] = ()
    advisory_params: Sequence[tuple[bytes, bytes]] = ()
    payload: Iterable[bytes] = ()
    mandatory: bool = True


@dataclass(slots=True)
class InPart:
    """A part being read: ``payload`` must be consumed before the next part is read."""

    type: bytes
    id: int
    mandatory: bool
    params: dict[bytes, bytes]
    mandatory_keys: tuple[bytes, ...]
    payload: Iterator[bytes] = field(default_factory=lambda: iter(()))
    max_small: int = DEFAULT_LIMITS.max_small_payload
    """``read_all``'s bound: the reader's ``Bundle2Limits.max_small_payload``."""

    def read_all(self, limit: int | None = None) -> bytes:
        """Read the whole payload of a small part (bookmarks, phases, pushkey...)."""
        limit = self.max_small if limit is None else limit
        data = bytearray()
        for chunk in self.payload:
            data += chunk
            if len(data) > limit:
                name = self.type.decode("ascii", "replace")
                raise LimitExceeded(f"{'an' if name[:1] in 'aeiou' else 'a'} {name} part is over {limit} bytes"
                                    + ("; the server's operator can raise [limits] max_bundle2_part"
                                       if limit == self.max_small else ""))
        return bytes(data)


# ---------------------------------------------------------------- writing


def _encode_stream_params(params: Sequence[tuple[bytes, bytes | None]]) -> bytes:
    items = [url_quote(k) + (b"" if v is None else b"=" + url_quote(v)) for k, v in params]
    blob = b" ".join(items)
    return _SIZE.pack(len(blob)) + blob


def encode_part_header(part: OutPart, part_id: int) -> bytes:
    """The size-prefixed header of one part; mandatory parts go uppercase (bundle2.py addpart)."""
    part_type = part.type.upper() if part.mandatory else part.type
    params = [*part.mandatory_params, *part.advisory_params]
    for key, value in params:
        if len(key) > MAX_PARAM_LEN or len(value) > MAX_PARAM_LEN:
            raise ValueError(f"bundle2 parameter {key!r} is over {MAX_PARAM_LEN} bytes")
    header = b"".join(
        [
            _UINT8.pack(len(part_type)),
            part_type,
            _PART_ID.pack(part_id),
            _PARAM_COUNTS.pack(len(part.mandatory_params), len(part.advisory_params)),
            *(_PARAM_COUNTS.pack(len(k), len(v)) for k, v in params),
            *(k + v for k, v in params),
        ]
    )
    return _SIZE.pack(len(header)) + header


def _payload_frames(payload: Iterable[bytes]) -> Iterator[bytes]:
    """Frames of ``OUT_CHUNK_SIZE`` payload bytes; each input byte is copied once, into its frame."""
    pending = bytearray()
    for data in payload:
        if len(pending) + len(data) < OUT_CHUNK_SIZE:
            pending += data
            continue
        view = memoryview(data)
        pos = OUT_CHUNK_SIZE - len(pending)
        pending += view[:pos]
        yield _FULL_FRAME + pending
        while len(data) - pos >= OUT_CHUNK_SIZE:
            yield _FULL_FRAME + view[pos : pos + OUT_CHUNK_SIZE]
            pos += OUT_CHUNK_SIZE
        pending = bytearray(view[pos:])
    if pending:
        yield _SIZE.pack(len(pending)) + pending


OUT_BLOCK_SIZE = 128 << 10
"""Bytes handed to the transport at a time by :func:`coalesce`.

A trade of memory for CPU, measured with eight concurrent hg clones of the
bench corpus over HTTP: the server's peak RSS is 144 MiB with 256 KiB blocks,
133 MiB with 128 KiB and 136-138 MiB with 64 KiB (each connection holds a
block's pieces, the block, and its compressed form in the workers' heap),
for 7% more server CPU per clone than 256 KiB (135 against 126 ticks, four
alternating clones each) and 10-20% more with 64 KiB."""


def coalesce(chunks: Iterator[bytes], size: int = OUT_BLOCK_SIZE) -> Iterator[bytes]:
    """Join consecutive chunks into blocks of at least ``size`` bytes (the last may be shorter).

    For one-way streams only (a bundle going out), never for an exchange that
    waits on the peer: a block is held back until it is full.  Fewer, larger
    writes mean fewer thread hand-offs and full SSH packets instead of a 32 KiB
    frame split into a full packet and a 4-byte one.  Closing the result closes
    ``chunks``, so a generator releases what it holds.
    """
    pending: list[bytes] = []
    held = 0
    try:
        for chunk in chunks:
            pending.append(chunk)
            held += len(chunk)
            if held >= size:
                yield pending[0] if len(pending) == 1 else b"".join(pending)
                pending.clear()
                held = 0
        if held:
            yield b"".join(pending)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def _abort_interrupt(message: bytes) -> Iterator[bytes]:
    """Interrupt a payload with an advisory ``error:abort`` part, then close the payload."""
    yield INTERRUPT
    abort = OutPart(
        PART_ERROR_ABORT, advisory_params=[(b"message", message[:MAX_PARAM_LEN])], mandatory=False
    )
    yield encode_part_header(abort, 0)
    yield END_OF_PAYLOAD
    yield END_OF_PAYLOAD


def write_bundle2(
    parts: Iterable[OutPart], params: Sequence[tuple[bytes, bytes | None]] = ()
) -> Iterator[bytes]:
    """Stream an ``HG20`` bundle; part ids count from 0.

    If a payload fails with an ``HgwireError`` mid-stream, the part is
    interrupted with ``error:abort`` (as hg's ``bundlepart.getchunks``) and the
    stream ends cleanly; any other exception propagates after the interrupt, and
    ``ClientGone`` (nobody reads it) at once: a stream stopped so is never whole.
    """
    yield MAGIC + _encode_stream_params(params)
    for part_id, part in enumerate(parts):
        yield encode_part_header(part, part_id)
        try:
            yield from _payload_frames(part.payload)
        except ClientGone:
            raise
        except HgwireError as exc:
            yield from _abort_interrupt(exc.message.encode("utf-8", "replace"))
            yield END_OF_STREAM
            return
        except Exception:
            yield from _abort_interrupt(b"internal server error")
            raise
        yield END_OF_PAYLOAD
    yield END_OF_STREAM


# ---------------------------------------------------------------- reading


class _IteratorFile:
    """A minimal ``read()`` view of an iterator, for zstandard's streaming reader.

    ``read(size)`` never returns more than ``size`` bytes: zstandard's C reader
    copies what ``read`` returns into an input buffer of the size it asked for
    (128 KiB), so a longer chunk would be written past that buffer's end.  The
    transports hand pushes over in pieces of at most 64 KiB; a caller holding a
    whole bundle in one piece is what crashed.
    """

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._chunk = b""
        self._offset = 0

    def read(self, size: int = -1) -> bytes:
        """At most ``size`` of the next bytes (the rest of the current chunk if ``size`` < 0);
        b"" only at the end (zstandard reads b"" as EOF)."""
        if self._offset >= len(self._chunk):
            for chunk in self._chunks:
                if chunk:
                    self._chunk, self._offset = chunk, 0
                    break
            else:
                return b""
        start, end = self._offset, len(self._chunk)
        if 0 <= size < end - start:
            end = start + size
        self._offset = end
        if start == 0 and end == len(self._chunk):
            return self._chunk
        return self._chunk[start:end]


def _zstd_stream(chunks: Iterator[bytes]) -> Iterator[bytes]:
    reader = zstandard.ZstdDecompressor().read_to_iter(
        cast(IO[bytes], _IteratorFile(chunks)), write_size=DECOMPRESS_STEP
    )
    try:
        yield from reader
    except zstandard.ZstdError as exc:
        raise ProtocolError("the bundle2 zstd data is corrupt") from exc


def _plain_stream(chunks: Iterator[bytes]) -> Iterator[bytes]:
    return chunks


COMPRESSIONS: dict[bytes, Callable[[Iterator[bytes]], Iterator[bytes]]] = {
    b"UN": _plain_stream,
    b"GZ": zlib_decompressed,
    b"BZ": bz2_decompressed,
    b"ZS": _zstd_stream,
}


def _parse_stream_params(blob: bytes) -> dict[bytes, bytes | None]:
    params: dict[bytes, bytes | None] = {}
    for item in blob.split(b" ") if blob else []:
        key, eq, value = item.partition(b"=")
        name = url_unquote(key)
        if not name[:1].isalpha():
            raise ProtocolError(f"invalid bundle2 stream parameter name {quoted(name, 60)}")
        params[name] = url_unquote(value) if eq else None
    return params


def _check_stream_params(params: dict[bytes, bytes | None]) -> bytes:
    """Return the compression name; a mandatory (Capitalised) unknown parameter is fatal."""
    for name in params:
        if name[:1].isupper() and name != STREAM_PARAM_COMPRESSION:
            raise UnsupportedContent(f"unsupported bundle2 stream parameter {quoted(name, 60)}", params=(name,))
    compression = params.get(STREAM_PARAM_COMPRESSION) or b"UN"
    if compression not in COMPRESSIONS:
        raise UnsupportedContent(f"unsupported bundle2 compression {quoted(compression, 60)}", params=(compression,))
    return compression


def parse_part_header(header: bytes) -> InPart:
    """Decode a part header (without its size prefix)."""
    try:
        return _parse_part_header(header)
    except (struct.error, IndexError) as exc:
        raise ProtocolError("a bundle2 part header is truncated") from exc


def _parse_part_header(header: bytes) -> InPart:
    (type_len,) = _UINT8.unpack_from(header, 0)
    raw_type = header[1 : 1 + type_len]
    if len(raw_type) != type_len or not raw_type:
        raise ProtocolError("a bundle2 part type is truncated")
    offset = 1 + type_len
    (part_id,) = _PART_ID.unpack_from(header, offset)
    mandatory_count, advisory_count = _PARAM_COUNTS.unpack_from(header, offset + 4)
    offset += 4 + _PARAM_COUNTS.size
    sizes = [
        _PARAM_COUNTS.unpack_from(header, offset + 2 * i) for i in range(mandatory_count + advisory_count)
    ]
    offset += 2 * len(sizes)
    params: dict[bytes, bytes] = {}
    keys: list[bytes] = []
    for key_len, value_len in sizes:
        key = header[offset : offset + key_len]
        value = header[offset + key_len : offset + key_len + value_len]
        offset += key_len + value_len
        if offset > len(header):
            raise ProtocolError("a bundle2 part parameter is truncated")
        params[key] = value
        keys.append(key)
    if offset != len(header):
        raise ProtocolError("a bundle2 part header has trailing bytes")
    return InPart(
        raw_type.lower(), part_id, raw_type != raw_type.lower(), params, tuple(keys[:mandatory_count])
    )


InterruptHandler = Callable[[InPart, bytes], None]


def raise_on_error_part(part: InPart, payload: bytes) -> None:
    """Default interrupt handling: an ``error:*`` part aborts, ``output`` and advisory parts pass."""
    if part.type.startswith(b"error:"):
        message = part.params.get(b"message", part.type)
        raise ProtocolError(f"the peer aborted: {message.decode('utf-8', 'replace')}")
    if part.mandatory and part.type != PART_OUTPUT:
        raise UnsupportedContent(f"unsupported interrupt part {quoted(part.type, 60)}", part_type=part.type)


class Bundle2Reader:
    """Read an ``HG20`` stream part by part with bounded buffering.

    ``parts()`` yields ``InPart`` values whose ``payload`` iterators stream the
    part's data; an unconsumed payload is drained when the next part is asked for.
    """

    def __init__(
        self,
        chunks: Iterator[bytes],
        limits: Bundle2Limits = DEFAULT_LIMITS,
        on_interrupt: InterruptHandler = raise_on_error_part,
        magic_read: bool = False,
    ) -> None:
        self._raw = StreamReader(chunks)
        self._limits = limits
        self._on_interrupt = on_interrupt
        self._magic_read = magic_read
        self.params: dict[bytes, bytes | None] = {}

    def _read_size(self, reader: StreamReader) -> int:
        (size,) = _SIZE.unpack(reader.read_exact(_SIZE.size))
        return int(size)

    def _open(self) -> StreamReader:
        if not self._magic_read and self._raw.read_exact(len(MAGIC)) != MAGIC:
            raise ProtocolError("not a bundle2 stream (bad magic)")
        size = self._read_size(self._raw)
        if size < 0 or size > self._limits.max_stream_params:
            raise LimitExceeded(f"bundle2 stream parameters of {size} bytes are over the limit")
        self.params = _parse_stream_params(self._raw.read_exact(size))
        compression = _check_stream_params(self.params)
        if compression == b"UN":
            return self._raw
        return StreamReader(COMPRESSIONS[compression](self._raw.remaining()))

    def _read_header(self, reader: StreamReader) -> InPart | None:
        size = self._read_size(reader)
        if size == 0:
            return None
        if size < 0 or size > self._limits.max_part_header:
            raise LimitExceeded(f"a bundle2 part header of {size} bytes is over the limit")
        part = parse_part_header(reader.read_exact(size))
        part.max_small = self._limits.max_small_payload
        return part

    def parts(self) -> Iterator[InPart]:
        """Yield each part; the stream must end with the end-of-stream marker."""
        reader = self._open()
        for _ in range(self._limits.max_parts):
            part = self._read_header(reader)
            if part is None:
                return
            part.payload = self._payload(reader, allow_interrupt=True)
            yield part
            for _chunk in part.payload:
                pass
        raise LimitExceeded(f"a bundle2 stream may hold at most {self._limits.max_parts} parts")

    def _payload(self, reader: StreamReader, allow_interrupt: bool) -> Iterator[bytes]:
        while True:
            size = self._read_size(reader)
            if size == 0:
                return
            # Interrupt parts may not nest: that would be unbounded recursion.
            if size == _FLAG_INTERRUPT and allow_interrupt:
                self._interrupt(reader)
                continue
            if size < 0 or size > self._limits.max_payload_chunk:
                raise LimitExceeded(f"a bundle2 payload chunk of {size} bytes is over the limit")
            yield reader.read_exact(size)

    def _interrupt(self, reader: StreamReader) -> None:
        part = self._read_header(reader)
        if part is None:
            return
        part.payload = self._payload(reader, allow_interrupt=False)
        self._on_interrupt(part, part.read_all(self._limits.max_small_payload))
