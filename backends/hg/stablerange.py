"""hg-evolve's obsolescence-marker discovery: the hash of the markers relevant to a *stable range*.

An evolve client (``_evoext_obshashrange_v1``) asks the server for the hashes of ranges of history
it shares with it, and descends into the ranges whose hash differs, down to single changesets; it
then pulls (``evo_missing_nodes``) or pushes the markers of those alone.  Both sides must slice
history the same way, so the definitions below are hg-evolve's (``stablesort.py``,
``stablerange.py``, ``obsdiscovery.py``; written here from what they define):

* the *depth* of a revision is the size of ``::rev``;
* the *stable sort* of ``::rev`` lists it parents first: for a revision with one parent, the
  parent's sort then the revision; for a merge, the sort of its *stable parent* (the deeper one,
  ties to the lower node), then the revisions only the other parent has (walked from it depth
  first, a revision once all its children there are listed, parents in the same order), then the
  merge; for a root, itself;
* a range ``(head, index)`` is the stable sort of ``::head`` from position ``index`` on;
* a range of more than one revision is cut at a *slice point* (the largest power of two below its
  length past its start when it starts on a standard boundary, else the boundary it straddles),
  into the ranges that cover the part below it (each the longest tail of its last revision's sort
  found there, walking down) and ``(head, slice point)``;
* the hash of a one-revision range is the SHA-1 of the markers relevant to it, each encoded in
  format 1, sorted; of a longer range, the SHA-1 of its subranges' hashes that are not null (the
  hash of the last subrange when only one is not null: that one, or null when it is another, as
  hg-evolve computes it); null when no marker is relevant to any revision.

Sans-IO: revision parents and nodes in, hashes out.  Parents are numbered below their children.
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import itertools
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import cast

from backends.hg.obsstore import ObsStore, relevance_changed
from backends.hg.rangecache import FrozenRanges, key
from protocols import hg_obsmarkers as obs
from protocols.hg_obsmarkers import Marker

NULL_HASH = b"\0" * 20
UNKNOWN_HASH = b"\xff" * 20
"""What a range whose head the server does not have is answered (hg's working-directory id)."""

Range = tuple[int, int]

FORGET_LIMIT = 10_000
"""Past this many markers changed, or changesets whose relevant markers changed, every hash is
forgotten rather than those of the ranges holding them (walking up from each costs more)."""
SUPERS_WEIGHT = 60
"""Bytes a range's entry in the map of the ranges above it holds (tracemalloc: 54 on a linear
history, two entries a changeset; a range under several is a list)."""


def _below_power_of_two(i: int) -> int:
    """The largest power of two below ``i`` (``i`` > 1), computed as hg-evolve computes it (through
    a float logarithm): the slices must be the same on both sides."""
    return int(2 ** int(math.log(i - 1, 2)))  # noqa: FURB163 (log2 may round otherwise)


class RangeHashes:
    """The stable ranges of one changelog and their hashes over one set of markers; revisions
    are added as the changelog grows (``parents`` is read up to its current length).

    Every result is memoized: a range's hash depends only on ``::head`` and the markers."""

    def __init__(self, parents: Sequence[tuple[int, int]], node: Callable[[int], bytes],
                 relevant: Callable[[list[bytes]], list[Marker]]) -> None:
        self._parents = parents
        self._node = node
        self._relevant = relevant
        self._depth: list[int] = []
        self._mids: dict[int, list[int]] = {}
        self._mid_revs = 0
        self._subranges: dict[Range, list[Range]] = {}
        self._hashes: dict[Range, bytes] = {}
        self._supers: dict[Range, Range | list[Range]] | None = None
        """The ranges each range is a subrange of (made at the first change of markers, then kept up)."""
        self._store: tuple[ObsStore | None] | None = None
        """The store whose markers are hashed (``use_store``), None before it is told one."""
        self.lock = threading.Lock()
        """Held around a batch of questions: requests of several threads may share one."""
        self.snapshot: tuple[tuple[int, int, int, int] | None, int | None] | None = None
        """The changelog snapshot last computed on, as its owner tells one only appended to."""
        self._frozen: FrozenRanges | None = None
        """Ranges and hashes read back from disk (``adopt``), under those computed since."""
        self.unsaved = 0
        """Hashes computed since the ranges were last read from or written to disk."""
        self.disk_tried = False
        """Whether its owner looked for the ranges on disk (once, before the first question)."""

    def held_store(self) -> ObsStore | None:
        """The store whose markers were hashed, held until the next is told (``use_store``) to tell
        which ranges the markers added since touch: after a push, the store before it."""
        return self._store[0] if self._store is not None else None

    def known(self) -> int:
        """How many revisions are computed on (those below stay as they are while the changelog
        only grows)."""
        return len(self._depth)

    def node_at(self, rev: int) -> bytes:
        """The node of a revision computed on (to tell the same changelog from a stripped one)."""
        return self._node(rev)

    def rebind(self, parents: Sequence[tuple[int, int]], node: Callable[[int], bytes]) -> None:
        """Go on with a grown changelog (the same revisions first: nothing is recomputed).  A shorter
        one (a request opened before a push, asking after a newer request) keeps the longer: its
        revisions are the first of it, and the newer requests' ranges reach past it (its ``node``
        failed every later request's check of the shared ranges)."""
        if len(parents) < len(self._parents):
            return
        self._parents = parents
        self._node = node

    def use_markers(self, relevant: Callable[[list[bytes]], list[Marker]]) -> None:
        """Hash other markers (the store changed): the ranges are kept, their hashes forgotten."""
        if relevant != self._relevant:
            self._relevant = relevant
            self._store = None
            self._forget_all()

    def _forget_all(self) -> None:
        self._hashes = {}
        if self._frozen is not None:
            self._frozen.hashed = False

    def _holds_hashes(self) -> bool:
        return bool(self._hashes) or (self._frozen is not None and self._frozen.hashed)

    def adopt(self, frozen: FrozenRanges, count: int, store: ObsStore | None, changed: list[int] | None) -> None:
        """Go on from ranges read back from disk, computed on the first ``count`` revisions (those
        of this changelog) and hashed over markers of which ``store`` holds the same, and more:
        ``changed``, the revisions whose relevant markers differ (None: every hash goes)."""
        self._frozen = frozen
        self._fill(count - 1)
        self._store = (store,)
        self._relevant = store.relevant if store is not None else _no_markers
        if changed is None:
            frozen.hashed = False
        else:
            self._forget(changed)
        self.unsaved = 0

    def export(self) -> tuple[dict[int, bytes], dict[int, list[int]]]:
        """Every hash and every range's subranges, keyed by ``rangecache.key``, to be written to disk."""
        return self.export_copy()()

    def export_copy(self) -> Callable[[], tuple[dict[int, bytes], dict[int, list[int]]]]:
        """``export`` of what is held now, made when called: only the copies are made now (C-level
        copies of the dicts, the state of the ranges read back), under ``lock``, so that the
        questions waiting on it do not wait for the making (a second of CPU for 200,000 changesets)."""
        frozen = self._frozen
        state = (frozen, frozen.hashed, set(frozen.dropped)) if frozen is not None else None
        return functools.partial(_exported, state, dict(self._hashes), dict(self._subranges))

    def use_store(self, store: ObsStore | None, rev_of: Callable[[bytes], int | None]) -> None:
        """Hash the markers of ``store`` (None: no markers); ``rev_of`` gives a node's revision (None
        for one the changelog lacks).  Going from another store, only the hashes of the ranges that
        hold a changeset whose relevant markers differ between the two are forgotten (a push's
        markers touch a few changesets; the other ranges' hashes stay true)."""
        old = self._store
        if old is not None and old[0] is store:
            return
        self._store = (store,)
        self._relevant = store.relevant if store is not None else _no_markers
        if not self._holds_hashes():
            return
        changed = relevance_changed(old[0], store, FORGET_LIMIT) if old is not None else None
        if changed is None:
            self._forget_all()
            return
        known = len(self._depth)
        self._forget([r for r in map(rev_of, changed) if r is not None and 0 <= r < known])

    def _forget(self, revs: list[int]) -> None:
        """Forget the hash of every range holding one of ``revs``: up from each one's own range,
        through the ranges it is a subrange of (a hash kept was computed from its subranges', so
        every kept range holding a revision is reached)."""
        if not revs:
            return
        supers = self._supers
        if supers is None:
            supers = self._supers = {}
            for rangeid, subs in self._subranges.items():
                self._link(supers, rangeid, subs)
        depths = self._depth
        todo = [(rev, depths[rev] - 1) for rev in revs]
        seen: set[Range] = set()
        hashes = self._hashes
        frozen = self._frozen
        while todo:
            current = todo.pop()
            if current in seen:
                continue
            seen.add(current)
            hashes.pop(current, None)
            if frozen is not None:  # (a range under several: each is reached, ``seen`` ends the walk)
                frozen.dropped.add(key(current))
                todo.extend(frozen.supers_of(key(current)))
            above = supers.get(current)
            if above is None:
                continue
            if isinstance(above, list):
                todo.extend(above)
            else:
                todo.append(above)

    @staticmethod
    def _link(supers: dict[Range, Range | list[Range]], rangeid: Range, subs: list[Range]) -> None:
        for sub in subs:
            above = supers.get(sub)
            if above is None:
                supers[sub] = rangeid
            elif isinstance(above, list):
                above.append(rangeid)
            else:
                supers[sub] = [above, rangeid]

    def _keep(self, rangeid: Range, subs: list[Range]) -> None:
        self._subranges[rangeid] = subs
        if self._supers is not None:
            self._link(self._supers, rangeid, subs)

    def weight(self) -> int:
        """What is held, in bytes (for the kept budget; measured with tracemalloc: some 420 bytes
        a changeset once every range of its history is hashed)."""
        return (36 * len(self._depth) + 36 * self._mid_revs
                + 150 * len(self._subranges) + 120 * len(self._hashes)
                + (SUPERS_WEIGHT * len(self._supers) if self._supers is not None else 0)
                + (self._frozen.weight() if self._frozen is not None else 0))

    # -- the DAG --------------------------------------------------------------------------------

    def _own_parents(self, rev: int) -> tuple[int, ...]:
        p1, p2 = self._parents[rev]
        if p1 < 0:
            return (p2,) if p2 >= 0 else ()
        if p2 < 0 or p2 == p1:
            return (p1,)
        return (p1, p2)

    def _ordered(self, ps: tuple[int, ...]) -> tuple[int, ...]:
        """A merge's parents, the stable one first: the deeper, ties to the lower node."""
        a, b = ps
        ka, kb = (-self._depth[a], self._node(a)), (-self._depth[b], self._node(b))
        return (a, b) if ka <= kb else (b, a)

    def depth(self, rev: int) -> int:
        self._fill(rev)
        return self._depth[rev]

    def _fill(self, upto: int) -> None:
        """The depths up to ``upto``, the parents read as pairs in one pass (``_own_parents``'s cases
        inline: the depths of 200,000 changesets read back from disk took 0.2 s, now 0.05)."""
        depths = self._depth
        start = len(depths)
        if upto < start:
            return
        append = depths.append
        for p1, p2 in itertools.islice(self._parents, start, upto + 1):
            if p2 < 0 or p2 == p1:
                append(depths[p1] + 1 if p1 >= 0 else 1)
            elif p1 < 0:
                append(depths[p2] + 1)
            else:
                low, high = self._ordered((p1, p2))
                append(depths[low] + len(self._only(high, low)) + 1)

    def _only(self, head: int, other: int) -> list[int]:
        """``only(head, other)``: the ancestors of ``head`` (itself too) not ancestors of
        ``other``, descending.  Walked down from both at once, highest revision first (children
        come before their parents), until nothing left to walk can be ``head``'s alone: a merge of
        a short branch costs the branch, not the history below it."""
        theirs = {other}
        mine = {head}
        queued = {head, other}
        heap = [-max(head, other), -min(head, other)]  # (a heap: the highest first)
        mine_left = 1  # queued revisions of ``mine`` not yet walked
        found = []
        while heap and mine_left:
            rev = -heapq.heappop(heap)
            ps = self._own_parents(rev)
            if rev in mine:
                mine_left -= 1
            if rev in theirs:
                for p in ps:
                    theirs.add(p)
                    if p not in queued:
                        queued.add(p)
                        heapq.heappush(heap, -p)
                continue
            found.append(rev)
            for p in ps:
                if p not in mine:
                    mine.add(p)
                    mine_left += 1
                if p not in queued:
                    queued.add(p)
                    heapq.heappush(heap, -p)
        return found

    def _mid(self, merge: int) -> list[int]:
        """The revisions a merge's other parent brings, in stable order (the middle of its sort)."""
        found = self._mids.get(merge)
        if found is None:
            low, high = self._ordered(self._own_parents(merge))
            found = self._bounded_sort(high, self._only(high, low))
            self._mids[merge] = found
            self._mid_revs += len(found)
        return found

    def _bounded_sort(self, head: int, revs: list[int]) -> list[int]:
        """``revs`` (whose only head is ``head``) parents first: walked from ``head`` depth first,
        the stable parent pushed first (so taken last), a revision taken once every child of it in
        ``revs`` is.  Empty when ``revs`` is (the other parent of a merge is an ancestor of the
        stable one)."""
        if not revs:
            return []
        inside = set(revs)
        waiting: dict[int, int] = {}
        ordered: dict[int, tuple[int, ...]] = {}
        for rev in revs:
            ps = self._own_parents(rev)
            if len(ps) == 2:
                ps = self._ordered(ps)
            ordered[rev] = ps
            for p in ps:
                waiting[p] = waiting.get(p, 0) + 1
        taken: list[int] = []
        stack = [head]
        while stack:
            rev = stack.pop()
            taken.append(rev)
            for p in ordered[rev]:
                left = waiting[p] - 1
                waiting[p] = left
                if left > 0:
                    continue
                if p in inside:
                    stack.append(p)
        taken.reverse()
        return taken

    def walk_down(self, rev: int) -> Iterator[int]:
        """The stable sort of ``::rev``, last first."""
        for found, _spine in self._walk_marked(rev):
            yield found

    def _walk_marked(self, rev: int) -> Iterator[tuple[int, bool]]:
        """``walk_down``, each revision with whether it is on the walk's spine (not brought by a
        merge's other parent): the walk goes on from such a revision as its own ``walk_down``."""
        while True:
            yield rev, True
            ps = self._own_parents(rev)
            if not ps:
                return
            if len(ps) == 1:
                rev = ps[0]
                continue
            for other in reversed(self._mid(rev)):
                yield other, False
            rev = self._ordered(ps)[0]

    # -- ranges ---------------------------------------------------------------------------------

    def derived(self, rangeid: Range) -> bool:
        """Whether ``rangeid`` is one a client's discovery can ask about without its being computed
        first: the whole history of a revision (index 0), one revision, or a range met while
        computing an earlier one's hash (a client descends only into the subranges of a range it
        asked about).  Any other index is a question no client asks, whose answer would cost a walk
        of the head's history (a request of 200 made-up indexes on 100,000 changesets: 3.6 s)."""
        if (rangeid[1] == 0 or self.length(rangeid) == 1
                or rangeid in self._subranges or rangeid in self._hashes):
            return True
        frozen = self._frozen
        return frozen is not None and (frozen.has_subranges(key(rangeid)) or frozen.hash_of(key(rangeid)) is not None)

    def length(self, rangeid: Range) -> int:
        return self.depth(rangeid[0]) - rangeid[1]

    def _slice_point(self, rangeid: Range) -> int:
        head, index = rangeid
        depth = self.depth(head)
        step = _below_power_of_two(depth)
        start = 0
        while start < index and step > 0:
            if start + step < depth:
                start += step
            step //= 2
        if start == index:
            return index + _below_power_of_two(depth - index)
        return start

    def subranges(self, rangeid: Range) -> list[Range]:
        found = self._subranges.get(rangeid)
        if found is not None:
            return found
        head, index = rangeid
        depth = self.depth(head)
        if depth - index <= 1:
            return []
        if self._frozen is not None:
            found = self._frozen.subranges_of(key(rangeid))
            if found is not None and self._cut_by(rangeid, found):
                return found
        cut = self._slice_point(rangeid)
        marked = self._walk_marked(head)
        for _ in range(depth - cut):
            next(marked)
        below, spine = next(marked)
        if spine:  # the part below the cut is ``below``'s own sort: one subrange, nothing to walk
            found = [(below, index), (head, cut)]
            self._keep(rangeid, found)
            return found
        walk = itertools.chain((below,), (rev for rev, _spine in marked))
        found = []
        current: int | None = None
        skip = 0
        reference: Iterator[int] = iter(())
        for _ in range(cut - index):
            rev = next(walk)
            if current is not None and next(reference, None) == rev:
                skip -= 1
                continue
            if current is not None:
                found.append((current, skip))
            current = rev
            reference = self.walk_down(rev)
            next(reference)
            skip = self.depth(rev) - 1
        assert current is not None
        found.append((current, skip))
        found.reverse()
        found.append((head, cut))
        self._keep(rangeid, found)
        return found

    def _cut_by(self, rangeid: Range, subs: list[Range]) -> bool:
        """Whether ``subs`` (read from disk) can be the subranges of ``rangeid``: each a range of
        a revision at or below its head, shorter than it, together as long, the last its head's.
        Then a walk down them ends, whatever they hold."""
        head = rangeid[0]
        length = self.length(rangeid)
        total = 0
        for sub_head, sub_index in subs:
            if not (0 <= sub_head <= head and 0 <= sub_index < self.depth(sub_head)):
                return False
            size = self.depth(sub_head) - sub_index
            if size >= length:
                return False
            total += size
        return total == length and len(subs) > 1 and subs[-1][0] == head

    def _hash(self, rangeid: Range) -> bytes | None:
        found = self._hashes.get(rangeid)
        if found is None and self._frozen is not None:
            found = self._frozen.hash_of(key(rangeid))
        return found

    def obshash(self, rangeid: Range) -> bytes:
        """The hash of the markers relevant to the range (null when none is)."""
        found = self._hash(rangeid)
        if found is not None:
            return found
        hashes = self._hashes
        held = hashes.get if self._frozen is None else self._hash
        # subranges first, deepest last, without recursion: a long history nests deeply
        todo = [rangeid]
        while todo:
            current = todo[-1]
            if held(current) is not None:
                todo.pop()
                continue
            if self.length(current) == 1:
                hashes[current] = self._leaf(current[0])
                self.unsaved += 1
                todo.pop()
                continue
            subs = self.subranges(current)
            found_values = [held(s) for s in subs]
            if None in found_values:
                todo.extend(s for s, v in zip(subs, found_values, strict=True) if v is None)
                continue
            values = cast(list[bytes], found_values)
            pieces = [h for h in values if h != NULL_HASH]
            if not pieces:
                value = NULL_HASH
            elif len(pieces) == 1:  # hg-evolve's: the last subrange's hash, null unless it is that one
                value = values[-1]
            else:
                value = hashlib.sha1(b"".join(pieces)).digest()
            hashes[current] = value
            self.unsaved += 1
            todo.pop()
        found = self._hash(rangeid)
        assert found is not None
        return found

    def _leaf(self, rev: int) -> bytes:
        markers = self._relevant([self._node(rev)])
        if not markers:
            return NULL_HASH
        encoded = sorted(obs.encode(markers, 1, header=False))
        return hashlib.sha1(b"".join(encoded)).digest()


def _exported(frozen: tuple[FrozenRanges, bool, set[int]] | None, computed: dict[Range, bytes],
              cut: dict[Range, list[Range]]) -> tuple[dict[int, bytes], dict[int, list[int]]]:
    """``RangeHashes.export`` of the copies ``export_copy`` made."""
    hashes: dict[int, bytes] = dict(frozen[0].hashes(frozen[1], frozen[2])) if frozen is not None else {}
    hashes.update((key(rangeid), value) for rangeid, value in computed.items())
    subranges: dict[int, list[int]] = {}
    if frozen is not None:
        items = frozen[0].sub_items
        start = 0
        for packed, end in zip(frozen[0].sub_keys, frozen[0].sub_ends, strict=True):
            subranges[packed] = list(items[start:end])
            start = end
    subranges.update((key(rangeid), [key(s) for s in subs]) for rangeid, subs in cut.items())
    return hashes, subranges


def _no_markers(nodes: list[bytes]) -> list[Marker]:
    return []


__all__ = ["NULL_HASH", "UNKNOWN_HASH", "RangeHashes"]
