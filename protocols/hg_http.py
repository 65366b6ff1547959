"""The HTTP transport of Mercurial's wire protocol version 1, sans-IO.

Spec: ``mercurial/helptext/internals/wireprotocol.txt`` ("HTTP Protocol",
"HTTP Version 1 Transport") and hg 7.2.4's ``wireprotoserver.py``
(``httpv1protocolhandler``, ``_httpresponsetype``, ``_callhttp``).  A request
is ``GET|POST /REPO?cmd=NAME``; its arguments are url-encoded and travel in
one of three places: the query string, the ``X-HgArg-1..N`` headers (the
encoded string cut into pieces of at most ``httpheader`` bytes), or the first
``X-HgArgs-Post`` bytes of the body (``httppostargs``).  ``X-HgProto-1..N``
lists what the client reads: ``0.1``, ``0.2``, ``comp=ENGINES`` and
``partial-pull``.

The caller owns the I/O: ``parse_head`` reads the query and the headers,
``with_post_args`` the body prefix, ``render`` turns a handler's value into a
``HttpReply`` whose stream is a generator of (compressed) chunks.  Every
parser is bounded (``HttpLimits``) and raises ``ProtocolError`` with the
HTTP status to answer.
"""

from __future__ import annotations

import enum
import re
import struct
import urllib.parse
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from protocols.errors import LimitExceeded, ProtocolError
from protocols.hg_responses import BytesResponse, OobError, PushError, PushResponse, Response, StreamResponse

try:
    import zstandard
except ImportError:  # zstd is optional: without it hgwire offers zlib only
    zstandard = None  # type: ignore[assignment]

MEDIA_TYPE_V1 = b"application/mercurial-0.1"
"""Raw data; a ``getbundle``-like stream is zlib-compressed (the client decompresses only those)."""
MEDIA_TYPE_V2 = b"application/mercurial-0.2"
"""One byte of engine-name length, the engine name, then the payload compressed with that engine."""
MEDIA_TYPE_ERROR = b"application/hg-error"
"""An out-of-band error: the body is the message (``ooberror``)."""

HEADER_ARG = b"x-hgarg"
HEADER_PROTO = b"x-hgproto"
HEADER_ARGS_POST = b"x-hgargs-post"
COMMAND_ARG = b"cmd"

PROTO_V1 = b"0.1"
PROTO_V2 = b"0.2"
PROTO_COMP = b"comp="
PROTO_PARTIAL_PULL = b"partial-pull"

ENGINE_NONE = b"none"
ENGINE_ZLIB = b"zlib"
ENGINE_ZSTD = b"zstd"

CAP_HTTPHEADER = b"httpheader"
CAP_HTTPPOSTARGS = b"httppostargs"
CAP_HTTPMEDIATYPE = b"httpmediatype=0.1rx,0.1tx,0.2tx"
CAP_COMPRESSION = b"compression"

LEGACY_STREAM_COMMANDS = frozenset({b"stream_out", b"unbundle"})
"""Streams hgweb sends as raw ``0.1`` whatever the client offers (``streamreslegacy``):
the client reads them with ``_callstream``, which never decompresses a 0.1 body."""

_ENGINE_NAME = re.compile(rb"[a-z0-9][a-z0-9_.+-]{0,31}\Z")
_PROTO_TOKEN = re.compile(rb"[\x21-\x7e]+\Z")
_DIGITS = re.compile(rb"[0-9]{1,12}\Z")


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """Bounds of the request parsers; hgweb's own have none."""

    header_value: int = 1024
    """Longest single ``X-HgArg-N``/``X-HgProto-N`` value (the client keeps name + value within ``httpheader``)."""
    header_count: int = 200
    """Most ``X-HgArg-N`` (or ``X-HgProto-N``) headers; the HTTP channel allows 256 KiB of headers in all."""
    query: int = 16 * 1024
    post_args: int = 8 << 20
    """Largest ``X-HgArgs-Post`` prefix: ``known``/``getbundle`` node lists of big repositories."""
    fields: int = 256
    proto_tokens: int = 16
    engines: int = 16


