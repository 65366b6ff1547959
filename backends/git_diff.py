"""Line matching as git's own diff places changes, for the git pages (diffs and annotations).

Two correct diffs of the same texts can differ where lines repeat (blank lines, closing
braces): which of the equal lines is the kept one.  git's answer comes from its xdiff library,
and a page that shows a commit's diff or a file's annotation should agree with ``git show`` and
``git blame``.  This module follows the steps xdiff takes by default (git 2.39, no options), as
its documentation and sources describe them; the code is our own:

1. Lines are classes of equal bytes (the line's end included).  The common first and last lines
   are set aside.  A line that has no equal on the other side is changed outright; a line with
   very many equals (at least ``isqrt``-like ``_bogosqrt`` of the count, at most 1024) is also
   taken out when it sits inside a run of such lines and lines without equals ("multimatch"
   lines among changes); the others are compared.
2. Myers' O(ND) comparison, divide and conquer: the middle snake of forward and backward
   searches splits the box.  Past an edit cost of ``max(_bogosqrt(diagonals), 256)`` the search
   gives up on the minimal answer and splits at the furthest reaching path; past a cost of 256,
   a diagonal with a snake of 20 or more lines far enough along is taken (xdiff's heuristics,
   which bound the work on large files and shape the answer there).
3. Each group of changed lines is slid up and down over equal lines, merging with neighbours;
   a group that can line up with a change of the other side does; otherwise the indent
   heuristic (git's default since 2.14) scores each position by the blank lines and
   indentation around it and keeps the best.

``blocks(old, new)`` answers in ``backends.hg.linediff``'s shape: the equal runs, in order, the
last one empty at the texts' ends.  Python costs about a hundred times git's C: past ``MAX_STEPS``
steps (two unlike texts of tens of thousands of lines drawn from few distinct ones take seconds
of git's own time, minutes of ours) the answer is Mercurial's matching instead, a valid diff whose
changes may sit elsewhere among repeated lines, so that no page holds a worker for long.
"""

from __future__ import annotations

from collections.abc import Sequence

from backends.hg import linediff
from backends.hg.linediff import split_lines

Block = tuple[int, int, int, int]

# xdiff's limits: equals past which a line is a "multimatch" one (at most), the window of the scan
# around it, the share of multimatch lines in a run of changes that keeps one, the search's least
# cost bound, the cost past which long snakes are looked for, a long snake's length, and the weight
# of a diagonal's reach against the cost
MAX_EQLIMIT = 1024
SIMSCAN_WINDOW = 100
KPDIS_RUN = 4
MAX_COST_MIN = 256
HEUR_MIN_COST = 256
SNAKE_CNT = 20
K_HEUR = 4
LINE_MAX = 1 << 62
"""Past any line number: the backward search's "not reached" diagonal value."""

# the indent heuristic's scores (git's xdiffi.c names them so)
MAX_INDENT = 200
MAX_BLANKS = 20
INDENT_HEURISTIC_MAX_SLIDING = 100
START_OF_FILE_PENALTY = 1
END_OF_FILE_PENALTY = 21
TOTAL_BLANK_WEIGHT = -30
POST_BLANK_WEIGHT = 6
RELATIVE_INDENT_PENALTY = -4
RELATIVE_INDENT_WITH_BLANK_PENALTY = 10
RELATIVE_OUTDENT_PENALTY = 24
RELATIVE_OUTDENT_WITH_BLANK_PENALTY = 17
RELATIVE_DEDENT_PENALTY = 23
RELATIVE_DEDENT_WITH_BLANK_PENALTY = 17
INDENT_WEIGHT = 60

MAX_STEPS = 10_000_000
"""Lines looked at (in the cleanup's scans, the searches' diagonals and snakes) before giving up."""


class _TooCostly(Exception):
    """The comparison passed ``MAX_STEPS``."""


