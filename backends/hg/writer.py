"""Write transactions: changegroup ingest, bookmarks and phases, all-or-nothing.

Everything a transaction changes is recorded in the journal first
(``transaction.py``); :meth:`Transaction.commit` flushes the changelog last
(so no reader sees a changeset before its manifest and files), writes
phaseroots, bookmarks and fncache, drops caches that could now lie, and only
then removes the journal.  Any exception rolls the store back byte for byte.
"""

from __future__ import annotations

import binascii
import heapq
import itertools
import operator
import os
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, NamedTuple, NoReturn, Self, cast

from backends.hg import branchcache, graph, mpatch
from backends.hg import requirements as reqs
from backends.hg import transaction as journal_mod
from backends.hg.changelog import manifest_lookup, parse_changeset
from backends.hg.graph import ParentColumns
from backends.hg.keys import format_bookmarks
from backends.hg.largefiles import STANDIN_DIR
from backends.hg.obsstore import DRAFT, OBSSTORE, PUBLIC, ObsStore, hidden_revs, instabilities
from backends.hg.revlog import (
    NULL_REV,
    PARENT_REVS,
    REVIDX_EXTSTORED,
    REVIDX_HASCOPIESINFO,
    Compressor,
    RevlogWriter,
    is_filelog,
    node_hash,
    parse_index,
)
from backends.hg.store import encode_dir
from backends.interfaces import (
    NULL_NODE,
    IngestResult,
    LockWait,
    Node,
    RevisionDelta,
    RevisionGroup,
    Section,
    TextPieces,
    delta_bytes,
)
from protocols import hg_obsmarkers as obs
from protocols.errors import LimitExceeded, ProtocolError, PushRaced, StorageError, storage_advice
from protocols.hg_obsmarkers import Marker

if TYPE_CHECKING:
    from backends.hg.repository import HgRepo

_NOT_PUBLIC = re.compile(rb"[^\x00]")
"""A non-public phase in a phases array."""
_UNSEEN = re.compile(rb"\x00")
"""A revision a views' ``visible`` leaves out."""

CACHE_PREFIXES = (b"branch", b"tags", b"hgtagsfnodes", b"revbranchcache")
"""``.hg/cache`` files derived from the changelog or phases; removed after every write.  The
rev-branch-cache (``rbc-*``) stays: a record per revision, checked against its node, that appending
revisions leaves true (see :mod:`backends.hg.branchcache`)."""


def _shown(path: bytes) -> str:
    """A file path as a person reads it in a refusal: its text, quoted, cut at 200 bytes (not a
    Python bytes literal); bytes that are not UTF-8 are shown as escapes."""
    return repr(path[:200].decode("utf-8", "backslashreplace"))


def _check_path(path: bytes) -> None:
    """Refuse file names that cannot be stored (they would corrupt line-based formats)."""
    if (
        not path
        or path.startswith(b"/")
        or any(c in path for c in (b"\0", b"\n", b"\r"))
        or b"" in path.split(b"/")
    ):
        raise ProtocolError(f"invalid file name in changegroup: {_shown(path)}")


PENDING_CHANGELOG = b"00changelog.i.a"
"""The changelog index with a transaction's changesets, for hooks that read it (``HG_PENDING``)."""
PENDING_PHASEROOTS = b"phaseroots.pending"
PENDING_BOOKMARKS = b"bookmarks.pending"
"""The phases and bookmarks a transaction would commit, for the same hooks (Mercurial's ``txnutil``)."""


def unknown_bookmark_target(name: bytes, node: Node) -> str:
    """A pushed bookmark names a changeset the server does not have (hg serve would store it; hg
    then ignores such a bookmark)."""
    return (f'bookmark "{name.decode("utf-8", "replace")}" names changeset {binascii.hexlify(node).decode()[:12]}, '
            "which is unknown to the server; push that changeset with the bookmark")


def not_stored(exc: OSError) -> StorageError:
    """A write the server's disk refused (full, a quota, an I/O error), after the rollback."""
    return StorageError(f"the server could not store the push ({exc.strerror or exc}); nothing was changed, "
                        f"{storage_advice(exc)}")


class SingleHeadRule(NamedTuple):
    """One of the repository's one-head-per-branch checks of a push (``HgRepo.single_head_rules``)."""

    extension: bool
    """hg-evolve's ``enforce-single-head`` (its words), else core hg's ``single-head-per-branch``."""
    closed: bool
    """Heads that close their branch count."""
    public_only: bool
    """Only public changesets are looked at (hg's ``immutable`` view)."""
    topics: bool
    """A draft with a topic is on ``BRANCH//TOPIC`` (``BRANCH//NAMESPACE/TOPIC``), as hg-evolve names it."""


