"""Set computations over the changelog DAG using revision numbers and parent arrays.

Revision numbers are a topological order (parents always have smaller
numbers), so every walk below is a single descending or ascending sweep over
byte arrays: no node sets, no recursion, linear in the revisions it touches.
"""

from __future__ import annotations

import bisect
import re
import sys
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import compress, repeat
from typing import overload

NULL_REV = -1


class ParentColumns(Sequence[tuple[int, int]]):
    """(p1, p2) of each revision as two ``array('i')`` columns, read as the list of pairs it
    replaces (``parents[rev]``, ``len``, iteration, ``+``): 8 bytes a revision where a list of
    tuples held about 120, and made from a lazy index's columns without a Python step a revision.
    The columns themselves (``p1``, ``p2``) serve the passes that run at C level (``heads``).

    Shared columns are never changed; ``extend`` is for a copy of one's own (``copy``)."""

    __slots__ = ("p1", "p2")

    def __init__(self, p1: array[int] | None = None, p2: array[int] | None = None) -> None:
        self.p1: array[int] = array("i") if p1 is None else p1
        self.p2: array[int] = array("i") if p2 is None else p2
        if len(self.p1) != len(self.p2):
            raise ValueError("parent columns of different lengths")

    @classmethod
    def of(cls, pairs: Iterable[tuple[int, int]]) -> ParentColumns:
        columns = cls()
        columns.extend(pairs)
        return columns

    def __len__(self) -> int:
        return len(self.p1)

    @overload
    def __getitem__(self, rev: int) -> tuple[int, int]: ...

    @overload
    def __getitem__(self, rev: slice) -> ParentColumns: ...

    def __getitem__(self, rev: int | slice) -> tuple[int, int] | ParentColumns:
        if isinstance(rev, slice):
            return ParentColumns(self.p1[rev], self.p2[rev])
        return self.p1[rev], self.p2[rev]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return zip(self.p1, self.p2)  # (the columns are of one length)

    def __add__(self, other: Sequence[tuple[int, int]]) -> ParentColumns:
        more = other if isinstance(other, ParentColumns) else ParentColumns.of(other)
        return ParentColumns(self.p1 + more.p1, self.p2 + more.p2)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ParentColumns):
            return self.p1 == other.p1 and self.p2 == other.p2
        if isinstance(other, Sequence) and not isinstance(other, (str, bytes)):
            return len(other) == len(self) and all(map(tuple.__eq__, self, map(tuple, other)))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # (a mutable sequence, as the list it replaces)

    def __repr__(self) -> str:
        return f"ParentColumns({len(self)} revisions)"

    def copy(self) -> ParentColumns:
        """Columns of one's own, to extend (two copies at C level)."""
        return ParentColumns(array("i", self.p1), array("i", self.p2))

    def append(self, pair: tuple[int, int]) -> None:
        p1, p2 = pair
        self.p1.append(p1)
        self.p2.append(p2)

    def extend(self, pairs: Iterable[tuple[int, int]]) -> None:
        for p1, p2 in pairs:
            self.p1.append(p1)
            self.p2.append(p2)

    def childless(self, revs: Iterable[int], stop: int) -> list[int]:
        """Those of ``revs`` that no revision below ``stop`` has as a parent: a look at the next
        revision's first parent, else a C-level search of the columns (``bytes.find``) for the few
        a saved list of heads names."""
        found = []
        p1 = self.p1
        columns: tuple[bytes, bytes] | None = None
        for rev in revs:
            if rev + 1 < stop and p1[rev + 1] == rev:
                continue
            if columns is None:
                merges = self.p2.count(NULL_REV) != len(self.p2)
                columns = p1[:stop].tobytes(), self.p2[:stop].tobytes() if merges else b""
            if not _holds(columns[0], rev) and not _holds(columns[1], rev):
                found.append(rev)
        return found

    def children(self, rev: int) -> list[int]:
        """The revisions that have ``rev`` as a parent, ascending: a C-level search of each column
        (``bytes.find``) where a look at every later revision's pair made a tuple of each."""
        return _children_in([self.p1.tobytes(), self.p2.tobytes()], rev)

    def children_finder(self) -> Callable[[int], list[int]]:
        """``children`` for many revisions of these columns as they are now: their bytes made once."""
        columns = [self.p1.tobytes()]
        if self.p2.count(NULL_REV) != len(self.p2):
            columns.append(self.p2.tobytes())
        return lambda rev: _children_in(columns, rev)

    def child_marks(self, visible: bytearray | None = None) -> bytearray:
        """A byte per revision (and one past them), 1 for each revision a visible one (every one,
        for None) has as a parent: C-level passes (``map`` of the array's item setter) where a
        Python step a revision cost 12 ms for 200,000 changesets."""
        n = len(self.p1)
        marks = bytearray(n + 1)  # the null parent (-1) marks the byte past the revisions
        p1: Iterable[int] = self.p1
        p2: Iterable[int] = self.p2
        if self.p2.count(NULL_REV) == n:
            p2 = ()
        if visible is not None and visible.find(0, 0, n) >= 0:
            p1 = compress(p1, visible)
            p2 = compress(p2, visible) if p2 else ()
        deque(map(marks.__setitem__, p1, repeat(1)), 0)
        deque(map(marks.__setitem__, p2, repeat(1)), 0)
        return marks