class _Budget:
    """The steps one comparison has taken (``_TooCostly`` past ``MAX_STEPS``)."""

    def __init__(self) -> None:
        self.steps = 0

    def spend(self, steps: int) -> None:
        self.steps += steps
        if self.steps > MAX_STEPS:
            raise _TooCostly


_SPACES = frozenset(b" \t\n\v\f\r")


def _bogosqrt(n: int) -> int:
    """xdiff's cheap square root: a power of two near ``sqrt(n)``."""
    i = 1
    while n > 0:
        i <<= 1
        n >>= 2
    return i


class _Side:
    """One text's lines as classes, which lines are changed (``changed[i]``, with a False
    sentinel at each end: ``changed[0]`` is before the first line) and the compared subset."""

    def __init__(self, lines: Sequence[bytes], classes: list[int]) -> None:
        self.lines = lines
        self.classes = classes
        self.count = len(classes)
        self.changed = bytearray(self.count + 2)
        self.kept: list[int] = []      # indexes of the lines compared
        self.kept_classes: list[int] = []

    def is_changed(self, i: int) -> bool:
        return bool(self.changed[i + 1])

    def mark(self, i: int, value: int) -> None:
        self.changed[i + 1] = value


def _classify(old: Sequence[bytes], new: Sequence[bytes]) -> tuple[_Side, _Side, list[int], list[int]]:
    ids: dict[bytes, int] = {}
    old_classes = [ids.setdefault(line, len(ids)) for line in old]
    new_classes = [ids.setdefault(line, len(ids)) for line in new]
    in_old = [0] * len(ids)
    in_new = [0] * len(ids)
    for c in old_classes:
        in_old[c] += 1
    for c in new_classes:
        in_new[c] += 1
    return _Side(old, old_classes), _Side(new, new_classes), in_old, in_new


def _clean_mmatch(dis: list[int], i: int, start: int, end: int, budget: _Budget) -> bool:
    """Whether multimatch line ``i`` sits among lines without equals (then it is taken out)."""
    if i - start > SIMSCAN_WINDOW:
        start = i - SIMSCAN_WINDOW
    if end - i > SIMSCAN_WINDOW:
        end = i + SIMSCAN_WINDOW
    r, rdis0, rpdis0 = 1, 0, 1
    while i - r >= start:
        if not dis[i - r]:
            rdis0 += 1
        elif dis[i - r] == 2:
            rpdis0 += 1
        else:
            break
        r += 1
    budget.spend(r)
    if rdis0 == 0:
        return False
    r, rdis1, rpdis1 = 1, 0, 1
    while i + r <= end:
        if not dis[i + r]:
            rdis1 += 1
        elif dis[i + r] == 2:
            rpdis1 += 1
        else:
            break
        r += 1
    budget.spend(r)
    if rdis1 == 0:
        return False
    rdis1 += rdis0
    rpdis1 += rpdis0
    return rpdis1 * KPDIS_RUN < rpdis1 + rdis1


def _prepare(a: _Side, b: _Side, in_old: list[int], in_new: list[int], budget: _Budget) -> None:
    """Set aside the common ends; mark lines without equals changed; pick the lines compared."""
    limit = min(a.count, b.count)
    start = 0
    while start < limit and a.classes[start] == b.classes[start]:
        start += 1
    tail = 0
    while tail < limit - start and a.classes[a.count - 1 - tail] == b.classes[b.count - 1 - tail]:
        tail += 1
    for side, others in ((a, in_new), (b, in_old)):
        end = side.count - tail - 1
        mlim = min(_bogosqrt(side.count), MAX_EQLIMIT)
        dis = [0] * (side.count + 1)
        for i in range(start, end + 1):
            nm = others[side.classes[i]]
            dis[i] = 0 if nm == 0 else 2 if nm >= mlim else 1
        for i in range(start, end + 1):
            if dis[i] == 1 or (dis[i] == 2 and not _clean_mmatch(dis, i, start, end, budget)):
                side.kept.append(i)
                side.kept_classes.append(side.classes[i])
            else:
                side.mark(i, 1)


