"""A sorted run of refs with their advertisement lines encoded once, spliced into each answer.

A mirror's 100,000 annotated tags are 200,000 lines of a v0 advertisement (100,000 of a v2
``ls-refs``): written in Python at every request they took 0.1 s of a ``git ls-remote``.  The
refs ``packed-refs`` holds change only with the file, so their lines are encoded once per
version of it (``RefLines``, made and kept by the backend) and each answer is made of slices of
them: the refs of the request that the run does not hold (a loose ref, ``HEAD``) are encoded on
their own and put in their place, the run's refs the request does not show (hidden, or
overridden by a loose ref) are cut out (``RefRun``), and ``ls-refs``' ``ref-prefix`` takes the
ranges of the run its prefixes name, found by bisection.  Sans-IO: bytes in, bytes out.
"""

from __future__ import annotations

import bisect
import threading
from array import array
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate

from backends.interfaces import ObjectId
from protocols import pktline

V0 = "v0"
"""v0's lines: ``<id> <name>``, and ``<peeled> <name>^{}`` after an annotated tag's."""
V2 = "v2"
"""v2 ``ls-refs`` lines without ``peel``: ``<id> <name>``."""
V2_PEELED = "v2-peeled"
"""v2 ``ls-refs`` lines with ``peel``: ``<id> <name> peeled:<peeled>`` for an annotated tag."""

_LONGEST_NAME = pktline.MAX_PAYLOAD - 64 - len(b" peeled:") - 64 - len(b"^{}\n") - 1
"""A run holding a longer name has no encoded lines (each answer writes them, with its checks)."""


class RefLines:
    """Refs in sorted order (``names``) with what they name (``refs``) and what their annotated
    tags peel to (``tags``), and each form's lines encoded once (``form``), with where each ref's
    lines begin.  ``may_keep(size)``: whether a form of ``size`` bytes may be kept for the next
    answers (else it is made for this one alone); ``counted()`` is called once one is."""

    def __init__(self, names: Sequence[bytes], refs: Mapping[bytes, ObjectId], tags: Mapping[bytes, ObjectId],
                 may_keep: Callable[[int], bool] = lambda size: True, counted: Callable[[], None] = lambda: None,
                 ) -> None:
        self.names = names
        self._refs = refs
        self._tags = tags
        self._may_keep = may_keep
        self._counted = counted
        self._forms: dict[str, tuple[bytes, array[int]]] = {}
        self._lock = threading.Lock()
        self.encodable = all(len(name) <= _LONGEST_NAME for name in names)

    @property
    def size(self) -> int:
        """The bytes the kept forms hold (their lines and their offsets)."""
        return sum(len(lines) + 8 * len(at) for lines, at in self._forms.values())

    def form(self, kind: str) -> tuple[bytes, array[int]]:
        """The lines of every ref of the run in form ``kind`` (``V0``, ``V2``, ``V2_PEELED``) and
        the offset where each ref's lines begin (one more: the end)."""
        kept = self._forms.get(kind)
        if kept is not None:
            return kept
        with self._lock:
            kept = self._forms.get(kind)
            if kept is None:
                lines = self._encoded(kind)
                at = array("q", accumulate(map(len, lines), initial=0))
                kept = (b"".join(lines), at)
                if self._may_keep(len(kept[0]) + 8 * len(at)):
                    self._forms[kind] = kept
                    self._counted()
            return kept

    def _encoded(self, kind: str) -> list[bytes]:
        refs, tags = self._refs, self._tags
        if kind == V2:
            return [b"%04x%s %s\n" % (len(refs[n]) + len(n) + 6, refs[n], n) for n in self.names]
        if kind == V2_PEELED:
            return [b"%04x%s %s\n" % (len(refs[n]) + len(n) + 6, refs[n], n) if n not in tags
                    else b"%04x%s %s peeled:%s\n" % (len(refs[n]) + len(n) + len(tags[n]) + 14, refs[n], n, tags[n])
                    for n in self.names]
        assert kind == V0, kind
        return [b"%04x%s %s\n" % (len(refs[n]) + len(n) + 6, refs[n], n) if n not in tags
                else b"%04x%s %s\n%04x%s %s^{}\n" % (len(refs[n]) + len(n) + 6, refs[n], n,
                                                     len(tags[n]) + len(n) + 9, tags[n], n)
                for n in self.names]


