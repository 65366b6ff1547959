"""Obsolescence markers of a repository (``.hg/store/obsstore``), and the changesets they hide.

Changesets a marker rewrote or pruned are *obsolete* while they are not public; obsolete
changesets are *hidden* (left out of everything a client sees) unless something pins them —
the working directory's parents, a bookmark, a local tag — or a visible mutable changeset
descends from them.  This is Mercurial's ``visible`` filter (``repoview.computehidden``);
a server further hides secret changesets (``served``).

A marker is *relevant* to a set of changesets (``obsstore.relevantmarkers``) when it names
one of them as a successor, or prunes one of their children, or is relevant (by the same
rules) to the predecessor of a relevant marker: what a pull sends along with the changesets.
"""

from __future__ import annotations

import binascii
import re
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet

from protocols import hg_obsmarkers as obs
from protocols.hg_obsmarkers import Marker

PUBLIC, DRAFT, SECRET, ARCHIVED = 0, 1, 2, 32
"""Phases, as Mercurial numbers them (internal is 96)."""
_NOT_PUBLIC = re.compile(rb"[^\x00]")
_HIDEABLE_PHASE = re.compile(rb"[\x20-\xff]")
"""Archived or internal (a phase of at least ``ARCHIVED``)."""
_DRAFT_ONLY = re.compile(rb"\x01")
_DRAFT_OR_SECRET = re.compile(rb"[\x01\x02]")
OBSSTORE = b"obsstore"
"""The markers' file in the store."""
DIRSTATE_V2 = b"dirstate-v2\n"


class ObsStore:
    """The markers of one obsstore, indexed as Mercurial indexes them."""

    def __init__(self, version: int, markers: Sequence[Marker]) -> None:
        self.version = version
        self.markers = list(markers)
        self.known: set[Marker] = set()
        self.successors: dict[bytes, list[Marker]] = {}
        """Markers by the changeset they rewrite (``prec``): a changeset here is obsolete."""
        self.predecessors: dict[bytes, list[Marker]] = {}
        """Markers by each of their successors."""
        self.children: dict[bytes, list[Marker]] = {}
        """Markers by each parent their ``prec`` had."""
        self._index(self.markers)

    @classmethod
    def parse(cls, data: bytes) -> ObsStore:
        """An obsstore file's bytes (empty or a lone version byte: no markers)."""
        if len(data) <= 1:
            return cls(data[0] if data else obs.DEFAULT_VERSION, [])
        version, markers = obs.decode(data)
        return cls(version, markers)

    def _index(self, markers: Iterable[Marker]) -> None:
        for m in markers:
            self.known.add(m)
            self.successors.setdefault(m.prec, []).append(m)
            for s in m.succs:
                self.predecessors.setdefault(s, []).append(m)
            for p in m.parents or ():
                self.children.setdefault(p, []).append(m)

    def new(self, markers: Iterable[Marker]) -> list[Marker]:
        """The markers not in the store yet, each once, in the order given."""
        seen: set[Marker] = set()
        fresh = []
        for m in markers:
            if m not in self.known and m not in seen:
                seen.add(m)
                fresh.append(m)
        return fresh

    def extended(self, markers: Sequence[Marker]) -> ObsStore:
        """This store and ``markers`` appended after it, without indexing the old ones again (this
        one is left as it is: other threads may be reading it)."""
        grown = ObsStore.__new__(ObsStore)
        grown.version = self.version
        grown.markers = [*self.markers, *markers]
        grown.known = set(self.known)
        grown.successors, grown.predecessors, grown.children = {}, {}, {}
        for mine, theirs in ((grown.successors, self.successors), (grown.predecessors, self.predecessors),
                             (grown.children, self.children)):
            mine.update(theirs)
        touched: set[tuple[int, bytes]] = set()
        for m in markers:
            grown.known.add(m)
            keys = [(0, m.prec), *((1, s) for s in m.succs), *((2, p) for p in m.parents or ())]
            for which, key in keys:
                index = (grown.successors, grown.predecessors, grown.children)[which]
                if (which, key) not in touched:  # copy a list before the first append: it is shared
                    touched.add((which, key))
                    index[key] = list(index.get(key, ()))
                index[key].append(m)
        return grown

    def relevant(self, nodes: Iterable[bytes]) -> list[Marker]:
        """The markers relevant to ``nodes``, sorted as they are sent."""
        pending = {n for n in nodes if n in self.predecessors or n in self.successors or n in self.children}
        seen_nodes = set(pending)
        found: set[Marker] = set()
        while pending:
            direct: set[Marker] = set()
            for node in pending:
                direct.update(self.predecessors.get(node, ()))
                direct.update(m for m in self.children.get(node, ()) if not m.succs)
                direct.update(m for m in self.successors.get(node, ()) if not m.succs)
            direct -= found
            found |= direct
            pending = {m.prec for m in direct} - seen_nodes
            seen_nodes |= pending
        return sorted(found, key=obs.sort_key)

    def touched_by(self, markers: Iterable[Marker], limit: int | None = None) -> set[bytes]:
        """The changesets (known to the repository or not) whose relevant markers (``relevant``)
        include one of ``markers`` in this store: ``relevant`` read backwards.

        ``relevant`` of a node takes the markers *aimed at* it (those naming it a successor, and
        prunes of it or of a child of it), then, for each, those aimed at its predecessor, and so on.
        So a marker is taken by the changesets it is aimed at, and by every changeset a marker
        rewriting one of those is aimed at, and so on down its successors.  The walk stops once more
        than ``limit`` are found."""
        found: set[bytes] = set()
        pending = [node for m in markers for node in _aimed_at(m)]
        while pending:
            node = pending.pop()
            if node in found:
                continue
            found.add(node)
            if limit is not None and len(found) > limit:
                break
            for m in self.successors.get(node, ()):
                pending.extend(_aimed_at(m))
        return found

    def obsolete_revs(self, rev_of: Mapping[bytes, int], phases: bytearray) -> set[int]:
        """Revisions a marker rewrote or pruned that are draft or secret."""
        found = set()
        for node in self.successors:
            rev = rev_of.get(node)
            if rev is not None and rev < len(phases) and phases[rev] in (DRAFT, SECRET):
                found.add(rev)
        return found