class _Compare:
    """Myers' comparison of the kept lines, marking the changed ones."""

    def __init__(self, a: _Side, b: _Side, budget: _Budget) -> None:
        self.a, self.b = a, b
        self.budget = budget
        self.ha1, self.ha2 = a.kept_classes, b.kept_classes
        ndiags = len(self.ha1) + len(self.ha2) + 3
        self.offset = len(self.ha2) + 1
        self.kvdf = [0] * (2 * ndiags + 2)
        self.kvdb = [0] * (2 * ndiags + 2)
        self.mxcost = max(_bogosqrt(ndiags), MAX_COST_MIN)

    def run(self) -> None:
        stack = [(0, len(self.ha1), 0, len(self.ha2), False)]
        while stack:
            off1, lim1, off2, lim2, need_min = stack.pop()
            ha1, ha2 = self.ha1, self.ha2
            while off1 < lim1 and off2 < lim2 and ha1[off1] == ha2[off2]:
                off1 += 1
                off2 += 1
            while off1 < lim1 and off2 < lim2 and ha1[lim1 - 1] == ha2[lim2 - 1]:
                lim1 -= 1
                lim2 -= 1
            if off1 == lim1:
                for k in range(off2, lim2):
                    self.b.mark(self.b.kept[k], 1)
            elif off2 == lim2:
                for k in range(off1, lim1):
                    self.a.mark(self.a.kept[k], 1)
            else:
                i1, i2, min_lo, min_hi = self.split_lines(off1, lim1, off2, lim2, need_min)
                # the low half first, as xdiff's recursion (the marks do not depend on the order)
                stack.append((i1, lim1, i2, lim2, min_hi))
                stack.append((off1, i1, off2, i2, min_lo))

    def split_lines(self, off1: int, lim1: int, off2: int, lim2: int, need_min: bool) -> tuple[int, int, bool, bool]:
        ha1, ha2 = self.ha1, self.ha2
        o = self.offset
        kvdf, kvdb = self.kvdf, self.kvdb
        dmin, dmax = off1 - lim2, lim1 - off2
        fmid, bmid = off1 - off2, lim1 - lim2
        odd = (fmid - bmid) & 1
        fmin = fmax = fmid
        bmin = bmax = bmid
        kvdf[o + fmid] = off1
        kvdb[o + bmid] = lim1
        ec = 0
        while True:
            ec += 1
            got_snake = False
            steps = fmax - fmin + bmax - bmin + 4  # this round's diagonals, and its snakes below
            if fmin > dmin:
                fmin -= 1
                kvdf[o + fmin - 1] = -1
            else:
                fmin += 1
            if fmax < dmax:
                fmax += 1
                kvdf[o + fmax + 1] = -1
            else:
                fmax -= 1
            for d in range(fmax, fmin - 1, -2):
                if kvdf[o + d - 1] >= kvdf[o + d + 1]:
                    i1 = kvdf[o + d - 1] + 1
                else:
                    i1 = kvdf[o + d + 1]
                prev1 = i1
                i2 = i1 - d
                while i1 < lim1 and i2 < lim2 and ha1[i1] == ha2[i2]:
                    i1 += 1
                    i2 += 1
                snake = i1 - prev1
                steps += snake
                if snake > SNAKE_CNT:
                    got_snake = True
                kvdf[o + d] = i1
                if odd and bmin <= d <= bmax and kvdb[o + d] <= i1:
                    return i1, i2, True, True
            if bmin > dmin:
                bmin -= 1
                kvdb[o + bmin - 1] = LINE_MAX
            else:
                bmin += 1
            if bmax < dmax:
                bmax += 1
                kvdb[o + bmax + 1] = LINE_MAX
            else:
                bmax -= 1
            for d in range(bmax, bmin - 1, -2):
                if kvdb[o + d - 1] < kvdb[o + d + 1]:
                    i1 = kvdb[o + d - 1]
                else:
                    i1 = kvdb[o + d + 1] - 1
                prev1 = i1
                i2 = i1 - d
                while i1 > off1 and i2 > off2 and ha1[i1 - 1] == ha2[i2 - 1]:
                    i1 -= 1
                    i2 -= 1
                snake = prev1 - i1
                steps += snake
                if snake > SNAKE_CNT:
                    got_snake = True
                kvdb[o + d] = i1
                if not odd and fmin <= d <= fmax and i1 <= kvdf[o + d]:
                    return i1, i2, True, True
            self.budget.spend(steps)
            if need_min:
                continue
            if got_snake and ec > HEUR_MIN_COST:
                found = self._interesting(off1, lim1, off2, lim2, ec, fmin, fmax, fmid, bmin, bmax, bmid)
                if found is not None:
                    return found
            if ec >= self.mxcost:
                return self._furthest(off1, lim1, off2, lim2, fmin, fmax, bmin, bmax)

    def _interesting(self, off1: int, lim1: int, off2: int, lim2: int, ec: int, fmin: int, fmax: int, fmid: int,
                     bmin: int, bmax: int, bmid: int) -> tuple[int, int, bool, bool] | None:
        """xdiff's heuristic past a cost of 256: a far-reaching diagonal ending in a long snake."""
        ha1, ha2, o = self.ha1, self.ha2, self.offset
        best, at = 0, (0, 0)
        for d in range(fmax, fmin - 1, -2):
            dd = d - fmid if d > fmid else fmid - d
            i1 = self.kvdf[o + d]
            i2 = i1 - d
            v = (i1 - off1) + (i2 - off2) - dd
            if (v > K_HEUR * ec and v > best and off1 + SNAKE_CNT <= i1 < lim1
                    and off2 + SNAKE_CNT <= i2 < lim2):
                k = 1
                while ha1[i1 - k] == ha2[i2 - k]:
                    if k == SNAKE_CNT:
                        best, at = v, (i1, i2)
                        break
                    k += 1
        if best > 0:
            return at[0], at[1], True, False
        for d in range(bmax, bmin - 1, -2):
            dd = d - bmid if d > bmid else bmid - d
            i1 = self.kvdb[o + d]
            i2 = i1 - d
            v = (lim1 - i1) + (lim2 - i2) - dd
            if (v > K_HEUR * ec and v > best and off1 < i1 <= lim1 - SNAKE_CNT
                    and off2 < i2 <= lim2 - SNAKE_CNT):
                k = 0
                while ha1[i1 + k] == ha2[i2 + k]:
                    if k == SNAKE_CNT - 1:
                        best, at = v, (i1, i2)
                        break
                    k += 1
        if best > 0:
            return at[0], at[1], False, True
        return None

    def _furthest(self, off1: int, lim1: int, off2: int, lim2: int, fmin: int, fmax: int, bmin: int,
                  bmax: int) -> tuple[int, int, bool, bool]:
        """Enough: split at the furthest reaching path of either search."""
        o = self.offset
        fbest = fbest1 = -1
        for d in range(fmax, fmin - 1, -2):
            i1 = min(self.kvdf[o + d], lim1)
            i2 = i1 - d
            if lim2 < i2:
                i1, i2 = lim2 + d, lim2
            if fbest < i1 + i2:
                fbest, fbest1 = i1 + i2, i1
        bbest = bbest1 = LINE_MAX
        for d in range(bmax, bmin - 1, -2):
            i1 = max(off1, self.kvdb[o + d])
            i2 = i1 - d
            if i2 < off2:
                i1, i2 = off2 + d, off2
            if i1 + i2 < bbest:
                bbest, bbest1 = i1 + i2, i1
        if (lim1 + lim2) - bbest < fbest - (off1 + off2):
            return fbest1, fbest - fbest1, True, False
        return bbest1, bbest - bbest1, False, True