@dataclass(frozen=True, slots=True)
class WireSettings:
    """The operator's choices: compression engines in server preference order, levels, argument carriers."""

    engines: tuple[bytes, ...] = (ENGINE_ZSTD, ENGINE_ZLIB)
    zstd_level: int = 2
    """Level 2, not hg's 3: on a changegroup stream it compresses about 1.5% less, with half
    the CPU and half the compressor memory per response (measured on the bench corpus)."""
    zstd_window_log: int | None = 18
    """A 256 KiB window instead of level 2's own 1 MiB: on the bench corpus's changegroup it
    compresses 0.7% less, with a quarter less CPU (0.21 against 0.28 s) and 1.24 against
    1.99 MiB of compressor memory per response.  None: the level's own window (what an
    operator who chooses a level gets)."""
    zlib_level: int = -1
    header_size: int = 1024
    post_args: bool = False
    """Advertise ``httppostargs``.  Off by default, as in hgweb: hg 7.2.4 cannot resend a push whose
    arguments ride in the body after a 401 (``_multifile`` is not rewound, unlike ``httpsendfile``)."""

    def available_engines(self) -> tuple[bytes, ...]:
        """The configured engines this Python can run (zstd needs the ``zstandard`` package)."""
        return tuple(e for e in self.engines if e in COMPRESSORS and (e != ENGINE_ZSTD or zstandard is not None))

    def preferred_engine(self, offered: Iterable[bytes]) -> bytes | None:
        """The first of the available engines, in *server* order, that the client offers."""
        offered = frozenset(offered)
        return next((e for e in self.available_engines() if e in offered), None)

    def encoding_key(self, engine: bytes) -> tuple[bytes, int, int | None, int]:
        """What the compressed bytes of ``engine`` depend on: part of a shared stream's key."""
        return engine, self.zstd_level, self.zstd_window_log, self.zlib_level


def http_capabilities(settings: WireSettings) -> tuple[bytes, ...]:
    """What only HTTP adds to the capabilities (``httpv1protocolhandler.addcapabilities``)."""
    caps = [b"%s=%d" % (CAP_HTTPHEADER, settings.header_size), CAP_HTTPMEDIATYPE]
    if settings.post_args:
        caps.append(CAP_HTTPPOSTARGS)
    engines = settings.available_engines()
    if engines:
        caps.append(CAP_COMPRESSION + b"=" + b",".join(engines))
    return tuple(caps)


# ------------------------------------------------------------------ requests


@dataclass(frozen=True, slots=True)
class ProtoCaps:
    """What the client said it reads (``X-HgProto``); an absent header means a 0.1-only client."""

    media_types: frozenset[bytes] = frozenset()
    engines: tuple[bytes, ...] = ()
    partial_pull: bool = False


@dataclass(frozen=True, slots=True)
class RequestHead:
    """A command request before its body: name, query/header arguments, post-args length, proto caps."""

    command: bytes
    args: Mapping[bytes, bytes]
    post_args_length: int = 0
    proto: ProtoCaps = field(default_factory=ProtoCaps)
    vary: tuple[bytes, ...] = ()
    """The ``X-Hg*`` request headers the answer depends on (the response's ``Vary``)."""


def parse_urlencoded(data: bytes, limits: HttpLimits, where: str) -> dict[bytes, bytes]:
    """``a=1&b=%20x`` → ``{b"a": b"1", b"b": b" x"}`` (``+`` is a space; empty fields are skipped).

    A field without ``=``, a repeated name or more than ``limits.fields`` fields are refused.
    """
    fields = [f for f in data.split(b"&") if f]
    if len(fields) > limits.fields:
        raise LimitExceeded(f"more than {limits.fields} arguments in the {where}", http_status=400)
    result: dict[bytes, bytes] = {}
    for item in fields:
        raw_key, sep, raw_value = item.partition(b"=")
        if not sep:
            raise ProtocolError(f"malformed argument in the {where}: no '='")
        key, value = _unquote(raw_key), _unquote(raw_value)
        if key in result:
            raise ProtocolError(f"argument {key[:40].decode('latin-1')!r} is given twice in the {where}")
        result[key] = value
    return result