VISIBLE = bytes(1 if phase < 2 else 0 for phase in range(256))
"""``bytearray.translate`` table from a phase to 1 where it is below secret (2): visible."""


def _holds(column: bytes, rev: int) -> bool:
    """Whether an int column's bytes hold ``rev`` after its own place (a child comes after it)."""
    needle = array("i", (rev,)).tobytes()
    at = column.find(needle, 4 * (rev + 1))
    while at >= 0:
        if not at % 4:
            return True
        at = column.find(needle, at + 1)
    return False


def heads(parents: Sequence[tuple[int, int]], visible: bytearray | None = None) -> list[int]:
    """Revisions (among ``visible`` ones) that no visible revision has as a parent."""
    n = len(parents)
    if isinstance(parents, ParentColumns):
        marks = parents.child_marks(visible)
        found = []
        rev = marks.find(0, 0, n)
        while rev >= 0:
            if visible is None or visible[rev]:
                found.append(rev)
            rev = marks.find(0, rev + 1, n)
        return found
    has_child = bytearray(n)
    for rev in range(n):
        if visible is None or visible[rev]:
            p1, p2 = parents[rev]
            if p1 >= 0:
                has_child[p1] = 1
            if p2 >= 0:
                has_child[p2] = 1
    return [r for r in range(n) if not has_child[r] and (visible is None or visible[r])]


def grown_heads(parents: Sequence[tuple[int, int]], visible: bytearray | None, heads: Iterable[int],
                start: int) -> set[int]:
    """``heads`` of the first ``start`` revisions brought up to all of them: each visible revision
    (every one, for None) from ``start`` on is a head and its parents no longer are.  The same answer
    as ``heads`` when the first ``start`` revisions are as visible as they were, at the cost of the
    new ones."""
    grown = set(heads)
    for rev in range(start, len(parents)):
        if visible is None or visible[rev]:
            grown.difference_update(parents[rev])
            grown.add(rev)
    return grown


def heads_after(heads: Iterable[int], changed: Iterable[int], parents: Sequence[tuple[int, int]],
                visible: bytearray, children: Callable[[int], Iterable[int]], known: int,
                group: Callable[[int], object] | None = None) -> set[int]:
    """``heads`` of the first ``known`` revisions brought up to date after the visibility of the
    ``changed`` ones among them changed (``visible`` is now): only those and their parents can
    have become heads or stopped being ones (a head that did not change can only have gained a
    child among them).  With ``group``, heads within each group (a branch's: a child in another
    group does not count)."""
    touched = set(changed)
    touched.update(p for rev in list(touched) for p in parents[rev] if p >= 0)
    found = set(heads) - touched
    for rev in touched:
        if rev < known and visible[rev] and not any(
                c < known and visible[c] and (group is None or group(c) == group(rev)) for c in children(rev)):
            found.add(rev)
    return found