def _aimed_at(marker: Marker) -> tuple[bytes, ...]:
    """The nodes whose ``relevant`` takes ``marker`` directly: its successors, or, for a prune, the
    pruned changeset and its parents."""
    if marker.succs:
        return marker.succs
    return (marker.prec, *(marker.parents or ()))


def relevance_changed(old: ObsStore | None, new: ObsStore | None, limit: int) -> set[bytes] | None:
    """The changesets whose relevant markers may differ between the store ``old`` and ``new`` (a
    push appended markers; ``hg debugobsolete --delete`` took some out): those a marker added is
    relevant to in ``new``, and those a marker removed was relevant to in ``old``.  None when more
    than ``limit`` markers changed or more than ``limit`` changesets are touched (a caller starts over)."""
    before = old.markers if old is not None else []
    after = new.markers if new is not None else []
    if len(before) <= len(after) and after[:len(before)] == before:  # appended (the common case: cheap)
        known = old.known if old is not None else set()
        added = [m for m in after[len(before):] if m not in known]
        removed: list[Marker] = []
    else:
        now = new.known if new is not None else set()
        was = old.known if old is not None else set()
        added = [m for m in now if m not in was]
        removed = [m for m in was if m not in now]
    if len(added) + len(removed) > limit:
        return None
    touched = new.touched_by(added, limit) if new is not None and added else set()
    if old is not None and removed:
        touched |= old.touched_by(removed, limit)
    return touched if len(touched) <= limit else None


def hidden_revs(store: ObsStore, rev_of: Mapping[bytes, int], parents: Sequence[tuple[int, int]],
                phases: bytearray, pinned: Iterable[int]) -> set[int]:
    """The revisions Mercurial's ``visible`` view filters out (``repoview.computehidden``).

    Hideable: obsolete revisions, and archived or internal ones; pinned ones stay; then every
    hideable ancestor of a visible mutable revision is revealed again.
    """
    hidden = store.obsolete_revs(rev_of, phases)
    hidden.update(archived_revs(phases))
    hidden.difference_update(pinned)
    return revealed(hidden, parents, phases)


def archived_revs(phases: bytearray, start: int = 0) -> set[int]:
    """The revisions from ``start`` on that are archived or internal (hideable without a marker)."""
    return {found.start() for found in _HIDEABLE_PHASE.finditer(phases, start)}


def revealed(hidden: set[int], parents: Sequence[tuple[int, int]], phases: bytearray) -> set[int]:
    """``hidden`` (the hideable revisions, pinned ones left out) less every ancestor of a visible
    mutable revision, in place: what stays hidden."""
    if not hidden:
        return hidden
    stack = [r for r in (found.start() for found in _NOT_PUBLIC.finditer(phases)) if r not in hidden]
    while stack:
        for p in parents[stack.pop()]:
            if p >= 0 and p in hidden:
                hidden.discard(p)
                stack.append(p)
    return hidden