def _unquote(value: bytes) -> bytes:
    return urllib.parse.unquote_to_bytes(value.replace(b"+", b" "))


def numbered_headers(headers: Iterable[tuple[bytes, bytes]], prefix: bytes, limits: HttpLimits) -> bytes:
    """Join ``PREFIX-1``, ``PREFIX-2``… in order (``decodevaluefromheaders``); gaps, repeats and excess are refused.

    ``headers`` are (name, value) pairs as received, one per header line.
    """
    pieces: dict[int, bytes] = {}
    start = prefix.lower() + b"-"
    for name, value in headers:
        lowered = name.lower()
        if not lowered.startswith(start):
            continue
        index = lowered[len(start):]
        if not _DIGITS.match(index) or index.startswith(b"0"):
            raise ProtocolError(f"malformed header name {name[:40].decode('latin-1')}")
        number = int(index)
        if number in pieces:
            raise ProtocolError(f"header {name[:40].decode('latin-1')} is given twice")
        if len(value) > limits.header_value:
            raise LimitExceeded(f"header {name.decode('latin-1')} is longer than {limits.header_value} bytes",
                                http_status=431)
        pieces[number] = value
    if len(pieces) > limits.header_count:
        raise LimitExceeded(f"more than {limits.header_count} {prefix.decode()}-N headers (a request naming very many "
                            "heads: pull over SSH, or ask the server's operator to turn on [hg_http] httppostargs)",
                            http_status=431)
    if sorted(pieces) != list(range(1, len(pieces) + 1)):
        raise ProtocolError(f"{prefix.decode()}-N headers must be numbered 1, 2, 3… without gaps")
    return b"".join(pieces[n] for n in sorted(pieces))


DEFAULT_CLIENT_ENGINES = (b"zlib", b"none")
"""What a client that names no ``comp=`` reads (hg's ``clientcompressionsupport``)."""


def parse_proto(value: bytes, limits: HttpLimits) -> ProtoCaps:
    """``0.1 0.2 comp=zstd,zlib,none,bzip2 partial-pull`` → ``ProtoCaps``; unknown tokens are ignored.

    Refused: non-printable bytes, an empty token, ``comp=`` twice or with a bad
    engine name, more tokens or engines than the limits.
    """
    if not value.strip():
        return ProtoCaps()
    tokens = value.split(b" ")
    if len(tokens) > limits.proto_tokens or not all(_PROTO_TOKEN.match(t) for t in tokens):
        raise ProtocolError("malformed X-HgProto header")
    comps = [t[len(PROTO_COMP):] for t in tokens if t.startswith(PROTO_COMP)]
    if len(comps) > 1:
        raise ProtocolError("X-HgProto lists comp= twice")
    # without comp=, hg's server takes the client to read zlib and none; an empty comp= names no
    # engine (the 0.1 media type is answered then)
    engines = (tuple(e for e in comps[0].split(b",") if e) if comps else DEFAULT_CLIENT_ENGINES)
    if len(engines) > limits.engines or not all(_ENGINE_NAME.match(e) for e in engines):
        raise ProtocolError("malformed comp= list in X-HgProto")
    media = frozenset(t for t in tokens if t in (PROTO_V1, PROTO_V2))
    return ProtoCaps(media, engines, PROTO_PARTIAL_PULL in tokens)