def _columns(parents: Sequence[tuple[int, int]]) -> tuple[array[int], array[int]]:
    """The two parent columns of ``parents`` (made for a list of pairs): the walks below index
    them, where ``ParentColumns[rev]`` made a tuple a revision (three times the cost of a walk)."""
    if isinstance(parents, ParentColumns):
        return parents.p1, parents.p2
    return array("i", (p1 for p1, _ in parents)), array("i", (p2 for _, p2 in parents))


def ancestors_mask(parents: Sequence[tuple[int, int]], revs: Iterable[int]) -> bytearray:
    """A byte per revision, 1 for ``::revs``."""
    p1s, p2s = _columns(parents)
    mask = bytearray(len(p1s))
    start = -1
    for r in revs:
        if r >= 0:
            mask[r] = 1
            start = max(start, r)
    for rev in range(start, -1, -1):
        if mask[rev]:
            p1 = p1s[rev]
            if p1 >= 0:
                mask[p1] = 1
            p2 = p2s[rev]
            if p2 >= 0:
                mask[p2] = 1
    return mask


def lower_phase(parents: Sequence[tuple[int, int]], phases: bytearray, revs: Iterable[int], phase: int) -> None:
    """Set ``::revs`` to at most ``phase`` in place, walking only the revisions that change.

    A revision's phase is never below its parents' (phases are inherited), so a
    parent already at ``phase`` or lower has every ancestor there too and the
    walk stops at it: moving a push's new changesets to public costs the push,
    not the history below it.
    """
    stack = [r for r in revs if r >= 0 and phases[r] > phase]
    while stack:
        rev = stack.pop()
        if phases[rev] <= phase:
            continue
        phases[rev] = phase
        for p in parents[rev]:
            if p >= 0 and phases[p] > phase:
                stack.append(p)


def missing(parents: Sequence[tuple[int, int]], common: Iterable[int], heads_: Iterable[int]) -> list[int]:
    """``::heads - ::common`` in ascending order, in one descending sweep.

    The sweep stops as soon as no unvisited revision is still wanted, so the
    cost is bounded by the distance from the heads back to the common part.
    """
    p1s, p2s = _columns(parents)
    n = len(p1s)
    state = bytearray(n)  # 1 wanted, 2 common (common wins)
    head_list = [h for h in heads_ if h >= 0]
    common_list = [c for c in common if c >= 0]
    for c in common_list:
        state[c] = 2
    pending = 0
    for h in head_list:
        if state[h] == 0:
            state[h] = 1
            pending += 1
    top = max(head_list + common_list, default=-1)
    out: list[int] = []
    for rev in range(top, -1, -1):
        if pending == 0:
            break
        mark = state[rev]
        if mark == 1:
            pending -= 1
            out.append(rev)
        if mark:
            for p in (p1s[rev], p2s[rev]):
                if p >= 0:
                    if mark == 2:
                        if state[p] == 1:
                            pending -= 1
                        state[p] = 2
                    elif state[p] == 0:
                        state[p] = 1
                        pending += 1
    out.reverse()
    return out


