"""Set computations over the changelog DAG using revision numbers and parent arrays.

Revision numbers are a topological order (parents always have smaller
numbers), so every walk below is a single descending or ascending sweep over
byte arrays: no node sets, no recursion, linear in the revisions it touches.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

NULL_REV = -1

VISIBLE = bytes(1 if phase < 2 else 0 for phase in range(256))
"""``bytearray.translate`` table from a phase to 1 where it is below secret (2): visible."""


def heads(parents: Sequence[tuple[int, int]], visible: bytearray | None = None) -> list[int]:
    """Revisions (among ``visible`` ones) that no visible revision has as a parent."""
    n = len(parents)
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


def ancestors_mask(parents: Sequence[tuple[int, int]], revs: Iterable[int]) -> bytearray:
    """A byte per revision, 1 for ``::revs``."""
    mask = bytearray(len(parents))
    start = -1
    for r in revs:
        if r >= 0:
            mask[r] = 1
            start = max(start, r)
    for rev in range(start, -1, -1):
        if mask[rev]:
            p1, p2 = parents[rev]
            if p1 >= 0:
                mask[p1] = 1
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
    n = len(parents)
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
            for p in parents[rev]:
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


def compute_phases(parents: Sequence[tuple[int, int]], roots: dict[int, int]) -> bytearray:
    """Phase of every revision: the highest root phase among its ancestors (phases.py).

    Revisions below the first root are public whatever their parents: the sweep
    starts at that root (a publishing repository has none, and costs nothing).
    """
    phases = bytearray(len(parents))
    first = min((rev for rev, phase in roots.items() if phase and 0 <= rev), default=len(parents))
    for rev in range(first, len(parents)):
        p1, p2 = parents[rev]
        ph = roots.get(rev, 0)
        if p1 >= 0 and phases[p1] > ph:
            ph = phases[p1]
        if p2 >= 0 and phases[p2] > ph:
            ph = phases[p2]
        phases[rev] = ph
    return phases


def phase_roots(parents: Sequence[tuple[int, int]], phases: bytearray) -> dict[int, list[int]]:
    """Canonical roots per non-public phase: minimal revisions of ``{phase >= p}``."""
    roots: dict[int, list[int]] = {}
    # A public revision roots nothing: start at the first other one (a publishing
    # repository has none, and this scan is then one C-level pass over the bytes).
    first = len(phases) - len(phases.lstrip(b"\0"))
    for rev in range(first, len(parents)):
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


def descendants_mask(parents: Sequence[tuple[int, int]], revs: Iterable[int]) -> bytearray:
    """A byte per revision, 1 for ``revs::``."""
    mask = bytearray(len(parents))
    start = len(parents)
    for r in revs:
        if r >= 0:
            mask[r] = 1
            start = min(start, r)
    for rev in range(start, len(parents)):
        p1, p2 = parents[rev]
        if (p1 >= 0 and mask[p1]) or (p2 >= 0 and mask[p2]):
            mask[rev] = 1
    return mask
