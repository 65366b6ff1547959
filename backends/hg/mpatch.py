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
from collections.abc import Sequence

from backends.hg.linediff import common_prefix, common_suffix, split_lines
from protocols.errors import StorageError

HUNK_HEADER = struct.Struct(">lll")
MAX_TEXT_SIZE = 1 << 31
"""Largest full text we will build (revlogs store 32-bit sizes)."""

Hunk = tuple[int, int, bytes]
Frag = tuple[int, int, bytes | memoryview]
"""A hunk whose bytes may be a view of the delta it came from (nothing copied)."""


def parse_hunks(delta: bytes) -> list[Hunk]:
    """Decode a delta into hunks, refusing truncated, negative or unordered ones."""
    return [(start, end, bytes(data)) for start, end, data in _hunk_views(delta)]


def _hunk_views(delta: bytes) -> list[Frag]:
    """``parse_hunks`` with each hunk's bytes a view of ``delta`` (nothing copied)."""
    hunks: Hunks = ([], [], [])
    _parse_into(memoryview(delta), hunks)
    return list(zip(*hunks))


class TextTooLarge(StorageError):
    """A delta would make a text over ``max_size`` bytes (``size``); nothing was built."""

    def __init__(self, size: int, max_size: int) -> None:
        super().__init__("corrupt delta: result larger than the size limit")
        self.size = size
        self.max_size = max_size


def patches(base: bytes, deltas: Sequence[bytes], max_size: int = MAX_TEXT_SIZE) -> bytes:
    """Apply a chain of deltas to ``base``: every hunk is checked first, then the text is built.

    Applied one after the other, each delta copies the whole text (C speed: a join of slices):
    1,000 links of a 200 KiB text copied 200 MB, 200 of a 2 MiB text 400 MB.  Folded into one
    list of hunks against ``base`` (as Mercurial's mpatch folds a chain), the text is built once,
    but each hunk costs Python work on each level of the fold.  So runs of links are folded, each
    run as long as makes the two costs least (``_run_length``), and the text built once a run:
    a short text's chain link by link, a long text's in one go.
    """
    hunks, cuts, copies = _checked_chain(deltas, len(base), max_size)
    links = len(cuts) - 1
    run = _run_length(len(hunks[0]), copies)
    text = base
    for first in range(0, links, run):
        last = min(first + run, links)
        if last - first == 1:
            text = _applied(text, hunks, cuts[first], cuts[last])
        else:
            folded = _folded(hunks, cuts, first, last)
            text = _applied(text, folded, 0, len(folded[0]))
    return text


def _run_length(hunks: int, copies: int) -> int:
    """How many links to fold for each build of the text.

    Building after every ``k`` links costs ``copies / k`` bytes copied and ``log2 k`` passes of
    the fold over every hunk; with one pass of a hunk costing ``FOLD_BYTES_PER_HUNK`` bytes of
    copy, the sum is least at ``k = copies * ln 2 / (hunks * FOLD_BYTES_PER_HUNK)``.
    """
    return max(1, int(copies * 0.69 / (FOLD_BYTES_PER_HUNK * hunks))) if hunks else 1


FOLD_BYTES_PER_HUNK = 12 << 10
"""Text bytes whose copy costs about what one hunk costs on one level of the fold (measured: 0.3 µs
a hunk and level against 0.02 ns a byte copied while the text stays in the CPU's cache; past it a
copy costs several times more, so a large text's chain is folded in long runs)."""

Hunks = tuple[list[int], list[int], list[bytes | memoryview]]
"""Hunks as three lists (starts, ends, bytes), not a tuple and a view each: a chain's thousands
of hunks held at once as objects the garbage collector tracks made it run a full collection every
few reads of a server's large heap (60 ms each); ints and bytes it does not track."""


def _checked_chain(deltas: Sequence[bytes], base_length: int, max_size: int) -> tuple[Hunks, list[int], int]:
    """The hunks of every non-empty delta, each checked against the length of the text it applies
    to; where each delta's hunks start (and the last ends); the bytes applying them one by one
    would copy.  A text past ``max_size`` is refused unbuilt."""
    hunks: Hunks = ([], [], [])
    cuts = [0]
    length = base_length
    copies = 0
    for delta in deltas:
        growth = _parse_into(delta, hunks)
        if len(hunks[0]) == cuts[-1]:
            continue
        if hunks[1][-1] > length:  # (ends ascend: _parse_into refuses hunks out of order)
            raise StorageError("corrupt delta: hunk ends past the end of the text")
        length += growth
        if length > max_size:
            raise TextTooLarge(length, max_size)
        copies += length
        cuts.append(len(hunks[0]))
    return hunks, cuts, copies