def _indent(line: bytes) -> int:
    """Columns of leading whitespace (a tab to the next multiple of 8), -1 for a blank line."""
    ret = 0
    for c in line:
        if c not in _SPACES:
            return ret
        if c == 0x20:
            ret += 1
        elif c == 0x09:
            ret += 8 - ret % 8
        if ret >= MAX_INDENT:
            return MAX_INDENT
    return -1


def _split_score(side: _Side, split: int, indents: list[int]) -> tuple[int, int]:
    """(effective indent, penalty) of cutting ``side`` before line ``split``."""
    count = side.count
    if split >= count:
        end_of_file, indent = True, -1
    else:
        end_of_file, indent = False, indents[split]
    pre_blank, pre_indent = _nearest_indent(indents, range(split - 1, -1, -1))
    post_blank, post_indent = _nearest_indent(indents, range(split + 1, count))
    penalty = 0
    if pre_indent == -1 and pre_blank == 0:
        penalty += START_OF_FILE_PENALTY
    if end_of_file:
        penalty += END_OF_FILE_PENALTY
    blank_after = 1 + post_blank if indent == -1 else 0
    total_blank = pre_blank + blank_after
    penalty += TOTAL_BLANK_WEIGHT * total_blank + POST_BLANK_WEIGHT * blank_after
    effective = indent if indent != -1 else post_indent
    any_blanks = total_blank != 0
    if effective == -1 or pre_indent == -1:
        pass
    elif effective > pre_indent:
        penalty += RELATIVE_INDENT_WITH_BLANK_PENALTY if any_blanks else RELATIVE_INDENT_PENALTY
    elif effective < pre_indent:
        if post_indent != -1 and post_indent > effective:
            penalty += RELATIVE_OUTDENT_WITH_BLANK_PENALTY if any_blanks else RELATIVE_OUTDENT_PENALTY
        else:
            penalty += RELATIVE_DEDENT_WITH_BLANK_PENALTY if any_blanks else RELATIVE_DEDENT_PENALTY
    return effective, penalty


