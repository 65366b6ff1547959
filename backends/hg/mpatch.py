"""Bounded mpatch: Mercurial's binary delta format, applied and composed safely.

A delta is a sequence of hunks ``>lll`` (start, end, length) followed by
``length`` bytes that replace ``text[start:end]``; hunks are sorted and do not
overlap (helptext/internals/revlogs.txt "Delta Chains").  Every number comes
from the peer or the disk, so each is bounds-checked before use: historic
mpatch bugs (CVE-2016-3630, CVE-2018-13346..13348) were missing checks.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Iterable, Sequence

from backends.hg.linediff import common_prefix, common_suffix, split_lines
from protocols.errors import StorageError

HUNK_HEADER = struct.Struct(">lll")
MAX_TEXT_SIZE = 1 << 31
"""Largest full text we will build (revlogs store 32-bit sizes)."""

Hunk = tuple[int, int, bytes]
Piece = tuple[int, int, bytes | None]
"""A piece of a virtual text: base[start:end] when data is None, else data."""


def parse_hunks(delta: bytes) -> list[Hunk]:
    """Decode a delta into hunks, refusing truncated, negative or unordered ones."""
    return [(start, end, data.tobytes()) for start, end, data in _hunk_views(delta)]


def _hunk_views(delta: bytes) -> list[tuple[int, int, memoryview]]:
    """``parse_hunks`` with each hunk's bytes a view of ``delta`` (nothing copied)."""
    hunks: list[tuple[int, int, memoryview]] = []
    pos = 0
    last_end = 0
    size = len(delta)
    view = memoryview(delta)
    while pos < size:
        if pos + 12 > size:
            raise StorageError("corrupt delta: truncated hunk header")
        start, end, length = HUNK_HEADER.unpack_from(delta, pos)
        pos += 12
        if start < last_end or end < start or length < 0 or pos + length > size:
            raise StorageError("corrupt delta: hunk out of order or out of bounds")
        hunks.append((start, end, view[pos : pos + length]))
        pos += length
        last_end = end
    return hunks


def _patch_pieces(pieces: Sequence[Piece], hunks: Sequence[Hunk]) -> list[Piece]:
    """Apply hunks to a piece list in one linear walk, copying no base bytes."""
    out: list[Piece] = []
    idx = 0
    offset = 0  # position in the patched-over text where pieces[idx] begins
    cut = 0  # bytes of pieces[idx] already consumed
    total = sum(p[1] - p[0] if p[2] is None else len(p[2]) for p in pieces)
    for start, end, data in hunks:
        if end > total:
            raise StorageError("corrupt delta: hunk ends past the end of the text")
        idx, offset, cut = _copy_until(pieces, out, idx, offset, cut, start)
        idx, offset, cut = _copy_until(pieces, None, idx, offset, cut, end)
        if data:
            out.append((0, len(data), data))
    _copy_until(pieces, out, idx, offset, cut, total)
    return out


def _copy_until(
    pieces: Sequence[Piece], out: list[Piece] | None, idx: int, offset: int, cut: int, target: int
) -> tuple[int, int, int]:
    """Advance to text position ``target``, appending the covered pieces to ``out`` if given."""
    while offset + cut < target:
        start, end, data = pieces[idx]
        plen = end - start if data is None else len(data)
        take = min(plen - cut, target - offset - cut)
        if out is not None:
            if data is None:
                out.append((start + cut, start + cut + take, None))
            else:
                out.append((0, take, data[cut : cut + take]))
        cut += take
        if cut == plen:
            idx += 1
            offset += plen
            cut = 0
    return idx, offset, cut


def _pieces_length(pieces: Iterable[Piece]) -> int:
    return sum(end - start if data is None else len(data) for start, end, data in pieces)


class TextTooLarge(StorageError):
    """A delta would make a text over ``max_size`` bytes (``size``); nothing was built."""

    def __init__(self, size: int, max_size: int) -> None:
        super().__init__("corrupt delta: result larger than the size limit")
        self.size = size
        self.max_size = max_size


def patches(base: bytes, deltas: Sequence[bytes], max_size: int = MAX_TEXT_SIZE) -> bytes:
    """Apply a chain of deltas to ``base``, one after the other.

    Each step is a single join of slices (C speed, proportional to the text);
    folding the chain into pieces first is slower in Python for the short
    texts and bounded chains revlogs hold.
    """
    text = base
    for delta in deltas:
        text = _apply_one(text, delta, max_size)
    return text


def _apply_one(text: bytes, delta: bytes, max_size: int) -> bytes:
    if not delta:
        return text
    view = memoryview(text)
    parts: list[bytes | memoryview] = []
    size = len(text)
    pos = 0
    out_size = 0
    for start, end, data in _hunk_views(delta):  # the text is the one copy made
        if end > size:
            raise StorageError("corrupt delta: hunk ends past the end of the text")
        parts.append(view[pos:start])
        parts.append(data)
        out_size += start - pos + len(data)
        pos = end
    parts.append(view[pos:])
    out_size += size - pos
    if out_size > max_size:
        raise TextTooLarge(out_size, max_size)
    return b"".join(parts)