def _parse_into(delta: bytes | memoryview, hunks: Hunks) -> int:
    """Append the hunks of ``delta``, refusing truncated, negative or unordered ones (their bytes
    are slices of ``delta``: copies of bytes, views of a view); how many bytes longer the text is
    made (negative: shorter)."""
    starts, ends, datas = hunks
    pos = 0
    last_end = 0
    growth = 0
    size = len(delta)
    while pos < size:
        if pos + 12 > size:
            raise StorageError("corrupt delta: truncated hunk header")
        start, end, length = HUNK_HEADER.unpack_from(delta, pos)
        pos += 12
        if start < last_end or end < start or length < 0 or pos + length > size:
            raise StorageError("corrupt delta: hunk out of order or out of bounds")
        starts.append(start)
        ends.append(end)
        datas.append(delta[pos : pos + length])
        pos += length
        last_end = end
        growth += length - end + start
    return growth


def _folded(hunks: Hunks, cuts: list[int], first: int, last: int) -> Hunks:
    """The hunks of links ``first`` to ``last - 1`` of a checked chain as one list against the text
    the first applies to: each half folded, then the halves combined, so each hunk is passed over
    once a level (log2 of the links) and only a few lists are held at a time."""
    if last - first == 1:
        lo, hi = cuts[first], cuts[last]
        return hunks[0][lo:hi], hunks[1][lo:hi], hunks[2][lo:hi]
    middle = (first + last) // 2
    return _combined(_folded(hunks, cuts, first, middle), _folded(hunks, cuts, middle, last))


VIEW_FROM = 4096
"""A hunk's bytes left after a later hunk cuts into them are kept as a view from this length: a
copy each cut made a 2 MiB hunk cut 10,000 times copy 10 GB (0.65 s of CPU for a chain applied
link by link in 0.04 s); a view is an object the garbage collector tracks, so short rests are copied."""


def _combined(first: Hunks, second: Hunks) -> Hunks:
    """Hunks against the text ``first`` applies to that do what ``first`` then ``second`` do.

    ``second``'s positions are in the text ``first`` makes; ``shift`` is how far that text's
    positions are past the base's at ``first``'s hunk ``i``.  A hunk of ``first`` that ``second``
    cuts into keeps the bytes it is not cut in; one cut at its end stays (trimmed) for
    ``second``'s next hunks.  Both are checked (``_checked_chain``); ``first`` is consumed.
    """
    f_starts, f_ends, f_datas = first
    starts: list[int] = []
    ends: list[int] = []
    datas: list[bytes | memoryview] = []
    i, n, shift = 0, len(f_starts), 0
    for b_start, b_end, data in zip(*second):
        while i < n:  # first's hunks wholly before this one: kept as they are
            s, d = f_starts[i], f_datas[i]
            if s + shift + len(d) > b_start:
                break
            e = f_ends[i]
            starts.append(s)
            ends.append(e)
            datas.append(d)
            shift += len(d) - e + s
            i += 1
        head: bytes | memoryview = b""
        if i < n and f_starts[i] + shift < b_start:  # it starts within first's hunk i's bytes
            start = f_starts[i]
            head = f_datas[i][: b_start - start - shift]
        else:
            start = b_start - shift
        end = -1
        while i < n:  # first's hunks it covers: their base spans join its own
            s, d = f_starts[i], f_datas[i]
            at = s + shift
            if at >= b_end:
                break
            if at + len(d) > b_end:  # it ends within hunk i's bytes: the rest stays a hunk
                cut = b_end - at  # (the rest as a view once long: copied, each cut recopied it)
                f_datas[i] = d[cut:] if len(d) - cut < VIEW_FROM else memoryview(d)[cut:]
                shift = b_end - s
                end = s
                break
            shift += len(d) - f_ends[i] + s
            i += 1
        if end < 0:
            end = b_end - shift
        if head:
            data = b"".join((head, data))
        if data or start != end:
            starts.append(start)
            ends.append(end)
            datas.append(data)
    return starts + f_starts[i:], ends + f_ends[i:], datas + f_datas[i:]


def _applied(text: bytes, hunks: Hunks, lo: int, hi: int) -> bytes:
    """``text`` with checked hunks ``lo`` to ``hi - 1`` applied: one join of its slices and the
    hunks' bytes."""
    starts, ends, datas = hunks
    view = memoryview(text)
    parts: list[bytes | memoryview] = []
    pos = 0
    for k in range(lo, hi):
        parts.append(view[pos : starts[k]])
        parts.append(datas[k])
        pos = ends[k]
    parts.append(view[pos:])
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
    hunks, cuts, _ = _checked_chain(deltas, base_length, MAX_TEXT_SIZE)
    if len(cuts) == 1:
        return b""
    return b"".join(HUNK_HEADER.pack(start, end, len(data)) + data
                    for start, end, data in zip(*_folded(hunks, cuts, 0, len(cuts) - 1)))


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