def _nearest_indent(indents: list[int], lines: range) -> tuple[int, int]:
    """(blank lines passed, the indent of the first other line) going through ``lines``: -1 for
    none, 0 once ``MAX_BLANKS`` blank lines are passed."""
    blanks = 0
    for i in lines:
        if indents[i] != -1:
            return blanks, indents[i]
        blanks += 1
        if blanks == MAX_BLANKS:
            return blanks, 0
    return blanks, -1


class _Group:
    """A run of changed lines ``[start, end)`` of one side (empty: ``start == end``)."""

    def __init__(self, side: _Side) -> None:
        self.side = side
        self.start = self.end = 0
        while side.is_changed(self.end):
            self.end += 1

    def next(self) -> bool:
        if self.end == self.side.count:
            return False
        self.start = self.end + 1
        self.end = self.start
        while self.side.is_changed(self.end):
            self.end += 1
        return True

    def previous(self) -> bool:
        if self.start == 0:
            return False
        self.end = self.start - 1
        self.start = self.end
        while self.side.is_changed(self.start - 1):
            self.start -= 1
        return True

    def slide_down(self) -> bool:
        side = self.side
        if self.end < side.count and side.classes[self.start] == side.classes[self.end]:
            side.mark(self.start, 0)
            side.mark(self.end, 1)
            self.start += 1
            self.end += 1
            while side.is_changed(self.end):
                self.end += 1
            return True
        return False

    def slide_up(self) -> bool:
        side = self.side
        if self.start > 0 and side.classes[self.start - 1] == side.classes[self.end - 1]:
            self.start -= 1
            self.end -= 1
            side.mark(self.start, 1)
            side.mark(self.end, 0)
            while side.is_changed(self.start - 1):
                self.start -= 1
            return True
        return False