def parse_post_length(value: bytes | None, content_length: int | None, limits: HttpLimits) -> int:
    """The ``X-HgArgs-Post`` value: how many leading body bytes are arguments."""
    if value is None:
        return 0
    if not _DIGITS.match(value.strip()):
        raise ProtocolError("X-HgArgs-Post must be a byte count")
    length = int(value)
    if length > limits.post_args:
        raise LimitExceeded(f"more than {limits.post_args} bytes of POST arguments")
    if content_length is None or length > content_length:
        raise ProtocolError("X-HgArgs-Post is longer than the request body")
    return length


def _single(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    values = [v for k, v in headers if k.lower() == name]
    if len(values) > 1:
        raise ProtocolError(f"header {name.decode()} is given twice")
    return values[0] if values else None


def parse_head(query: bytes, headers: Iterable[tuple[bytes, bytes]], content_length: int | None,
               limits: HttpLimits = HttpLimits()) -> RequestHead:
    """Read a command request's query string and headers (``httpv1protocolhandler._args``).

    Arguments in ``X-HgArg-N`` headers and in the body (``X-HgArgs-Post``) are
    exclusive; a name given in two places is refused (hgweb would let one win).
    """
    if len(query) > limits.query:
        raise LimitExceeded(f"query string longer than {limits.query} bytes", http_status=414)
    headers = list(headers)
    args = parse_urlencoded(query, limits, "query string")
    command = args.pop(COMMAND_ARG, b"")
    if not command:
        raise ProtocolError("the cmd query argument is missing")
    header_args = parse_urlencoded(numbered_headers(headers, HEADER_ARG, limits), limits, "X-HgArg headers")
    post_length = parse_post_length(_single(headers, HEADER_ARGS_POST), content_length, limits)
    if header_args and post_length:
        raise ProtocolError("arguments come either in X-HgArg headers or in the body, not both")
    proto = parse_proto(numbered_headers(headers, HEADER_PROTO, limits), limits)
    vary = tuple(sorted({k.lower() for k, _ in headers
                         if k.lower().startswith(HEADER_ARG + b"-") or k.lower().startswith(HEADER_PROTO + b"-")}))
    return RequestHead(command, _merge(args, header_args), post_length, proto, vary)


def _merge(first: Mapping[bytes, bytes], second: Mapping[bytes, bytes]) -> dict[bytes, bytes]:
    twice = first.keys() & second.keys()
    if twice:
        raise ProtocolError(f"argument {min(twice)[:40].decode('latin-1')!r} is given twice")
    return {**first, **second}


def with_post_args(head: RequestHead, body_prefix: bytes, limits: HttpLimits = HttpLimits()) -> dict[bytes, bytes]:
    """All the arguments: the head's plus the ``X-HgArgs-Post`` prefix of the body."""
    if len(body_prefix) != head.post_args_length:
        raise ProtocolError("the request body is shorter than X-HgArgs-Post")
    return _merge(head.args, parse_urlencoded(body_prefix, limits, "POST arguments"))


# ------------------------------------------------------------------ responses


class Compressor(Protocol):
    def compress(self, data: bytes) -> bytes: ...

    def flush(self) -> bytes: ...


class _Identity:
    def compress(self, data: bytes) -> bytes:
        return data

    def flush(self) -> bytes:
        return b""


def _zlib(settings: WireSettings) -> Compressor:
    return zlib.compressobj(settings.zlib_level)


def _zstd(settings: WireSettings) -> Compressor:
    assert zstandard is not None
    if settings.zstd_window_log is None:
        return zstandard.ZstdCompressor(level=settings.zstd_level).compressobj()
    params = zstandard.ZstdCompressionParameters.from_level(settings.zstd_level,
                                                            window_log=settings.zstd_window_log)
    return zstandard.ZstdCompressor(compression_params=params).compressobj()


COMPRESSORS: Mapping[bytes, Callable[[WireSettings], Compressor]] = {
    ENGINE_NONE: lambda settings: _Identity(),
    ENGINE_ZLIB: _zlib,
    ENGINE_ZSTD: _zstd,
}
"""Engine wire name → streaming compressor factory (``compressstream`` of hg's engines)."""


class Framing(enum.Enum):
    """How a body is framed: raw, or behind the 0.2 engine-name header."""

    RAW = "raw"
    V2 = "v2"


@dataclass(frozen=True, slots=True)
class Encoding:
    """The media type, the engine and the framing of one stream response."""

    media_type: bytes
    engine: bytes
    framing: Framing = Framing.RAW


RAW_V1 = Encoding(MEDIA_TYPE_V1, ENGINE_NONE)
ZLIB_V1 = Encoding(MEDIA_TYPE_V1, ENGINE_ZLIB)


def choose_encoding(proto: ProtoCaps, settings: WireSettings, prefer_uncompressed: bool) -> Encoding:
    """Pick the media type and engine of a stream (``_httpresponsetype``).

    A 0.2 client gets ``none`` if the data is already compact, else the first
    engine in *server* order that the client lists; otherwise (and for a 0.1
    client) 0.1 with zlib, which is what 0.1 clients decompress.
    """
    if PROTO_V2 in proto.media_types:
        if prefer_uncompressed:
            return Encoding(MEDIA_TYPE_V2, ENGINE_NONE, Framing.V2)
        engine = settings.preferred_engine(proto.engines)
        if engine is not None:
            return Encoding(MEDIA_TYPE_V2, engine, Framing.V2)
    return ZLIB_V1


def compress_stream(chunks: Iterator[bytes], engine: bytes, settings: WireSettings) -> Iterator[bytes]:
    """Compress a stream chunk by chunk; empty outputs are skipped, the end is flushed."""
    compressor = COMPRESSORS[engine](settings)
    for chunk in chunks:
        out = compressor.compress(chunk)
        if out:
            yield out
    tail = compressor.flush()
    if tail:
        yield tail


def v2_header(engine: bytes) -> bytes:
    """The 0.2 prefix: one length byte and the engine name (``genversion2``)."""
    return struct.pack(">B", len(engine)) + engine


def encode_stream(chunks: Iterator[bytes], encoding: Encoding, settings: WireSettings) -> Iterator[bytes]:
    """The body of a stream response in ``encoding``."""
    if encoding.framing is Framing.V2:
        yield v2_header(encoding.engine)
    yield from compress_stream(chunks, encoding.engine, settings)


@dataclass(frozen=True, slots=True)
class HttpReply:
    """A 200 answer: its content type and either a whole body or a stream of chunks."""

    content_type: bytes
    body: bytes = b""
    stream: Iterator[bytes] | None = None
    engine: bytes = ENGINE_NONE


def error_body(message: bytes) -> bytes:
    """The body hgweb sends with an HTTP error status for a wire request: ``0\\n<message>\\n``."""
    return b"0\n" + message.rstrip(b"\n") + b"\n"


def render(response: Response, command: bytes, proto: ProtoCaps, settings: WireSettings) -> HttpReply:
    """How a handler's value goes on HTTP (``_callhttp``'s reply ladder, as one match)."""
    match response:
        case BytesResponse(data=data):
            return HttpReply(MEDIA_TYPE_V1, data)
        case StreamResponse(chunks=chunks, prefer_uncompressed=prefer_uncompressed):
            encoding = RAW_V1 if command in LEGACY_STREAM_COMMANDS else choose_encoding(
                proto, settings, prefer_uncompressed)
            return HttpReply(encoding.media_type, stream=encode_stream(chunks, encoding, settings),
                             engine=encoding.engine)
        case PushResponse(result=result, output=output):
            return HttpReply(MEDIA_TYPE_V1, b"%d\n" % result + output)
        case PushError(message=message):
            return HttpReply(MEDIA_TYPE_V1, error_body(message))
        case OobError(message=message):
            return HttpReply(MEDIA_TYPE_ERROR, message)
    raise TypeError(f"not a wire response: {response!r}")
