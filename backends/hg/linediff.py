"""Mercurial's line matching: the runs of equal lines between two texts that ``hg diff``,
``hg annotate`` and hgweb build on, found as Mercurial finds them so that a diff or an annotation
served by hgwire cuts where ``hg serve``'s does.

Where several alignments are equally good (repeated lines, a line moved), the choice is
Mercurial's, not the shortest edit script's:

- the lines of the new text are put in classes of equal lines; a class holding more lines than a
  threshold (``1,000,000 / (lines + 1)``, or ``lines / 1,000`` past 31,000 lines) is *popular*:
  its lines never start a match, they only lengthen one;
- within a region, the longest run of equal lines wins; among runs as long, one whose old start
  is nearer the region's middle (from the top half), then, for the same old line, the new line
  nearest the start; the search reads at most the last 30,000 old lines of a region;
- the match is lengthened over the equal (popular) lines that follow it, then the regions before
  and after it are matched the same way, before first;
- the runs are then pushed towards the end where a change between two of them can slide.

``blocks`` answers ``[(old start, old end, new start, new end), ...]``, the last one the empty run
at both ends, as Mercurial's ``bdiff.blocks``.  Pure; a pair of texts is read whole.  A search in
Python costs about a hundred times Mercurial's C: past ``MAX_STEPS`` steps (texts of tens of
thousands of lines drawn from a few distinct ones, changed all over) the answer is difflib's
longest-match diff instead, valid but maybe cut otherwise than hg's.

``hinted_blocks`` gives the same answer from runs the texts are thought to share (annotate's: a
stored delta's unchanged lines), searching only the regions where no such run is proven to be the
search's pick: a small edit of a long file costs its changed lines, not the file.
"""

from __future__ import annotations

import difflib
import itertools
import re
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

WINDOW = 30000
"""Old lines a region's search reads at most (its last ones)."""

MAX_STEPS = 10_000_000
"""Candidate pairs of lines the search may weigh for one pair of texts (a few seconds)."""
MAX_EXACT_LINES = 2000
"""In the fallback: past this many changed lines on each side (their product; once the common
start and end are set aside) difflib's popular-line heuristic (autojunk) is used, as its exact
search is quadratic (20,000 equal lines took a minute)."""

Block = tuple[int, int, int, int]


class _TooCostly(Exception):
    """The search passed ``MAX_STEPS``."""


def split_lines(text: bytes) -> list[bytes]:
    """The lines of ``text``, each with its newline (the last may have none); no line for b""."""
    parts = text.split(b"\n")
    lines = [part + b"\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def clean_whitespace(text: bytes, ignore_all: bool = False, ignore_amount: bool = False,
                     ignore_eol: bool = False) -> bytes:
    """A text as hg compares it under its whitespace switches (lines are neither added nor
    removed): ``ignore_all`` drops spaces, tabs and carriage returns; else ``ignore_amount`` makes
    each run of them one space and drops one before a newline; ``ignore_eol`` drops those (and form
    feeds) before a newline."""
    if ignore_all:
        text = re.sub(rb"[ \t\r]+", b"", text)
    elif ignore_amount:
        text = re.sub(rb"[ \t\r]+", b" ", text).replace(b" \n", b"\n")
    if ignore_eol:
        text = re.sub(rb"[ \t\r\f]+\n", b"\n", text)
    return text


@dataclass(frozen=True)
class Whitespace:
    """hg's whitespace switches (``[diff]``, ``[annotate]``, hgweb's ``?ignorews=``...): lines that
    differ only by their whitespace are matched once ``clean``; with ``ignoreblanklines`` a change
    whose sides differ only by blank lines is not one (``blank_only``, hg's ``~`` blocks)."""

    ignorews: bool = False
    ignorewsamount: bool = False
    ignorewseol: bool = False
    ignoreblanklines: bool = False

    @property
    def cleans(self) -> bool:
        """Whether ``clean`` changes any text."""
        return self.ignorews or self.ignorewsamount or self.ignorewseol

    def clean(self, text: bytes) -> bytes:
        """hg's ``wsclean`` of a whole text (its lines kept)."""
        return clean_whitespace(text, self.ignorews, self.ignorewsamount, self.ignorewseol)

    def blank_only(self, old: Sequence[bytes], new: Sequence[bytes]) -> bool:
        """Whether two runs of lines are the same once cleaned and their blank lines dropped."""
        def cleaned(lines: Sequence[bytes]) -> bytes:
            text = clean_whitespace(b"".join(lines), self.ignorews, self.ignorewsamount)
            text = re.sub(rb"\n+", b"\n", text).strip(b"\n")
            return clean_whitespace(text, ignore_eol=self.ignorewseol)

        return cleaned(old) == cleaned(new)


