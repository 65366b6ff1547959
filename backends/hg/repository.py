"""A Mercurial repository read and written natively, over a :class:`~backends.hg.vfs.Vfs`.

:class:`HgRepo` is the whole engine behind ``HgRepository``; the filesystem
and in-memory repositories differ only in their vfs and lock objects.  Derived
data (heads, phases, branches) is computed once per changelog snapshot and
dropped when the changelog file changes.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import itertools
import operator
import os
import re
import stat
import sys
import threading
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from operator import itemgetter
from typing import Literal, Protocol

from backends.config_files import ConfigReads
from backends.hg import branchcache, graph, kept, mpatch, rangecache, stablerange
from backends.hg import requirements as reqs
from backends.hg import transaction as journal
from backends.hg.changelog import (
    Changeset,
    manifest_entries,
    manifest_lookup,
    parse_changeset,
    parse_filelog_text,
)
from backends.hg.graph import ParentColumns
from backends.hg.keys import (
    BOOLEANS,
    HEX40,
    absolute_includes,
    config_bool,
    config_list,
    config_section,
    config_value,
    parse_bookmarks,
    parse_publishing,
    with_base,
)
from backends.hg.largefiles import LargefileStore
from backends.hg.obsstore import (
    ARCHIVED,
    DRAFT,
    OBSSTORE,
    PUBLIC,
    SECRET,
    ObsStore,
    archived_revs,
    dirstate_parents,
    hidden_after,
    merge_pins,
    relevance_changed,
    revealed,
)
from backends.hg.push_spool import spooled
from backends.hg.revlog import (
    FLAG_GENERALDELTA,
    FLAG_INLINE,
    NULL_REV,
    VERSION_REVLOGV1,
    Index,
    Revlog,
    RevlogCache,
    index_lineage,
)
from backends.hg.store import decode_dir, store_encoder
from backends.hg.vfs import NotRegularFile, Stamp, Vfs
from backends.hg.writer import SingleHeadRule, Transaction
from backends.interfaces import (
    NULL_NODE,
    AmbiguousIdentifier,
    DeltaMode,
    FilteredRevision,
    HgTransaction,
    Kind,
    LockWait,
    Node,
    RevisionDelta,
    RevisionGroup,
    Section,
    StoreFile,
    TextPieces,
)
from backends.lfs import LfsStore
from backends.lru import LruCache
from protocols import hg_obsmarkers as obs
from protocols.client_gone import checked
from protocols.errors import StorageError, UnsupportedFeature
from protocols.hg_obsmarkers import Marker
from protocols.text import printable

CHANGELOG = b"00changelog.i"
CHANGELOG_DATA = b"00changelog.d"
MANIFEST = b"00manifest.i"
PHASEROOTS = b"phaseroots"
MERGE_STATES = (b"merge/state2", b"merge/state")
BOUNDARY = 64
"""Last bytes of the obsstore kept with its parsed markers: an append is read alone only if they are unchanged."""
MAX_DUMP = 5300
"""Bytes of markers per key of the ``obsolete`` pushkey namespace (fits hg's 8 KiB HTTP headers)."""
SECRET_STREAM_REFUSAL = ("this repository has secret changesets, which a stream clone would copy: "
                         "clone without --stream")
STREAM_OFF_REFUSAL = "stream clones of this repository are turned off ([server] uncompressed): clone without --stream"
FNCACHE = b"fncache"
_HEXPREFIX = re.compile(rb"[0-9a-fA-F]{1,39}\Z")
_NOT_PUBLIC = re.compile(rb"[^\x00]")
_STACK_ALIAS = re.compile(rb"[st][0-9]+\Z")
NULL_HEX = b"0" * 40
"""The null revision's id in hex."""
EXTEND_LIMIT = 1024
"""Most revisions whose hiding, or visibility, a push may change for the views to be brought up to
date (each may cost a search of the parent columns for its children); past it they are computed
afresh."""


class Locks(Protocol):
    """The repository's write locks (wlock, then store lock), taken and released together."""

    def acquire(self, wait: LockWait | None = None) -> None: ...

    def release(self) -> None: ...

    def held_by_other(self) -> bool: ...


class ThreadLocks:
    """Locks for an in-memory repository: one mutex."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def acquire(self, wait: LockWait | None = None) -> None:
        """Wait while another write holds it, up to ``wait.timeout`` if given."""
        timeout = wait.timeout if wait is not None and wait.timeout is not None else -1
        if not self._lock.acquire(timeout=timeout):
            raise StorageError("the repository is locked by another write in progress; try again later")

    def release(self) -> None:
        self._lock.release()

    def held_by_other(self) -> bool:
        return False


_BRANCH_NAME = itemgetter(0)
"""A (branch, closes) pair's branch."""


def _checked_parents(index: Index, start: int) -> ParentColumns:
    """(p1, p2) of the entries from ``start`` on, each checked to be an earlier revision or null.

    The index's own parent columns (from ``start`` on, a copy), checked by C-level passes (a tuple
    an entry and a Python step a revision cost 43 ms for 200,000 changesets, at every first open;
    the list of pairs they were made into, 31 ms more and about 120 bytes a revision)."""
    if not start:
        return _checked_columns(index)[0]
    p1s, p2s = index.parent_columns()
    p1s, p2s = p1s[start:], p2s[start:]
    revs = range(start, start + len(p1s))
    merges = p2s.count(NULL_REV) != len(p2s)  # (a history without merges: no second pass)
    if p1s and (min(p1s) < NULL_REV or any(map(operator.ge, p1s, revs))
                or (merges and (min(p2s) < NULL_REV or any(map(operator.ge, p2s, revs))))):
        _check_parents(zip(revs, p1s, p2s, strict=True))
    return ParentColumns(p1s, p2s)


def _checked_columns(index: Index) -> tuple[ParentColumns, list[int]]:
    """Every entry's (p1, p2), checked, and the revisions where linear history breaks
    (``graph.run_breaks``, which ``compute_phases`` takes too): only those need a check, the others'
    first parent being the revision before and their second null.  The C-level passes over each
    column of ``_checked_parents`` (``min``, ``map``) cost 19 ms for 200,000 changesets, these 6."""
    p1s, p2s = index.parent_columns()
    breaks = graph.run_breaks(p1s, p2s)
    firsts, seconds = list(map(p1s.__getitem__, breaks)), list(map(p2s.__getitem__, breaks))
    if breaks and (min(firsts) < NULL_REV or min(seconds) < NULL_REV or any(map(operator.ge, firsts, breaks))
                   or any(map(operator.ge, seconds, breaks))):
        _check_parents(zip(breaks, firsts, seconds))
    return ParentColumns(p1s, p2s), breaks  # (the index's own columns, shared)


def _check_parents(triples: Iterable[tuple[int, int, int]]) -> None:
    for rev, p1, p2 in triples:
        if not (NULL_REV <= p1 < rev and NULL_REV <= p2 < rev):
            raise StorageError(f"corrupt changelog: revision {rev} has parents {p1}, {p2}")


@dataclass
class Views:
    """Derived data of one changelog snapshot; built lazily, never mutated after."""

    index: Index
    parents: ParentColumns
    """Each revision's (p1, p2): the index's parent columns, shared with it (never changed)."""
    phases: bytearray
    visible: bytearray
    phase_stamp: object = None
    """The phaseroots' and the obsstore's stamps (markers hide changesets: ``visible`` is 0 for them too)."""
    _heads: list[int] | None = None
    _branch_heads: dict[bytes, list[int]] | None = None
    """Per branch, its visible heads (revs, ascending), in the order ``branchmap`` lists the branches."""
    _branch_tips: dict[bytes, tuple[Node, bool]] | None = None
    """Per branch, its tip-most open head (else tip-most head) and whether all its heads are closed."""
    _grown_from: tuple[int, list[int] | None, dict[bytes, list[int]] | None] | None = None
    """For views grown from older ones (a push): how many revisions those had, and their heads and
    branch heads where they were computed, so that these are brought up to date, not recomputed."""
    _topics: dict[int, bytes] | None = None
    """hg-evolve's topic of each visible non-public revision that has one (``HgRepo._draft_topics``)."""
    _roots: dict[bytes, int] | None = None
    """The phaseroots file's roots by node (those it names that the changelog lacks too), each with
    its phase (``_phaseroot_nodes``): the file after a push is compared with them."""
    _hiding: Hiding | None = None
    """What the obsstore hid in these views; None without markers."""
    _draft_roots: list[int] | None = None
    """The draft roots of ``phases`` (``listkeys phases``: a push asks three times, its discovery, its
    ``check:phases`` and after it; each walked every revision from the first non-public one)."""


@dataclass(frozen=True)
class Hiding:
    """The obsolescence state views were computed with (``hidden_revs``' parts), for the views
    after a push to be brought up to date from it (``HgRepo._extended_views``)."""

    markers: Sequence[Marker]
    """The obsstore's markers (its list, never changed): a store extended since holds the same
    objects first, one read afresh (rewritten, or an append that could not be read alone, as in
    memory) is compared with them."""
    obsolete: frozenset[int]
    """Draft and secret revisions a marker rewrote or pruned."""
    archived: frozenset[int]
    """Archived and internal revisions."""
    pinned: frozenset[int]
    """Revisions nothing hides (``HgRepo._pinned``)."""
    hidden: frozenset[int]
    """What ``hidden_revs`` gave: the revisions the markers hide."""

    def hideable(self) -> set[int]:
        return set(self.obsolete | self.archived) - self.pinned


def views_parts(views: Views | None) -> tuple[tuple[object, int], ...]:
    """What ``views`` holds (``kept.KEPT``): its own lists, and the changelog snapshot they were
    computed from (counted once however many hold it)."""
    if views is None:  # (a store's views forgotten)
        return ()
    hiding = views._hiding
    own = kept.VIEWS_ENTRY_BYTES * len(views.parents) + kept.HEAD_BYTES * (
        len(views._heads or ()) + sum(map(len, (views._branch_heads or {}).values()))
        + (len(hiding.obsolete) + len(hiding.archived) + len(hiding.pinned) + len(hiding.hidden)
           + len(hiding.markers) // 5 if hiding else 0)
        + 3 * len(views._roots or ()) + len(views._draft_roots or ()))
    return (views, own + 300), (views.index, kept.index_bytes(views.index))


class HgRepo:
    """The native engine: ``HgRepository`` over a store vfs and a ``.hg`` vfs."""

    kind: Literal[Kind.HG] = Kind.HG

    def __init__(self, name: str, store: Vfs, plain: Vfs, requirements: frozenset[str], locks: Locks,
                 cache_scope: bytes | None = None) -> None:
        self.name = name
        self.store = store
        self.plain = plain
        self._requirements = requirements
        self.locks = locks
        header = VERSION_REVLOGV1 | FLAG_INLINE
        if reqs.GENERALDELTA in requirements:
            header |= FLAG_GENERALDELTA
        # hg creates the changelog split and without generaldelta, whatever the other revlogs'
        # format (changelog.py: ``may_inline=False``; "changelogs don't benefit from generaldelta")
        self.revlogs = RevlogCache(store, header, cache_scope, headers={CHANGELOG: VERSION_REVLOGV1})
        self.encode_path = store_encoder(reqs.DOTENCODE in requirements)
        """A store path's name on disk (``data/Foo.i`` -> ``data/_foo.i``), as this repository's
        requirements encode it."""
        self._views: Views | None = None
        self._views_lock = threading.RLock()
        self.serve_hidden = False
        """Serve the changesets obsolescence markers hide (hg's ``served.hidden`` view, secret ones
        still hidden): set for a client ``allows_hidden_access`` lets in (``hg pull --remote-hidden``)."""
        self._hidden_views: tuple[Views, Views] | None = None
        self._branch_cache: BranchList = ([], NULL_NODE, 0, None)
        self._obsstore: tuple[object, ObsStore, bytes] | None = None
        self._kept_range_hashes: stablerange.RangeHashes | None = None
        self._range_hashes_due: tuple[Revlog, stablerange.RangeHashes, ObsStore | None] | None = None
        """Range hashes to write to disk once the answer that computed them is sent (``take_after_answer``)."""
        self._after_answer_lock = threading.Lock()
        self.recovered: bool = False
        """Whether opening it rolled back a transaction a killed writer left (``recover_if_needed``):
        the gateway logs that, since hg itself would have stopped and asked for ``hg recover``."""
        self.base_hgrc: bytes | None = None
        """An absolute path of a config file read before ``.hg/hgrc`` (the operator's ``[hg] hgrc``,
        as ``hg serve`` reads the system's): the repository's own settings win."""

    # -- layout -------------------------------------------------------------

    def requirements(self) -> frozenset[str]:
        return self._requirements

    def publishing(self) -> bool:
        """``[phases] publish`` of the repository's ``.hg/hgrc`` (its ``%include`` files too; hgwire
        reads no other hgrc)."""
        return parse_publishing(*self._hgrc())

    def hook_config(self) -> tuple[str, list[tuple[bytes, bytes]]] | None:
        """The directory hooks run in (the repository's root) and the ``[hooks]`` of its
        ``.hg/hgrc`` (with its ``%include`` files), in Mercurial's order; None in memory."""
        root = getattr(self.plain, "root", None)
        if root is None:
            return None
        data, include = self._hgrc()
        hooks = config_section(data, b"hooks", include) if data else []
        return os.path.dirname(os.path.normpath(os.fsdecode(root))), hooks

    def _hgrc(self) -> tuple[bytes, Callable[[bytes], bytes | None]]:
        """The repository's ``.hg/hgrc`` (empty when there is none), after ``base_hgrc``'s settings
        (an ``%include`` of it: its sections end where it ends, and a missing file is skipped, as by
        hg), and what reads the files it includes: together ``MAX_HGRC`` bytes at most, regular files
        only (``ConfigReads``: ``StorageError`` saying why for a FIFO, a device, or more than that)."""
        reads = ConfigReads("the repository's hgrc", MAX_HGRC)
        own = self._hgrc_file(reads, b"hgrc")
        include = functools.partial(self._hgrc_include, reads)
        if self.base_hgrc is None:
            return own or b"", include
        return with_base(self.base_hgrc, own or b""), include

    def _local_file(self, path: bytes) -> bytes | None:
        """A file of ``.hg`` a person may write too (``localtags``, a merge's state), None when
        missing: a regular file of ``MAX_LOCAL_FILE`` bytes at most (``ConfigReads``), where a FIFO
        there held a worker for ever and a link to ``/dev/zero`` grew the process until it failed."""
        reads = ConfigReads("the repository's", MAX_LOCAL_FILE, includes=False)
        root = getattr(self.plain, "root", None)
        if root is None:  # (a repository in memory)
            if not self.plain.exists(path):
                return None
            data = self.plain.read(path)
            reads.count(os.fsdecode(path), data)
            return data
        try:
            return reads.read(os.path.join(root, path))
        except (FileNotFoundError, NotADirectoryError):
            return None

    def check_hgrc(self) -> None:
        """Read the hgrc and every file it includes, as the settings a request asks for are read:
        ``StorageError`` saying why when hgwire will not (a FIFO, a device, more than ``MAX_HGRC``)."""
        data, include = self._hgrc()
        config_value(data, b"", b"", include)

    def _hgrc_include(self, reads: ConfigReads, path: bytes) -> bytes | None:
        """A file ``%include`` names: ``~`` and ``$VAR`` expanded, relative to ``.hg``, as for hg."""
        expanded = os.path.expanduser(os.path.expandvars(path))
        if os.path.isabs(expanded):  # such a file's own relative includes are against its directory
            data = self._hgrc_file(reads, expanded)
            return absolute_includes(data, os.path.dirname(expanded)) if data is not None else None
        return self._hgrc_file(reads, expanded)

    def _hgrc_file(self, reads: ConfigReads, path: bytes) -> bytes | None:
        """The config file ``path`` (absolute, or under ``.hg``) through ``reads``; None when it is
        missing (hg skips a missing include, and a missing ``.hg/hgrc``); ``StorageError`` for one
        hg refuses too (a directory, one it may not read)."""
        root = getattr(self.plain, "root", None)
        if root is None and not os.path.isabs(path):  # (a repository in memory)
            if not self.plain.exists(path):
                return None
            data = self.plain.read(path)
            reads.count(os.fsdecode(path), data)
            return data
        full = os.path.join(root, path) if root is not None else path
        try:
            return reads.read(full)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:  # hg: "cannot include X (Is a directory)", and stops
            how = "is" if path == b"hgrc" else "includes"
            raise StorageError(f"{reads.whose} {how} {os.fsdecode(full)}, which cannot be read "
                               f"({exc.strerror}), so hgwire does not serve the repository, as hg would not; "
                               "tell the server's operator") from None

    def state_stamp(self) -> bytes:
        """Changes whenever what a pull can see changes: the changelog, phases, bookmarks, publishing,
        and whether hidden changesets are served (``serve_hidden``).

        Size, modification time and inode of those files (a version counter in
        memory): two equal stamps mean the same answer to the same pull.
        """
        stamps = (self.store.stamp(CHANGELOG), self.store.stamp(CHANGELOG_DATA), self.store.stamp(PHASEROOTS),
                  self.bookmarks_vfs().stamp(b"bookmarks"), self.plain.stamp(b"hgrc"), self._obs_stamp(),
                  _file_stamp(self.base_hgrc), self.serve_hidden)
        return repr(stamps).encode("ascii")

    def filelog_path(self, path: bytes) -> bytes:
        return self.encode_path(b"data/" + path + b".i")

    def changelog(self) -> Revlog:
        scope = self.revlogs.scope
        if scope is not None and self._views is None:
            # The views kept for this store hold the changelog snapshot they were computed from,
            # whether or not the shared index cache keeps it (past ~100,000 changesets it does not):
            # each request on a 200,000-changeset repository parsed it again, built its node map
            # and recomputed the views (0.15 s of CPU a request, 0.4 s a no-op pull; hg serve 0.02)
            kept = SHARED_VIEWS.get(scope)
            if kept is not None:
                self.revlogs.adopt(CHANGELOG, kept.index)
        return self.revlogs.open(CHANGELOG)

    def manifestlog(self) -> Revlog:
        return self.revlogs.open(MANIFEST)

    def filelog(self, path: bytes) -> Revlog:
        return self.revlogs.open(self.filelog_path(path), b"data/" + path + b".i")

    def bookmarks_vfs(self) -> Vfs:
        return self.store if reqs.BOOKMARKS_IN_STORE in self._requirements else self.plain

    # -- derived views ------------------------------------------------------

    def views(self, cl: Revlog | None = None) -> Views:
        """Views of the current changelog snapshot (recomputed only when it changed): hg's ``served``
        view, or ``served.hidden`` (obsoleted changesets visible, secret ones not) under
        ``serve_hidden``."""
        if cl is None:  # not "cl or ...": an empty revlog is falsy
            cl = self.changelog()
        views = self._served_views(cl)
        if not self.serve_hidden:
            return views
        with self._views_lock:
            derived = self._hidden_views
            if derived is not None and derived[0] is views:
                return derived[1]
            unhidden = views.phases.translate(graph.VISIBLE)
            shown = views if unhidden == views.visible else Views(views.index, views.parents, views.phases,
                                                                   unhidden, views.phase_stamp)
            self._hidden_views = (views, shown)
            self._grew()
            return shown

    def _served_views(self, cl: Revlog) -> Views:
        scope = self.revlogs.scope
        with self._views_lock:
            views = self._views
            if views is None and scope is not None:
                views = SHARED_VIEWS.get(scope)
            phase_stamp = self.store.stamp(PHASEROOTS)
            stamp = (phase_stamp, self._obs_stamp())
            if views is not None and views.index is cl.index and views.phase_stamp == stamp:
                if self._views is not views:
                    self._views = views
                    self._grew()
                return views
            extended = self._extended_views(views, cl, stamp) if views is not None else None
            if extended is not None:
                views = extended
            else:
                parents, breaks = _checked_columns(cl.index)
                data = self.store.read(PHASEROOTS) if phase_stamp is not None else b""
                roots = _phaseroot_nodes(data)
                nodemap = cl.index.lookup()
                phases = graph.compute_phases(parents, {rev: phase for node, phase in roots.items()
                                                        if (rev := nodemap.get(node)) is not None}, breaks)
                visible = phases.translate(graph.VISIBLE)
                markers = self.obsstore()
                hiding = None
                if markers is not None:
                    obsolete = markers.obsolete_revs(nodemap, phases)
                    archived = archived_revs(phases)
                    pinned = self._pinned(cl)
                    hidden = revealed((obsolete | archived) - pinned, parents, phases)
                    for rev in hidden:
                        visible[rev] = 0
                    hiding = Hiding(markers.markers, frozenset(obsolete), frozenset(archived), frozenset(pinned),
                                    frozenset(hidden))
                views = Views(cl.index, parents, phases, visible, stamp, _roots=roots, _hiding=hiding)
            self._views = views
            if scope is not None:
                SHARED_VIEWS.put(scope, views)
            self._grew()
            return views

    def _extended_views(self, old: Views, cl: Revlog, stamp: tuple[object, object]) -> Views | None:
        """``old`` brought up to date after a push, or None to compute the views afresh.

        Only when the changelog grew by appending, or not at all (its old last entry
        is where it was).  The phaseroots file's roots are compared with those of
        ``old`` by node: where none of the old revisions' changed, their phases are
        the old ones and the new revisions inherit theirs (a root among them
        applied); else the phases are computed again from the first changed root.
        With an obsstore, what is obsolete, archived and pinned is brought up to
        date from the markers appended since (``Hiding``), and so is what is hidden
        (``hidden_after``: the changed revisions and their hideable ancestors);
        heads and branch heads then grow from the old ones, those whose
        visibility changed looked at again.  Costs the new revisions and markers
        and the revisions they touch, not the history: an obsstore that was
        rewritten (not appended to), or a change touching over ``EXTEND_LIMIT``
        revisions, is computed afresh.
        """
        index = cl.index
        known, count = len(old.parents), len(index)
        if not known or count < known or index.entry(known - 1) != old.index.entry(known - 1):
            return None
        if index is not old.index and self.revlogs.scope is not None and not _appended(
                (old.index.stamp, index_lineage(self.store, CHANGELOG, old.index)),
                (cl.index.stamp, index_lineage(self.store, CHANGELOG, cl.index))):
            return None  # (its old last entry may be back where it was after a strip: not enough)
        old_roots = old._roots
        if old_roots is None or not isinstance(old.phase_stamp, tuple):
            return None
        if stamp[0] == old.phase_stamp[0]:
            roots = old_roots
        else:
            roots = _phaseroot_nodes(self.store.read(PHASEROOTS)) if stamp[0] is not None else {}
        nodemap = index.lookup()
        first = known  # the first old revision whose phase may differ
        if roots is not old_roots and roots != old_roots:
            for node in roots.keys() | old_roots.keys():
                if roots.get(node, 0) != old_roots.get(node, 0):
                    rev = nodemap.get(node)
                    if rev is not None and rev < first:
                        first = rev
        if index is old.index:
            parents = old.parents
        else:
            _checked_parents(index, known)
            parents = ParentColumns(*index.parent_columns())  # (its first ``known`` are the old ones: appended)
        if first < known:
            by_rev = {rev: phase for node, phase in roots.items() if (rev := nodemap.get(node)) is not None}
            root_of: Callable[[int], int] = lambda rev: by_rev.get(rev, 0)
        else:
            root_of = lambda rev: roots.get(index.node(rev), 0)
        phases = bytearray(old.phases)
        phases.extend(bytes(count - known))
        changed: set[int] = set()  # old revisions whose phase changed
        p1s, p2s = parents.p1, parents.p2
        for rev in range(first, count):
            phase = root_of(rev)
            p1, p2 = p1s[rev], p2s[rev]
            if p1 >= 0 and phases[p1] > phase:
                phase = phases[p1]
            if p2 >= 0 and phases[p2] > phase:
                phase = phases[p2]
            if rev < known and phases[rev] != phase:
                changed.add(rev)
            phases[rev] = phase
        visible = phases.translate(graph.VISIBLE)
        finder: list[Callable[[int], list[int]]] = []

        def children(rev: int) -> list[int]:
            if not finder:
                finder.append(parents.children_finder())
            return finder[0](rev)

        before = old._hiding
        hiding = None
        markers = self.obsstore()
        if markers is not None:
            hiding = self._hiding_after(before, markers, cl, parents, phases, known, changed, children)
            if hiding is None:
                return None
            for rev in hiding.hidden:
                visible[rev] = 0
        suspects = changed | ((before.hidden if before is not None else frozenset()) ^ (
            hiding.hidden if hiding is not None else frozenset()))
        flipped = [rev for rev in suspects if rev < known and visible[rev] != old.visible[rev]]
        if len(flipped) > EXTEND_LIMIT:  # (each costs a search for its children and its parents')
            return None
        heads, branch_heads = old._heads, old._branch_heads
        if flipped and heads is not None:
            heads = sorted(graph.heads_after(heads, flipped, parents, visible, children, known))
        if flipped and branch_heads is not None:
            branches = self._branches(cl)
            grouped: dict[bytes, list[int]] = {}
            for rev in sorted(graph.heads_after([rev for revs in branch_heads.values() for rev in revs], flipped,
                                                parents, visible, children, known,
                                                lambda rev: branches[rev][0])):
                grouped.setdefault(branches[rev][0], []).append(rev)
            branch_heads = grouped
        return Views(cl.index, parents, phases, visible, stamp, _grown_from=(known, heads, branch_heads),
                     _roots=roots, _hiding=hiding)

    def _hiding_after(self, before: Hiding | None, markers: ObsStore, cl: Revlog, parents: ParentColumns,
                      phases: bytearray, known: int, changed: set[int],
                      children: Callable[[int], list[int]]) -> Hiding | None:
        """``before`` (None: there were no markers) brought up to ``markers`` and ``phases`` (``changed``:
        the old revisions whose phase changed), pins read again; None where ``markers`` is not the
        store ``before`` was computed from with markers appended, or the change is too wide."""
        nodemap = cl.index.lookup()
        count = len(parents)
        if before is None:
            done, obsolete, archived = 0, set(), archived_revs(phases)
        else:
            done, seen = len(before.markers), markers.markers
            if len(seen) < done or (done and seen[done - 1] is not before.markers[-1]
                                    and seen[:done] != before.markers):
                return None
            obsolete, archived = set(before.obsolete), set(before.archived)
            if changed:
                obsolete -= changed
                archived -= changed
                archived.update(rev for rev in changed if phases[rev] >= ARCHIVED)
            archived.update(archived_revs(phases, known))
        for rev in itertools.chain(changed, range(known, count)):
            if phases[rev] in (DRAFT, SECRET) and cl.node(rev) in markers.successors:
                obsolete.add(rev)
        for marker in itertools.islice(markers.markers, done, None):
            found = nodemap.get(marker.prec)
            if found is not None and phases[found] in (DRAFT, SECRET):
                obsolete.add(found)
        pinned = frozenset(self._pinned(cl))
        hideable = (obsolete | archived) - pinned
        hidden = hidden_after(before.hidden if before is not None else frozenset(),
                              before.hideable() if before is not None else set(), hideable, parents, known,
                              children, EXTEND_LIMIT)
        if hidden is None:
            return None
        return Hiding(markers.markers, frozenset(obsolete), frozenset(archived), pinned, frozenset(hidden))

    def _grew(self) -> None:
        """This open holds more derived data (or other): a kept repository is weighed again."""
        if self.revlogs.on_grow is not None:
            self.revlogs.on_grow()

    # -- obsolescence ---------------------------------------------------------

    def _obs_stamp(self) -> object:
        """The obsstore's stamp, and while it has markers those of what pins hidden changesets."""
        stamp = self.store.stamp(OBSSTORE)
        if stamp is None or stamp[0] <= 1:
            return stamp
        return (stamp, self.bookmarks_vfs().stamp(b"bookmarks"), self.plain.stamp(b"dirstate"),
                self.plain.stamp(b"localtags"), *(self.plain.stamp(name) for name in MERGE_STATES))

    def obsstore(self) -> ObsStore | None:
        """The repository's obsolescence markers; None when it has none.

        Parsed once per version of the file (and shared with other opens of the same store).
        """
        stamp = self.store.stamp(OBSSTORE)
        if stamp is None or stamp[0] <= 1:
            return None
        cached = self._obsstore
        if cached is None and self.revlogs.scope is not None:
            cached = SHARED_OBSSTORES.get(self.revlogs.scope)
        if cached is not None and cached[0] == stamp:
            self._obsstore = cached
            return cached[1]
        size = stamp[0]
        found = self._appended(cached, stamp) if cached is not None else None
        if found is None:
            data = self.store.read_range(OBSSTORE, 0, size)  # the stamp's size, not what is being appended
            try:
                found = ObsStore.parse(data), data[-BOUNDARY:]
            except obs.MarkerError as exc:
                raise StorageError(f"the repository's obsstore is damaged ({exc.message}); "
                                   "repair it with hg debugobsolete or restore it from a backup") from None
        parsed, boundary = found
        self._obsstore = (stamp, parsed, boundary)
        self._grew()
        if self.revlogs.scope is not None:
            SHARED_OBSSTORES.put(self.revlogs.scope, self._obsstore)
        return parsed

    def _appended(self, cached: tuple[object, ObsStore, bytes], stamp: tuple[int, ...]
                  ) -> tuple[ObsStore, bytes] | None:
        """The cached store and the markers appended to its file since: a push appends, so only
        the new bytes are read.  None (read it whole) unless it is the same file, grown, with the
        bytes it ended with still there (a rolled-back append followed by another is not a growth)."""
        old_stamp, old, boundary = cached
        if not isinstance(old_stamp, tuple) or not stamp[2] or old_stamp[2] != stamp[2] \
                or not len(boundary) < old_stamp[0] < stamp[0]:
            return None
        start = old_stamp[0] - len(boundary)
        data = self.store.read_range(OBSSTORE, start, stamp[0] - start)
        if len(data) != stamp[0] - start or not data.startswith(boundary):
            return None
        try:
            return old.extended(obs.decode_markers(data, old.version, len(boundary))), data[-BOUNDARY:]
        except obs.MarkerError:
            return None

    def _pinned(self, cl: Revlog) -> set[int]:
        """Revisions no marker hides (``repoview.pinnedrevs``): the working directory's parents,
        bookmarks, local tags, the two sides of a merge in progress with unresolved files."""
        nodemap = cl.index.lookup()
        nodes: list[bytes] = list(self._bookmarks_in(cl).values())
        nodes.extend(self.working_parents())
        localtags = self._local_file(b"localtags")
        if localtags is not None:
            nodes.extend(node for node, _history in _tag_history(localtags).values())
        states = [self._local_file(name) for name in MERGE_STATES]
        nodes.extend(merge_pins(*states))
        return {rev for rev in (nodemap.get(n) for n in nodes) if rev is not None}

    def pinned_revs(self) -> set[int]:
        """The revisions no marker hides, in the current changelog (``_pinned``)."""
        return self._pinned(self.changelog())

    def changeset_branches(self) -> list[tuple[bytes, bool]]:
        """(branch, closes it) of every revision of the current changelog (``_branches``)."""
        return self._branches(self.changelog())

    def draft_topics(self) -> dict[int, bytes]:
        """The topic of each served non-public revision that has one (``_draft_topics``)."""
        cl = self.changelog()
        return self._draft_topics(cl, self._served_views(cl))

    def obsolescence_enabled(self, option: bytes) -> bool:
        """An option of ``[experimental] evolution`` in the hgrc, as hg's server reads it
        (``obsolete.isenabled``): ``createmarkers`` (markers may be added: a push's are taken), or
        ``exchange`` (markers are advertised and exchanged; only with ``createmarkers``).  Set by
        ``evolution = all`` (or a list of options, or a boolean), or ``evolution.<option>`` booleans."""
        data, include = self._hgrc()
        if not data or not self._evolution_option(data, include, b"createmarkers"):
            return False
        return option == b"createmarkers" or self._evolution_option(data, include, option)

    def obsmarkers_exchange(self) -> bool:
        return self.obsolescence_enabled(b"exchange")

    def _evolution_option(self, data: bytes, include: Callable[[bytes], bytes | None], option: bytes) -> bool:
        specific = config_value(data, b"experimental", b"evolution." + option, include)
        if specific is not None:
            return config_bool(data, b"experimental", b"evolution." + option, include, False)
        general = config_value(data, b"experimental", b"evolution", include)
        if general is None:
            return False
        as_bool = BOOLEANS.get(general.lower())
        if as_bool is not None:  # hg reads it as a boolean first, then as a list
            return as_bool
        values = set(config_list(general))
        return b"all" in values or option in values

    def obsmarkers_version(self) -> int | None:
        """The obsstore's format version (0 or 1); None when the repository has no markers."""
        markers = self.obsstore()
        return None if markers is None else markers.version

    def obsmarkers_for(self, heads: Sequence[Node] | None) -> tuple[int, list[Marker]]:
        """(store version, markers relevant to ``::heads``) for a pull; every visible head if None.
        Heads this repository lacks or does not serve (secret, hidden) are left out."""
        return self.obsmarkers_outside(heads, (), ())

    def obsmarkers_outside(self, heads: Sequence[Node] | None, common: Sequence[Node],
                           extra: Sequence[Node]) -> tuple[int, list[Marker]]:
        """(store version, markers relevant to ``::heads - ::common`` and to ``extra``) for a pull
        that found, by hg-evolve's discovery, what it lacks (``evo_missing_nodes``: ``common`` is the
        pull's, ``extra`` the changesets whose markers differ).  Every visible head if ``heads`` is
        None; nodes this repository lacks are left out of ``heads`` and ``common``, and those it
        lacks or does not serve (secret, hidden) out of ``heads`` and ``extra``: hg-evolve's server
        sends the markers relevant to any node named in ``extra``, which told a client who named a
        secret changeset that it exists and what it was rewritten from (a client names changesets
        both sides have)."""
        markers = self.obsstore()
        if markers is None:
            return obs.DEFAULT_VERSION, []
        cl = self.changelog()
        views = self.views(cl)
        nodemap = cl.index.lookup()
        if heads is None:
            head_revs = self.head_revs(views)
        else:
            head_revs = _served_revs(views, nodemap, heads)
        mask = graph.ancestors_mask(views.parents, head_revs)
        if common:
            theirs = graph.ancestors_mask(views.parents, [r for r in map(nodemap.get, common) if r is not None])
            nodes = [cl.node(r) for r, inside in enumerate(mask) if inside and not theirs[r]]
        else:
            nodes = [cl.node(r) for r, inside in enumerate(mask) if inside]
        nodes.extend(cl.node(r) for r in _served_revs(views, nodemap, extra))
        return markers.version, markers.relevant(nodes)

    def obsmarker_discovery_caps(self) -> tuple[bytes, ...]:
        """What ``hg serve`` with hg-evolve's extension advertises for its markers' discovery, where
        the repository's hgrc (or ``[hg] hgrc``) loads it (``[extensions] evolve =``) and exchanges
        markers: ``_evoext_getbundle_obscommon`` (getbundle takes ``evo_missing_nodes`` and
        ``evo_obscommon``), and ``_evoext_obshashrange_v1`` (the range hashes) unless ``[experimental]
        obshashrange`` is off, or ``obshashrange.max-revs`` is below the changelog's length."""
        if not (self._extension_enabled(b"evolve") or self._extension_enabled(b"hgext3rd.evolve")):
            return ()
        if not self.obsmarkers_exchange():
            return ()
        if not self._hgrc_bool(b"experimental", b"obshashrange", True):
            return (b"_evoext_getbundle_obscommon",)
        data, include = self._hgrc()
        limit = config_value(data, b"experimental", b"obshashrange.max-revs", include) if data else None
        if limit is not None:
            try:
                too_many = int(limit) < len(self.changelog())
            except ValueError:
                too_many = False
            if too_many:
                return (b"_evoext_getbundle_obscommon",)
        return (b"_evoext_getbundle_obscommon", b"_evoext_obshashrange_v1")

    def obsmarker_range_hashes(self, ranges: Sequence[tuple[Node, int]]) -> list[bytes]:
        """hg-evolve's ``evoext_obshashrange_v1``: the hash of the markers relevant to each stable
        range ``(head, index)`` (``backends.hg.stablerange``), as hg-evolve's server computes them;
        all-ff for a head this repository lacks (or an index outside its range), and for one it
        does not serve (hidden or secret: hg-evolve answers for those too, which told a client a
        secret changeset exists; a client asks about the heads of what both sides have, which are
        served, as their ancestors are).  A range no client's discovery asks (an index that is
        neither 0, nor one revision's, nor that of a subrange of a range computed before, or of the
        ranges of its head's whole history) is answered all-ff too, without the walk of its head's
        history its own hash costs (a client that asks one, the kept ranges lost, then asks its
        subranges).  What is computed is kept for the next questions: the ranges while the
        changelog only grows, their hashes while the markers are unchanged, and but for the ranges
        holding a changeset whose relevant markers changed when they are not (a push's amend)."""
        cl = self.changelog()
        views = self._served_views(cl)
        served = self.views(cl).visible
        nodemap = cl.index.lookup()
        store = self.obsstore()
        known = [nodemap.get(node) for node, _index in ranges]
        known = [rev if rev is not None and served[rev] else None for rev in known]
        hashes = self._range_hashes(cl, views)
        answers = []
        with hashes.lock:
            hashes.rebind(views.parents, cl.node)
            if not hashes.disk_tried:
                hashes.disk_tried = True
                if not hashes.known():
                    self._read_range_hashes(cl, hashes, store)
            hashes.use_store(store, nodemap.get)
            later = []
            for rev, (_node, index) in zip(known, ranges, strict=True):
                if rev is None or not 0 <= index < hashes.depth(rev):
                    answers.append(stablerange.UNKNOWN_HASH)
                elif hashes.derived((rev, index)):
                    answers.append(hashes.obshash((rev, index)))
                else:  # maybe a subrange of a range asked after it
                    later.append((len(answers), (rev, index)))
                    answers.append(stablerange.UNKNOWN_HASH)
            for at, rangeid in later:
                if not hashes.derived(rangeid):  # the ranges of its head's whole history, as if asked
                    hashes.obshash((rangeid[0], 0))  # (one the kept ranges lost is most often there)
                if hashes.derived(rangeid):
                    answers[at] = hashes.obshash(rangeid)
            if hashes.unsaved > hashes.known() // 8:
                with self._after_answer_lock:
                    self._range_hashes_due = (cl, hashes, store)
        self._grew()
        return answers

    def take_after_answer(self) -> Callable[[], None] | None:
        """What the answers computed left to do once they are sent (in the pool, not before them:
        the client is not kept waiting): writing the range hashes to disk (``_save_range_hashes``;
        1.4 s of CPU for 200,000 changesets, where the answer took 2.2).  None when nothing is due;
        whoever takes it does it (the opens of readers share one repository)."""
        with self._after_answer_lock:
            due, self._range_hashes_due = self._range_hashes_due, None
        if due is None:
            return None
        return functools.partial(self._save_range_hashes, *due)

    def _save_range_hashes(self, cl: Revlog, hashes: stablerange.RangeHashes, store: ObsStore | None) -> None:
        """Write the ranges ``hashes`` holds to ``rangecache.PATH`` if they are still those of
        ``store``'s markers on ``cl``'s revisions (a push since has the next question save them) and
        more than an eighth of the changesets' worth of hashes were computed since they were last
        read or written (the first question's, not a push's few: the file's markers, appended to,
        are told at reading).  Only their copies are made under ``hashes.lock``: a question asked
        meanwhile waits for those, not for the file's making."""
        obs_fit = self._obsstore_fit(store) if getattr(self.locks, "try_acquire_wlock", None) else None
        if obs_fit is None:
            return
        with hashes.lock:
            count = hashes.known()
            if hashes.held_store() is not store or not 0 < count <= len(cl) or hashes.unsaved <= count // 8:
                return
            exported = hashes.export_copy()
            hashes.unsaved = 0
        fit = rangecache.Fit(count, cl.node(count - 1), hashlib.sha1(cl.index.nodes()[:20 * count]).digest(),
                             *obs_fit)
        self._write_range_hashes(rangecache.encode(fit, *exported()))

    def _obsstore_fit(self, store: ObsStore | None) -> tuple[int, int, bytes] | None:
        """(size, markers, digest) of the obsstore file ``store`` was read from, as it is now
        (None: it was rewritten since, or cannot be read)."""
        if store is None:
            return 0, 0, hashlib.sha1(b"").digest()
        held = self._obsstore
        if held is None or held[1] is not store or not isinstance(held[0], tuple):
            return None
        size, inode = held[0][0], held[0][2]
        try:
            data = self.store.read_range(OBSSTORE, 0, size)
            now = self.store.stamp(OBSSTORE)
        except (OSError, NotRegularFile):
            return None
        if len(data) != size or now is None or now[2] != inode:  # (grown since: its first bytes are the same)
            return None
        return size, len(store.markers), hashlib.sha1(data).digest()

    def _read_range_hashes(self, cl: Revlog, hashes: stablerange.RangeHashes, store: ObsStore | None) -> None:
        """Go on from the ranges ``rangecache.PATH`` holds where it fits this changelog (its first
        revisions, the same) and has the hashes of markers ``store`` holds too; else leave
        ``hashes`` as it is (an absent, damaged, truncated, oversized or foreign file, a FIFO or a
        device there, is rebuilt, as hg rebuilds its caches)."""
        if getattr(self.locks, "try_acquire_wlock", None) is None:
            return  # in memory: nothing outlived the process
        try:
            head = self.plain.read_range(rangecache.PATH, 0, rangecache.HEADER.size)
            fit = rangecache.header(head)
            if fit is None or not 0 < fit.count <= len(cl) or cl.node(fit.count - 1) != fit.tip:
                return
            size = rangecache.expected_size(head)
            if size > rangecache.bound(fit.count):
                return
            data = self.plain.read_range(rangecache.PATH, 0, size + 1)  # (one more: a longer file is another)
        except (OSError, NotRegularFile):
            return
        if len(data) != size or not data.startswith(head):
            return
        if hashlib.sha1(cl.index.nodes()[:20 * fit.count]).digest() != fit.nodes_digest:
            return  # (another changelog whose revision count-1 is the same: stripped and added back)
        frozen = rangecache.decode(data)
        if frozen is not None:
            hashes.adopt(frozen, fit.count, store, self._markers_changed(cl, fit, store))

    def _markers_changed(self, cl: Revlog, fit: rangecache.Fit, store: ObsStore | None) -> list[int] | None:
        """The revisions below ``fit.count`` whose relevant markers differ between the obsstore the
        file's hashes were computed on and ``store``: none where it is the same, those the markers
        appended since touch where it was only appended to, None (all) otherwise."""
        now = self._obsstore_fit(store)
        if now is None or fit.obs_size > now[0] or fit.obs_count > now[1]:
            return None
        if (fit.obs_size, fit.obs_count) == now[:2]:
            return [] if fit.obs_digest == now[2] else None
        try:
            before = self.store.read_range(OBSSTORE, 0, fit.obs_size)
        except (OSError, NotRegularFile):
            return None
        if store is None or hashlib.sha1(before).digest() != fit.obs_digest:
            return None
        old = ObsStore(store.version, store.markers[:fit.obs_count]) if fit.obs_count else None
        touched = relevance_changed(old, store, stablerange.FORGET_LIMIT)
        if touched is None:
            return None
        nodemap = cl.index.lookup()
        return [r for r in map(nodemap.get, touched) if r is not None and r < fit.count]

    def _write_range_hashes(self, data: bytes) -> None:
        """Write ``rangecache.PATH`` whole (a temporary file renamed), under the ``wlock`` if it is
        free now, as hg writes its caches; a repository where it cannot be written (busy, a
        read-only disk) is served as before."""
        try_wlock = getattr(self.locks, "try_acquire_wlock", None)
        release_wlock = getattr(self.locks, "release_wlock", None)
        if try_wlock is None or release_wlock is None or not try_wlock():
            return
        try:
            self.plain.replace(rangecache.PATH, data)
        except OSError:
            pass
        finally:
            release_wlock()

    def _range_hashes(self, cl: Revlog, views: Views) -> stablerange.RangeHashes:
        """The stable ranges of this store, shared by its opens while its changelog has the
        revisions they were computed on (it only grew: no strip).  The last of them where it was
        is not enough: a strip by ``hg`` on the server, the changesets unbundled again in another
        order, puts it back with others numbered differently below (``_appended``)."""
        scope = self.revlogs.scope
        snapshot = (cl.index.stamp, index_lineage(self.store, CHANGELOG, cl.index)) if scope is not None else None
        found = self._kept_range_hashes
        if found is None and scope is not None:
            found = SHARED_RANGE_HASHES.get(scope)
        if found is not None:
            with found.lock:
                done = found.known()
                same = (done <= len(views.parents) and _appended(found.snapshot, snapshot)
                        and (done == 0 or found.node_at(done - 1) == cl.node(done - 1)))
                if same:
                    found.snapshot = snapshot
            if same:
                self._kept_range_hashes = found
                return found
        hashes = stablerange.RangeHashes(views.parents, cl.node, _no_markers)
        hashes.snapshot = snapshot
        self._kept_range_hashes = hashes
        if scope is not None:
            SHARED_RANGE_HASHES.put(scope, hashes)
        return hashes

    def head_revs(self, views: Views) -> list[int]:
        """The visible heads of a snapshot (revs, ascending): computed once per snapshot."""
        if views._heads is None:
            grown = views._grown_from
            saved = self._saved_heads(views) if grown is None or grown[1] is None else None
            if grown is not None and grown[1] is not None:
                views._heads = sorted(graph.grown_heads(views.parents, views.visible, grown[1], grown[0]))
            elif saved is not None:  # those of the saved branch heads with no child, then the newer revisions
                start = saved[0]
                at_start = views.parents.childless(sorted({rev for rev, _, _ in saved[1]}), start)
                views._heads = sorted(graph.grown_heads(views.parents, views.visible, at_start, start))
            else:
                views._heads = graph.heads(views.parents, views.visible)
        return views._heads

    def _branch_head_revs(self, cl: Revlog, views: Views) -> dict[bytes, list[int]]:
        """Per branch, its visible heads (revs, ascending): computed once per snapshot, and for
        one grown from an older snapshot, brought up to date from that one's."""
        branches = self._branches(cl, views)  # also writes the rev-branch-cache if it could not before
        if views._branch_heads is not None:
            return views._branch_heads
        grown = views._grown_from
        start, known = (grown[0], grown[2]) if grown is not None else (0, None)
        if known is None:
            saved = self._saved_branch_heads(cl, views, branches)
            if saved is not None:
                start, known = saved
        if known is None and branches and len(set(map(_BRANCH_NAME, branches[:len(views.parents)]))) == 1:
            # one branch (a linear history's): its heads are the visible heads, which ``heads`` has
            # computed for this snapshot already; the walk below took 28 ms of CPU for 200,000 changesets
            only = self.head_revs(views)
            views._branch_heads = {branches[0][0]: list(only)} if only else {}
            return views._branch_heads
        heads: dict[bytes, set[int]] = {}
        if known is not None:
            heads = {name: set(revs) for name, revs in known.items()}
        else:
            start = len(views.parents)
            has_child = bytearray(len(views.parents))
            for rev, (p1, p2) in enumerate(views.parents):
                if views.visible[rev]:
                    for p in (p1, p2):
                        if p >= 0 and branches[p][0] == branches[rev][0]:
                            has_child[p] = 1
            for rev in range(len(views.parents)):
                if views.visible[rev] and not has_child[rev]:
                    heads.setdefault(branches[rev][0], set()).add(rev)
        for rev in range(start, len(views.parents)):
            if views.visible[rev]:
                name = branches[rev][0]
                revs = heads.setdefault(name, set())
                revs.difference_update(p for p in views.parents[rev] if p >= 0 and branches[p][0] == name)
                revs.add(rev)
        ordered: dict[bytes, list[int]] = {}
        for rev in sorted(rev for revs in heads.values() for rev in revs):
            ordered.setdefault(branches[rev][0], []).append(rev)
        views._branch_heads = ordered
        return ordered

    def _saved_heads(self, views: Views) -> tuple[int, list[tuple[int, bytes, bool]]] | None:
        """The branch heads ``.hg/cache/branch2-served`` holds (as hg writes it, and hgwire after a
        push: ``save_served_branchmap``) as (rev, branch, closed), and how many revisions they are
        the heads of; None unless it is there and holds: nothing filtered (the file then has no
        hash of filtered revisions), its tip still the changelog's at its place, each head a
        changeset at or below it.  The first request after a start walked every revision for the
        heads (12 ms for 200,000 changesets) and each branch's (65 ms on two branches), where
        ``hg serve`` reads this file."""
        if views.visible.find(0) >= 0 or self.obsstore() is not None or not self.plain.exists(
                b"cache/" + SERVED_BRANCHMAP):
            return None
        index = views.index
        try:
            lines = self.plain.read(b"cache/" + SERVED_BRANCHMAP).splitlines()
            fields = lines[0].split(b" ") if lines else []
            if len(fields) != 2 or not HEX40.fullmatch(fields[0]) or not fields[1].isdigit():
                return None
            tip = int(fields[1])
            if not 0 <= tip < len(index) or index.node(tip) != binascii.unhexlify(fields[0]):
                return None
            lookup = index.lookup()
            heads = []
            for line in lines[1:]:
                node, state, name = line.split(b" ", 2)
                rev = lookup.get(binascii.unhexlify(node)) if HEX40.fullmatch(node) else None
                if rev is None or rev > tip or state not in (b"o", b"c"):
                    return None
                heads.append((rev, name, state == b"c"))
        except (ValueError, OSError, NotRegularFile):  # a FIFO there: absent, as hg takes a cache it cannot read
            return None
        return (tip + 1, heads) if heads else None

    def _saved_branch_heads(self, cl: Revlog, views: Views, branches: Sequence[tuple[bytes, bool]],
                            ) -> tuple[int, dict[bytes, list[int]]] | None:
        """``_saved_heads`` by branch, where each is on the branch and of the closed state it names."""
        saved = self._saved_heads(views)
        if saved is None or saved[0] > len(branches):
            return None
        heads: dict[bytes, list[int]] = {}
        for rev, name, closed in saved[1]:
            if branches[rev] != (name, closed):
                return None
            heads.setdefault(name, []).append(rev)
        return saved[0], heads

    def changeset(self, cl: Revlog, rev: int) -> Changeset:
        return parse_changeset(cl.revision(rev))

    def _branches(self, cl: Revlog, views: Views | None = None, wlock_held: bool = False) -> list[tuple[bytes, bool]]:
        """(branch, closes) of every revision (``views`` is not needed; ``wlock_held`` says the
        caller holds the repository's locks, as a transaction's commit does).

        The changelog only grows, so the list is kept across snapshots, and for
        a repository on disk across opens, and only new revisions are parsed
        (checked by the node of the last one known: a rollback or strip that
        changed it starts over).  A cold start takes what Mercurial's
        ``rev-branch-cache`` vouches for, and the files are brought up to date
        when revisions had to be read (:mod:`backends.hg.branchcache`).
        """
        scope = self.revlogs.scope
        snapshot = (cl.index.stamp, index_lineage(self.store, CHANGELOG, cl.index)) if scope is not None else None
        with self._views_lock:
            known, tip, saved, seen = self._branch_cache
            if not known and scope is not None:
                known, tip, saved, seen = SHARED_BRANCHES.get(scope) or ([], NULL_NODE, 0, None)
            if len(known) > len(cl) or (known and cl.node(len(known) - 1) != tip) or not _appended(seen, snapshot):
                known, saved = [], 0
            if not known:
                known = branchcache.read(self.plain, cl)
                saved = len(known)
            if len(known) < len(cl):
                known = known + [branchcache.branch_of(text) for text in cl.texts(len(known), len(cl))]
            tip = cl.node(len(known) - 1) if known else NULL_NODE  # also when the files vouched for all
            if saved < len(known):
                saved = self._save_branches(cl, known, saved, wlock_held)
            if scope is not None:
                SHARED_BRANCHES.put(scope, (known, tip, saved, snapshot))
            if self._branch_cache[0] is not known:
                self._branch_cache = (known, tip, saved, snapshot)
                self._grew()
            else:
                self._branch_cache = (known, tip, saved, snapshot)
            return known

    def _save_branches(self, cl: Revlog, known: list[tuple[bytes, bool]], saved: int, wlock_held: bool) -> int:
        """Write the rev-branch-cache files under the ``wlock``, as hg does: a reader takes it only
        if it is free now (a writer holding it brings the files up to date as it commits); return
        what they vouch for.  A repository whose cache cannot be written (a read-only disk) is not
        tried again for these revisions."""
        try_wlock = getattr(self.locks, "try_acquire_wlock", None)
        release_wlock = getattr(self.locks, "release_wlock", None)
        if try_wlock is None or release_wlock is None:
            return len(known)  # in memory: nothing outlives the process
        if wlock_held:
            return self._write_branches(cl, known)
        if not try_wlock():
            return saved
        try:
            return self._write_branches(cl, known)
        finally:
            release_wlock()

    def _write_branches(self, cl: Revlog, known: list[tuple[bytes, bool]]) -> int:
        try:
            return branchcache.write(self.plain, cl, known)
        except OSError:
            return len(known)

    def save_branches_after_commit(self) -> None:
        """Called by a transaction that added changesets, after its commit and under its locks:
        the branches of the new changesets go to the rev-branch-cache while nobody else can write
        it (the branches of the older ones are usually known already: a push asks for them)."""
        if getattr(self.locks, "try_acquire_wlock", None) is None:
            return  # in memory: no files
        try:
            self._branches(self.changelog(), wlock_held=True)
        except StorageError:
            pass  # the push is committed; a cache that cannot be built is hg's to rebuild

    def save_served_branchmap(self) -> None:
        """Called by a transaction that changed the repository, after its commit and under its
        locks: ``.hg/cache/branch2-served``, the heads of every branch as hg writes them when its
        own transactions close (``hg serve``'s pushes), so that hg on the server and a stream clone
        (which copies the file) need not read every changeset to know them.  Only while no
        changeset is secret, archived, internal or obsolete: hg's file then carries a hash of those,
        which is not written here (the file stays removed and hg rebuilds it, as before)."""
        if getattr(self.locks, "try_acquire_wlock", None) is None:
            return  # in memory: no files
        try:
            cl = self.changelog()
            views = self._served_views(cl)
            if not len(cl) or views.visible.find(0) >= 0 or self.obsstore() is not None:
                return
            branches = self._branches(cl, views, wlock_held=True)
            tip = len(cl) - 1
            lines = [b"%s %d\n" % (binascii.hexlify(cl.node(tip)), tip)]
            heads = self._branch_head_revs(cl, views)
            for name in sorted(heads):
                lines.extend(b"%s %s %s\n" % (binascii.hexlify(cl.node(rev)), b"c" if branches[rev][1] else b"o", name)
                             for rev in heads[name])
            self.plain.replace(b"cache/" + SERVED_BRANCHMAP, b"".join(lines))
        except (StorageError, OSError):
            pass  # the push is committed; a cache that cannot be written is hg's to rebuild

    # -- HgRepository: queries ----------------------------------------------

    def heads(self) -> list[Node]:
        cl = self.changelog()
        return self._heads(cl, self.views(cl))

    def _heads(self, cl: Revlog, views: Views) -> list[Node]:
        return [cl.node(r) for r in self.head_revs(views)] or [NULL_NODE]

    def known(self, nodes: Sequence[Node]) -> list[bool]:
        cl = self.changelog()
        views = self.views(cl)
        nodemap = cl.index.lookup()
        out = []
        for node in checked(nodes, "the known answer"):
            rev = nodemap.get(node)
            out.append(node == NULL_NODE or (rev is not None and bool(views.visible[rev])))
        return out

    def branchmap(self) -> Mapping[bytes, Sequence[Node]]:
        cl = self.changelog()
        return self._branchmap(cl, self.views(cl))

    def _branchmap(self, cl: Revlog, views: Views) -> dict[bytes, list[Node]]:
        return {name: [cl.node(rev) for rev in revs] for name, revs in self._branch_head_revs(cl, views).items()}

    def topic_branchmap(self) -> dict[bytes, list[Node]] | None:
        """The branch map ``hg serve`` with hg-evolve's topic extension answers ``branchmap`` with,
        where the repository serves topics and does not publish: a visible draft with a topic is on
        ``BRANCH:TOPIC`` (the extension's old form, which every client with topic reads), and each
        such name has its own heads, so that a push of a second topic on a branch is no new head.
        None where it is the plain map.  Only the revisions from the first topic's (or its parent's)
        on are walked: before them every head is the plain map's."""
        if not self.serves_topics() or self.publishing():
            return None
        cl = self.changelog()
        views = self.views(cl)
        plain = self._branch_head_revs(cl, views)
        branches = self._branches(cl, views)
        keys = {rev: branches[rev][0] + b":" + topic for rev, topic in self._draft_topics(cl, views).items()}
        if not keys:
            return None
        start = min([*keys, *(p for rev in keys for p in views.parents[rev] if p >= 0)])
        heads: dict[bytes, set[int]] = {name: {rev for rev in revs if rev < start} for name, revs in plain.items()}
        for rev in range(start, len(views.parents)):
            if not views.visible[rev]:
                continue
            key = keys.get(rev, branches[rev][0])
            heads.setdefault(key, set()).add(rev)
            for parent in views.parents[rev]:
                if parent >= start and keys.get(parent, branches[parent][0]) == key:
                    heads[key].discard(parent)
        return {name: [cl.node(rev) for rev in sorted(revs)] for name, revs in heads.items() if revs}

    def branch_tips(self) -> dict[bytes, tuple[Node, bool]]:
        """Branch -> (tip-most open head, or tip-most head if all are closed; all closed?)."""
        cl = self.changelog()
        return self._branch_tips(cl, self.views(cl))

    def _branch_tips(self, cl: Revlog, views: Views) -> dict[bytes, tuple[Node, bool]]:
        """Computed once per snapshot (a poll's ``hg id -r BRANCH`` asked for them at each lookup)."""
        if views._branch_tips is not None:
            return views._branch_tips
        branches = self._branches(cl, views)
        tips: dict[bytes, tuple[Node, bool]] = {}
        for name, heads in self._branchmap(cl, views).items():
            open_heads = [h for h in heads if not branches[cl.rev(h)][1]]
            tips[name] = ((open_heads or list(heads))[-1], not open_heads)
        views._branch_tips = tips
        return tips

    def stored_bookmarks(self) -> dict[bytes, Node]:
        """Every bookmark of the file whose changeset the changelog has (what a write keeps)."""
        return self._bookmarks_in(self.changelog())

    def _bookmarks_in(self, cl: Revlog) -> dict[bytes, Node]:
        vfs = self.bookmarks_vfs()
        data = vfs.read(b"bookmarks") if vfs.exists(b"bookmarks") else b""
        nodemap = cl.index.lookup()
        return {k: v for k, v in parse_bookmarks(data).items() if v in nodemap or v == NULL_NODE}

    def _visible_bookmarks(self, cl: Revlog | None = None, views: Views | None = None) -> dict[bytes, Node]:
        """The file's bookmarks on visible changesets, parsed and filtered once per version of the
        file and snapshot of the changelog's views: pollers (``hg id``, ``hg incoming``) ask for a
        repository of a thousand bookmarks many times a second, and the file is read anyway.
        ``cl`` and ``views``: the snapshot the caller holds (read afresh without them)."""
        if cl is None or views is None:
            cl = self.changelog()
            views = self.views(cl)
        vfs = self.bookmarks_vfs()
        data = vfs.read(b"bookmarks") if vfs.exists(b"bookmarks") else b""
        scope = self.revlogs.scope
        if scope is not None:
            cached = SHARED_BOOKMARKS.get(scope)
            # views is one object per changelog index and phases/obsolescence state; the bytes
            # themselves are compared, so shares of one store with files of their own stay apart
            if cached is not None and cached[0] is views and cached[1] == data:
                return dict(cached[2])
        nodemap = cl.index.lookup()
        marks = {}
        for name, node in checked(parse_bookmarks(data).items(), "the bookmarks list"):
            rev = nodemap.get(node)
            if rev is not None and views.visible[rev]:
                marks[name] = node
        if scope is not None:
            SHARED_BOOKMARKS.put(scope, (views, data, dict(marks)))
        return marks

    def bookmarks(self) -> Mapping[bytes, Node]:
        """The bookmarks hg's server lists: on a changeset pulls can see (not secret), and not
        the divergent copies ``name@path`` a pull leaves behind (``bookmarks.listbinbookmarks``)."""
        marks = self._visible_bookmarks()
        if b"@" not in b"".join(marks):  # (a poll lists them all: most repositories have no name with one)
            return marks
        return {k: v for k, v in marks.items() if not _divergent(k)}

    def tags(self, local: bool = True) -> dict[bytes, Node]:
        """The tags hg resolves: ``.hgtags`` of every head, oldest head first, then ``.hg/localtags``
        (unless not ``local``: the global tags alone).

        Merged as Mercurial merges them: each file gives every tag its last
        node and the ones it had before (its history); a later head's value
        wins unless the value already found supersedes it (names it in its own
        history) and is not superseded back, or is, with the longer history.
        So a tag moved or removed on one head stays moved or removed when
        another head still has the old line.  A tag on the null node is removed.
        """
        cl = self.changelog()
        return self._tags(cl, self.views(cl), local)

    def _tags(self, cl: Revlog, views: Views, local: bool = True) -> dict[bytes, Node]:
        heads = sorted((cl.rev(h), h) for h in self._heads(cl, views) if h != NULL_NODE)
        scope = self.revlogs.scope
        key = (len(cl), tuple(h for _r, h in heads), self.plain.stamp(b"localtags") if local else None, local)
        if scope is not None:
            cached = SHARED_TAGS.get(scope)
            if cached is not None and cached[0] == key:
                return dict(cached[1])
        found: dict[bytes, tuple[Node, list[Node]]] = {}
        seen: set[bytes] = set()
        for _rev, head in heads:
            text = self._file_at(cl, head, b".hgtags")
            if text is not None and text not in seen:  # the same file on several heads: read once
                seen.add(text)
                _merge_tags(_tag_history(text), found)
        localtags = self._local_file(b"localtags") if local else None
        if localtags is not None:
            _merge_tags(_tag_history(localtags), found)
        tags = {name: node for name, (node, _h) in found.items() if node != NULL_NODE and cl.has_node(node)}
        if scope is not None:
            SHARED_TAGS.put(scope, (key, dict(tags)))
        return tags

    def tags_file_nodes(self, heads: Sequence[Node]) -> list[tuple[Node, Node]]:
        """(head, node of its ``.hgtags`` file) for a bundle2 ``hgtagsfnodes`` part: the null node
        for a head without the file, as hg's tags cache records it; nothing in a repository that
        never had one.  The first ``MAX_TAGS_FNODES_HEADS`` heads only (one manifest read each):
        the client computes the others itself, as it does all of them without the part."""
        if not self.store.exists(self.filelog_path(HGTAGS)):
            return []
        cl = self.changelog()
        ml = self.manifestlog()
        pairs: list[tuple[Node, Node]] = []
        for head in [h for h in heads if h != NULL_NODE][:MAX_TAGS_FNODES_HEADS]:
            manifest = self.changeset(cl, cl.rev(head)).manifest
            found = manifest_lookup(ml.revision(ml.rev(manifest)), HGTAGS) if manifest != NULL_NODE else None
            pairs.append((head, found or NULL_NODE))
        return pairs

    def _file_at(self, cl: Revlog, node: Node, path: bytes) -> bytes | None:
        cs = self.changeset(cl, cl.rev(node))
        ml = self.manifestlog()
        file_node = manifest_lookup(ml.revision(ml.rev(cs.manifest)), path)
        if file_node is None:
            return None
        fl = self.filelog(path)
        return parse_filelog_text(fl.revision(fl.rev(file_node))).data

    def lookup(self, key: bytes) -> Node:
        """Resolve as Mercurial's revsymbol: rev number, full hex, names, then hex prefix."""
        cl = self.changelog()
        views = self.views(cl)
        if key == b"null" or key == NULL_HEX:  # the null revision by name or by its id, as hg takes both
            return NULL_NODE
        if key == b"tip":  # the last visible revision (a C-level search: a list of every visible
            tip = views.visible.rfind(1, 0, len(cl))  # one was made first, 13 ms at 200,000 changesets)
            return cl.node(tip) if tip >= 0 else NULL_NODE
        if key == b".":
            return self._working_parent(cl, views)
        node = self._lookup_rev_number(cl, views, key)
        if node is None and HEX40.match(key):
            candidate = binascii.unhexlify(key)
            rev = cl.index.lookup().get(candidate)
            if rev is not None:
                if not views.visible[rev]:
                    raise FilteredRevision(key)
                node = Node(candidate)
        if node is None:
            node = self._lookup_name(cl, views, key)
        if node is None and _HEXPREFIX.match(key):
            node = self._lookup_prefix(cl, views, key.lower())
        if node is None:
            raise KeyError(key)
        return node

    def working_parents(self) -> list[Node]:
        """The working directory's parents as ``.hg/dirstate`` names them (null for none, as for a
        repository without a working directory)."""
        if not self.plain.exists(b"dirstate"):
            return [NULL_NODE, NULL_NODE]
        found = [Node(node) if len(node) == 20 else NULL_NODE
                 for node in dirstate_parents(self.plain.read_range(b"dirstate", 0, 80))]
        return (found + [NULL_NODE, NULL_NODE])[:2]

    def _working_parent(self, cl: Revlog, views: Views) -> Node:
        """``.``: the working directory's first parent (null without one); one the changelog lacks is
        unknown, a hidden one filtered, as hg says."""
        node = self.working_parents()[0]
        if node == NULL_NODE:
            return NULL_NODE
        rev = cl.index.lookup().get(node)
        if rev is None:
            raise KeyError(b".")
        if not views.visible[rev]:
            raise FilteredRevision(b".")
        return node

    def _lookup_rev_number(self, cl: Revlog, views: Views, key: bytes) -> Node | None:
        try:
            rev = int(key)
        except ValueError:
            return None
        if b"%d" % rev != key:
            return None
        if rev < 0:
            rev += len(cl)  # -1 is the last revision; beyond -len(cl) is no number at all, as for hg
        if 0 <= rev < len(cl):
            if views.visible[rev]:
                return cl.node(rev)
            raise FilteredRevision(key)  # a hidden revision: hg stops here too, it is not a hex prefix
        return None

    def _lookup_name(self, cl: Revlog, views: Views, key: bytes) -> Node | None:
        """A bookmark (a divergent one too, as in hg's namespaces), a tag, a branch; one on a hidden
        changeset is none to a server (hg's served view loads no such bookmark, lists no such tag).
        All three from the snapshot ``lookup`` took (the changelog and its views were opened and
        their files' stamps read anew for each: 17 stamps for an ``hg id -r default``, now 4)."""
        nodemap = cl.index.lookup()
        marks = self._visible_bookmarks(cl, views)
        if key in marks:
            return marks[key]
        tags = self._tags(cl, views)
        if key in tags and views.visible[nodemap[tags[key]]]:
            return tags[key]
        tips = self._branch_tips(cl, views)
        if key in tips:
            return tips[key][0]
        if self.serves_topics():
            return self._lookup_topic(cl, views, key)
        return None

    def serves_topics(self) -> bool:
        """The repository's hgrc (or ``[hg] hgrc``) enables hg-evolve's ``topic`` extension
        (``[extensions] topic =`` or ``hgext3rd.topic =``), as ``hg serve`` would load it."""
        return self._extension_enabled(b"topic") or self._extension_enabled(b"hgext3rd.topic")

    def topic_publish_mode(self) -> bytes | None:
        """What a push publishes, as hg-evolve's ``ext-topics-publish`` capability names it, where
        the repository serves topics (None where it does not): ``all`` where it publishes, ``auto``
        with ``[experimental] topic.publish-bare-branch`` (the pushed drafts without a topic),
        otherwise ``none``."""
        if not self.serves_topics():
            return None
        if self.publishing():
            return b"all"
        return b"auto" if self._hgrc_bool(b"experimental", b"topic.publish-bare-branch", False) else b"none"

    def publishes_bare_drafts(self) -> bool:
        """A push's new drafts without a topic become public as it commits (``topic_publish_mode``
        ``auto``), unless ``[experimental] topic-mode.server`` is set to something but ``ignore``,
        which the extension then lets take over."""
        if self.topic_publish_mode() != b"auto":
            return False
        data, include = self._hgrc()
        mode = config_value(data, b"experimental", b"topic-mode.server", include) if data else None
        return mode is None or mode.strip() in (b"", b"ignore")

    def topic_server_mode(self) -> bytes | None:
        """hg-evolve's ``[experimental] topic-mode.server`` where the repository serves topics and it
        is set (None otherwise; ``ignore`` is the extension's default)."""
        if not self.serves_topics():
            return None
        data, include = self._hgrc()
        mode = config_value(data, b"experimental", b"topic-mode.server", include) if data else None
        return mode.strip() if mode is not None else None

    def rejects_bare_drafts(self) -> bool:
        """``[experimental] topic-mode.server = enforce`` where the repository serves topics: a push
        that leaves a new draft without a topic is refused, as the extension refuses it."""
        if not self.serves_topics():
            return False
        data, include = self._hgrc()
        mode = config_value(data, b"experimental", b"topic-mode.server", include) if data else None
        return mode is not None and mode.strip() == b"enforce"

    def gates_topic_changesets(self) -> bool:
        """hg-evolve's ``[experimental] topic.server-gate-topic-changesets``, where the repository
        serves topics: ``heads`` leaves out the drafts with a topic and their descendants (a client
        with the extension asks ``_exttopics_heads``, which does not)."""
        return self.serves_topics() and self._hgrc_bool(b"experimental", b"topic.server-gate-topic-changesets",
                                                        False)

    def heads_without_topics(self) -> list[Node]:
        """The visible heads once the drafts with a topic and their descendants are left out (the
        extension's ``served-no-topic`` view)."""
        cl = self.changelog()
        views = self.views(cl)
        topics = self._draft_topics(cl, views)
        if not topics:
            return self._heads(cl, views)
        gated = graph.descendants_mask(views.parents, topics)
        shown = bytearray(v and not g for v, g in zip(views.visible, gated, strict=True))
        return [cl.node(rev) for rev in graph.heads(views.parents, shown)]

    def allows_publishing(self) -> bool:
        """hg-evolve's ``[experimental] topic.allow-publish`` (default yes), where the repository
        serves topics: with ``no``, a push that makes any changeset public is refused."""
        return not self.serves_topics() or self._hgrc_bool(b"experimental", b"topic.allow-publish", True)

    def rejects_topic_namespaces(self) -> bool:
        """hg-evolve's ``[experimental] tns-reject-push``, where the repository serves topics: a push
        leaving a new draft that names a topic namespace is refused."""
        return self.serves_topics() and self._hgrc_bool(b"experimental", b"tns-reject-push", False)

    def single_head_rules(self) -> list[SingleHeadRule]:
        """The one-head-per-branch checks a push's transaction goes through, in hg's order:
        hg-evolve's ``[experimental] enforce-single-head`` (where the repository serves topics;
        closed heads count), then core hg's ``[experimental] single-head-per-branch`` with its
        ``:account-closed-heads`` and ``:public-changes-only`` sub-options.  Where topics are
        served, a draft with a topic is on a branch of its own (``BRANCH//TOPIC``), as for hg."""
        rules: list[SingleHeadRule] = []
        topics = self.serves_topics()
        if topics and self._hgrc_bool(b"experimental", b"enforce-single-head", False):
            rules.append(SingleHeadRule(extension=True, closed=True, public_only=False, topics=True))
        if self._hgrc_bool(b"experimental", b"single-head-per-branch", False):
            closed = self._hgrc_bool(b"experimental", b"single-head-per-branch:account-closed-heads", False)
            public = self._hgrc_bool(b"experimental", b"single-head-per-branch:public-changes-only", False)
            rules.append(SingleHeadRule(extension=False, closed=closed, public_only=public, topics=topics))
        return rules

    def _lookup_topic(self, cl: Revlog, views: Views, key: bytes) -> Node | None:
        """A topic's name, after the bookmarks, tags and branches, as the ``topics`` namespace the
        extension adds to hg's names: the newest visible changeset that is not public and carries
        that topic (a public changeset has none, whatever its ``topic`` extra says).  ``s1``, ``t2``
        and the like are none: the extension reads them as the server's working directory's stack."""
        if not key or _STACK_ALIAS.match(key):
            return None
        revs = [rev for rev, topic in self._draft_topics(cl, views).items() if topic == key]
        return cl.node(max(revs)) if revs else None

    def _draft_topics(self, cl: Revlog, views: Views) -> dict[int, bytes]:
        """The topic of each visible non-public revision that has one: each such changeset read once
        per snapshot of the changelog and phases (20,000 drafts took 1 s a ``branchmap``)."""
        if views._topics is None:
            topics: dict[int, bytes] = {}
            for found in _NOT_PUBLIC.finditer(views.phases):
                rev = found.start()
                if rev < len(views.visible) and views.visible[rev]:
                    topic = self.changeset(cl, rev).extra.get(b"topic")
                    if topic:
                        topics[rev] = topic
            views._topics = topics
        return views._topics

    def _lookup_prefix(self, cl: Revlog, views: Views, prefix: bytes) -> Node | None:
        """Among every changeset, hidden ones too, as hg's ``resolvehexnodeidprefix`` (so a prefix
        a hidden changeset shares is ambiguous); one that names a hidden changeset is filtered.  The
        null revision's id is among them, as in hg (``000000000000``, which hgweb links on an empty
        repository, is the null revision)."""
        matches = [rev for rev, e in enumerate(cl.index.entries) if binascii.hexlify(e[7][:20]).startswith(prefix)]
        null = NULL_HEX.startswith(prefix)
        if len(matches) + null > 1:
            raise AmbiguousIdentifier(prefix)
        if null:
            return NULL_NODE
        if matches and not views.visible[matches[0]]:
            raise FilteredRevision(prefix)
        return cl.node(matches[0]) if matches else None

    def listkeys(self, namespace: bytes) -> Mapping[bytes, bytes]:
        if namespace == b"namespaces":
            found = {b"bookmarks": b"", b"namespaces": b"", b"phases": b""}
            if self.obsmarkers_exchange():
                found[b"obsolete"] = b""
            return found
        if namespace == b"obsolete":
            return self._listmarkers() if self.obsmarkers_exchange() else {}
        if namespace == b"bookmarks":
            marks = self.bookmarks()
            return dict(zip(marks, map(binascii.hexlify, marks.values())))
        if namespace == b"phases":
            return self._listphases()
        return {}

    def _listmarkers(self) -> dict[bytes, bytes]:
        """Every marker as the ``obsolete`` pushkey namespace lists them (``obsolete._pushkeyescape``):
        version 0 streams of at most about 5,300 bytes, base85, ``dump0`` holding the last ones."""
        markers = self.obsstore()
        if markers is None:
            return {}
        chunks: list[list[bytes]] = []
        size = MAX_DUMP
        for marker in sorted(markers.markers, key=obs.sort_key):
            try:
                data = b"".join(obs.encode([marker], 0, header=False))
            except ValueError:  # format 0 cannot carry it (a ':' in a metadata key): bundle2 clients get it
                continue
            if size + len(data) > MAX_DUMP:
                chunks.append([])
                size = 0
            chunks[-1].append(data)
            size += len(data)
        return {b"dump%d" % i: obs.base85(b"\0" + b"".join(chunk)) for i, chunk in enumerate(reversed(chunks))}

    def _listphases(self) -> dict[bytes, bytes]:
        cl = self.changelog()
        views = self.views(cl)
        if views._draft_roots is None:  # once per snapshot
            views._draft_roots = [rev for rev in graph.phase_roots(views.parents, views.phases).get(DRAFT, [])
                                  if views.phases[rev] == DRAFT]
        keys = {binascii.hexlify(cl.node(rev)): b"1" for rev in views._draft_roots}
        if self.publishing():
            keys[b"publishing"] = b"True"
        return keys

    def phase_heads(self, heads: Sequence[Node]) -> Sequence[tuple[int, Node]]:
        """Phase heads as a server sends them for ``heads`` (exchange.py ``_getbundlephasespart``).

        A publishing repository names all of ``heads`` public without looking them up, as hg's
        does: a head stripped since the client read it too (``hg serve`` 7.2.4 over SSH and HTTP
        does so: the client's draft copy of it is published).
        """
        if self.publishing():
            return [(PUBLIC, h) for h in sorted(heads)]
        cl = self.changelog()
        views = self.views(cl)
        nodemap = cl.index.lookup()
        by_phase: dict[int, set[Node]] = {PUBLIC: set(), DRAFT: set()}
        for h in heads:
            if h == NULL_NODE:  # (an empty repository's head is public)
                by_phase[PUBLIC].add(h)
                continue
            rev = nodemap.get(h)
            if rev is None:  # stripped since the client read it in ``heads``: it has no phase to tell
                continue     # (hg serve aborts "00changelog@NODE: no node" over SSH, 500 over HTTP)
            by_phase[min(views.phases[rev], DRAFT)].add(h)
        if by_phase[DRAFT]:
            draft_revs = [cl.rev(h) for h in by_phase[DRAFT]]
            public_revs = [cl.rev(h) for h in by_phase[PUBLIC]]
            only = graph.missing(views.parents, public_revs, draft_revs)
            mask = bytearray(len(cl))
            for r in only:
                if views.phases[r] == PUBLIC:
                    mask[r] = 1
            for r in graph.heads(views.parents, mask):
                by_phase[PUBLIC].add(cl.node(r))
        return [(phase, node) for phase in (PUBLIC, DRAFT) for node in sorted(by_phase[phase])]

    def missing(self, common: Sequence[Node], heads: Sequence[Node]) -> list[Node]:
        cl = self.changelog()
        nodemap = cl.index.lookup()
        common_revs = [nodemap[c] for c in common if c in nodemap]
        head_revs = [cl.rev(h) for h in heads]
        return [cl.node(r) for r in graph.missing(self.views(cl).parents, common_revs, head_revs)]

    # -- changegroup emission -----------------------------------------------

    def emit_groups(self, nodes: Sequence[Node], mode: DeltaMode,
                    match: Callable[[bytes], bool] | None = None) -> Iterator[RevisionGroup]:
        """Changelog, manifest, then file groups for ``nodes``, one revision at a time; with
        ``match``, the files whose path it takes (a narrow clone), the others not read.

        Manifests and file revisions are those the outgoing changesets'
        manifests reference for the files they touch, minus what the client
        already has (its changeset of introduction is an ancestor of the
        outgoing set's parents); each is sent with a linknode the client knows.
        This is Mercurial's slow path, which stays right when the same file
        revision was introduced on a branch the client does not get.
        """
        cl = self.changelog()
        revs = sorted(cl.rev(n) for n in nodes)
        # Byte masks, not sets: a full clone's set of 5,000 revisions is 256 KiB per connection.
        outgoing = bytearray(len(cl))
        for r in revs:
            outgoing[r] = 1
        views = self.views(cl)
        roots_parents = {p for r in revs for p in views.parents[r] if p >= 0 and not outgoing[p]}
        client_has = graph.ancestors_mask(views.parents, roots_parents)
        emitter = _Emitter(cl, outgoing, client_has, mode)
        yield RevisionGroup(Section.CHANGELOG, b"", emitter.group(cl, revs))
        ml = self.manifestlog()
        if len(revs) == len(cl):
            yield from self._emit_everything(emitter, ml, match)
            return
        manifests, files = self._outgoing_content(cl, ml, revs)
        yield RevisionGroup(Section.MANIFEST, b"", emitter.group(ml, *emitter.select(ml, manifests)))
        for path in sorted(files if match is None else filter(match, files)):
            fl = self.filelog(path)
            selected, links = emitter.select(fl, files[path])
            if selected:
                yield RevisionGroup(Section.FILE, path, emitter.group(fl, selected, links))

    def _emit_everything(self, emitter: _Emitter, ml: Revlog,
                         match: Callable[[bytes], bool] | None = None) -> Iterator[RevisionGroup]:
        """Full clone fast path: every revision of every revlog, in order, without reading manifests.

        Revisions linked to changesets past our changelog snapshot are left
        out: a writer appends manifests and files before its changesets.
        """
        limit = len(emitter.cl)
        yield RevisionGroup(Section.MANIFEST, b"", emitter.group(ml, _linked_before(ml, limit)))
        paths = self.tracked_paths()
        for path in paths if match is None else filter(match, paths):
            fl = self.filelog(path)
            revs = _linked_before(fl, limit)
            if revs:
                yield RevisionGroup(Section.FILE, path, emitter.group(fl, revs))

    def tracked_paths(self) -> list[bytes]:
        """Every path that has a filelog, from fncache, sorted."""
        if not self.store.exists(FNCACHE):
            return []
        lines = self.store.read(FNCACHE).splitlines()
        return sorted({decode_dir(line)[5:-2] for line in lines if line.startswith(b"data/") and line.endswith(b".i")})

    def _outgoing_content(
        self, cl: Revlog, ml: Revlog, revs: Sequence[int]
    ) -> tuple[dict[Node, int], dict[bytes, dict[Node, int]]]:
        """Manifest nodes and per-file nodes of ``revs``, each with its first outgoing changeset.

        A manifest stored as a delta against one of its parents names its changed entries in the
        lines the delta inserts (hg's ``readfast``): every entry of those lines is taken, as hg
        does, and the manifest is not rebuilt. (An entry not among them is its parent's: it came
        with an earlier changeset, sent or the client's; more entries than needed are pruned by
        what the client has.) Other manifests are rebuilt and the changeset's files looked up.
        """
        manifests: dict[Node, int] = {}
        files: dict[bytes, dict[Node, int]] = {}
        for rev in checked(revs, "the changegroup"):
            cs = self.changeset(cl, rev)
            if cs.manifest == NULL_NODE:
                continue
            manifests.setdefault(cs.manifest, rev)
            if not cs.files:
                continue
            mrev = ml.rev(cs.manifest)
            changed = _changed_entries(ml, mrev)
            if changed is not None:
                for path, file_node in changed:
                    files.setdefault(path, {}).setdefault(file_node, rev)
                continue
            text = ml.revision(mrev)
            for path in cs.files:
                node = manifest_lookup(text, path)
                if node is not None:
                    files.setdefault(path, {}).setdefault(node, rev)
        return manifests, files

    # -- writing --------------------------------------------------------------

    def transaction(self, max_text: int | None = None, wait: LockWait | None = None) -> HgTransaction:
        return Transaction(self, max_text, wait)

    def spool_push(self, chunks: Iterator[bytes]) -> AbstractContextManager[Iterator[bytes]]:
        """The whole of a pushed bundle, kept in the repository's ``.hg`` before its transaction
        takes the locks (``push_spool``)."""
        return spooled(getattr(self.plain, "root", None), chunks)

    def recover_if_needed(self) -> None:
        """Roll back a transaction a killed writer left behind (its journal is still there)."""
        if not journal.needs_recovery(self.store) or self.locks.held_by_other():
            return
        self.locks.acquire()
        try:
            if journal.needs_recovery(self.store):
                journal.recover({journal.STORE: self.store, journal.PLAIN: self.plain}, self.encode_path)
                self.recovered = True
        finally:
            self.locks.release()

    # -- stream clone -----------------------------------------------------------

    def store_file_paths(self) -> list[tuple[bytes, bytes]]:
        """(store path, file name on disk) of the revlogs: files (from fncache), manifest, changelog.

        The store path is unencoded (``data/README.i``): a stream clone sends
        that, and the receiving ``hg`` applies its own path encoding.  A name
        whose file is missing (an fncache line hg keeps after a strip) is listed
        too: the caller skips what it cannot open.
        """
        paths: list[tuple[bytes, bytes]] = []
        stamp = self.store.stamp(FNCACHE)
        if stamp is not None:
            scope = self.revlogs.scope
            known = SHARED_STORE_PATHS.get(scope) if scope is not None else None
            if known is not None and known[0] == stamp:
                paths.extend(known[1])
            else:
                for line in sorted(set(self.store.read(FNCACHE).splitlines())):
                    logical = decode_dir(line)
                    if logical:
                        paths.append((logical, self.encode_path(logical)))
                if scope is not None and self.store.stamp(FNCACHE) == stamp:
                    SHARED_STORE_PATHS.put(scope, (stamp, tuple(paths)))
        for name in (b"00manifest.d", b"00manifest.i", b"00changelog.d", b"00changelog.i", PHASEROOTS):
            paths.append((name, name))
        return paths

    def stream_clone_allowed(self) -> bool:
        """``[server] uncompressed`` of the hgrc is not false, and no changeset is secret, archived or
        internal (``streamclone.allowservergeneration``)."""
        return self.stream_turned_on() and self._nothing_hidden()

    def stream_turned_on(self) -> bool:
        """``[server] uncompressed`` of the hgrc is not false (``bundle2=`` then names no ``stream``, as hg's)."""
        return self._hgrc_bool(b"server", b"uncompressed", True)

    def _nothing_hidden(self) -> bool:
        """No changeset is secret, archived or internal (hidden by markers is no bar: a stream clone
        copies the markers too, and the clone hides the same changesets).  Every ``capabilities``
        asks: one pass in C over the phases (``max`` walked them in Python, 1.6-4 ms a request for
        200,000 changesets)."""
        return not self.views().phases.translate(None, _SHOWN_PHASES)

    def web_access(self) -> dict[str, list[str] | None]:
        """hgweb's access lists of the hgrc's ``[web]``: ``deny_read``, ``allow_read``, ``deny_push``,
        ``allow-push`` (each also under its other spelling); None for a list that is not set."""
        web = self.web_settings()
        found: dict[str, list[str] | None] = {}
        for key in ("deny_read", "allow_read", "deny_push", "allow-push"):
            alias = key.replace("_", "-") if "_" in key else key.replace("-", "_")
            value = web.get(key.encode(), web.get(alias.encode()))  # the main spelling wins when both are set
            found[key] = None if value is None else _config_list(value)
        return found

    def stream_preferred(self) -> bool:
        """``[server] preferuncompressed``: a plain ``hg clone`` gets a stream clone."""
        return self._hgrc_bool(b"server", b"preferuncompressed", False)

    def clonebundles_manifest(self) -> bytes | None:
        """The ``.hg/clonebundles.manifest`` the operator keeps for hg's clone bundles, or None.

        hg serve advertises clone bundles when this file exists (with its ``clonebundles``
        extension on); so does hgwire.  Only its first ``MAX_CLONEBUNDLES_MANIFEST`` bytes are
        read, up to the last whole line in them.
        """
        try:
            if not self.plain.exists(CLONEBUNDLES_MANIFEST):
                return None
            data = self.plain.read_range(CLONEBUNDLES_MANIFEST, 0, MAX_CLONEBUNDLES_MANIFEST + 1)
        except OSError:
            return None
        if len(data) > MAX_CLONEBUNDLES_MANIFEST:
            data = data[: data.rfind(b"\n", 0, MAX_CLONEBUNDLES_MANIFEST) + 1]
        return data

    def inline_clone_bundle_size(self, path: bytes) -> int | None:
        """The size of the clone bundle a manifest entry ``peer-bundle-cache://<path>`` names, or
        None when it is not a regular file under the bundle root (``_inline_bundle``)."""
        found = self._inline_bundle(path)
        if found is None:
            return None
        try:
            st = os.stat(found)
        except OSError:
            return None
        return st.st_size if stat.S_ISREG(st.st_mode) else None

    def open_inline_clone_bundle(self, path: bytes) -> InlineBundle | None:
        """The clone bundle ``peer-bundle-cache://<path>`` names, open: its size and its bytes in
        chunks; None when it is not a regular file under the bundle root.  Close it if unread."""
        found = self._inline_bundle(path)
        if found is None:
            return None
        try:
            fd = os.open(found, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            return None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            return None
        return InlineBundle(fd, st.st_size)

    def _inline_bundle(self, path: bytes) -> bytes | None:
        """Where ``path`` is under ``.hg/<[server] peer-bundle-cache-root>`` (hg's default
        ``bundle-cache``), as hg's ``get_cached_bundle_inline`` finds it, symbolic links followed;
        None for a path that names nothing there, or would leave it (absolute, ``..``, a link
        out), or a repository not on disk."""
        join = getattr(self.plain, "join", None)
        if join is None or not path or b"\0" in path or path.startswith(b"/"):
            return None
        if any(part in (b"", b".", b"..") for part in path.split(b"/")):
            return None
        data, include = self._hgrc()
        configured = config_value(data, b"server", b"peer-bundle-cache-root", include) if data else None
        root = os.path.realpath(join(configured.strip() if configured and configured.strip() else b"bundle-cache"))
        found = os.path.realpath(os.path.join(root, path))
        if not found.startswith(root + b"/"):
            return None
        return found

    def largefiles(self) -> LargefileStore | None:
        """The store of hg's ``largefiles`` extension (``statlfile``, ``getlfile``, ``putlfile``), where
        the repository serves it: its hgrc enables the extension (``[extensions] largefiles =``, as
        ``hg serve`` needs it), or it has the ``largefiles`` requirement.  None otherwise, and for a
        repository not on disk."""
        root = getattr(self.plain, "root", None)
        if root is None:
            return None
        if reqs.LARGEFILES in self._requirements or self._extension_enabled(b"largefiles"):
            return LargefileStore(root)
        return None

    def largefiles_required(self) -> bool:
        """The repository has the ``largefiles`` requirement: a client without the extension cannot
        use it (hg's ``islfilesrepo``; its standins arrived by a push)."""
        return reqs.LARGEFILES in self._requirements

    def require_largefiles(self) -> None:
        """After a push that brought standins (``.hglf/``) to a repository serving largefiles: add the
        ``largefiles`` requirement, as the extension's ``checkrequireslfiles`` hook does (in
        ``.hg/store/requires`` with ``share-safe``, else ``.hg/requires``)."""
        if self.largefiles() is not None:
            self._add_requirement(reqs.LARGEFILES)

    def lfs(self) -> LfsStore | None:
        """The blobs of hg's ``lfs`` extension (``.hg/store/lfs/objects``, hg's layout), where the
        repository serves it: its hgrc enables the extension (``[extensions] lfs =``) or it has the
        ``lfs`` requirement.  None otherwise, and for a repository not on disk."""
        root = getattr(self.store, "root", None)
        if root is None:
            return None
        if reqs.LFS in self._requirements or self._extension_enabled(b"lfs"):
            return LfsStore(os.fsdecode(root), hg_layout=True)
        return None

    def lfs_required(self) -> bool:
        return reqs.LFS in self._requirements

    def require_lfs(self) -> None:
        """After a push that brought LFS pointers: add the ``lfs`` requirement, as the extension's
        ``checkrequireslfs`` hook does."""
        self._add_requirement(reqs.LFS)

    def _add_requirement(self, requirement: str) -> None:
        if requirement in self._requirements:
            return
        vfs = self.store if reqs.SHARE_SAFE in self._requirements else self.plain
        current = reqs.parse(vfs.read(b"requires")) if vfs.exists(b"requires") else set()
        vfs.replace(b"requires", reqs.format_requirements(frozenset(current | {requirement})))
        self._requirements = self._requirements | {requirement}

    def _extension_enabled(self, name: bytes) -> bool:
        """``[extensions] <name>`` (or ``hgext.<name>``) is set and not disabled with ``!``."""
        data, include = self._hgrc()
        if not data:
            return False
        for key in (name, b"hgext." + name):
            value = config_value(data, b"extensions", key, include)
            if value is not None:
                return not value.strip().startswith(b"!")
        return False

    def full_bundle_disabled(self) -> bool:
        """``[server] disablefullbundle``: full clones must seed from clone bundles or a stream."""
        return self._hgrc_bool(b"server", b"disablefullbundle", False)

    def web_allows_pull(self) -> bool:
        """hgweb's ``[web] allow-pull`` (or its old spelling ``allowpull``); False refuses every pull
        over HTTP."""
        data, include = self._hgrc()
        for name in (b"allow-pull", b"allowpull"):  # the main spelling wins when both are set
            if data and config_value(data, b"web", name, include) is not None:
                return config_bool(data, b"web", name, include, True)
        return True

    def hgrc_bool(self, section: bytes, name: bytes, default: bool) -> bool:
        """A boolean of the hgrc (``[ui] archivemeta``...), ``default`` when unset."""
        return self._hgrc_bool(section, name, default)

    def web_settings(self) -> dict[bytes, bytes]:
        """The hgrc's ``[web]`` section (``allow-archive``, ``deny_read``...), read once."""
        return self.hgrc_section(b"web")

    def web_name(self, name: str | None = None) -> str:
        """The name hgweb shows the repository by: its hgrc's ``[web] name`` when set (hgweb_mod's
        ``reponame``: archives' directory and file name, feeds' and pages' titles, the index's
        name), else ``name`` (by default its own)."""
        shown = self.web_settings().get(b"name", b"").decode("utf-8", "surrogateescape")
        return shown or (self.name if name is None else name)

    def allows_hidden_access(self, user: str | None) -> bool:
        """Whether ``user`` may see hidden changesets (``hg pull --remote-hidden``): named by the hgrc's
        ``[experimental] server.allow-hidden-access``, or any user (anonymous too) when it is ``*``
        alone, as ``hg serve`` decides (``scmutil.ismember``); nobody when it is unset."""
        value = self.hgrc_section(b"experimental").get(b"server.allow-hidden-access")
        allowed = _config_list(value) if value is not None else []
        # a name as logins name it: josé however the hgrc composes it (auth.plain_user, as the [web] lists)
        return allowed == ["*"] or (user is not None and user in {unicodedata.normalize("NFC", n) for n in allowed})

    def hidden_access_names_users(self) -> bool:
        """``[experimental] server.allow-hidden-access`` names users (not ``*`` alone): an anonymous
        client asking for hidden changesets is asked to log in."""
        value = self.hgrc_section(b"experimental").get(b"server.allow-hidden-access")
        allowed = _config_list(value) if value is not None else []
        return bool(allowed) and allowed != ["*"]

    def hgrc_section(self, section: bytes) -> dict[bytes, bytes]:
        """One section of the hgrc (``[web]``, ``[graph]``...), in hg's order."""
        data, include = self._hgrc()
        return dict(config_section(data, section, include)) if data else {}

    def _hgrc_bool(self, section: bytes, name: bytes, default: bool) -> bool:
        data, include = self._hgrc()
        return config_bool(data, section, name, include, default) if data else default

    def stream_files(self, caches: bool = False, obsmarkers: bool = False) -> tuple[int, int, Iterator[StoreFile]]:
        """Sizes taken under the lock; small or replaceable files copied, append-only ones read later.

        ``.d`` files and non-inline ``.i`` files only grow, so reading their first
        ``size`` bytes later gives the snapshot; inline ``.i`` files and phaseroots
        can be replaced by a writer, so their bytes are copied while locked.
        Each file is opened once here (its size and, for an index, its header
        come from that one open): a clone's first byte waits for this walk.
        ``caches``: also the ``.hg/cache`` files hg itself sends (``STREAM_CACHES``),
        copied while locked too.  Each carries what it describes (a tip, node
        prefixes), so the client checks it and rebuilds one that is stale.
        ``obsmarkers``: also the obsstore (copied while locked: hg may rewrite it whole).
        """
        self.locks.acquire()
        try:
            if not self.stream_turned_on():
                raise UnsupportedFeature(STREAM_OFF_REFUSAL)
            if not self._nothing_hidden():
                raise UnsupportedFeature(SECRET_STREAM_REFUSAL)
            publishing = self.publishing()
            entries: list[tuple[bytes, bytes, int, bytes | None, int]] = []
            for logical, path in self.store_file_paths():
                if path == PHASEROOTS and publishing:
                    continue  # hg's server leaves them out too: the clone is all public
                if path.endswith(b".d"):
                    stamp = self.store.stamp(path)
                    if stamp is not None:
                        entries.append((logical, path, stamp[0], None, stamp[2]))
                    continue
                index = path.endswith(b".i")
                found = self.store.read_head(path, 4, _inline if index else _always)
                if found is not None:
                    size, data = found
                    if not index or _inline(data):
                        entries.append((logical, path, size, data, 0))
                    else:  # read later: which file it is, to tell one replaced meanwhile
                        stamp = self.store.stamp(path)
                        entries.append((logical, path, size, None, stamp[2] if stamp is not None else 0))
            if obsmarkers and self.store.exists(OBSSTORE):
                data = self.store.read(OBSSTORE)
                entries.append((OBSSTORE, OBSSTORE, len(data), data, 0))
            cached = self._stream_caches() if caches else []
        finally:
            self.locks.release()
        total = sum(e[2] for e in entries) + sum(len(data) for _name, data in cached)
        files = itertools.chain((self._store_file(*e) for e in entries),
                                (StoreFile(name, len(data), iter([data]), cache=True) for name, data in cached))
        return len(entries) + len(cached), total, files

    def _stream_caches(self) -> list[tuple[bytes, bytes]]:
        found = []
        for name in STREAM_CACHES:
            path = b"cache/" + name
            try:
                if self.plain.exists(path) and self.plain.size(path) <= MAX_STREAM_CACHE:
                    found.append((name, self.plain.read(path)))
            except (OSError, NotRegularFile):  # a cache hg is rewriting or removing, or a FIFO: the client builds it
                continue
        return found

    def _store_file(self, logical: bytes, path: bytes, size: int, copy: bytes | None, inode: int) -> StoreFile:
        if copy is not None:
            return StoreFile(logical, size, iter([copy]))
        return StoreFile(logical, size, self._read_chunks(path, size, inode))

    def _read_chunks(self, path: bytes, size: int, inode: int) -> Iterator[bytes]:
        """The first ``size`` bytes of an append-only file, read after the lock: the snapshot's,
        unless the file was replaced meanwhile (``hg debugupgraderepo``, ``hg strip`` rewrite the
        store): then the clone is refused, before or after its last chunk, rather than sent a new
        index with old data or the other way round."""
        self._same_file(path, inode)
        offset = 0
        while offset < size:
            chunk = self.store.read_range(path, offset, min(1 << 20, size - offset))
            if not chunk:
                raise StorageError(f"store file {printable(path)} shrank during a stream clone (the repository "
                                   "was rewritten meanwhile); clone again")
            offset += len(chunk)
            yield chunk
        self._same_file(path, inode)

    def _same_file(self, path: bytes, inode: int) -> None:
        stamp = self.store.stamp(path)
        if inode and (stamp is None or stamp[2] != inode):
            raise StorageError(f"store file {printable(path)} was replaced during a stream clone (the repository "
                               "was rewritten meanwhile, e.g. by hg debugupgraderepo); clone again")


_SHOWN_PHASES = bytes((PUBLIC, DRAFT))
"""The phases a stream clone may copy: none secret, archived or internal."""
_CACHE_VIEWS = (b"base", b"immutable", b"served", b"visible")
SERVED_BRANCHMAP = b"branch2-served"
"""hg's branch heads of the ``served`` view (format v2, which hg 7.2 writes and reads by default)."""

STREAM_CACHES = (
    b"branch2", *(b"branch2-" + v for v in _CACHE_VIEWS), b"branch3", *(b"branch3-" + v for v in _CACHE_VIEWS),
    b"rbc-names-v2", b"rbc-revs-v2", b"tags2", *(b"tags2-" + v for v in _CACHE_VIEWS), b"hgtagsfnodes1",
)
"""The ``.hg/cache`` files a stream clone copies, as hg's ``cacheutil.cachetocopy``: without them a
client reads every changeset again to rebuild its branch heads (half a second on 5,000)."""


class InlineBundle:
    """An open clone bundle (``HgRepo.open_inline_clone_bundle``): ``size``, then its bytes by
    iterating; ``close`` releases the file (iterating to the end closes it too)."""

    CHUNK = 1 << 16

    def __init__(self, fd: int, size: int) -> None:
        self._fd: int | None = fd
        self.size = size
        self._left = size

    def __iter__(self) -> InlineBundle:
        return self

    def __next__(self) -> bytes:
        if self._fd is None or self._left <= 0:
            self.close()
            raise StopIteration
        chunk = os.read(self._fd, min(self.CHUNK, self._left))
        if not chunk:
            self.close()
            raise StorageError("the clone bundle became shorter while it was sent; try the clone again")
        self._left -= len(chunk)
        return chunk

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


CLONEBUNDLES_MANIFEST = b"clonebundles.manifest"
MAX_CLONEBUNDLES_MANIFEST = 1 << 20
"""The largest clone bundles manifest served (hg reads it whole for every clone)."""
HGTAGS = b".hgtags"
MAX_TAGS_FNODES_HEADS = 100
"""Heads whose ``.hgtags`` node a pull's ``hgtagsfnodes`` part gives at most (a manifest read each,
cold up to ~10 ms in a large tree: a thousand heads would add seconds to every clone; the client
works out the others itself, as it does all of them without the part)."""
MAX_HGRC = 1 << 20
"""Bytes of a repository's ``.hg/hgrc``, the ``[hg] hgrc`` read before it and the files they
``%include``, read in all (a request parses them a dozen times: 0.16 s of CPU each for a megabyte
of settings).  More is refused, where ``.hg/hgrc`` was read whole and each include cut there."""
MAX_LOCAL_FILE = 16 << 20
"""Bytes of ``.hg/localtags`` or a merge state file read (hg reads them whole): some 300,000 local tags."""
MAX_STREAM_CACHE = 256 << 20
"""A cache file larger than this is left for the client to build."""

"""A ``rev-branch-cache`` record: node prefix, branch index with the close flag in the top bit."""


def _phaseroot_nodes(data: bytes) -> dict[bytes, int]:
    """The phaseroots file's ``<phase> <hex>`` lines as node -> phase, the highest where a node is
    there twice (never below 0); a line that is not one is skipped, as ``parse_phaseroots`` skips it.
    The nodes the changelog lacks are kept: the file after a push is compared with them."""
    roots: dict[bytes, int] = {}
    for line in data.splitlines():
        phase, _, hexnode = line.partition(b" ")
        try:
            node = binascii.unhexlify(hexnode.strip())
            value = int(phase)
        except ValueError:  # (binascii.Error is one)
            continue
        roots[node] = max(roots.get(node, 0), value)
    return roots


def _file_stamp(path: bytes | None) -> tuple[int, int, int] | None:
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns, st.st_ino


def _tag_history(text: bytes) -> dict[bytes, tuple[Node, list[Node]]]:
    """One tags file: each name's last node, and the nodes it named before (in file order)."""
    nodes: dict[bytes, list[Node]] = {}
    for line in text.splitlines():
        hexnode, _, name = line.partition(b" ")
        name = name.strip()
        if name and HEX40.match(hexnode):
            nodes.setdefault(name, []).append(Node(binascii.unhexlify(hexnode)))
    return {name: (history[-1], history[:-1]) for name, history in nodes.items()}


def _merge_tags(later: dict[bytes, tuple[Node, list[Node]]], found: dict[bytes, tuple[Node, list[Node]]]) -> None:
    """Fold a later file's tags into ``found`` (see ``HgRepository.tags``)."""
    for name, (node, history) in later.items():
        if name not in found:
            found[name] = (node, list(history))
            continue
        earlier, earlier_history = found[name]
        if earlier != node and node in earlier_history and (
                earlier not in history or len(earlier_history) > len(history)):
            node = earlier
        merged = list(history)
        merged.extend(n for n in earlier_history if n not in merged)
        found[name] = (node, merged)


def _inline(head: bytes) -> bool:
    """A revlog index whose header says inline: its data is in the ``.i``, which a writer may replace."""
    return len(head) >= 4 and bool(head[1] & 1)


def _always(_head: bytes) -> bool:
    return True


BranchList = tuple[list[tuple[bytes, bool]], Node, int, "tuple[Stamp | None, int | None] | None"]
"""``HgRepo._branches``' list: (branch, closes) of each revision, the node of the last, how many of
them the files hold, and the changelog snapshot it was made for (its stamp and ``index_lineage``)."""
SHARED_BRANCHES: LruCache[bytes, BranchList] = LruCache(
    sys.maxsize, pool=kept.KEPT, parts=lambda value: ((value[0], kept.branches_bytes(value[0])),))


def _appended(before: tuple[Stamp | None, int | None] | None, now: tuple[Stamp | None, int | None] | None) -> bool:
    """Whether a changelog snapshot ``now`` holds the revisions of ``before`` as they were (the same
    snapshot, or one of its lineage: only appended to since); True for a store in memory (None: no
    one but hgwire writes it).  A strip by ``hg`` on the server, then revisions added again, may leave
    the old last one where it was (two heads stripped, one committed, the other unbundled from its
    backup): the revisions before it are others then."""
    if before is None or now is None:
        return before is None and now is None
    return before[0] == now[0] or (before[1] is not None and before[1] == now[1])
"""Per store directory: the per-revision (branch, closes) list, the changelog node it ends at, and
how many of its revisions the rev-branch-cache files vouch for."""
SHARED_TAGS: LruCache[bytes, tuple[object, dict[bytes, Node]]] = LruCache(
    sys.maxsize, pool=kept.KEPT, parts=lambda value: (
        (value[1], sum(kept.TAG_BYTES + len(name) for name in value[1]) + 200),))
"""Per store directory: the tags (``HgRepo.tags``) and what they were read from (the changelog's
length, its heads, ``localtags``' stamp)."""
SHARED_VIEWS: LruCache[bytes, Views] = LruCache(sys.maxsize, pool=kept.KEPT, parts=views_parts, regrow=True)
"""Parents, phases and heads of a changelog snapshot (valid while the index object and phaseroots
stamp match), with the snapshot: weighed by both (``views_parts``), again as its heads and node
map are built, within ``kept.KEPT`` (64 stores' were kept whatever they held: 64 of 200,000
changesets, 100 MB each)."""
SHARED_BOOKMARKS: LruCache[bytes, tuple[Views, bytes, dict[bytes, Node]]] = LruCache(
    sys.maxsize, pool=kept.KEPT, parts=lambda value: (
        *views_parts(value[0]), (value[1], 33 + len(value[1])),
        (value[2], sum(kept.TAG_BYTES + len(name) for name in value[2]) + 200)))
"""Per store directory: the views and the bookmarks file's bytes the visible bookmarks were found from, and them
(weighed as the views, the file's bytes, and the names and nodes parsed from it)."""
SHARED_OBSSTORES: LruCache[bytes, tuple[object, ObsStore, bytes]] = LruCache(
    sys.maxsize, pool=kept.KEPT, parts=lambda value: ((value[1], kept.markers_bytes(value[1])),))
"""Per store directory: the obsstore's stamp, its parsed markers, and its last bytes (``BOUNDARY``)."""
def _served_revs(views: Views, nodemap: Mapping[bytes, int], nodes: Iterable[Node]) -> list[int]:
    """The revisions of ``nodes`` this repository has and serves (neither secret nor hidden)."""
    visible = views.visible
    return [r for r in (nodemap.get(n) for n in nodes) if r is not None and visible[r]]


def _no_markers(nodes: list[bytes]) -> list[Marker]:
    return []


def range_hashes_parts(value: stablerange.RangeHashes) -> tuple[tuple[object, int], ...]:
    """What hg-evolve's range hashes hold: their ranges and hashes, and the obsstore they were
    computed on (the store's own, counted once, until a push's markers make a new one: then the one
    before, held until the next range question, was not counted)."""
    store = value.held_store()
    if store is None:
        return ((value, value.weight()),)
    return (value, value.weight()), (store, kept.markers_bytes(store))


SHARED_RANGE_HASHES: LruCache[bytes, stablerange.RangeHashes] = LruCache(
    sys.maxsize, pool=kept.KEPT, parts=range_hashes_parts, regrow=True)
"""Per store directory: hg-evolve's stable ranges and their hashes over its markers
(``HgRepo.obsmarker_range_hashes``), weighed again as they grow."""
SHARED_STORE_PATHS: LruCache[bytes, tuple[object, tuple[tuple[bytes, bytes], ...]]] = LruCache(
    sys.maxsize, pool=kept.KEPT, parts=lambda value: (
        (value[1], sum(kept.STORE_PATH_BYTES + len(name) + len(path) for name, path in value[1])),))
"""Per store directory: the fncache's stamp and the (store path, file name) pairs it lists (for stream clones)."""


def _linked_before(revlog: Revlog, limit: int) -> list[int]:
    return [rev for rev, entry in enumerate(revlog.index.entries) if entry[4] < limit]


class _Emitter:
    """Chooses, for each revision sent, the delta base the client can apply."""

    def __init__(self, cl: Revlog, outgoing: bytearray, client_has: bytearray, mode: DeltaMode) -> None:
        self.cl = cl
        self.outgoing = outgoing
        """One byte per changelog revision, 1 for those sent."""
        self.client_has = client_has
        self.mode = mode

    def _client_has(self, revlog: Revlog, rev: int) -> bool:
        link = revlog.linkrev(rev)
        return 0 <= link < len(self.client_has) and bool(self.client_has[link])

    def select(self, revlog: Revlog, wanted: Mapping[Node, int]) -> tuple[list[int], dict[int, int]]:
        """Revisions of ``wanted`` the client lacks, in order, and the changeset each links to."""
        selected: list[int] = []
        links: dict[int, int] = {}
        for node, introducer in wanted.items():
            rev = revlog.rev(node)
            link = revlog.linkrev(rev)
            if self._client_has(revlog, rev):
                continue
            selected.append(rev)
            links[rev] = link if 0 <= link < len(self.outgoing) and self.outgoing[link] else introducer
        selected.sort()
        return selected, links

    def group(
        self, revlog: Revlog, revs: Sequence[int], links: Mapping[int, int] | None = None
    ) -> Iterator[RevisionDelta]:
        sent = bytearray(len(revlog))  # 1 for revisions already sent in this group
        previous = NULL_REV
        # Stored chunks are read ahead in windows when they may be sent as they are.
        raws: Iterator[bytes | None] = (
            iter(revlog.sent_chunks(revs)) if self.mode is DeltaMode.ANY else itertools.repeat(None)
        )
        for rev, raw in checked(zip(revs, raws), "the changegroup"):
            link = links[rev] if links is not None else revlog.linkrev(rev)
            yield self._delta(revlog, rev, raw, sent, previous, link)
            sent[rev] = 1
            previous = rev

    def _delta(
        self, revlog: Revlog, rev: int, raw: bytes | None, sent: bytearray, previous: int, link: int
    ) -> RevisionDelta:
        # Called once per revision sent: the nodes and flags are read from the index entries here
        # rather than through a method each (``node`` four times, ``flags``).
        p1, p2 = revlog.parent_revs(rev)
        index = revlog.index
        entries = index.parsed  # (a revlog parsed whole, as most are, is indexed here: no call per node)
        entry = entries[rev] if entries is not None else index.entry(rev)
        delta: bytes | TextPieces
        if self.mode is DeltaMode.PREVIOUS:
            base = previous if previous != NULL_REV else p1
            delta = self._diff(revlog, base, rev, mpatch.line_diff)
        else:
            stored_base = revlog.delta_parent(rev)
            if raw is None and revlog.streams_text(rev):  # read as it is sent, never held whole
                base, delta = NULL_REV, TextPieces(revlog.raw_size(rev), functools.partial(revlog.text_pieces, rev))
            elif stored_base == NULL_REV or sent[stored_base] or self._client_has(revlog, stored_base):
                base, delta = revlog.stored_delta(rev, raw)
            else:
                base = p1 if p1 != NULL_REV and (sent[p1] or self._client_has(revlog, p1)) else NULL_REV
                delta = self._diff(revlog, base, rev)
        return RevisionDelta(
            entry[7][:20],  # type: ignore[arg-type]  # (nodes: ``Revlog.node`` without its call)
            NULL_NODE if p1 == NULL_REV else entries[p1][7][:20] if entries is not None else index.node(p1),  # type: ignore[arg-type]
            NULL_NODE if p2 == NULL_REV else entries[p2][7][:20] if entries is not None else index.node(p2),  # type: ignore[arg-type]
            self.cl.node(link),
            NULL_NODE if base == NULL_REV else entries[base][7][:20] if entries is not None else index.node(base),  # type: ignore[arg-type]
            delta,
            entry[0] & 0xFFFF,
        )

    def _diff(self, revlog: Revlog, base: int, rev: int,
              diff: Callable[[bytes, bytes], bytes] = mpatch.diff) -> bytes:
        if base == NULL_REV:
            return mpatch.full_replacement(0, revlog.revision(rev))
        base_text = revlog.revision(base)  # first: the chain of ``rev`` usually passes through it
        return diff(base_text, revlog.revision(rev))


CHANGED_ENTRIES_BYTES = 64 << 10
"""Past this many inserted bytes a manifest's delta is not read line by line: rebuilding the
manifest and looking up the changeset's files costs less (hgwire's own deltas replace the whole
span between the first and the last changed line)."""


def _changed_entries(ml: Revlog, mrev: int) -> list[tuple[bytes, Node]] | None:
    """(path, file node) of the lines a manifest's stored delta inserts, when that delta is against
    one of the manifest's parents; None when it is not, when it inserts more than
    ``CHANGED_ENTRIES_BYTES``, or when its inserted text is not whole manifest lines (then the
    caller rebuilds the manifest).  Stored manifest deltas replace whole lines: hg's and hgwire's
    writers make them so (``mpatch.on_line_boundaries`` keeps a pushed one only if it does)."""
    base = ml.delta_parent(mrev)
    if base == NULL_REV or base not in ml.parent_revs(mrev):
        return None
    _, delta = ml.stored_delta(mrev)
    inserted = b"".join(data for _start, _end, data in mpatch.parse_hunks(delta))
    if len(inserted) > CHANGED_ENTRIES_BYTES or inserted[-1:] not in (b"", b"\n") or \
            inserted[:1] == b"\n" or b"\n\n" in inserted:  # (manifest_entries skips an empty line)
        return None
    try:
        return [(path, node) for path, node, _flags in manifest_entries(inserted)]
    except StorageError:
        return None


def _divergent(name: bytes) -> bool:
    """``name@path`` (not ``name@``): a divergent bookmark, which hg's server does not list."""
    return b"@" in name and not name.endswith(b"@")


def _config_list(value: bytes) -> list[str]:
    """A Mercurial config list as hg reads it (``keys.config_list``: ``alice, "bob" carol``), as text."""
    return [item.decode("utf-8", "replace") for item in config_list(value)]