class Transaction:
    """One write transaction on an :class:`HgRepo`; locks are held from creation to commit/abort."""

    def __init__(self, repo: HgRepo, max_text: int | None = None, wait: LockWait | None = None) -> None:
        self.repo = repo
        self.max_text = max_text
        """The largest text a pushed delta may rebuild (``[limits] max_delta_result``); None: mpatch's own."""
        repo.locks.acquire(wait)
        try:
            store = repo.store
            vfsmap = {journal_mod.STORE: store, journal_mod.PLAIN: repo.plain}
            if journal_mod.needs_recovery(store):
                journal_mod.recover(vfsmap, repo.encode_path)
            self.journal = journal_mod.Journal(vfsmap, repo.encode_path)
        except BaseException:
            repo.locks.release()
            raise
        try:  # reading the repository may fail too (a bug, a changelog that cannot be read): let go of it
            found = repo.requirements()
            engine = "zstd" if reqs.ZSTD in found else "none" if reqs.NO_COMPRESSION in found else "zlib"
            self.compressor = Compressor(engine)
            self.sparse = reqs.SPARSEREVLOG in found
            """(Else the span of a chain a revision is a delta on is bounded: ``RevlogWriter``.)"""
            # the changelog is written at the commit: a long group's chunks wait in the store's directory
            self.cl = RevlogWriter(repo.changelog(), self.journal, self.compressor,
                                   spool_dir=getattr(repo.store, "root", None), changelog=True)
        except BaseException:
            try:
                self.journal.rollback()
            finally:
                repo.locks.release()
            raise
        self._base_index = self.cl.reader.index
        """The changelog snapshot the transaction started from (the one the repository's views describe)."""
        self.writers: dict[bytes, RevlogWriter] = {}
        self._file_writers: dict[bytes, RevlogWriter] = {}
        self._written_files = bytearray()
        """The paths of the files whose writers ``_let_go`` dropped, each ended by a newline (a
        list of a million paths took twice the bytes)."""
        self.standins = False
        """A file under ``.hglf/`` (a largefiles standin) was written."""
        self._manifest_links = LinkRuns()
        """The file revisions that must exist once the push's files are in
        (``_validate_new_changesets``): those the lines of the pushed manifests that differ from
        their delta bases name, and those a new changeset's pushed manifest lists for the files the
        changeset says it changed (looked up while the manifest's text is in hand)."""
        self._carried: list[int] = []
        """The changesets a pushed changelog group carried that the repository already had (revs):
        their phase moves as the new ones' does (``_update_phases_for_pushed``)."""
        self._new_changesets: dict[int, tuple[Node, tuple[bytes, ...] | None]] = {}
        """Each changeset this push added (rev): its manifest and the files it says it changed,
        as its text was checked (None once its pushed manifest went by and they were looked up);
        ``_validate_new_changesets`` pops them."""
        self._awaiting: dict[Node, list[int]] = {}
        """The new changesets by their manifest, until the pushed manifest goes by."""
        self._read_nodes: tuple[bytes, dict[bytes, int]] | None = None
        """The nodes of the last filelog ``_file_has`` read from the store, with its path."""
        self._node_checks = NodeChecks()
        self._linked: dict[Node, list[Node]] = {}
        """The pushed manifests by the changeset each says introduced it (its linknode): that
        changeset's manifest must be it, or ``hg verify`` fails ("points to unexpected changeset").
        A file revision's linknode is only checked to be known, as ``hg verify`` lets it be."""
        self.extstored = False
        """A file revision holding an LFS pointer (``REVIDX_EXTSTORED``) was written."""
        self._serves_lfs: bool | None = None
        self.phases: bytearray | None = None
        self._parent_list: ParentColumns | None = None
        self._known_heads: tuple[int, frozenset[int]] | None = None
        """The number of revisions when the heads were last computed, and those heads."""
        self.marks: dict[bytes, Node] | None = None
        self._marks_read: dict[bytes, Node] = {}
        """``marks`` as the repository held them when they were read (under the lock): what a
        write that changed nothing leaves alone."""
        self.changed_cl = False
        self.done = False
        self.first_new = len(self.cl)
        self.new_markers: list[Marker] = []
        self._markers_before: ObsStore | None = None
        self._markers_written = 0

    # -- context manager sugar -------------------------------------------------

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if self.done:
            return
        if exc_type is None:
            self.commit()
        else:
            self.abort()

    def _guard(self) -> None:
        if self.done:
            raise StorageError("transaction already finished")

    # -- changegroup ingest ----------------------------------------------------

    def add_changegroup(self, groups: Iterator[RevisionGroup]) -> IngestResult:
        self._guard()
        try:
            return self._add_changegroup(groups)
        except OSError as exc:
            self.abort()
            raise not_stored(exc) from exc
        except BaseException:
            self.abort()
            raise

    def _add_changegroup(self, groups: Iterator[RevisionGroup]) -> IngestResult:
        try:
            return self._add_groups(groups)
        finally:
            self._node_checks.close()

    def _add_groups(self, groups: Iterator[RevisionGroup]) -> IngestResult:
        heads_before = self._heads()
        first_new = len(self.cl)
        added: list[Node] = []
        file_revisions = 0
        expected = (Section.CHANGELOG, Section.MANIFEST, Section.FILE)
        stage = 0
        for group in groups:
            while stage < 3 and expected[stage] is not group.section:
                stage += 1
            if stage >= 3:
                raise ProtocolError("changegroup sections out of order")
            if group.section is Section.CHANGELOG:
                added.extend(self._ingest(self.cl, group.revisions, is_changelog=True))
                stage = 1
            elif group.section is Section.MANIFEST:
                for rev, (manifest, _files) in self._new_changesets.items():
                    self._awaiting.setdefault(manifest, []).append(rev)
                self._ingest(self._writer(b"00manifest.i"), group.revisions, lines_only=True)
                self._awaiting.clear()
                stage = 2
            else:
                _check_path(group.path)
                writer = self._file_writer(group.path)
                file_revisions += len(self._ingest(writer, group.revisions))
                writer.release()  # memory: one file's revisions at a time, not the whole push's
                self._let_go(group.path, writer)
        self._validate_new_changesets(first_new)
        carried, self._carried = self._carried, []
        if added:
            self.changed_cl = True
        if added or carried:
            self._update_phases_for_pushed(first_new, carried)
        heads_after = self._heads()
        closing = sum(1 for rev in heads_after - heads_before
                      if parse_changeset(self.changeset_text(self.cl.node(rev))).closes_branch)
        # an empty repository's head is null, as in hg: it counts as one
        return IngestResult(added=added, heads_before=len(heads_before) or 1, heads_after=len(heads_after) or 1,
                            file_revisions=file_revisions, closing_heads=closing)

    def changeset_text(self, node: Node) -> bytes:
        """The changelog text of ``node``, also of a changeset this transaction added and has not committed.

        Read right after its revision went in, a new changeset comes from the
        writer's recent texts, so reading it never flushes the changelog early.
        """
        self._guard()
        return self.cl.text(self.cl.rev(node))

    def _writer(self, index_path: bytes, logical: bytes | None = None) -> RevlogWriter:
        writer = self.writers.get(index_path)
        if writer is None:
            writer = RevlogWriter(self.repo.revlogs.open(index_path, logical), self.journal, self.compressor,
                                  sparse=self.sparse)
            self.writers[index_path] = writer
        return writer

    def _lfs(self) -> bool:
        """The repository serves hg's ``lfs`` extension (its pointers may be stored); its hgrc is
        read once per transaction, not for every pointer."""
        if self._serves_lfs is None:
            self._serves_lfs = self.repo.lfs() is not None
        return self._serves_lfs

    def _file_writer(self, path: bytes) -> RevlogWriter:
        """The writer of a file's filelog, by its path (encoded into a store path once per push:
        the checks after the ingest ask again for every file a changeset or manifest names)."""
        writer = self._file_writers.get(path)
        if writer is None or writer.released:
            if path.startswith(STANDIN_DIR):
                self.standins = True
            index_path = self.repo.filelog_path(path)
            if writer is not None:  # a second group of one file (hg sends one): from what is written
                del self.writers[index_path]
                if writer.split_index is not None:
                    writer = self._file_writers[path] = self.writers[index_path] = writer.successor()
                    return writer
            writer = self._file_writers[path] = self._writer(index_path, b"data/" + path + b".i")
        return writer

    def _let_go(self, path: bytes, writer: RevlogWriter) -> None:
        """Forget a file's released writer, unless a split of its inline revlog waits for the
        commit: its revisions are written, and the commit only lists its files in fncache (from
        ``_written_files``).  A released writer still took 2 KB (its reader, index, buffers): a
        push of 1,000,000 files held 2 GB of them until its commit."""
        if writer.split_index is not None:
            return
        del self.writers[writer.index_path]
        del self._file_writers[path]
        self._written_files += path + b"\n"

    def _file_has(self, path: bytes, node: Node) -> bool:
        """Whether the file's filelog holds ``node``, this push's revisions included: from its
        writer while it has one in hand, else from its index as written now (a written group's
        writer lets go of its revisions; a file the push did not write needs no writer), parsed
        for this alone (the shared index cache would keep a whole push's filelogs).  A filelog
        split by the push is read from its split index, which replaces ``.i`` at the commit."""
        if node == NULL_NODE:
            return True
        writer = self._file_writers.get(path)
        if writer is not None and not writer.released:
            return writer.has_node(node)
        if self._read_nodes is None or self._read_nodes[0] != path:
            revlogs = self.repo.revlogs
            index_path = self.repo.filelog_path(path) if writer is None else writer.index_file
            data = revlogs.vfs.read(index_path) if revlogs.vfs.exists(index_path) else b""
            self._read_nodes = (path, parse_index(data, None, revlogs.default_header).nodemap())
        return node in self._read_nodes[1]

    def _rebuild(self, base_text: bytes, delta: bytes) -> bytes:
        """Apply a pushed delta within ``max_text`` (and mpatch's own bound), sized before it is built."""
        try:
            return mpatch.apply(base_text, delta, self._text_limit())
        except mpatch.TextTooLarge as exc:
            raise self._too_large(exc) from None

    def _whole_text(self, pieces: TextPieces) -> bytes:
        """A pushed whole text, within the bounds of a rebuilt one."""
        if pieces.size > self._text_limit():
            raise self._too_large(mpatch.TextTooLarge(pieces.size, self._text_limit()))
        return cast(bytes, pieces.text())  # (a bytearray as it came off the wire: read, hashed, compressed)

    def _text_limit(self) -> int:
        return mpatch.MAX_TEXT_SIZE if self.max_text is None else min(self.max_text, mpatch.MAX_TEXT_SIZE)

    def _too_large(self, exc: mpatch.TextTooLarge) -> Exception:
        """mpatch's refusal, or, past ``max_text``, the limit's, which says what it is."""
        if self.max_text is None or exc.size <= self.max_text:
            return exc
        return LimitExceeded(f"a pushed revision of {exc.size} bytes is over the {self.max_text}-byte limit "
                             "for rebuilt texts")

    def _ingest(self, writer: RevlogWriter, revisions: Iterator[RevisionDelta], is_changelog: bool = False,
                lines_only: bool = False) -> list[Node]:
        """Apply one delta group: check bases, parents, linknodes and hashes, then append.

        A received delta against the base the revlog stores against is kept as
        it is (no re-diff); manifest deltas (``lines_only``) only when their
        hunks cover whole lines, as Mercurial's manifest readers expect.
        """
        added: list[Node] = []
        for rd in revisions:
            # a file's whole text is taken as it came (no delta to apply, nothing copied); any other
            # delta as bytes (another backend's ``TextPieces`` read whole)
            whole = (rd.delta if isinstance(rd.delta, TextPieces) and rd.base == NULL_NODE
                     and not (is_changelog or lines_only) else None)
            delta = b"" if whole is not None else delta_bytes(rd.delta)
            if rd.flags and not (is_changelog and rd.flags == REVIDX_HASCOPIESINFO) and (
                    rd.flags != REVIDX_EXTSTORED or is_changelog or lines_only or not self._lfs()):
                raise ProtocolError(f"unsupported revision flags {rd.flags:#x} in changegroup"
                                    + ("; this repository does not serve LFS (enable hg's lfs extension in its hgrc)"
                                       if rd.flags == REVIDX_EXTSTORED else ""))
            if not writer.has_node(rd.base):
                if is_changelog and rd.base in (rd.p1, rd.p2):
                    raise _parent_gone(rd.node, rd.base)
                raise ProtocolError(f"delta base {binascii.hexlify(rd.base).decode()} is unknown")
            base_text = writer.text(writer.rev(rd.base))
            text = self._whole_text(whole) if whole is not None else self._rebuild(base_text, delta)
            if writer.has_node(rd.node):
                if is_changelog:
                    self._carried.append(writer.rev(rd.node))
                continue
            for parent in (rd.p1, rd.p2):
                if not writer.has_node(parent):
                    if is_changelog:
                        raise _parent_gone(rd.node, parent)
                    raise ProtocolError(f"parent {binascii.hexlify(parent).decode()} is unknown")
            if rd.flags & REVIDX_EXTSTORED:  # an LFS pointer: its node hashes the blob (as hg's flag processor, not checked)
                self.extstored = True
            else:
                self._node_checks.check(text, rd.p1, rd.p2, rd.node)
            if is_changelog:
                cs = parse_changeset(text)
                linkrev = len(writer)
                self._new_changesets[linkrev] = (cs.manifest, cs.files)
            else:
                if not self.cl.has_node(rd.linknode) or rd.linknode == NULL_NODE:
                    raise ProtocolError(f"linknode {binascii.hexlify(rd.linknode).decode()} is unknown")
                linkrev = self.cl.rev(rd.linknode)
            if lines_only:
                self._linked.setdefault(rd.linknode, []).append(rd.node)
                self._note_manifest_lines(rd.node, text, delta)
                for rev in self._awaiting.pop(rd.node, ()):
                    manifest, files = self._new_changesets[rev]
                    self._manifest_links.add(b"".join(sorted(
                        path + b"\0" + binascii.hexlify(file_node) + b"\n"
                        for path, file_node in _listed(text, files or ()))))
                    self._new_changesets[rev] = (manifest, None)
            reusable = whole is None and (not lines_only or mpatch.on_line_boundaries(base_text, delta))
            writer.add(rd.node, rd.p1, rd.p2, linkrev, text, (writer.rev(rd.base), delta) if reusable else None,
                       rd.flags)
            added.append(rd.node)
            if not is_changelog:
                writer.maybe_flush()
        self._node_checks.drain()
        return added

    def _note_manifest_lines(self, node: Node, text: bytes, delta: bytes) -> None:
        """Check the lines of a pushed manifest that its delta wrote (the others are its base's, a
        stored or checked manifest's): each ``path\\0<40 hex>[flag]``, in path order with its
        neighbours, as Mercurial's manifest readers require; note the file revisions they name.

        A window of lines at a time (``LINES_WINDOW`` bytes): the format is matched by one regular
        expression, the order by comparing the window's paths in one pass, and the lines are kept
        as they are (one run of :class:`LinkRuns`).  A list of every line and every path of a
        1,000,000-file manifest took 400 MB more than its 55 MB text."""
        def refuse(why: str) -> NoReturn:
            raise ProtocolError(f"pushed manifest {binascii.hexlify(node).decode()[:12]} {why}")

        if text and not text.endswith(b"\n"):
            refuse("does not end with a newline")
        noted = bytearray()
        shift = 0
        for start, end, data in mpatch._hunk_views(delta):
            at = start + shift
            shift += len(data) - (end - start)
            span = len(data)
            if not span:  # bytes removed: the line where the two sides meet may be new
                if at >= len(text):
                    continue
                span = 1
            first = text.rfind(b"\n", 0, at) + 1
            last = text.find(b"\n", at + span - 1) + 1
            before = text.rfind(b"\n", 0, first - 1) + 1 if first else first
            previous = text[before:first].partition(b"\0")[0] if before < first else None
            pos = first
            while pos < last:
                stop = text.find(b"\n", min(pos + LINES_WINDOW, last) - 1) + 1
                window = text[pos:stop]
                if MANIFEST_LINES.fullmatch(window) is None:
                    _refuse_line(window, refuse)
                null = window.find(NULL_ENTRY)
                if null >= 0:
                    line = window[window.rfind(b"\n", 0, null) + 1:null]
                    refuse(f"lists {_shown(line)} with the null revision")
                paths = [line[:line.find(b"\0")] for line in window.split(b"\n")[:-1]]
                if previous is not None:
                    paths.insert(0, previous)
                if not all(map(operator.lt, paths, itertools.islice(paths, 1, None))):
                    refuse("is not sorted by path (or lists a path twice)")
                previous = paths[-1]
                noted += window
                pos = stop
            if last < len(text):
                following = text[last:text.find(b"\n", last)].partition(b"\0")[0]
                if previous is not None and previous >= following:
                    refuse("is not sorted by path (or lists a path twice)")
        self._manifest_links.add(noted)

    def _validate_new_changesets(self, first_new: int) -> None:
        """Every new changeset's manifest, and the file revisions it lists, must now exist; so must
        every file revision a pushed manifest's own lines name; each pushed manifest must be the
        manifest of the changeset it names as its own."""
        for path, hex_node in self._manifest_links.merged():
            if not self._file_has(path, Node(binascii.unhexlify(hex_node))):
                raise ProtocolError(f"a pushed manifest refers to a missing revision of {_shown(path)}")
        self._manifest_links = LinkRuns()
        linked, self._linked = self._linked, {}
        manifests = self._writer(b"00manifest.i")
        for rev in range(first_new, len(self.cl)):
            manifest, changed = self._new_changesets.pop(rev)  # every new one: _ingest noted it
            if manifest != NULL_NODE and not manifests.has_node(manifest):
                raise ProtocolError(f"changeset {rev} refers to a missing manifest")
            if changed is not None and manifest != NULL_NODE:  # a manifest stored before this push: read it now
                for path, node in _listed(manifests.text(manifests.rev(manifest)), changed):
                    if not self._file_has(path, node):
                        raise ProtocolError(f"changeset {rev} refers to a missing revision of {_shown(path)}")
            _check_linked(linked.pop(self.cl.node(rev), []), manifest)
        for linknode, introduced in linked.items():  # said to come from a changeset stored before
            _check_linked(introduced, parse_changeset(self.cl.text(self.cl.rev(linknode))).manifest)

    # -- phases ------------------------------------------------------------------

    def _parents(self) -> ParentColumns:
        """(p1, p2) of every revision, the added ones too: built once, then extended (a push
        asks many times, and rebuilding it cost a pass over the whole history each time)."""
        parents = self._parent_list
        entries = self.cl.entries
        if parents is None:
            views = self.repo.views()  # usually known already: a copy of its columns, not a pass over entries
            shared = views.parents if views.index is self._base_index else ParentColumns(
                *self._base_index.parent_columns())
            parents = shared.copy()
            self._parent_list = parents
        if len(parents) < len(entries):
            parents.extend(map(PARENT_REVS, entries[len(parents):]))
        return parents

    def _heads(self) -> set[int]:
        """The heads of every revision (revs), secret and hidden ones too: hg counts a push's new
        heads in its unfiltered changelog (changegroup.py ``apply``: ``cl.diffheads``), so a new head
        beside a secret one is one more head to it.

        Worked out from the heads of the repository's view (the client asked for them) and the
        revisions it leaves out (no revision it shows has a parent it leaves out: a secret or
        archived one's children are too, a hidden one is only hidden without visible descendants):
        those heads but the parents of a left-out revision, and the left-out revisions none of
        them is the parent of.  (Computed over the whole history when anything was hidden or
        secret before: a push into 200,000 changesets with an obsstore walked them all, twice.)
        Later calls start from the last answer and only look at the revisions added since.
        """
        parents = self._parents()
        known = self._known_heads
        if known is None:
            views = self.repo.views()
            if views.index is self._base_index:
                unseen = [found.start() for found in _UNSEEN.finditer(views.visible)]
                below = {p for rev in unseen for p in views.parents[rev] if p >= 0}
                seen_heads = self.repo.head_revs(views)
                known = (len(views.visible), frozenset(rev for rev in itertools.chain(seen_heads, unseen)
                                                       if rev not in below))
        if known is not None:
            heads = graph.grown_heads(parents, None, known[1], known[0])
        else:
            heads = set(graph.heads(parents))
        self._known_heads = (len(parents), frozenset(heads))
        return heads

    def _phase_array(self) -> bytearray:
        if self.phases is None:
            self.phases = bytearray(self.repo.views().phases)
        if len(self.phases) < len(self.cl):
            parents = self._parents()
            for rev in range(len(self.phases), len(self.cl)):
                p1, p2 = parents[rev]
                self.phases.append(max(self.phases[p1] if p1 >= 0 else 0, self.phases[p2] if p2 >= 0 else 0))
        return self.phases

    def _implied_phases(self) -> bytearray:
        """Phases the current phaseroots give every revision, new ones included (by inheritance)."""
        phases = bytearray(self.repo.views().phases)
        parents = self._parents()
        for rev in range(len(phases), len(self.cl)):
            p1, p2 = parents[rev]
            phases.append(max(phases[p1] if p1 >= 0 else 0, phases[p2] if p2 >= 0 else 0))
        return phases

    def _update_phases_for_pushed(self, first_new: int, carried: Sequence[int]) -> None:
        """New changesets are draft at least; then every changeset of the pushed group, those the
        repository had (a secret one included) as well as the new ones, and their ancestors move
        to draft, or to public where the repository publishes: hg's ``changegroup.apply`` for a
        push (``registernew``, then ``advanceboundary`` over the group's revisions)."""
        phases = self._phase_array()
        new = range(first_new, len(self.cl))
        for rev in new:
            phases[rev] = max(phases[rev], DRAFT)
        self._advance(PUBLIC if self.repo.publishing() else DRAFT, [*carried, *new])

    def _advance(self, phase: int, revs: Sequence[int]) -> None:
        graph.lower_phase(self._parents(), self._phase_array(), revs, phase)

    def set_phase(self, phase: int, nodes: Sequence[Node]) -> None:
        self._guard()
        revs = [self.cl.rev(n) for n in nodes if n != NULL_NODE and self.cl.has_node(n)]
        phases = self._phase_array()
        if any(phases[r] > phase for r in revs):
            self._advance(phase, revs)
        retract = [r for r in revs if phases[r] < phase]
        if retract:
            mask = graph.descendants_mask(self._parents(), retract)
            for rev, inside in enumerate(mask):
                if inside and phases[rev] < phase:
                    phases[rev] = phase

    def phase_of(self, node: Node) -> int | None:
        """The changeset's phase in this transaction (its pushes and phase moves so far); None for
        one the repository does not hold."""
        if node == NULL_NODE or not self.cl.has_node(node):
            return None
        return self._phase_array()[self.cl.rev(node)]

    # -- bookmarks -----------------------------------------------------------------

    def set_bookmark(self, name: bytes, old: Node | None, new: Node | None) -> bool:
        self._guard()
        if self.marks is None:
            self.marks = self.repo.stored_bookmarks()  # the hidden ones too: a write keeps them
            self._marks_read = dict(self.marks)
        if not name or any(c in name for c in (b"\n", b"\r", b"\0")):
            return False
        if new is not None and (new == NULL_NODE or not self.cl.has_node(new)):
            raise ProtocolError(unknown_bookmark_target(name, new))
        if self.marks.get(name) != old:
            return False
        if new is None:
            self.marks.pop(name, None)
        else:
            self.marks[name] = new
        return True

    # -- obsolescence markers --------------------------------------------------------

    def add_obsmarkers(self, markers: Sequence[Marker]) -> int:
        """Add the markers the repository does not have yet; return how many were new.

        They are appended to the obsstore at the commit (and for the ``pretxn`` hooks' pending
        view), in the store's own format version, journaled like any other append.
        """
        self._guard()
        if self._markers_before is None:
            self._markers_before = self.repo.obsstore() or ObsStore(obs.DEFAULT_VERSION, [])
        taken = set(self.new_markers)
        fresh = [m for m in self._markers_before.new(markers) if m not in taken]
        version = self._store_version()
        for marker in fresh:
            try:
                next(obs.encode([marker], version, header=False))
            except ValueError as exc:
                raise ProtocolError(f"an obsolescence marker cannot be stored in this repository ({exc})") from None
        self.new_markers.extend(fresh)
        return len(fresh)

    def obsolescence_summary(self) -> tuple[int, int, int, int, int]:
        """What hg's server says of obsolescence as a push commits (``scmutil.registersummarycallback``):
        (new markers, changesets they obsoleted, new orphan, phase-divergent and content-divergent
        changesets).

        Obsoleted: changesets that were there before, are not public, and had no marker until
        this transaction (``obsutil.getobsoleted``).  The instabilities (``obsstore.instabilities``)
        are counted before the transaction and after it, where the hgrc turns ``createmarkers`` on.
        """
        before = self._markers_before
        if before is None:
            before = self.repo.obsstore()
        if before is None and not self.new_markers:
            return 0, 0, 0, 0, 0
        if before is None:
            before = ObsStore(obs.DEFAULT_VERSION, [])
        after = before.extended(self.new_markers) if self.new_markers else before
        phases = self._phase_array()
        nodemap = self.cl.nodemap  # the new changesets too
        obsoleted = {
            rev for m in self.new_markers
            if (rev := nodemap.get(m.prec)) is not None and rev < self.first_new and phases[rev] != PUBLIC
            and m.prec not in before.successors
        }
        new: tuple[int, ...] = (0, 0, 0)
        if self.repo.obsolescence_enabled(b"createmarkers"):
            parents = self._parents()
            old = instabilities(before, nodemap, self.cl.node, parents, self.repo.views().phases, self.first_new)
            now = instabilities(after, nodemap, self.cl.node, parents, phases, len(self.cl))
            new = tuple(max(b - a, 0) for a, b in zip(old, now, strict=True))
        return len(self.new_markers), len(obsoleted), new[0], new[1], new[2]

    def bare_new_drafts(self) -> list[Node]:
        """The changesets this transaction added that are not public, not hidden (its markers and
        phases too) and carry no topic: what hg-evolve's ``topic.publish-bare-branch`` publishes and
        ``topic-mode.server`` names as a push commits (``not public() and (FIRST:) - hidden() -
        topic()``).  An obsolete one a visible changeset descends from (an orphan's parent) is not
        hidden, so it counts; every obsolete one was left out before."""
        self._guard()
        phases = self._phase_array()
        hidden = self._hidden_now(phases)
        bare: list[Node] = []
        for rev in range(self.first_new, len(self.cl)):
            node = self.cl.node(rev)
            if phases[rev] == PUBLIC or rev in hidden:
                continue
            if not parse_changeset(self.changeset_text(node)).extra.get(b"topic"):
                bare.append(node)
        return bare

    def new_drafts_with_namespace(self) -> list[Node]:
        """The changesets this transaction added that are not public, not hidden and name a topic
        namespace: what hg-evolve's ``tns-reject-push`` refuses (``not public() and
        extra("topic-namespace") and (FIRST:) - hidden()``)."""
        self._guard()
        phases = self._phase_array()
        hidden = self._hidden_now(phases)
        return [self.cl.node(rev) for rev in range(self.first_new, len(self.cl))
                if phases[rev] != PUBLIC and rev not in hidden
                and b"topic-namespace" in parse_changeset(self.changeset_text(self.cl.node(rev))).extra]

    def _hidden_now(self, phases: bytearray) -> set[int]:
        """The revisions hg's ``visible`` view filters out as this transaction leaves the repository
        (its markers and phases too)."""
        before = self._markers_before if self._markers_before is not None else self.repo.obsstore()
        if before is None and not self.new_markers:
            return set()
        if before is None:
            before = ObsStore(obs.DEFAULT_VERSION, [])
        after = before.extended(self.new_markers) if self.new_markers else before
        return hidden_revs(after, self.cl.nodemap, self._parents(), phases, self.repo.pinned_revs())

    def branch_heads_now(self, rule: SingleHeadRule) -> list[tuple[bytes, list[tuple[Node, bool]]]]:
        """Each branch's heads as this transaction leaves the repository, as ``rule`` looks at them:
        the names in order of their first head, the heads ascending, each with whether it closes
        its branch (those that do left out unless ``rule.closed``).  hg's ``visible`` view, or
        only the public changesets (``rule.public_only``); with ``rule.topics`` a draft's topic
        (and namespace) is part of its branch's name.

        Worked out from the branch heads the repository's views know before the push (public
        changesets on their plain branch names): only the revisions whose branch name or whether
        they are looked at may differ from those views (the new ones, every non-public, hidden or
        unserved one) are read, with their parents and the children of those (a walk from the
        oldest of them).  Every changeset was walked for each rule before (0.1 s a push into
        200,000 changesets)."""
        self._guard()
        phases = self._phase_array()
        parents = self._parents()
        hidden = self._hidden_now(phases) if not rule.public_only else set()
        old = self.repo.changeset_branches()
        topics = self.repo.draft_topics() if rule.topics and not rule.public_only else {}
        count = len(self.cl)
        names: dict[int, bytes] = {}
        closes: dict[int, bool] = {}

        def name(rev: int) -> bytes:
            found = names.get(rev)
            if found is None:
                if rev < self.first_new and rev < len(old):
                    found, closes[rev] = old[rev]
                else:
                    found, closes[rev] = branchcache.branch_of(self.changeset_text(self.cl.node(rev)))
                # a served draft without a topic (not in ``topics``) is read no more
                if rule.topics and phases[rev] != PUBLIC and (rev >= self.first_new or rev in topics
                                                                or phases[rev] != DRAFT):
                    found += self._fqbn_suffix(rev)
                names[rev] = found
            return found

        def shown(rev: int) -> bool:
            return rev not in hidden and (not rule.public_only or phases[rev] == PUBLIC)

        before, changed = self._branch_heads_before(phases, hidden)
        # the heads now are among those before, the changed revisions and their parents; one that
        # was a head before and did not change can only have gained a child among the changed ones
        full = {p for rev in changed for p in parents[rev] if p >= 0} | changed
        full -= before - changed
        children: dict[int, set[int]] = {}
        for rev in range(min(full, default=count) + 1, count):
            for p in parents[rev]:
                if p in full:
                    children.setdefault(p, set()).add(rev)
        for rev in changed:
            for p in parents[rev]:
                if p in before and p not in full:
                    children.setdefault(p, set()).add(rev)
        heads: dict[bytes, list[tuple[Node, bool]]] = {}
        for rev in sorted(full | before):
            if not shown(rev) or any(shown(c) and name(c) == name(rev) for c in children.get(rev, ())):
                continue
            branch = name(rev)
            if rule.closed or not closes[rev]:
                heads.setdefault(branch, []).append((self.cl.node(rev), closes[rev]))
        return list(heads.items())

    def _branch_heads_before(self, phases: bytearray, hidden: set[int]) -> tuple[set[int], set[int]]:
        """(the branch heads of the repository's views before the push, on plain branch names; the
        revisions for which those views may not be what a rule looks at now: the new ones, and every
        one non-public before or now, unserved or hidden).  Without views of the snapshot the
        transaction started from: (none, every revision)."""
        count = len(self.cl)
        cl = self.repo.changelog()
        views = self.repo.views(cl)
        if views.index is not self._base_index or cl.index is not self._base_index:
            return set(), set(range(count))
        known = len(views.parents)
        before = {rev for revs in self.repo._branch_head_revs(cl, views).values() for rev in revs}
        changed = set(range(known, count))
        changed.update(found.start() for found in _NOT_PUBLIC.finditer(views.phases))
        changed.update(found.start() for found in _NOT_PUBLIC.finditer(phases, 0, known))
        changed.update(found.start() for found in _UNSEEN.finditer(views.visible))
        changed.update(hidden)
        return before, changed

    def _fqbn_suffix(self, rev: int) -> bytes:
        """``//TOPIC`` or ``//NAMESPACE/TOPIC`` of a changeset with a topic (hg-evolve's fully
        qualified branch name, the branch left out), else nothing."""
        extra = parse_changeset(self.changeset_text(self.cl.node(rev))).extra
        topic, namespace = extra.get(b"topic", b""), extra.get(b"topic-namespace", b"")
        if namespace in (b"", b"none"):
            return b"//" + topic if topic else b""
        return b"//" + namespace + b"/" + topic

    def _store_version(self) -> int:
        """The obsstore's format (its first byte), the default for a new one."""
        store = self.repo.store
        head = store.read_range(OBSSTORE, 0, 1) if store.exists(OBSSTORE) else b""
        version = head[0] if head else obs.DEFAULT_VERSION
        if version not in obs.VERSIONS:
            raise StorageError(f"the repository's obsstore has unknown format version {version}")
        return version

    def _write_markers(self) -> None:
        if self._markers_written == len(self.new_markers):
            return
        store = self.repo.store
        size = store.size(OBSSTORE) if store.exists(OBSSTORE) else 0
        version = self._store_version()
        self.journal.record_append(OBSSTORE, size)
        data = b"".join(obs.encode(self.new_markers[self._markers_written:], version, header=size == 0))
        store.append(OBSSTORE, data)
        self._markers_written = len(self.new_markers)

    # -- commit / abort --------------------------------------------------------------

    def write_pending(self) -> str | None:
        """Make this transaction's changesets readable to ``hg`` run with ``HG_PENDING`` set to the
        returned root (Mercurial's ``pretxn`` hooks): manifests and files are written, and
        ``00changelog.i.a`` holds the changelog index with the new changesets, ``phaseroots.pending``
        and ``bookmarks.pending`` the phases and bookmarks the commit would write; None in memory."""
        self._guard()
        root = getattr(self.repo.plain, "root", None)
        if root is None:
            return None
        try:
            for writer in self.writers.values():
                writer.flush()
            if self.cl.pending:
                self.journal.backup(PENDING_CHANGELOG)  # it did not exist: a rollback removes it
                self.cl.write_pending(PENDING_CHANGELOG)
            self._write_phaseroots(PENDING_PHASEROOTS)  # new files too; the real ones at commit
            self._write_bookmarks(PENDING_BOOKMARKS)
            self._write_markers()  # hg has no pending obsstore: it appends, undone by a rollback
        except OSError as exc:
            self.abort()
            raise not_stored(exc) from exc
        except BaseException:
            self.abort()
            raise
        return os.path.realpath(os.path.dirname(os.path.normpath(os.fsdecode(root))))  # as hg's repo.root

    def commit(self) -> None:
        self._guard()
        try:
            self._write_all()
            for vfs, name in ((self.repo.store, PENDING_CHANGELOG), (self.repo.store, PENDING_PHASEROOTS),
                              (self.repo.bookmarks_vfs(), PENDING_BOOKMARKS)):
                if vfs.exists(name):
                    vfs.unlink(name)
            self.journal.close()
        except OSError as exc:
            self.abort()
            raise not_stored(exc) from exc
        except BaseException:
            self.abort()
            raise
        self.done = True
        try:
            self._keep_snapshots()
            if self.changed_cl or self.phases is not None or self.new_markers:
                self._drop_caches()
            self._drop_undo()
            if self.changed_cl:
                self.repo.save_branches_after_commit()
            if self.changed_cl or self.phases is not None or self.new_markers:
                self.repo.save_served_branchmap()
            if self.standins:
                self.repo.require_largefiles()
            if self.extstored:
                self.repo.require_lfs()
        finally:
            self.repo.locks.release()

    def _keep_snapshots(self) -> None:
        """After the commit, under the lock: the changelog's and manifests' new snapshots are made
        from their writers' entries (``RevlogWriter.appended_snapshot``), not read again: each push
        into a repository of 200,000 changesets had the next open read and hash its 12.8 MB index."""
        for writer in (self.cl, *self.writers.values()):
            if is_filelog(writer.index_path):
                continue
            try:
                found = writer.appended_snapshot()
                if found is not None:
                    self.repo.revlogs.appended(writer.index_path, *found)
            except OSError:
                pass  # the push is committed; the next open reads the file

    def _drop_undo(self) -> None:
        """Remove the undo files of hg's last transaction: ``hg rollback`` would undo ours with them."""
        for vfs in (self.repo.store, self.repo.plain):
            for name in vfs.listdir(b"."):
                if name.startswith(b"undo"):
                    vfs.unlink(name)

    def _write_all(self) -> None:
        for writer in self.writers.values():
            writer.flush()
        for writer in self.writers.values():  # before the changelog names their revisions
            writer.finish_split()
        self._write_fncache()
        self._write_phaseroots()
        self._write_bookmarks()
        self._write_markers()
        self.cl.flush()

    def _write_fncache(self) -> None:
        """List new filelog files (``.i``, and ``.d`` also when a split created it) in fncache."""
        if reqs.FNCACHE not in self.repo.requirements():
            return
        store = self.repo.store
        revlogs = itertools.chain(
            ((writer.logical_index, writer.index_path) for writer in self.writers.values()),
            ((b"data/" + path + b".i", self.repo.filelog_path(path))
             for path in bytes(self._written_files).split(b"\n")[:-1]))
        listed: set[bytes] | None = None
        lines = bytearray()
        for logical_index, index_path in revlogs:
            if logical_index.startswith(b"data/"):
                for logical, disk in ((logical_index, index_path), (logical_index[:-2] + b".d", index_path[:-2] + b".d")):
                    if store.exists(disk):
                        if listed is None:
                            listed = set(store.read(b"fncache").splitlines()) if store.exists(b"fncache") else set()
                        line = encode_dir(logical)
                        if line not in listed:  # (a file sent in two groups is written by two writers)
                            listed.add(line)
                            lines += line + b"\n"
        if not lines:
            return
        size = store.size(b"fncache")
        self.journal.record_append(b"fncache", size)
        prefix = b""
        if size and store.read_range(b"fncache", size - 1, 1) != b"\n":
            prefix = b"\n"
        store.append(b"fncache", bytes(prefix + lines))

    def phase_changes(self) -> list[tuple[Node, int | None, int]]:
        """Each changeset whose phase this transaction sets, in revision order: its node, its phase
        before (None for one the transaction adds) and after, as hg's ``tr.changes[b'phases']``."""
        before = self.repo.views().phases
        after = self._phase_array()
        changes: list[tuple[Node, int | None, int]] = []
        for rev in range(len(self.cl)):
            old = before[rev] if rev < len(before) else None
            if old != after[rev]:
                changes.append((self.cl.node(rev), old, after[rev]))
        return changes

    def phases_moved(self) -> bool:
        """Whether committing rewrites ``phaseroots`` (hg's ``phases_moved`` hook argument)."""
        return self._phaseroots_data() is not None

    def _phaseroots_data(self) -> bytes | None:
        """The new ``phaseroots``, or None when the phases are the ones it already implies."""
        if self.phases is None:
            return None
        if self.phases == self._implied_phases():
            return None
        roots = graph.phase_roots(self._parents(), self.phases)
        return b"".join(
            b"%d %s\n" % (phase, binascii.hexlify(self.cl.node(rev)))
            for phase in sorted(roots)
            for rev in roots[phase]
        )

    def _write_phaseroots(self, name: bytes = b"phaseroots") -> None:
        data = self._phaseroots_data()
        if data is None:
            return
        self.journal.backup(name)
        self.repo.store.replace(name, data)

    def _write_bookmarks(self, name: bytes = b"bookmarks") -> None:
        if self.marks is None or self.marks == self._marks_read:
            return
        vfs = self.repo.bookmarks_vfs()
        location = journal_mod.STORE if vfs is self.repo.store else journal_mod.PLAIN
        self.journal.backup(name, location)
        vfs.replace(name, format_bookmarks(self.marks))

    def _drop_caches(self) -> None:
        """After the commit point, still under the lock: hg rebuilds what is missing.

        A crash before this leaves caches that describe the old changelog; hg
        checks every one of them against the tip, phases and node ids before
        use, so they are only outdated, never wrong.  An aborted transaction
        never touches them.
        """
        plain = self.repo.plain
        for name in plain.listdir(b"cache"):
            if name.startswith(CACHE_PREFIXES):
                plain.unlink(b"cache/" + name)

    def abort(self) -> None:
        if self.done:
            return
        self.done = True
        try:
            for writer in (self.cl, *self.writers.values()):
                writer.discard()
            self.journal.rollback()
        finally:
            self.repo.locks.release()