def _half(total: int) -> int:
    """``total / 2`` rounded towards zero (a region's middle, as an index)."""
    return total // 2 if total >= 0 else -(-total // 2)


class _Matcher:
    """The state of one comparison: line classes, each class's new positions, and the memo of
    the match that ends at each new line (kept across regions, as the search relies on it)."""

    def __init__(self, old: Sequence[bytes], new: Sequence[bytes]) -> None:
        classes: dict[bytes, int] = {}
        self.new_class = [classes.setdefault(line, len(classes)) for line in new]
        positions: list[list[int]] = [[] for _ in classes]
        for index, cls in enumerate(self.new_class):
            positions[cls].append(index)
        count = len(new)
        threshold = count // 1000 if count >= 31000 else 1000000 // (count + 1)
        # an old line absent from the new text gets class -1, equal to no new line
        self.old_class = [classes.get(line, -1) for line in old]
        self.chains: list[list[int] | None] = [
            None if cls < 0 or len(positions[cls]) > threshold else positions[cls] for cls in self.old_class]
        self.memo_old = [0] * count  # as zeroed memory: an untouched entry reads as old line 0, length 0
        self.memo_len = [0] * count
        self.steps = 0

    def longest(self, a1: int, a2: int, b1: int, b2: int) -> tuple[int, int, int]:
        """(old start, new start, length) of the match this region's search picks (length 0: none)."""
        old_class, new_class, chains = self.old_class, self.new_class, self.chains
        memo_old, memo_len = self.memo_old, self.memo_len
        best_i, best_j, best_k = a1, b1, 0
        if a2 - a1 > WINDOW:
            a1 = a2 - WINDOW
        half, bhalf = _half(a1 + a2 - 1), _half(b1 + b2 - 1)
        self.steps += a2 - a1
        if self.steps > MAX_STEPS:
            raise _TooCostly
        for i in range(a1, a2):
            chain = chains[i]
            if chain is None:
                continue
            index = start = bisect_left(chain, b2) - 1
            while index >= 0:
                j = chain[index]
                if j < b1:
                    break
                index -= 1
                # how far back does the run ending at (i, j) go?
                k = 1
                while j - k >= b1 and i - k >= a1:
                    if memo_old[j - k] == i - k:
                        k += memo_len[j - k]
                        break
                    if old_class[i - k] != new_class[j - k]:
                        break
                    k += 1
                memo_old[j] = i
                memo_len[j] = k
                if k > best_k:
                    best_i, best_j, best_k = i, j, k
                elif k == best_k:
                    if best_i < i <= half and j > b1:
                        best_i, best_j = i, j
                    elif i == best_i and (best_j > bhalf or i == a1):
                        best_j = j
            self.steps += start - index
            if self.steps > MAX_STEPS:
                raise _TooCostly
        if best_k:
            best_i -= best_k - 1
            best_j -= best_k - 1
        while (best_i + best_k < a2 and best_j + best_k < b2
               and old_class[best_i + best_k] == new_class[best_j + best_k]):
            best_k += 1
        return best_i, best_j, best_k

    def runs(self, old_count: int, new_count: int) -> list[list[int]]:
        """The matches of the whole texts in order: each region's match after those before it."""
        out: list[list[int]] = []
        # explicit stack instead of recursion (thousands of changes would nest that deep); the
        # searches run in the same order as the recursive form, which the memo depends on
        stack: list[tuple[int, int, int, int] | list[int]] = [(0, old_count, 0, new_count)]
        while stack:
            item = stack.pop()
            if isinstance(item, list):
                out.append(item)
                continue
            a1, a2, b1, b2 = item
            i, j, k = self.longest(a1, a2, b1, b2)
            if k:
                stack.append((i + k, a2, j + k, b2))
                stack.append([i, i + k, j, j + k])
                stack.append((a1, i, b1, j))
        return out


