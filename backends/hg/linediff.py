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
"""

from __future__ import annotations

import difflib
import itertools
import re
from bisect import bisect_left
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
    runs.append([an, an, bn, bn])
    # slide each change towards the end while the line after the run before it equals the one
    # after it on the other side
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
