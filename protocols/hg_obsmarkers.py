"""Mercurial's obsolescence markers: the binary formats of ``.hg/store/obsstore`` and of the
bundle2 ``obsmarkers`` part (``hg help internals`` has no page; the layout below is the format).

A marker says that changeset ``prec`` was rewritten into ``succs`` (none: pruned), with flags,
metadata (``user``, ``operation``, ...), a date and, optionally, the parents ``prec`` had.
A stream is one version byte followed by markers, all of that version:

* version 0: ``>B`` successor count N, ``>I`` metadata size M, ``>B`` flags, 20-byte ``prec``,
  N 20-byte successors, M bytes ``key:value`` pairs joined by NUL; the date (``"<secs> <tz>"``)
  and the parents (``p0``, ``p1``, ``p2`` as hex) travel in the metadata;
* version 1: ``>I`` total size, ``>d`` seconds, ``>h`` timezone in minutes, ``>H`` flags,
  ``>B`` N, ``>B`` parent count P (3: none recorded), ``>B`` metadata pair count K, the
  nodes (``prec``, N successors, P parents), K ``>BB`` key and value sizes, then the pairs.

Only SHA-1 nodes (flag 2 is for SHA-256 ones, which this server does not host).  Sans-IO:
bytes in, :class:`Marker` tuples out and back; every length is checked against the input.
"""

from __future__ import annotations

import base64
import binascii
import math
import struct
from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple

from protocols.errors import ProtocolError

NODE_SIZE = 20
NULL = b"\0" * NODE_SIZE
USING_SHA256 = 2
"""Marker flag: nodes are 32 bytes (a SHA-256 repository)."""
VERSIONS = (0, 1)
"""The formats read and written, oldest first; ``obsmarkers=V0,V1`` in bundle2 capabilities."""
DEFAULT_VERSION = 1
"""The format of a new obsstore, as Mercurial writes it."""

_V0_FIXED = struct.Struct(">BIB20s")
_V1_FIXED = struct.Struct(">IdhHBBB")
_V1_NO_PARENTS = 3
_MAX_META = 255


class MarkerError(ProtocolError):
    """Bytes that are not a well-formed marker stream."""


class Marker(NamedTuple):
    """One marker, as Mercurial holds it: equal markers are the same marker (duplicates are dropped)."""

    prec: bytes
    succs: tuple[bytes, ...]
    flags: int
    meta: tuple[tuple[bytes, bytes], ...]
    """Sorted (key, value) pairs."""
    date: tuple[float, int]
    """Seconds since the epoch, and the timezone offset in seconds (west of UTC positive)."""
    parents: tuple[bytes, ...] | None
    """The parents of ``prec`` when the marker was made; None when not recorded."""


def sort_key(marker: Marker) -> tuple[object, ...]:
    """The order markers are sent in (``obsutil.sortedmarkers``): by every field, no parents as ()."""
    return (*marker[:-1], marker.parents or ())


def common_version(theirs: Iterable[int]) -> int | None:
    """The newest format both sides know, None if there is none."""
    shared = [v for v in theirs if v in VERSIONS]
    return max(shared) if shared else None


def versions_of(caps: Iterable[bytes]) -> list[int]:
    """The versions a bundle2 ``obsmarkers`` capability lists (``V0``, ``V1``); others are skipped."""
    found = []
    for cap in caps:
        if cap[:1] == b"V" and cap[1:].isdigit() and len(cap) <= 4:
            found.append(int(cap[1:]))
    return found


def decode(data: bytes) -> tuple[int, list[Marker]]:
    """The version and the markers of a whole stream (an obsstore file or an ``obsmarkers`` part)."""
    if not data:
        raise MarkerError("an obsolescence marker stream is empty (no version byte)")
    version = data[0]
    return version, decode_markers(data, version, 1)


def decode_markers(data: bytes, version: int, offset: int = 0) -> list[Marker]:
    """The markers of ``data`` from ``offset`` on, in format ``version`` (no version byte there):
    what was appended to a store file."""
    if version == 0:
        return list(_decode_v0(data, offset))
    if version == 1:
        return list(_decode_v1(data, offset))
    raise MarkerError(f"obsolescence markers of unknown format version {version}")