def _compact(side: _Side, other: _Side, budget: _Budget) -> None:
    """Slide ``side``'s groups of changes (xdiff's ``xdl_change_compact`` with the indent heuristic)."""
    indents: list[int] | None = None
    g, go = _Group(side), _Group(other)
    while True:
        if g.end != g.start:
            while True:
                groupsize = g.end - g.start
                end_matching_other = -1
                while g.slide_up():
                    budget.spend(1)
                    if not go.previous():
                        raise AssertionError("group sync broken sliding up")
                earliest_end = g.end
                if go.end > go.start:
                    end_matching_other = g.end
                while g.slide_down():
                    budget.spend(1)
                    if not go.next():
                        raise AssertionError("group sync broken sliding down")
                    if go.end > go.start:
                        end_matching_other = g.end
                if groupsize == g.end - g.start:
                    break
            if g.end == earliest_end:
                pass
            elif end_matching_other != -1:
                while go.end == go.start:
                    if not g.slide_up() or not go.previous():
                        raise AssertionError("group sync broken sliding to match")
            else:
                if indents is None:
                    indents = [_indent(line) for line in side.lines]
                shift = max(earliest_end, g.end - groupsize - 1, g.end - INDENT_HEURISTIC_MAX_SLIDING)
                budget.spend(2 * (g.end - shift + 1))
                best_shift, best = -1, (0, 0)
                while shift <= g.end:
                    e1, p1 = _split_score(side, shift, indents)
                    e2, p2 = _split_score(side, shift - groupsize, indents)
                    score = (e1 + e2, p1 + p2)
                    if best_shift == -1 or _score_cmp(score, best) <= 0:
                        best, best_shift = score, shift
                    shift += 1
                while g.end > best_shift:
                    if not g.slide_up() or not go.previous():
                        raise AssertionError("group sync broken sliding to the best shift")
        if not g.next():
            break
        if not go.next():
            raise AssertionError("group sync broken moving to the next group")


def _score_cmp(s1: tuple[int, int], s2: tuple[int, int]) -> int:
    cmp_indents = (s1[0] > s2[0]) - (s1[0] < s2[0])
    return INDENT_WEIGHT * cmp_indents + (s1[1] - s2[1])


def blocks(old: Sequence[bytes], new: Sequence[bytes]) -> list[Block]:
    """The equal runs between two texts given as lines, where git's diff puts them:
    ``(old start, old end, new start, new end)`` in order, the last ``(len(old), len(old),
    len(new), len(new))``."""
    a, b, in_old, in_new = _classify(old, new)
    budget = _Budget()
    try:
        _prepare(a, b, in_old, in_new, budget)
        _Compare(a, b, budget).run()
        _compact(a, b, budget)
        _compact(b, a, budget)
    except _TooCostly:
        return linediff.blocks(old, new)
    out: list[Block] = []
    i = j = 0
    while True:  # unchanged lines pair up in order (as many on each side)
        while i < a.count and a.is_changed(i):
            i += 1
        while j < b.count and b.is_changed(j):
            j += 1
        if i >= a.count or j >= b.count:
            break
        start_i, start_j = i, j
        while i < a.count and j < b.count and not a.is_changed(i) and not b.is_changed(j):
            i += 1
            j += 1
        out.append((start_i, i, start_j, j))
    out.append((a.count, a.count, b.count, b.count))
    return out


def _tail_lines(old: bytes, new: bytes) -> int:
    """Bytes of the common end git's blame leaves out of its diff (git diffs for blame with no
    context, and then first cuts whole 1 KiB blocks the texts end with alike, giving back the
    bytes up to the first line end in them, so the cut falls after a line's end)."""
    block = 1024
    smaller = min(len(old), len(new))
    trimmed = 0
    while trimmed + block <= smaller and old[len(old) - trimmed - block:len(old) - trimmed] == \
            new[len(new) - trimmed - block:len(new) - trimmed]:
        trimmed += block
    if not trimmed:
        return 0
    region = old[len(old) - trimmed:]
    newline = region.find(b"\n")
    recovered = trimmed if newline < 0 else newline + 1
    return trimmed - recovered