def on_line_boundaries(base: bytes, delta: bytes) -> bool:
    """Whether every hunk of ``delta`` replaces whole lines of ``base`` with whole lines.

    ``diff`` only makes such deltas, and Mercurial reads manifest deltas line
    by line; a delta received from a client is stored as it is only if it
    passes this check.
    """
    for start, end, data in _hunk_views(delta):
        if start and base[start - 1] != 0x0A:
            return False
        if end and end != len(base) and base[end - 1] != 0x0A:
            return False
        if data and data[-1] != 0x0A:
            return False
    return True


def apply(base: bytes, delta: bytes, max_size: int = MAX_TEXT_SIZE) -> bytes:
    """Apply one delta to ``base``."""
    return patches(base, [delta], max_size)


def compose(deltas: Sequence[bytes], base_length: int) -> bytes:
    """Fold a chain of deltas over a text of ``base_length`` bytes into one delta."""
    pieces: list[Piece] = [(0, base_length, None)] if base_length else []
    for delta in deltas:
        pieces = _patch_pieces(pieces, parse_hunks(delta))
    out: list[bytes] = []
    pos = 0  # position in the base text
    pending: list[bytes] = []
    pending_start = 0
    for start, end, data in pieces:
        if data is None:
            if pending or start != pos:
                out.append(HUNK_HEADER.pack(pending_start, start, sum(map(len, pending))))
                out.extend(pending)
            pending = []
            pos = end
            pending_start = end
        else:
            pending.append(data)
    if pending or pos != base_length:
        out.append(HUNK_HEADER.pack(pending_start, base_length, sum(map(len, pending))))
        out.extend(pending)
    return b"".join(out)


def full_replacement(base_length: int, text: bytes) -> bytes:
    """A delta that replaces the whole base with ``text`` (what a full text is in a changegroup)."""
    return HUNK_HEADER.pack(0, base_length, len(text)) + text


def diff(old: bytes, new: bytes) -> bytes:
    """Produce a delta from ``old`` to ``new``.

    Trims the common prefix and suffix on line boundaries and replaces the
    middle: linear time, exact result, and small deltas for the usual edits
    (appends, in-place changes).  Hunks always cover whole lines, which
    manifest deltas require.  It is not a minimal diff, which only costs space.
    """
    if old == new:
        return b""
    limit = min(len(old), len(new))
    prefix = common_prefix(old, new, limit)
    prefix = old.rfind(b"\n", 0, prefix) + 1
    suffix = common_suffix(old, new, limit - prefix)
    if suffix:
        # Start the kept suffix on a line boundary: Mercurial reads manifest
        # deltas as whole manifest lines (manifest.py readdelta).
        first_newline = old.find(b"\n", len(old) - suffix)
        suffix = 0 if first_newline < 0 else len(old) - first_newline - 1
    end_old = len(old) - suffix
    end_new = len(new) - suffix
    return HUNK_HEADER.pack(prefix, end_old, end_new - prefix) + new[prefix:end_new]


def line_diff(old: bytes, new: bytes) -> bytes:
    """A delta from ``old`` to ``new`` with a hunk for each run of changed lines, not one hunk from
    the first changed line to the last as :func:`diff` makes.

    What a changegroup 01 needs (every revision a delta against the one sent before it, which is
    seldom the one it is stored against): consecutive manifests differ in lines spread over the
    whole text (one file per directory), which one hunk resent almost whole, 128 times hg serve's
    manifest bytes on the bench corpus.  Lines that one text has and the other lacks are replaced;
    a line both have but met out of order is replaced too, so the delta is exact for any texts
    (minimal for sorted ones, as manifests are).  Linear in the lines between the common prefix
    and suffix; hunks cover whole lines.
    """
    if old == new:
        return b""
    limit = min(len(old), len(new))
    prefix = old.rfind(b"\n", 0, common_prefix(old, new, limit)) + 1
    suffix = common_suffix(old, new, limit - prefix)
    if suffix:
        first_newline = old.find(b"\n", len(old) - suffix)
        suffix = 0 if first_newline < 0 else len(old) - first_newline - 1
    a = split_lines(old[prefix : len(old) - suffix])
    b = split_lines(new[prefix : len(new) - suffix])
    offsets = list(itertools.accumulate(map(len, a), initial=prefix))  # of each line of ``a`` in ``old``
    in_a, in_b = set(a), set(b)
    out: list[bytes] = []
    i = j = 0
    while True:
        while i + _SKIP <= len(a) and j + _SKIP <= len(b) and a[i : i + _SKIP] == b[j : j + _SKIP]:
            i += _SKIP
            j += _SKIP
        while i < len(a) and j < len(b) and a[i] == b[j]:
            i += 1
            j += 1
        if i >= len(a) and j >= len(b):
            break
        start, first_new = i, j
        while True:  # the run of lines up to the next pair both texts have
            while i < len(a) and a[i] not in in_b:
                i += 1
            while j < len(b) and b[j] not in in_a:
                j += 1
            if i >= len(a) or j >= len(b) or a[i] == b[j]:
                break
            i += 1  # both texts have it, elsewhere: replaced here
        if i >= len(a) or j >= len(b):  # the rest of either text
            i, j = len(a), len(b)
        replaced = b"".join(b[first_new:j])
        out.append(HUNK_HEADER.pack(offsets[start], offsets[i], len(replaced)))
        out.append(replaced)
    return b"".join(out)


_SKIP = 64
"""Equal lines are passed over this many at a time (one list comparison) before one at a time."""