def _check_nodes(prec: bytes, succs: Sequence[bytes], secs: float) -> None:
    if not math.isfinite(secs):  # NaN is unequal to itself: such a marker would never be a duplicate
        raise MarkerError("an obsolescence marker's date is not a finite number")
    if NULL in succs:
        raise MarkerError("an obsolescence marker names the null changeset as a successor")
    if prec in succs:
        raise MarkerError("an obsolescence marker makes a changeset its own successor")


def _decode_v0(data: bytes, off: int) -> Iterator[Marker]:
    end = len(data)
    while off < end:
        if end - off < _V0_FIXED.size:
            raise MarkerError("an obsolescence marker is truncated")
        count, meta_size, flags, prec = _V0_FIXED.unpack_from(data, off)
        if flags & USING_SHA256:
            raise MarkerError("SHA-256 obsolescence markers are not supported")
        off += _V0_FIXED.size
        stop = off + count * NODE_SIZE + meta_size
        if stop > end:
            raise MarkerError("an obsolescence marker is truncated")
        succs = tuple(data[i : i + NODE_SIZE] for i in range(off, off + count * NODE_SIZE, NODE_SIZE))
        off += count * NODE_SIZE
        meta: dict[bytes, bytes] = {}
        for item in data[off:stop].split(b"\0"):
            if item:
                key, colon, value = item.partition(b":")
                if not colon:
                    raise MarkerError("an obsolescence marker's metadata entry has no ':'")
                meta[key] = value
        off = stop
        try:
            when, tz = meta.pop(b"date", b"0 0").split(b" ")
            date = (float(when), int(tz))
        except ValueError:  # as Mercurial reads it: an unreadable date is the epoch
            date = (0.0, 0)
        listed = [meta.pop(k, None) for k in (b"p0", b"p1", b"p2")]
        parents: tuple[bytes, ...] | None = None
        if listed[2] is not None:
            parents = _hex_nodes((listed[1] or b"", listed[2]))
        elif listed[1] is not None:
            parents = _hex_nodes((listed[1],))
        elif listed[0] is not None:
            parents = ()
        _check_nodes(prec, succs, date[0])
        yield Marker(prec, succs, flags, tuple(sorted(meta.items())), date, parents)


def _hex_nodes(values: Sequence[bytes]) -> tuple[bytes, ...] | None:
    """Parents from metadata; anything that is not a hex node drops them all (as Mercurial does)."""
    try:
        nodes = tuple(binascii.unhexlify(v) for v in values)
    except (binascii.Error, ValueError):
        return None
    return nodes if all(len(n) == NODE_SIZE for n in nodes) else None


_V1_BODIES: dict[tuple[int, int], struct.Struct] = {}
"""The nodes and metadata sizes after a format-1 marker's fixed part, by (node count, metadata count)."""


def _v1_body(nodes: int, pairs: int) -> struct.Struct:
    found = _V1_BODIES.get((nodes, pairs))
    if found is None:
        found = struct.Struct(">" + "20s" * nodes + "B" * (2 * pairs))
        if nodes <= 8 and pairs <= 16:  # the shapes hg writes; a hostile stream's others are not kept
            _V1_BODIES[(nodes, pairs)] = found
    return found


def _decode_v1(data: bytes, off: int) -> Iterator[Marker]:
    """One ``unpack_from`` for the fixed part, one for the nodes and metadata sizes (a cached
    ``Struct`` per shape), then the metadata slices: a store of 100,000 markers is read at startup."""
    end = len(data)
    fixed_size = _V1_FIXED.size
    unpack_fixed = _V1_FIXED.unpack_from
    while off < end:
        if end - off < fixed_size:
            raise MarkerError("an obsolescence marker is truncated")
        size, secs, tz, flags, count, nparents, nmeta = unpack_fixed(data, off)
        if flags & USING_SHA256:
            raise MarkerError("SHA-256 obsolescence markers are not supported")
        if size < fixed_size or off + size > end:
            raise MarkerError("an obsolescence marker is truncated or has a wrong size")
        if nparents > 2 and nparents != _V1_NO_PARENTS:
            raise MarkerError(f"an obsolescence marker has {nparents} parents")
        stop = off + size
        node_count = 1 + count + (0 if nparents == _V1_NO_PARENTS else nparents)
        body = _v1_body(node_count, nmeta)
        pos = off + fixed_size + body.size
        if pos > stop:
            raise MarkerError("an obsolescence marker is shorter than its fields")
        fields = body.unpack_from(data, off + fixed_size)
        prec, succs = fields[0], fields[1 : 1 + count]
        parents = None if nparents == _V1_NO_PARENTS else fields[1 + count : node_count]
        meta = []
        for i in range(node_count, node_count + 2 * nmeta, 2):
            klen, vlen = fields[i], fields[i + 1]
            value_at = pos + klen
            if value_at + vlen > stop:
                raise MarkerError("an obsolescence marker's metadata overruns it")
            meta.append((data[pos:value_at], data[value_at : value_at + vlen]))
            pos = value_at + vlen
        if pos != stop:
            raise MarkerError("an obsolescence marker's size does not match its fields")
        off = stop
        _check_nodes(prec, succs, secs)
        yield Marker(prec, succs, flags, tuple(meta), (secs, tz * 60), parents)