def blocks(old: Sequence[bytes], new: Sequence[bytes]) -> list[Block]:
    """The equal runs between two texts given as lines (``split_lines``), Mercurial's way (see the
    module): ``(old start, old end, new start, new end)`` in order, the last ``(len(old),
    len(old), len(new), len(new))``; some runs may be empty."""
    an, bn = len(old), len(new)
    try:
        runs = _Matcher(old, new).runs(an, bn)
    except _TooCostly:
        runs = generic_runs(old, new)
    return _slid(runs, old, new)


def _slid(runs: list[list[int]], old: Sequence[bytes], new: Sequence[bytes]) -> list[Block]:
    """The runs, closed by the empty one at both ends, each change slid towards the end while the
    line after the run before it equals the one after it on the other side."""
    an, bn = len(old), len(new)
    runs.append([an, an, bn, bn])
    for here, after in itertools.pairwise(runs):
        if here[1] == after[0] or here[3] == after[2]:
            while (here[1] < an and here[3] < bn and after[0] < after[1] and after[2] < after[3]
                   and old[here[1]] == new[here[3]]):
                here[1] += 1
                after[0] += 1
                here[3] += 1
                after[2] += 1
    return [(a1, a2, b1, b2) for a1, a2, b1, b2 in runs]


def text_blocks(old: bytes, new: bytes) -> list[Block]:
    """``blocks`` of two texts."""
    return blocks(split_lines(old), split_lines(new))


def generic_runs(old: Sequence[bytes], new: Sequence[bytes]) -> list[list[int]]:
    """The equal runs difflib finds (without the closing empty one), after the common first and
    last lines: the answer past ``MAX_STEPS``, valid but not always cut where hg cuts."""
    limit = min(len(old), len(new))
    prefix = 0
    while prefix < limit and old[prefix] == new[prefix]:
        prefix += 1
    suffix = 0
    while suffix < limit - prefix and old[len(old) - 1 - suffix] == new[len(new) - 1 - suffix]:
        suffix += 1
    middle_old, middle_new = old[prefix:len(old) - suffix], new[prefix:len(new) - suffix]
    exact = len(middle_old) * len(middle_new) <= MAX_EXACT_LINES * MAX_EXACT_LINES
    matcher = difflib.SequenceMatcher(None, middle_old, middle_new, autojunk=not exact)
    runs = [[0, prefix, 0, prefix]] if prefix else []
    runs += [[a + prefix, a + prefix + size, b + prefix, b + prefix + size]
             for a, b, size in matcher.get_matching_blocks() if size]
    if suffix:
        runs.append([len(old) - suffix, len(old), len(new) - suffix, len(new)])
    return runs


Run = tuple[int, int, int]
"""(old start, new start, length) of lines equal on both sides."""

MAX_PROBES = 16
"""Pieces of a region's old lines ``hinted_blocks`` looks for in its new lines to prove its longest
run; a region that would need more (a short run in a long region) is searched instead."""


@dataclass
class Lines:
    """A text's lines as they are compared, with the text they were split from and where each
    line starts in it (``offsets``: one more than the lines, the text's length last), for
    ``hinted_blocks``.  ``lines`` are keys, equal where the lines are: each line without its
    newline, a last line that has none with one (no other key holds a newline)."""

    lines: list[bytes]
    text: bytes
    offsets: list[int]
    repeats: int | None = None
    """At least as many as the most frequent line's copies (None: not known)."""

    @classmethod
    def of(cls, text: bytes) -> Lines:
        lines = text.split(b"\n")
        if lines[-1]:
            lines[-1] += b"\n"
        else:
            lines.pop()
        offsets = list(itertools.accumulate(map(_ONE.__add__, map(len, lines)), initial=0))
        offsets[-1] = len(text)
        return cls(lines, text, offsets)

    def most_repeated(self) -> int:
        """How many times the most frequent line is there (1 for lines all unlike)."""
        lines = self.lines
        if len(set(lines)) == len(lines):
            self.repeats = 1 if lines else 0
        else:
            self.repeats = Counter(lines).most_common(1)[0][1]
        return self.repeats