def blame_blocks(old: bytes, new: bytes) -> list[Block]:
    """``blocks`` of two texts as ``git blame`` compares a parent's file with its child's: the
    common end cut first (``_tail_lines``; the lines there are equal), which changes what the
    rest's comparison finds among repeated lines."""
    cut = _tail_lines(old, new)
    old_lines = split_lines(old[:len(old) - cut])
    new_lines = split_lines(new[:len(new) - cut])
    found = blocks(old_lines, new_lines)[:-1]
    tail = len(split_lines(old[len(old) - cut:])) if cut else 0
    an, bn = len(old_lines), len(new_lines)
    if tail:
        found.append((an, an + tail, bn, bn + tail))
    found.append((an + tail, an + tail, bn + tail, bn + tail))
    return found



CONTEXT = 3
FUNC_NAME_MAX = 80


def _function_name(line: bytes) -> bytes | None:
    """A hunk header's function line, as git's default for a file without a diff driver: a line
    that starts with a letter, ``_`` or ``$``, its first 80 bytes without trailing whitespace."""
    first = line[:1]
    if not first or not (first.isalpha() or first in (b"_", b"$")):
        return None
    return line[:FUNC_NAME_MAX].rstrip(b" \t\n\v\f\r")


def _count(start: int, count: int) -> bytes:
    """A side of a hunk header: ``START`` for one line, ``START,COUNT`` else (an empty side's
    start is the line before it)."""
    return b"%d" % start if count == 1 else b"%d,%d" % (start if count else start - 1, count)


def unified_hunks(old_text: bytes, new_text: bytes, context: int = CONTEXT) -> list[bytes]:
    """The ``@@`` hunks ``git diff`` writes between two texts, each line one item: changes less
    than two contexts apart (counted on the old side) in one hunk, a count of one left out of the
    header, the nearest function line at or before the hunk's first line (since the last hunk's;
    else the last hunk's own) after it, ``\\ No newline at end of file`` after a last line without
    its end."""
    old, new = split_lines(old_text), split_lines(new_text)
    changes: list[tuple[int, int, int, int]] = []  # (old start, old count, new start, new count)
    a_end = b_end = 0
    for a1, a2, b1, b2 in blocks(old, new):
        if a1 > a_end or b1 > b_end:
            changes.append((a_end, a1 - a_end, b_end, b1 - b_end))
        a_end, b_end = a2, b2
    out: list[bytes] = []
    function = b""
    searched_to = -1
    first = 0
    while first < len(changes):
        last = first
        while last + 1 < len(changes) and changes[last + 1][0] - (changes[last][0] + changes[last][1]) <= 2 * context:
            last += 1
        i1, _, i2, _ = changes[first]
        j1, c1, j2, c2 = changes[last]
        s1, s2 = max(i1 - context, 0), max(i2 - context, 0)
        trailing = min(context, len(old) - (j1 + c1), len(new) - (j2 + c2))
        e1, e2 = j1 + c1 + trailing, j2 + c2 + trailing
        line = s1 - 1
        while line != searched_to and line >= 0:
            name = _function_name(old[line])
            if name is not None:
                function = name
                break
            line -= 1
        searched_to = s1 - 1
        header = b"@@ -" + _count(s1 + 1, e1 - s1) + b" +" + _count(s2 + 1, e2 - s2) + b" @@"
        out.append(header + (b" " + function if function else b"") + b"\n")
        at = s1
        for k in range(first, last + 1):
            o1, oc, n1, nc = changes[k]
            out.extend(_marked(b" ", old[at:o1]))
            out.extend(_marked(b"-", old[o1:o1 + oc]))
            out.extend(_marked(b"+", new[n1:n1 + nc]))
            at = o1 + oc
        out.extend(_marked(b" ", old[at:e1]))
        first = last + 1
    return out


def _marked(prefix: bytes, lines: Sequence[bytes]) -> list[bytes]:
    out = []
    for line in lines:
        if line.endswith(b"\n"):
            out.append(prefix + line)
        else:
            out.extend((prefix + line + b"\n", b"\\ No newline at end of file\n"))
    return out