def compute_phases(parents: Sequence[tuple[int, int]], roots: dict[int, int],
                   breaks: Sequence[int] | None = None) -> bytearray:
    """Phase of every revision: the highest root phase among its ancestors (phases.py).

    Revisions below the first root are public whatever their parents: the sweep
    starts at that root (a publishing repository has none, and costs nothing).
    A revision whose first parent is the one before it and that has no second parent has that
    revision's phase, unless it is a root: past ``RUN_SWEEP`` revisions from the first root only
    the others (``breaks``, the columns' ``run_breaks`` where the caller has them) and the roots
    are looked at, and the runs between them are filled at C level.  A Python step a revision
    cost 23 ms for 200,000 changesets with a draft root at revision 1,000, at each first open.
    """
    n = len(parents)
    phases = bytearray(n)
    first = min((rev for rev, phase in roots.items() if phase and 0 <= rev), default=n)
    if first >= n:
        return phases
    p1s, p2s = _columns(parents)
    revs: Iterable[int] = range(first, n)
    if n - first > RUN_SWEEP:
        found = run_breaks(p1s, p2s) if breaks is None else breaks
        later = found[bisect.bisect_left(found, first):]
        if len(later) * _DENSE < n - first:  # (else a step a break costs more than a step a revision)
            revs = sorted({*later, *(rev for rev in roots if first <= rev < n)})
    filled = first  # phases[first - 1] is public (0) or worked out; phases[filled:rev] copy it
    for rev in revs:
        if rev > filled:
            phases[filled:rev] = bytes((phases[filled - 1],)) * (rev - filled)
        p1, p2 = p1s[rev], p2s[rev]
        ph = roots.get(rev, 0)
        if p1 >= 0 and phases[p1] > ph:
            ph = phases[p1]
        if p2 >= 0 and phases[p2] > ph:
            ph = phases[p2]
        phases[rev] = ph
        filled = rev + 1
    if filled < n:
        phases[filled:] = bytes((phases[filled - 1],)) * (n - filled)
    return phases


_DENSE = 8
"""``compute_phases`` steps through every revision where breaks are over an eighth of them (a step a
break, with the fill before it, costs about what eight steps a revision cost)."""
RUN_SWEEP = 4096
"""``compute_phases`` steps through every revision from the first root when there are at most this
many: ``run_breaks`` costs some 6 ms for 200,000 revisions whatever the first root."""


def run_breaks(p1s: array[int], p2s: array[int]) -> list[int]:
    """The revisions whose first parent is not the revision just before (null for revision 0) or
    that have a second parent, ascending: where a run of linear history breaks.

    Found by C-level passes over the columns' bytes, not a Python step a revision: the first
    parents, read as one integer of 32-bit lanes, XORed with one whose lanes count 0, 1, 2, ...
    (``_counting``) are non-zero in exactly the lanes that break; the second parents' bytes are
    0xFF in every lane that is null; a few marked lanes are found by ``bytes.find``, many by ORing
    each lane's four marks into one and ``compress`` (a ``find`` a break took 30 ms for 100,000).
    Any parent out of range (negative but null, or not below its revision) breaks a run, so a
    check of parents need only look at these."""
    n = len(p1s)
    if not n:
        return []
    firsts = p1s.tobytes()
    if sys.byteorder == "big":  # (the arrays' bytes are the machine's order; the lanes little-endian)
        swapped = array("i", p1s)
        swapped.byteswap()
        firsts = swapped.tobytes()
    seconds = p2s.tobytes().translate(_NOT_NULL)
    xored = int.from_bytes(memoryview(firsts)[4:], "little") ^ _counting(n - 1) if n > 1 else 0
    first_lane = b"\1\0\0\0" if p1s[0] != NULL_REV else bytes(4)
    firsts = first_lane + xored.to_bytes(4 * (n - 1), "little").translate(_NOT_ZERO)
    if (firsts.count(1) + seconds.count(1)) * _SPARSE_BREAKS < n:
        return sorted({*_marked_lanes(firsts), *_marked_lanes(seconds)})
    lanes = (int.from_bytes(firsts, "little") | int.from_bytes(seconds, "little")).to_bytes(4 * n, "little")
    marks = 0  # (each lane's four bytes ORed into one: a byte a revision)
    for byte in range(4):
        marks |= int.from_bytes(lanes[byte::4], "little")
    return list(compress(range(n), marks.to_bytes(n, "little")))