_ONE = 1


def trimmed_hints(old: Lines, new: Lines) -> list[Run]:
    """The lines both texts start with and end with, as runs (found on the bytes)."""
    limit = min(len(old.text), len(new.text))
    start = common_prefix(old.text, new.text, limit)
    prefix = min(bisect_right(old.offsets, start), bisect_right(new.offsets, start)) - 1
    end = common_suffix(old.text, new.text, limit)
    an, bn = len(old.lines), len(new.lines)
    suffix = min(an - bisect_left(old.offsets, len(old.text) - end, 0, an),
                 bn - bisect_left(new.offsets, len(new.text) - end, 0, bn), min(an, bn) - prefix)
    hints = [(0, 0, prefix)] if prefix > 0 else []
    if suffix > 0:
        hints.append((an - suffix, bn - suffix, suffix))
    return hints


def hinted_blocks(old: Lines, new: Lines, hints: Sequence[Run]) -> list[Block]:
    """``blocks(old.lines, new.lines)``, the same answer, from runs the texts are thought to share
    (a stored delta's unchanged lines, or the common start and end: ``hints``, checked, never
    trusted) without searching the whole texts.

    Mercurial's search (see the module) picks a region's longest run, then goes on before and
    after it; where no line is popular and the regions fit the window, what it picks in a region
    depends on that region's lines only.  So each region takes its longest hint, lengthened over
    the equal lines around it, when no other run as long is in the region: proven by looking for
    each piece of half its length of the region's old lines (pieces that any run as long holds
    one of whole) in the region's new bytes, found only on the run itself.  A region with no hint,
    or whose proof fails, is searched as ``blocks`` searches it."""
    an, bn = len(old.lines), len(new.lines)
    if max(an, bn) > WINDOW:
        return blocks(old.lines, new.lines)
    hints = _checked(old, new, _clipped(hints, 0, an, 0, bn))
    if bn >= 1000:  # the threshold a line is popular past is below the lines' count
        if old.repeats is not None:  # the new lines outside the runs are all that can add copies
            bound = old.repeats + bn - sum(k for _i, _j, k in hints)
            if new.repeats is None or bound < new.repeats:
                new.repeats = bound
        threshold = 1000000 // (bn + 1)
        if (new.repeats is None or new.repeats > threshold) and new.most_repeated() > threshold:
            return blocks(old.lines, new.lines)
    runs: list[list[int]] = []
    stack: list[tuple[int, int, int, int, list[Run]] | list[int]] = [(0, an, 0, bn, hints)]
    steps = 0
    try:
        while stack:
            item = stack.pop()
            if isinstance(item, list):
                runs.append(item)
                continue
            a1, a2, b1, b2, inside = item
            if a1 == a2 or b1 == b2:
                continue
            found = _proven_longest(old, new, (a1, a2, b1, b2), inside) if inside else None
            if found is None:
                matcher = _Matcher(old.lines[a1:a2], new.lines[b1:b2])
                matcher.steps = steps
                runs.extend([i + a1, i2 + a1, j + b1, j2 + b1] for i, i2, j, j2 in matcher.runs(a2 - a1, b2 - b1))
                steps = matcher.steps
                continue
            i, j, k = found
            stack.append((i + k, a2, j + k, b2, _clipped(inside, i + k, a2, j + k, b2)))
            stack.append([i, i + k, j, j + k])
            stack.append((a1, i, b1, j, _clipped(inside, a1, i, b1, j)))
    except _TooCostly:
        return blocks(old.lines, new.lines)
    return _slid(runs, old.lines, new.lines)


def _checked(old: Lines, new: Lines, hints: Sequence[Run]) -> list[Run]:
    """The runs that are runs of equal lines, in order on both sides and apart (others left out)."""
    out = []
    old_end = new_end = 0
    for i, j, k in sorted(hints):
        if i >= old_end and j >= new_end and old.lines[i:i + k] == new.lines[j:j + k]:
            out.append((i, j, k))
            old_end, new_end = i + k, j + k
    return out