def encode(markers: Iterable[Marker], version: int, header: bool = True) -> Iterator[bytes]:
    """The stream of ``markers`` in ``version`` (with its version byte unless ``header`` is false)."""
    if version not in VERSIONS:
        raise ValueError(f"unknown obsolescence marker version {version}")
    if header:
        yield bytes([version])
    one = _encode_v0 if version == 0 else _encode_v1
    for marker in markers:
        yield one(marker)


def _encode_v0(marker: Marker) -> bytes:
    meta = dict(marker.meta)
    meta[b"date"] = b"%s %d" % (repr(float(marker.date[0])).encode("ascii"), marker.date[1])
    if marker.parents is not None:
        if not marker.parents:
            meta[b"p0"] = b""
        for i, parent in enumerate(marker.parents, 1):
            meta[b"p%d" % i] = binascii.hexlify(parent)
    for key, value in meta.items():
        if b":" in key or b"\0" in key or b"\0" in value:
            raise ValueError("obsolescence marker metadata with ':' in a key or NUL anywhere")
    if marker.flags > 0xFF or len(marker.succs) > _MAX_META:
        raise ValueError("an obsolescence marker's flags or successors do not fit format 0")
    blob = b"\0".join(b"%s:%s" % (k, meta[k]) for k in sorted(meta))
    return _V0_FIXED.pack(len(marker.succs), len(blob), marker.flags, marker.prec) + b"".join(marker.succs) + blob


def _encode_v1(marker: Marker) -> bytes:
    parents = marker.parents
    if len(marker.succs) > _MAX_META or len(marker.meta) > _MAX_META:
        raise ValueError("an obsolescence marker with over 255 successors or metadata entries")
    if not -(1 << 15) <= marker.date[1] // 60 < (1 << 15) or marker.flags > 0xFFFF:
        raise ValueError("an obsolescence marker's timezone or flags do not fit format 1")
    nparents = _V1_NO_PARENTS if parents is None else len(parents)
    nodes = marker.prec + b"".join(marker.succs) + (b"".join(parents) if parents else b"")
    sizes = bytearray()
    for key, value in marker.meta:
        if len(key) > _MAX_META or len(value) > _MAX_META:
            raise ValueError("obsolescence marker metadata longer than 255 bytes")
        sizes += bytes((len(key), len(value)))
    pairs = b"".join(k + v for k, v in marker.meta)
    size = _V1_FIXED.size + len(nodes) + len(sizes) + len(pairs)
    fixed = _V1_FIXED.pack(size, marker.date[0], marker.date[1] // 60, marker.flags, len(marker.succs),
                           nparents, len(marker.meta))
    return fixed + nodes + bytes(sizes) + pairs


def base85(data: bytes) -> bytes:
    """Mercurial's base85 (RFC 1924 alphabet, no padding kept), as the ``obsolete`` pushkey
    namespace carries markers."""
    return base64.b85encode(data)


def base85_decode(text: bytes) -> bytes:
    """The inverse of ``base85``; ``ValueError`` for anything else."""
    return base64.b85decode(text)


__all__ = [
    "DEFAULT_VERSION",
    "VERSIONS",
    "Marker",
    "MarkerError",
    "base85",
    "base85_decode",
    "common_version",
    "decode",
    "decode_markers",
    "encode",
    "sort_key",
    "versions_of",
]