@dataclass(frozen=True, slots=True)
class RefRun:
    """The refs of one answer as a ``RefLines`` run and its differences: the answer's refs are the
    run's names but ``left_out`` (each with the id and peeled value the run has), and ``extras``,
    which the run does not hold or holds with other values (loose refs, ``HEAD``; never in it as
    they are, and each also in ``left_out`` when the run has its name)."""

    lines: RefLines
    left_out: frozenset[bytes]
    extras: tuple[bytes, ...]
    hidden: Sequence[int] = ()
    """Indexes in ``lines.names`` of more refs of the run the answer leaves out, sorted (its hidden
    ones: a mirror's 20,000 ``refs/pull/*`` are cut out as a few ranges, not one by one)."""

    def spliced(self, kind: str, encode: Callable[[bytes], bytes], prefixes: tuple[bytes, ...] = (),
                skip: frozenset[bytes] = frozenset()) -> bytes:
        """The lines of the answer's refs in sorted order, the run's from form ``kind``, each of
        ``extras`` (but ``skip``) from ``encode``; with ``prefixes``, only the refs whose names
        begin with one of them."""
        names = self.lines.names
        data, at = self.lines.form(kind)
        extras = sorted(name for name in self.extras
                        if name not in skip and (not prefixes or name.startswith(prefixes)))
        placed = [(bisect.bisect_left(names, name), name) for name in extras]  # (each goes before that ref)
        out: list[bytes] = []
        taken = 0
        for lo, hi in _kept(_ranges(names, prefixes), self._cut()):
            while taken < len(placed) and placed[taken][0] <= lo:
                out.append(encode(placed[taken][1]))
                taken += 1
            cursor = lo
            while taken < len(placed) and placed[taken][0] < hi:
                i = placed[taken][0]
                out.append(data[at[cursor]:at[i]])
                out.append(encode(placed[taken][1]))
                cursor = i
                taken += 1
            out.append(data[at[cursor]:at[hi]])
        out.extend(encode(name) for _, name in placed[taken:])
        return b"".join(out)

    def _cut(self) -> list[int]:
        """The indexes of the run's refs the answer leaves out, sorted (``left_out`` and ``hidden``)."""
        names = self.lines.names
        cut = list(self.hidden)
        for name in self.left_out:
            i = bisect.bisect_left(names, name)
            if i < len(names) and names[i] == name:
                cut.append(i)
        if self.left_out:
            cut.sort()
        return cut


def _kept(ranges: list[tuple[int, int]], cut: list[int]) -> list[tuple[int, int]]:
    """``ranges`` (sorted, apart) less the indexes ``cut`` (sorted), as sorted ranges, none empty."""
    if not cut:
        return [(lo, hi) for lo, hi in ranges if lo < hi]
    kept: list[tuple[int, int]] = []
    for lo, hi in ranges:
        cursor = lo
        for i in cut[bisect.bisect_left(cut, lo):bisect.bisect_left(cut, hi)]:
            if i > cursor:
                kept.append((cursor, i))
            cursor = max(cursor, i + 1)
        if hi > cursor:
            kept.append((cursor, hi))
    return kept


def _ranges(names: Sequence[bytes], prefixes: tuple[bytes, ...]) -> list[tuple[int, int]]:
    """The ranges of ``names`` (sorted) whose names begin with one of ``prefixes`` (all of them
    without any), joined where they meet or overlap."""
    if not prefixes:
        return [(0, len(names))]
    found = sorted((bisect.bisect_left(names, prefix), _end(names, prefix)) for prefix in prefixes)
    joined: list[tuple[int, int]] = []
    for lo, hi in found:
        if joined and lo <= joined[-1][1]:
            joined[-1] = (joined[-1][0], max(hi, joined[-1][1]))
        else:
            joined.append((lo, hi))
    return joined


def _end(names: Sequence[bytes], prefix: bytes) -> int:
    """Where the names beginning with ``prefix`` end in ``names`` (sorted)."""
    stem = prefix.rstrip(b"\xff")
    if not stem:
        return len(names)
    return bisect.bisect_left(names, stem[:-1] + bytes([stem[-1] + 1]))