def _clipped(hints: Sequence[Run], a1: int, a2: int, b1: int, b2: int) -> list[Run]:
    """The parts of the runs inside a region."""
    out = []
    for i, j, k in hints:
        low, high = max(0, a1 - i, b1 - j), min(k, a2 - i, b2 - j)
        if high > low:
            out.append((i + low, j + low, high - low))
    return out


def _proven_longest(old: Lines, new: Lines, region: Block, hints: Sequence[Run]) -> Run | None:
    """The run Mercurial's search picks in a region when it is the longest hint, lengthened, and
    no other run is as long; None when that is not proven."""
    a1, a2, b1, b2 = region
    i, j, k = max(hints, key=lambda run: run[2])
    while i > a1 and j > b1 and old.lines[i - 1] == new.lines[j - 1]:
        i, j, k = i - 1, j - 1, k + 1
    while i + k < a2 and j + k < b2 and old.lines[i + k] == new.lines[j + k]:
        k += 1
    span = a2 - a1
    if span < 2 * k:  # every run of k lines in the region holds the lines from a2 - k to a1 + k
        size = 2 * k - span
        firsts: Sequence[int] = (a2 - k,)
    else:  # any run of k lines holds one piece of ``size`` lines starting at a1 + n * size whole
        size = (k + 1) // 2
        if span // size > MAX_PROBES:
            return None
        firsts = range(a1, a1 + span // size * size, size)
    old_lines, new_lines = old.lines, new.lines
    old_text, new_text, old_at, new_at = old.text, new.text, old.offsets, new.offsets
    low = new_at[b1]
    looks = MAX_PROBES * 4
    for first in firsts:
        # where the piece's first lines are (up to a few hundred bytes): where it may be
        start = old_at[first]
        piece = old_text[start:old_at[max(first + 1, min(first + size, bisect_right(old_at, start + 256) - 1))]]
        high = new_at[b2] - (old_at[first + size] - start) + len(piece)
        expected = new_at[first - i + j] if i <= first and first + size <= i + k else -1
        where = new_text.find(piece, low, high)
        while where >= 0:
            if where != expected and (where == low or new_text[where - 1] == 0x0A):
                # the run of lines this copy of the piece is part of, if it is one
                looks -= 1
                if looks < 0:
                    return None
                at = bisect_left(new_at, where, b1, b2)
                if old_lines[first:first + size] == new_lines[at:at + size]:
                    start, start_new = first, at
                    while start > a1 and start_new > b1 and old_lines[start - 1] == new_lines[start_new - 1]:
                        start, start_new = start - 1, start_new - 1
                    end, end_new = first + size, at + size
                    while end < a2 and end_new < b2 and old_lines[end] == new_lines[end_new]:
                        end, end_new = end + 1, end_new + 1
                    if end - start >= k and (start, start_new) != (i, j):
                        return None  # another run as long
            where = new_text.find(piece, where + 1, high)
    return i, j, k


_BLOCK = 4096
"""Bytes compared at a time before the binary search (one C-level comparison a block)."""


def common_prefix(old: bytes, new: bytes, limit: int) -> int:
    """Length of the common prefix: block-wise, then a binary search inside the first differing block."""
    a, b = memoryview(old), memoryview(new)
    pos = 0
    while pos + _BLOCK <= limit and a[pos : pos + _BLOCK] == b[pos : pos + _BLOCK]:
        pos += _BLOCK
    lo, hi = pos, min(pos + _BLOCK, limit)
    while lo < hi:  # invariant: old[:lo] == new[:lo]
        mid = (lo + hi + 1) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def common_suffix(old: bytes, new: bytes, limit: int) -> int:
    """Length of the common suffix, at most ``limit`` so it never overlaps the prefix."""
    a, b = memoryview(old), memoryview(new)
    lo_a, lo_b = len(old), len(new)
    n = 0
    while n + _BLOCK <= limit and a[lo_a - n - _BLOCK : lo_a - n] == b[lo_b - n - _BLOCK : lo_b - n]:
        n += _BLOCK
    lo, hi = n, min(n + _BLOCK, limit)
    while lo < hi:  # invariant: the last ``lo`` bytes are equal
        mid = (lo + hi + 1) // 2
        if a[lo_a - mid : lo_a - lo] == b[lo_b - mid : lo_b - lo]:
            lo = mid
        else:
            hi = mid - 1
    return lo