HASH_ON_HELPER = 64 << 10
"""Texts this large have their node checked on a helper thread: hashlib lets go of the interpreter
lock while it hashes them (a migration's manifests, 360 KB each for 6,000 files, were a third of the
push's time), so the ingest goes on meanwhile.  Smaller ones cost less than the hand-over."""
HASHES_AHEAD = 8
"""Texts handed over and not checked yet, at most (their memory)."""
HASH_BYTES_AHEAD = 32 << 20
"""Bytes of texts handed over and not checked yet, at most, but for the last one: a large file's
revisions, each a delta on the one before, were held eight at a time (4 GB for a 512 MiB file),
where the last alone is also the base of the next delta."""


class NodeChecks:
    """The node of every pushed revision checked against its text (``node_hash``): large texts on
    one helper thread, in order, at most ``HASHES_AHEAD`` behind the ingest; ``drain`` waits for
    all (each group's end, before anything is committed).  A transaction that fails a check
    aborts, so a revision whose check is still running may serve as a base meanwhile."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._pending: deque[tuple[Node, Future[Node], int]] = deque()
        self._pending_bytes = 0

    def check(self, text: bytes, p1: Node, p2: Node, node: Node) -> None:
        if len(text) < HASH_ON_HELPER:
            if node_hash(text, p1, p2) != node:
                raise _fails_hash(node)
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="hgwire-node-check")
        self._pending.append((node, self._pool.submit(node_hash, text, p1, p2), len(text)))
        self._pending_bytes += len(text)
        while len(self._pending) > HASHES_AHEAD or (self._pending_bytes > HASH_BYTES_AHEAD and len(self._pending) > 1):
            self._settle_one()

    def _settle_one(self) -> None:
        node, computed, size = self._pending.popleft()
        self._pending_bytes -= size
        if computed.result() != node:
            raise _fails_hash(node)

    def drain(self) -> None:
        while self._pending:
            self._settle_one()

    def close(self) -> None:
        self._pending.clear()
        self._pending_bytes = 0
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _fails_hash(node: Node) -> ProtocolError:
    return ProtocolError(f"revision {binascii.hexlify(node).decode()} fails its hash check")


LINES_WINDOW = 1 << 20
"""The bytes of a pushed manifest's lines checked at a time (their paths are a list meanwhile)."""
MANIFEST_LINES = re.compile(rb"(?:[^\0\n]+\0[0-9a-fA-F]{40}[^\n]?\n)*")
"""Whole manifest lines: a path, a NUL, a node in hex and maybe a flag."""
NULL_ENTRY = b"\0" + b"0" * 40
"""The null node, as a well-formed manifest line lists it (a path has no NUL)."""