def hidden_after(hidden: AbstractSet[int], before: AbstractSet[int], after: AbstractSet[int],
                 parents: Sequence[tuple[int, int]], known: int, children: Callable[[int], Iterable[int]],
                 limit: int) -> set[int] | None:
    """``revealed`` brought up to date instead of computed over every mutable revision: ``hidden``
    is its answer for the first ``known`` revisions of ``parents`` when ``before`` were the hideable
    ones; ``after`` are those now (every revision's: the first ``known`` may have gained or lost
    hideability, by new markers, phases or pins); ``children(rev)`` are a revision's children.

    A revision is hidden when it is hideable and every child of it is hidden (a visible mutable
    descendant reveals its hideable ancestors).  Only the revisions whose answer may differ are
    looked at again: those whose hideability changed, the new ones, and the hideable ancestors of
    these reached through hideable ones (a revision neither hideable before nor now is visible both
    times, and so are its ancestors); descending, so that each child's answer is known when its
    parent's is asked.  None when more than ``limit`` revisions would be (a caller computes it whole)."""
    seeds = (before ^ after) | set(range(known, len(parents)))
    region = set(seeds)
    stack = list(seeds)
    while stack:
        for p in parents[stack.pop()]:
            if p >= 0 and p in after and p not in region:
                region.add(p)
                stack.append(p)
        if len(region) > limit:
            return None
    now = set(hidden) - region
    for rev in sorted(region, reverse=True):
        if rev in after and all(c in now for c in children(rev)):
            now.add(rev)
    return now


BUMPED_FIX = 1
"""Marker flag: the marker fixes a phase-divergent changeset (its predecessor does not count)."""


def instabilities(store: ObsStore, rev_of: Mapping[bytes, int], node_of: Callable[[int], bytes],
                  parents: Sequence[tuple[int, int]], phases: bytearray, limit: int) -> tuple[int, int, int]:
    """How many draft changesets below revision ``limit`` are orphan, phase-divergent and
    content-divergent (secret ones are left out, as a server's summary leaves out what its view
    filters)."""
    draft = {found.start() for found in _DRAFT_ONLY.finditer(phases, 0, limit)}
    orphans, bumped, divergent = instability_sets(store, rev_of, node_of, parents, phases, limit)
    return len(orphans & draft), len(bumped & draft), len(divergent & draft)


def instability_sets(store: ObsStore, rev_of: Mapping[bytes, int], node_of: Callable[[int], bytes],
                     parents: Sequence[tuple[int, int]], phases: bytearray,
                     limit: int) -> tuple[set[int], set[int], set[int]]:
    """The draft and secret changesets below revision ``limit`` that are orphan, phase-divergent and
    content-divergent (``obsolete._computeorphanset`` and the two after it).

    Orphan: not obsolete, with an obsolete or orphan parent.  Phase-divergent: not obsolete, and a
    predecessor (markers followed back, those with ``BUMPED_FIX`` skipped) is public.
    Content-divergent: not obsolete, and some predecessor has more than one successors set.
    """
    def rev(node: bytes) -> int | None:
        found = rev_of.get(node)
        return found if found is not None and found < limit else None

    obsolete = {r for r in store.obsolete_revs(rev_of, phases) if r < limit}
    candidates = [r for r in (found.start() for found in _DRAFT_OR_SECRET.finditer(phases, 0, limit))
                  if r not in obsolete]
    orphans: set[int] = set()
    for r in candidates:
        if any(p >= 0 and (p in obsolete or p in orphans) for p in parents[r]):
            orphans.add(r)
    bumped = set()
    divergent = set()
    sets_cache: dict[bytes, list[tuple[bytes, ...]]] = {}
    for r in candidates:
        node = node_of(r)
        for pred in _all_predecessors(store, node, BUMPED_FIX):
            pred_rev = rev(pred)
            if pred_rev is not None and phases[pred_rev] == PUBLIC:
                bumped.add(r)
                break
        pending = list(store.predecessors.get(node, ()))
        seen: set[bytes] = set()
        while pending:
            prec = pending.pop().prec
            if prec in seen:
                continue
            seen.add(prec)
            if len(successors_sets(store, prec, lambda n: rev(n) is not None, sets_cache)) > 1:
                divergent.add(r)
                break
            pending.extend(store.predecessors.get(prec, ()))
    return orphans, bumped, divergent