def _marked_lanes(marks: bytes) -> Iterator[int]:
    """The 4-byte lanes of ``marks`` holding a 1, by ``bytes.find``."""
    at = marks.find(1)
    while at >= 0:
        lane = at >> 2
        yield lane
        at = marks.find(1, (lane + 1) << 2)


_SPARSE_BREAKS = 16
"""``run_breaks`` finds the breaks one by one where their marks are under a sixteenth of the
revisions, else builds a byte a revision and takes them by ``compress``."""


def _counting(lanes: int) -> int:
    """The integer whose 32-bit little-endian lanes are 0, 1, ..., ``lanes - 1``: doubled from one
    lane, each step adding its lane count to every lane of a copy (no carry: lanes stay under 2**31).
    3 ms for 200,000 lanes, where an ``array`` of a ``range`` took 20."""
    value, have = 0, 1
    while have < lanes:
        ones = int.from_bytes(b"\1\0\0\0" * have, "little")
        value |= (value + have * ones) << (32 * have)
        have *= 2
    return value & ((1 << (32 * lanes)) - 1) if have > lanes else value


_NOT_ZERO = bytes((0,)) + bytes((1,)) * 255
_NOT_NULL = bytes((1,)) * 255 + bytes((0,))
"""``bytes.translate`` tables: 1 for a byte that is not 0, or not 0xFF (a byte of the null revision)."""


def phase_roots(parents: Sequence[tuple[int, int]], phases: bytearray) -> dict[int, list[int]]:
    """Canonical roots per non-public phase: minimal revisions of ``{phase >= p}``."""
    roots: dict[int, list[int]] = {}
    # A public revision roots nothing: start at the first other one (a publishing
    # repository has none, and this scan is then one C-level pass over the bytes),
    # and where few are not public (drafts off a long public history), step from one
    # to the next by a C-level search rather than over every revision.
    first = len(phases) - len(phases.lstrip(b"\0"))
    others = len(phases) - phases.count(0)
    revs: Iterable[int] = range(first, len(parents))
    if others * _SPARSE < len(phases) - first:
        revs = (found.start() for found in _NOT_PUBLIC.finditer(phases, first, len(parents)))
    for rev in revs:
        ph = phases[rev]
        if not ph:
            continue
        p1, p2 = parents[rev]
        parent_phase = max(phases[p1] if p1 >= 0 else 0, phases[p2] if p2 >= 0 else 0)
        if parent_phase >= ph:
            continue
        for level in _PHASE_LEVELS:  # ascending, as the roots per phase are listed
            if parent_phase < level <= ph:
                roots.setdefault(level, []).append(rev)
    return roots


_PHASE_LEVELS = (1, 2, 32, 96)
_NOT_PUBLIC = re.compile(b"[^\\x00]")
_SPARSE = 4
"""``phase_roots`` searches for the non-public revisions when they are under a quarter of those after the first."""


def descendants_mask(parents: Sequence[tuple[int, int]], revs: Iterable[int]) -> bytearray:
    """A byte per revision, 1 for ``revs::``."""
    p1s, p2s = _columns(parents)
    mask = bytearray(len(p1s))
    start = len(p1s)
    for r in revs:
        if r >= 0:
            mask[r] = 1
            start = min(start, r)
    for rev in range(start, len(p1s)):
        p1 = p1s[rev]
        p2 = p2s[rev]
        if (p1 >= 0 and mask[p1]) or (p2 >= 0 and mask[p2]):
            mask[rev] = 1
    return mask


def _children_in(columns: list[bytes], rev: int) -> list[int]:
    """The revisions whose parent columns' bytes (``columns``, 4-byte ints) name ``rev``, ascending."""
    found: set[int] = set()
    needle = array("i", (rev,)).tobytes()
    for data in columns:
        at = data.find(needle, 4 * (rev + 1))
        while at >= 0:
            if not at % 4:
                found.add(at // 4)
            at = data.find(needle, at + 1)
    return sorted(found)