def _refuse_line(window: bytes, refuse: Callable[[str], NoReturn]) -> NoReturn:
    """Find the line of ``window`` that ``MANIFEST_LINES`` did not match, and say which."""
    for line in window.split(b"\n")[:-1]:
        path, nul, rest = line.partition(b"\0")
        if not nul or not path or len(rest) not in (40, 41):
            refuse(f"has a malformed line {line[:120]!r}")
        try:
            binascii.unhexlify(rest[:40])
        except binascii.Error:
            refuse(f"has a malformed node in {line[:120]!r}")
    refuse("has a malformed line")  # (not reached: the expression matches any other window)


class LinkRuns:
    """File revisions a push's manifests name, to be looked up once its files are in: runs of
    manifest lines (``path\\0<40 hex>[flag]\\n``), each in path order, as the manifest had them;
    runs of like sizes are merged (a revision noted twice kept once), as a merge sort's, so
    that a push of many manifests keeps few runs; ``merged`` gives them all in path order,
    each filelog's revisions together (its index is read once).

    Replaces a dict of a byte string of nodes per path, which for a manifest of 1,000,000 files
    took 200 MB beside the text's 55 MB; a run takes the lines' own bytes."""

    def __init__(self) -> None:
        self.runs: list[bytes | bytearray] = []

    def add(self, lines: bytes | bytearray) -> None:
        if not lines:
            return
        self.runs.append(lines)
        while len(self.runs) > 1 and len(self.runs[-2]) <= 2 * len(self.runs[-1]):
            second = self.runs.pop()
            first = self.runs.pop()
            merged = bytearray()
            for path, hex_node in _unique(heapq.merge(_entries(first), _entries(second))):
                merged += path + b"\0" + hex_node + b"\n"
            self.runs.append(merged)

    def merged(self) -> Iterator[tuple[bytes, bytes]]:
        """(path, node in hex) of every noted revision once, in path order."""
        return _unique(heapq.merge(*map(_entries, self.runs)))