def _all_predecessors(store: ObsStore, node: bytes, skip_flags: int) -> Iterable[bytes]:
    """``node`` and every changeset rewritten, directly or not, into it."""
    pending, seen = [node], {node}
    while pending:
        current = pending.pop()
        yield current
        for m in store.predecessors.get(current, ()):
            if not m.flags & skip_flags and m.prec not in seen:
                seen.add(m.prec)
                pending.append(m.prec)


def successors_sets(store: ObsStore, node: bytes, known: Callable[[bytes], bool],
                    cache: dict[bytes, list[tuple[bytes, ...]]]) -> list[tuple[bytes, ...]]:
    """The latest successors of ``node``, one tuple per way it was rewritten (``obsutil.successorssets``).

    A changeset no marker rewrote is its own successor (if known; an unknown one counts as pruned);
    a rewritten one takes, per marker, the combination of its successors' own sets (a split gives a
    tuple of several).  Empty sets (prunes) are dropped, and so is a set contained in a larger one
    already kept.  Walked with an explicit stack (long amend chains), a cycle counts as pruned.
    """
    stack, on_stack = [node], {node}
    while stack:
        current = stack[-1]
        if current in cache:
            on_stack.discard(stack.pop())
            continue
        marks = store.successors.get(current)
        if not marks:
            cache[current] = [(current,)] if known(current) else []
            continue
        ordered = sorted(marks, key=obs.sort_key)
        for m in ordered:
            for succ in m.succs:
                if succ not in cache and succ in on_stack:
                    cache[succ] = []  # a cycle: pruned, for good (as hg leaves it)
        missing = next((s for m in ordered for s in m.succs if s not in cache and s not in on_stack), None)
        if missing is not None:
            stack.append(missing)
            on_stack.add(missing)
            continue
        found: list[tuple[bytes, ...]] = []
        for m in ordered:
            combos: list[tuple[bytes, ...]] = [()]
            for succ in m.succs:
                product = [prefix + tuple(n for n in suffix if n not in prefix)
                           for prefix in combos for suffix in cache.get(succ, [])]
                if product:
                    combos = product
            found.extend(combos)
        kept: list[tuple[bytes, ...]] = []
        for candidate in sorted((c for c in found if c), key=len, reverse=True):
            if not any(set(candidate) <= set(k) for k in kept):
                kept.append(candidate)
        cache[current] = kept
    return cache[node]


_MERGE_RECORD = struct.Struct(">I")
_FILE_RECORDS = (b"F", b"C", b"P", b"D")
"""Merge state records of a file: its path, then its state (``u``/``pu``: unresolved), then more."""


def merge_pins(state2: bytes | None, state1: bytes | None) -> list[bytes]:
    """The local and other changesets of a merge in progress with unresolved files (hg's merge state,
    ``.hg/merge/state2``, else the older ``state``), which ``repoview.pinnedrevs`` keeps visible; none
    without such a merge.  Records: a type byte, a ``>I`` length, the data (``t`` wraps another type)."""
    records: list[tuple[bytes, bytes]] = []
    if state2 is not None:
        off = 0
        while off + 1 + _MERGE_RECORD.size <= len(state2):
            kind = state2[off : off + 1]
            (length,) = _MERGE_RECORD.unpack_from(state2, off + 1)
            start = off + 1 + _MERGE_RECORD.size
            data = state2[start : start + length]
            off = start + length
            if kind == b"t":
                kind, data = data[:1], data[1:]
            records.append((kind, data))
    elif state1 is not None:
        lines = state1.split(b"\n")
        records = [(b"L", lines[0])] + [(b"F", line) for line in lines[1:] if line]
    nodes = {kind: data for kind, data in records if kind in (b"L", b"O")}
    if not any(kind in _FILE_RECORDS and data.split(b"\0")[1:2] in ([b"u"], [b"pu"]) for kind, data in records):
        return []
    pins = []
    for kind in (b"L", b"O"):
        try:
            node = binascii.unhexlify(nodes.get(kind, b""))
        except (binascii.Error, ValueError):
            continue
        if len(node) == 20:
            pins.append(node)
    return pins


def dirstate_parents(data: bytes) -> list[bytes]:
    """The working directory's parents from ``.hg/dirstate`` (format 1, or a dirstate-v2 docket)."""
    if data.startswith(DIRSTATE_V2):
        start = len(DIRSTATE_V2)
        return [data[start : start + 20], data[start + 32 : start + 52]]
    return [data[0:20], data[20:40]]


__all__ = ["ObsStore", "archived_revs", "dirstate_parents", "hidden_after", "hidden_revs", "instabilities",
           "instability_sets", "merge_pins", "relevance_changed", "revealed", "successors_sets"]