def _entries(lines: bytes | bytearray) -> Iterator[tuple[bytes, bytes]]:
    """(path, node in hex) of each line, a window at a time."""
    pos = 0
    while pos < len(lines):
        stop = lines.find(b"\n", min(pos + LINES_WINDOW, len(lines)) - 1) + 1
        for line in bytes(lines[pos:stop]).split(b"\n")[:-1]:
            nul = line.find(b"\0")
            yield line[:nul], line[nul + 1:nul + 41]
        pos = stop


def _unique(entries: Iterator[tuple[bytes, bytes]]) -> Iterator[tuple[bytes, bytes]]:
    last = None
    for entry in entries:
        if entry != last:
            yield entry
            last = entry


def _listed(manifest: bytes, files: Iterable[bytes]) -> list[tuple[bytes, Node]]:
    """The file revisions the manifest text lists for ``files`` (a changeset's), those it lists."""
    return [(path, node) for path in files if (node := manifest_lookup(manifest, path)) is not None]


def _check_linked(manifests: list[Node], manifest: Node) -> None:
    """The manifests a push says a changeset introduced (their linknode) must be its manifest."""
    for node in manifests:
        if node != manifest:
            raise ProtocolError(f"pushed manifest {binascii.hexlify(node).decode()[:12]} names as its changeset "
                                "one whose manifest is another")


__all__ = ["NULL_REV", "Transaction"]


def _parent_gone(node: Node, parent: Node) -> PushRaced:
    """A pushed changeset whose parent the repository lacks: the client's discovery found it there,
    so it went after the push began (stripped, or rewritten and pruned: ``hg push -f`` sends no
    heads to check, hg_exchange's ``check_push_heads``); it said "parent … is unknown", with nothing
    to do. A push sent anew finds the parent missing and sends it too."""
    return PushRaced(f"changeset {node.hex()[:12]}'s parent {parent.hex()[:12]} is no longer in the repository "
                     "(it changed after your push began); pull and push again")
