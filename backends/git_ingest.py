"""Receive a pushed pack into a disk store, and check what the push's refs reach, fast.

``Quarantine`` is receive-pack's quarantine: a push's objects wait in a
directory of their own (``objects/tmp_objdir-incoming-*``, git's name) that
only the push itself, and its pre-receive hook, read.  Once the checks and the
hook accept the push, its packs move into the store; otherwise the directory
goes.  So no other process (a second server, a ``git`` command in the
repository) ever sees or builds on objects that may yet be refused, and a
refused push never removes anything from the store itself.

``PackIngest`` is receive-pack's ``index-pack --fix-thin``: the pushed pack is
written straight into the quarantine (or the object directory) as it arrives, with the records of
the scan that found its end (``protocols.git_receive.PackScanner``: offsets,
types, delta bases, CRC-32s and the ids of whole objects).  ``commit`` then
inflates only what it must: every commit, tree and tag, to check it, and each
delta with its base, to name it.  It appends the bases a thin pack deltas
against, names the pack ``pack-<its checksum>`` (as git does) and writes
its index.  Everything follows the store's object format (``object_format_of``):
SHA-1 or SHA-256 names the objects, sums the pack and its index and sizes the
ids in trees, REF_DELTAs and indexes.  Bases come from a ``PackObjectReader``
over the cached index views of the store's packs (dict lookups and a delta
cache) instead of the store's own lookups, which bisect every index in Python.  A malformed commit, tree or
tag is refused before any ref can name it, and so is a link to an object of
another type than the link says (``PushLinks.mismatch``; a stored object's
type is read from its pack entry's headers, ``PackObjectReader.types_of``: every
pack looked in once for all of a push's links).  Of
a tree that is a delta of one the store holds (a thin pack's), only the entries
that tree lacks are linked (``_not_stored``).

``connected`` is receive-pack's connectivity check: every object reachable
from a pushed tip must exist.  Objects that were in the store before the push
are complete by the store's invariant.  The checks collected every id the
push's objects link to, so the check is a set difference against the added
objects and lookups of the rest; only when a link is missing does it walk
from the tips, reading the objects the push added, never blobs.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import itertools
import mmap
import operator
import os
import pickle
import re
import select
import shutil
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
import zlib
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import BinaryIO, NamedTuple

from dulwich.errors import ApplyDeltaError, ObjectFormatException
from dulwich.file import adjust_shared_perm
from dulwich.object_store import PACK_MODE, DiskObjectStore
from dulwich.objects import ObjectID, parse_tree
from dulwich.pack import Pack, apply_delta, extend_pack, write_pack_index
from dulwich.refs import Ref, check_ref_format

from backends import git_packindex
from backends.blobs import process_umask
from backends.git_dotfiles import DotFiles, is_dotgit
from backends.git_objects import CorruptPack, PackObjectReader, pack_dirs
from backends.git_packindex import PackIndexView
from backends.git_reach import LARGE_TREE_BYTES, MissingObject, _commit_links, _tag_target, entries_not_in
from backends.interfaces import OBJECT_FORMATS, SHA1_FORMAT, ObjectFormat, PackedObject, object_format_of
from protocols.errors import ProtocolError
from protocols.git_receive import (
    DELTA_HEAD_MAX,
    OFS_DELTA,
    REF_DELTA,
    PackScanner,
    delta_sizes,
    hash_constructor,
    object_hash,
)

S_IFMT, S_IFDIR, S_IFGITLINK = 0o170000, 0o040000, 0o160000
_NOT_LEAVES = (S_IFDIR, S_IFGITLINK)
"""Tree entries that are not blobs: subtrees are walked, submodule commits live elsewhere."""
COMMIT, TREE, BLOB, TAG = 1, 2, 3, 4
ANY = 0
"""The type a link expects when it names none (a tag whose ``type`` line is not a type)."""
TYPE_NAMES = {COMMIT: "commit", TREE: "tree", BLOB: "blob", TAG: "tag"}
Link = tuple[bytes, int]
"""An id (hex) an object links to, and the type the link says it has."""
TreeEntry = tuple[bytes, int, bytes]
"""A tree's entry as parsed: name, mode, id (hex)."""


class TreeShape(NamedTuple):
    """A checked tree, for the deltas of it: its entries, and the length git's own modes give them
    (each entry ``name + 8 + raw_len`` bytes, a subtree's one less)."""

    entries: list[TreeEntry]
    size: int
    fresh: list[TreeEntry] | None = None
    """The entries that differ from those of the base it was checked against, when it was."""
    offsets: list[int] | None = None
    """Where each entry starts in the tree's bytes, then its end, when the tree is written as git
    writes it (every mode one of ``CANONICAL_MODES``, written without padding): what lets a delta
    of it be checked from the delta's inserts alone (``_checked_from_delta``)."""


VIEW_RELEASE = 8 << 20
"""Bytes of the mapped pack read between two releases of its pages (``MADV_DONTNEED``): the
mapped pages count in the server's RSS though the page cache holds them anyway."""
VIEW_FAULT_AROUND = 64 << 10
"""What one read through the mapped pack counts against ``VIEW_RELEASE`` besides its own bytes: a
page fault maps the pages around it as well (Linux's ``fault_around_bytes``, 64 KiB), so a read of
a 100-byte object holds 64 KiB.  Counting the bytes read alone, the resolution of a migration's
push, whose reads jump across the pack, held 23 MiB of the corpus's 32 MiB pack mapped, in the
server and again in its helper."""
KEPT_TEXT_BYTES = 16 << 20
"""Bytes of the texts the scan inflated (deltas' data, commits, trees and tags) a pack's ingest
keeps for naming and checking its objects, instead of inflating them again (a migration's push
of the bench corpus: 5.6 MB of them, 52,800 of its 54,500 objects); once less than a sixteenth of
it is left, the rest are inflated again as they are needed."""
RESOLVE_TEXT_BUDGET = 64 << 20
"""Bytes of rebuilt texts the resolution of a pack's deltas holds for the deltas still to come below
them (git's ``core.deltaBaseCacheLimit`` is 96 MiB); past it the oldest are dropped and rebuilt when
needed.  A pack of tiny deltas that each copy a large base whole made every text of the chain stay
(a 21 KB pack took 434 MiB)."""
REBUILD_LIMIT = 64 * RESOLVE_TEXT_BUDGET
"""Bytes of dropped texts a push's chain may have rebuilt: a pack whose deltas hold bases this much
over the budget is refused (git never writes one: its chains are at most 4,095 deep and branch
little, and a rebuild keeps the texts it passes)."""
HASHED_RESULT = 1 << 20
"""A blob delta's result of this many bytes or more, which no delta of the pack takes as its base, is
named by hashing the pieces the delta takes from its base and its own inserts (``delta_result_id``),
never joined: a pushed large file's other version was held whole beside its base (a 96 MiB text:
226 MB of the server's RSS over idle, git's ``index-pack`` 200).  Only a delta of at most
``1/HASHED_DELTA_SHARE`` of its result: a delta of many inserts (127 bytes at most each) costs more
to walk in Python than to apply."""
HASHED_DELTA_SHARE = 8
DELTA_HEAD_FEED = 4096
"""Compressed bytes of a delta inflated for its sizes (``_delta_result_size``): a deflate block's
code tables come first, a few hundred bytes at most."""


class _Level:
    """An object of a chain being resolved: its text while deltas below it wait (None once dropped),
    those deltas (pack indexes) and how many were taken, its tree shape, its own pack index (-1 for
    the chain's base) and the object it is a delta of."""

    __slots__ = ("at", "children", "depth", "next", "parent", "shape", "text")

    def __init__(self, text: bytes, children: list[int], shape: TreeShape | None, at: int,
                 parent: _Level | None) -> None:
        self.text: bytes | None = text
        self.children: list[int] | None = children
        self.next = 0
        self.shape = shape
        self.at = at
        self.parent = parent
        self.depth: int = 0 if parent is None else parent.depth + 1
        """Deltas between it and the chain's whole base (0: the base itself)."""


MAX_DEPTH = 4095
"""The longest delta chain a pushed pack may have: git's ``pack-objects`` never writes a longer one
(it caps ``pack.depth`` there), and a stored chain deeper than ``git_objects.MAX_CHAIN`` cannot be
read back here (a pushed chain of 12,000 deltas was accepted, then every fetch of it failed with
``remote: internal error``)."""


def _too_deep() -> ProtocolError:
    return ProtocolError(f"the pushed pack has a delta chain more than {MAX_DEPTH} deltas deep; repack with a "
                         "smaller depth (git repack -adf --depth=50) and push again")


def _too_costly(rebuilt_bytes: int) -> ProtocolError:
    return ProtocolError(f"the pushed pack's deltas cost too much to resolve ({rebuilt_bytes >> 20} MiB of their "
                         "bases rebuilt); repack with a smaller depth (git repack -adf --depth=50) and push again")


PARALLEL_MIN_OBJECTS = 20_000
"""A pushed pack of this many objects has half of them named and checked by a helper process (a
fork of this one, on a second core) while this process does the other half: a migration's push
spends most of its time there, one object after another, under one interpreter lock."""


class _HalfResult(NamedTuple):
    """The helper's answer, in a few flat pieces: unpickled as tuples and sets (a tuple, an int and
    a bytes object for each delta named, a set entry and a bytes object for each link) the corpus's
    answer took 5.9 MB of the server's memory at its peak, besides what the merge makes of it."""

    named: array[int]
    """The indexes of the deltas the helper named ..."""
    named_ids: bytes
    """... their ids, raw, one after another ..."""
    named_kinds: bytes
    """... and their types."""
    links: dict[int, bytes] | None
    """The links of its objects by type, raw ids one after another."""
    links_kept: bool
    gitmodules: set[bytes]
    gitattributes: set[bytes]
    warnings: list[str]
    more_warnings: int
    taken: list[bytes]


class _ForkedHalf:
    """A fork of the server resolving part of a pushed pack (``PackIngest._resolved_half``): it reads
    the pack through the mapping it inherits, closes every other descriptor it inherited (the
    clients' connections stay the parent's alone), writes its answer (pickled) to a pipe and exits
    at once.  Whatever goes wrong with it (it cannot start, dies, says nothing readable), the parent
    resolves that half itself; an error in the pack it found is raised in the parent as its own."""

    def __init__(self, pid: int, fd: int) -> None:
        self.pid, self.fd = pid, fd

    @classmethod
    def start(cls, ingest: PackIngest, roots: Sequence[int], deltas: int) -> _ForkedHalf | None:
        if not _can_fork() or deltas < PARALLEL_MIN_OBJECTS // 2 or ingest._file is None:
            return None
        keep = ingest._file.fileno()
        try:
            read_end, write_end = os.pipe()
        except OSError:
            return None
        try:
            pid = os.fork()
        except OSError:
            os.close(read_end)
            os.close(write_end)
            return None
        if pid == 0:  # the helper: never returns
            _run_half(ingest, roots, read_end, write_end, keep)
        os.close(write_end)
        return cls(pid, read_end)

    def result(self, started: float) -> _HalfResult | None:
        """The helper's answer once it is done (None when it gave none, or not within
        ``HALF_WAIT_SECONDS`` or twice the time the parent's half took, whichever is longer: it is
        then stopped); a pack error it met is raised."""
        deadline = time.monotonic() + max(HALF_WAIT_SECONDS, 2 * (time.monotonic() - started))
        data = bytearray()
        try:
            while (left := deadline - time.monotonic()) > 0:
                if not select.select([self.fd], [], [], left)[0]:
                    continue
                chunk = os.read(self.fd, 1 << 20)
                if not chunk:
                    break
                data += chunk
            else:
                data.clear()
                with suppress(OSError):
                    os.kill(self.pid, signal.SIGKILL)
        except OSError:
            data.clear()
        finally:
            os.close(self.fd)
            self._reap()
        try:
            answer = pickle.loads(data) if data else None  # (its own fork's bytes)
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError):
            return None  # (a helper cut short)
        if isinstance(answer, _HalfResult):
            return answer
        if isinstance(answer, tuple) and len(answer) == 3 and answer[0] == "protocol":
            raise ProtocolError(str(answer[1]), int(answer[2]))
        if isinstance(answer, tuple) and len(answer) == 2 and answer[0] == "object":
            raise ObjectFormatException(str(answer[1]))
        return None

    def stop(self) -> None:
        """The parent failed first: the helper goes."""
        with suppress(OSError):
            os.kill(self.pid, signal.SIGKILL)
        with suppress(OSError):
            os.close(self.fd)
        self._reap()

    def _reap(self) -> None:
        with suppress(ChildProcessError, OSError):
            os.waitpid(self.pid, 0)


def _halves(wholes: Sequence[int]) -> tuple[Sequence[int], Sequence[int]]:
    """The whole objects this process resolves, and those the helper does: every other one (a
    history's kinds and chain lengths mix alike in both)."""
    return wholes[::2], wholes[1::2]


def _can_fork() -> bool:
    """On Linux, with a second core this process may run on (its affinity, not the host's count)."""
    if not sys.platform.startswith("linux") or not hasattr(os, "fork"):
        return False
    try:
        return len(os.sched_getaffinity(0)) > 1
    except (AttributeError, OSError):
        return (os.cpu_count() or 1) > 1


def _run_half(ingest: PackIngest, roots: Sequence[int], read_end: int, write_end: int, keep: int) -> None:
    """The helper's whole life: resolve, answer, exit (no handler, buffer or thread of the parent runs)."""
    try:
        for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # the server's handlers are not its
            signal.signal(number, signal.SIG_DFL)
        with suppress(ValueError):
            signal.set_wakeup_fd(-1)
        os.close(read_end)
        for low, high in ((3, min(keep, write_end)), (min(keep, write_end) + 1, max(keep, write_end)),
                          (max(keep, write_end) + 1, _MAX_FD)):
            if low < high:
                os.closerange(low, high)
        ingest._in_helper = True  # (its links go back to the parent as they are: none deferred)
        try:
            answer: object = ingest._resolved_half(roots)
        except ProtocolError as exc:
            answer = ("protocol", str(exc), exc.http_status)
        except (ObjectFormatException, ValueError, zlib.error) as exc:
            answer = ("object", str(exc))
        data = pickle.dumps(answer, pickle.HIGHEST_PROTOCOL)
        view = memoryview(data)
        while view:
            view = view[os.write(write_end, view):]
    finally:  # (whatever went wrong: no answer, and the parent resolves the half itself)
        os._exit(0)


_MAX_FD = 1 << 20
HALF_WAIT_SECONDS = 10.0
"""The least time the parent waits for the helper's answer once its own half is done."""


def _text_of(get_raw: Callable[[bytes], tuple[int, bytes]], sha: bytes) -> bytes:
    return get_raw(sha)[1]


SMALL_INDEX = 256 << 10
"""An index this small (about 8,000 objects) is worth viewing for one push; a larger one only once cached."""


def cheap_views(store: DiskObjectStore) -> tuple[list[PackIndexView], bool]:
    """Index views of the store's packs that are cheap now (cached ones, small ones built), and
    whether every pack got one.

    Building the view of a large pack costs about 0.1 s per 50,000 objects:
    a clone builds it (and caches it) anyway, but a push right after a start
    names only a few of its objects, which dulwich's own lookups find faster
    (``PackObjectReader`` and ``Presence`` fall back to the store).
    """
    bases = git_packindex.pack_basenames(os.fspath(store.pack_dir))
    raw_len = object_format_of(store).raw_len
    views = []
    for base in bases:
        try:
            view = git_packindex.cached_view(base, raw_len)
            if view is None and os.path.getsize(base + ".idx") <= SMALL_INDEX:
                view = git_packindex.index_view(base, raw_len)
        except FileNotFoundError:  # removed by a repack since the listing: its objects are in its successor
            continue
        if view is not None:
            views.append(view)
    return views, len(views) == len(bases)


def lookup_dirs(store: DiskObjectStore) -> list[str]:
    """The pack directories a push looks stored objects up in: the store's own, then those of the
    stores it borrows from (``objects/info/alternates``, as deep as git follows them:
    ``git_objects.pack_dirs``), never a push's quarantine (its objects are the push's own).  A fork's
    push linking 100,000 borrowed files had each looked up and inflated by dulwich, one by one:
    3.3 s of server CPU against 0.12 s for git."""
    return [directory for directory in pack_dirs(store)
            if not os.path.basename(os.path.dirname(os.path.abspath(directory))).startswith(QUARANTINE_PREFIX)]


class StoreLookups:
    """What one push looks the store's objects up with, made when first asked for: the cheap views
    of its packs (``cheap_views``), whether every pack has one, and one ``git_packindex.MappedPacks``
    over the packs those leave out, the packs of the stores it borrows from as well (``lookup_dirs``).  The reader that names and types the pushed pack's objects
    (``PackObjectReader``) and the connectivity check's ``Presence`` (and its walk) share them:
    each made its own ``MappedPacks`` over the same packs, listing the directory and mapping the
    indexes again.  ``close`` unmaps the indexes (once the push is over)."""

    def __init__(self, store: DiskObjectStore) -> None:
        self._store = store
        self._made: tuple[list[PackIndexView], bool, git_packindex.MappedPacks] | None = None

    def _make(self) -> tuple[list[PackIndexView], bool, git_packindex.MappedPacks]:
        if self._made is None:
            views, all_viewed = cheap_views(self._store)
            mapped = git_packindex.MappedPacks(lookup_dirs(self._store), object_format_of(self._store).raw_len,
                                               skip={view.pack_path for view in views})
            self._made = (views, all_viewed, mapped)
        return self._made

    @property
    def views(self) -> list[PackIndexView]:
        return self._make()[0]

    @property
    def all_viewed(self) -> bool:
        return self._make()[1]

    @property
    def mapped(self) -> git_packindex.MappedPacks:
        """Lookups in the packs ``views`` leave out, through their mapped indexes."""
        return self._make()[2]

    def close(self) -> None:
        made, self._made = self._made, None
        if made is not None:
            made[2].close()


class Presence:
    """``hexsha in presence``: in a viewed pack, else in the store's other packs, loose or in an alternate.

    The other packs (too large to view for one push, and not viewed yet) are looked up through their
    mapped indexes (``git_packindex.MappedPacks``: the push's, ``StoreLookups.mapped``, else one
    of its own, unmapped when the presence is collected), as
    dulwich would find them: a pack that arrived since is looked in when an object is not found.  dulwich itself is asked only about packs whose
    index those do not read.  A new history's push (a whole tree linked: 100,000 links to stored
    files) spent 1.9 s of server CPU, two fifths of it in dulwich's lookups (a ``stat`` of the
    multi-pack index at every one)."""

    def __init__(self, store: DiskObjectStore, views: list[PackIndexView], all_viewed: bool,
                 mapped: git_packindex.MappedPacks | None = None) -> None:
        """``mapped``: a ``MappedPacks`` made with the packs of ``views`` skipped, to share."""
        self._store = store
        self._views = views
        self._others: git_packindex.MappedPacks | None = None
        if not all_viewed:
            self._others = mapped if mapped is not None else git_packindex.MappedPacks(
                os.fspath(store.pack_dir), object_format_of(store).raw_len, skip={view.pack_path for view in views})

    def __contains__(self, hexsha: object) -> bool:
        assert isinstance(hexsha, bytes)
        binsha = binascii.unhexlify(hexsha)
        if any(view.contains(binsha) for view in self._views):
            return True
        sha = ObjectID(hexsha)
        others = self._others
        if others is not None:
            if others.find(binsha, rescan=True) is not None:
                return True
            if not others.complete and self._store.contains_packed(sha):
                return True
        if self._store.contains_loose(sha):
            return True
        return any(sha in alternate for alternate in self._store.alternates)  # a push's quarantine, info/alternates


def _raw_reader(reader: PackObjectReader, raw_len: int = 20) -> Callable[[bytes], tuple[int, bytes]]:
    """``get_raw`` of an id in hex or raw (``raw_len`` bytes)."""
    def get_raw(sha: bytes) -> tuple[int, bytes]:
        return reader.read(binascii.hexlify(sha) if len(sha) == raw_len else sha)

    return get_raw


STALE_TEMPORARY_SECONDS = 24 * 3600
"""A ``tmp_pack_*`` file this old in the object directory was left by a killed writer."""


class PackClaims:
    """Objects that pushes of this process hold in a memory store until a ref reaches them or the
    push ends refused.

    A memory store has no quarantine: a push's objects go straight in.  Two
    pushes of the same objects at once (the same new commit to two branches)
    both find them there; if the first push is then refused and its objects
    removed, the second push's refs name objects that are gone.  So an object
    that a push put in is removed only by the last push to let go of it, and
    only if none of its holders was accepted; an object that was in the store
    before any push held it is never removed.  Take ``lock`` around ``claim``
    and ``release`` and the removals they decide.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._held: dict[str, _Claim] = {}
        """Object key (``backends.git``'s ``_object_key``) → who holds it."""

    def claim(self, key: str, created: bool) -> None:
        self._held.setdefault(key, _Claim(created=created)).holders += 1

    def release(self, key: str, accepted: bool) -> bool:
        """One holder lets go; whether the object is to be removed now (one never claimed: not accepted)."""
        entry = self._held.get(key)
        if entry is None:
            return not accepted
        entry.holders -= 1
        entry.accepted = entry.accepted or accepted
        if entry.holders > 0:
            return False
        del self._held[key]
        return entry.created and not entry.accepted

    def holders(self, key: str) -> int:
        entry = self._held.get(key)
        return entry.holders if entry is not None else 0


@dataclass(slots=True)
class _Claim:
    """One claimed object: how many pushes hold it, whether a push put it in, whether a holder
    was accepted (its refs name the object)."""

    created: bool
    holders: int = 0
    accepted: bool = False


PACK_CLAIMS = PackClaims()
"""The one registry of the process: every memory store's pushed objects."""


def quarantine_environment(quarantines: Sequence[Quarantine]) -> dict[str, str]:
    """What a hook's git commands need to read a push's waiting objects, as git's receive-pack
    tells its pre-receive hook: the (last) quarantine is the object directory, the store (and any
    earlier quarantine) its alternates; empty when nothing waits."""
    if not quarantines:
        return {}
    last = quarantines[-1]
    alternates = [q.path for q in quarantines[:-1]] + [os.path.abspath(os.fspath(last.store.path))]
    inherited = os.environ.get("GIT_ALTERNATE_OBJECT_DIRECTORIES")
    if inherited:
        alternates.append(inherited)
    return {"GIT_QUARANTINE_PATH": last.path, "GIT_OBJECT_DIRECTORY": last.path,
            "GIT_ALTERNATE_OBJECT_DIRECTORIES": os.pathsep.join(alternates)}


QUARANTINE_PREFIX = "tmp_objdir-incoming-"
"""git's name for receive-pack's quarantine directories in ``objects/`` (``git prune`` removes stale ones)."""


class Quarantine:
    """Where one push's objects wait until its checks and pre-receive hook accept it.

    A directory ``objects/tmp_objdir-incoming-*`` with a ``pack/`` of its own,
    as git's receive-pack makes.  ``expose`` lets the push's own store (its
    session's ``DiskObjectStore``, an alternate of that instance only) read
    the waiting objects; ``quarantine_environment`` lets a hook's git commands read them.
    ``migrate`` moves the packs into the store, each ``.pack`` before its
    ``.idx`` (a pack without its index is invisible to readers); ``drop``
    removes the directory.  Nothing in the store itself is ever removed.
    """

    def __init__(self, store: DiskObjectStore) -> None:
        sweep_stale_temporaries(store)
        self.store = store
        # absolute: hooks run in the git directory, and the store's path may be relative to ours
        self.path = os.path.abspath(tempfile.mkdtemp(dir=store.path, prefix=QUARANTINE_PREFIX))
        self.pack_dir = os.path.join(self.path, "pack")
        os.mkdir(self.pack_dir)
        self._view: DiskObjectStore | None = None

    def expose(self) -> None:
        """The store (this instance only) reads the quarantined objects after its own."""
        if self._view is None:
            self._view = DiskObjectStore(self.path, object_format=self.store.object_format)
            self.store.alternates.append(self._view)

    def migrate(self) -> list[str]:
        """Move the quarantined packs into the store (a pack of the same name there stays), then
        remove the quarantine; the ``.keep`` files made for them.  Raises ``OSError`` when a pack
        cannot be moved.

        Each pack arrives with a ``.keep`` file, as git's receive-pack has index-pack keep its
        pack ("receive-pack PID on HOST"), made before it: a ``git repack -a -d`` the operator
        runs meanwhile leaves the pack alone (it would drop objects no ref names yet, the push's,
        then rewrite the refs to them).  The caller removes them once the push's refs are written
        (``release_keeps``); a killed server leaves them, and ``sweep_stale_temporaries`` takes
        them a day later.
        """
        self._hide()
        names = sorted(n[: -len(".pack")] for n in os.listdir(self.pack_dir) if n.endswith(".pack"))
        target_dir = os.fspath(self.store.pack_dir)
        keeps: list[str] = []
        try:
            for name in names:
                source, target = os.path.join(self.pack_dir, name), os.path.join(target_dir, name)
                if os.path.exists(target + ".pack") and os.path.exists(target + ".idx"):
                    continue  # the same objects, stored already
                if _make_keep(target + ".keep"):
                    keeps.append(target + ".keep")
                os.rename(source + ".pack", target + ".pack")
                os.rename(source + ".idx", target + ".idx")
        except OSError:
            release_keeps(keeps)
            raise
        self.drop()
        return keeps

    def drop(self) -> None:
        """Remove the quarantine and what is in it."""
        self._hide()
        shutil.rmtree(self.path, ignore_errors=True)

    def _hide(self) -> None:
        view, self._view = self._view, None
        if view is None:
            return
        alternates = self.store.alternates
        if view in alternates:
            alternates.remove(view)
        view.close()


KEEP_PREFIX = b"receive-pack "
"""How a ``.keep`` file made for a pushed pack begins, as git's receive-pack writes it."""


def _make_keep(path: str) -> bool:
    """A ``.keep`` file for a pack about to arrive at ``path``'s place; False when one is there
    already (the operator's: it stays)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
    except FileExistsError:
        return False
    try:
        os.write(fd, KEEP_PREFIX + f"{os.getpid()} on {socket.gethostname()}\n".encode())
    finally:
        os.close(fd)
    return True


def release_keeps(keeps: Iterable[str]) -> None:
    """Remove the ``.keep`` files ``Quarantine.migrate`` made, once refs name the packs' objects."""
    for keep in keeps:
        with suppress(OSError):
            os.unlink(keep)


def _stale_keeps(pack_dir: str, cutoff: float) -> list[str]:
    """The ``.keep`` files of pushes a killed server left (git's receive-pack's words in them)."""
    try:
        names = [n for n in os.listdir(pack_dir) if n.endswith(".keep")]
    except OSError:
        return []
    stale = []
    for name in names:
        path = os.path.join(pack_dir, name)
        try:
            if os.lstat(path).st_mtime >= cutoff:
                continue
            with open(path, "rb") as f:
                if f.read(len(KEEP_PREFIX)) == KEEP_PREFIX:
                    stale.append(path)
        except OSError:
            pass
    return stale


def sweep_stale_temporaries(store: DiskObjectStore, older_than: float = STALE_TEMPORARY_SECONDS) -> int:
    """Remove the ``tmp_pack_*`` files and quarantine directories a killed writer left (``git gc``
    would, much later); how many."""
    objects_dir = os.fspath(store.path)
    removed = 0
    cutoff = time.time() - older_than
    try:
        names = [n for n in os.listdir(objects_dir) if n.startswith(("tmp_pack_", QUARANTINE_PREFIX))]
    except FileNotFoundError:
        return 0
    for name in names:
        path = os.path.join(objects_dir, name)
        try:
            if os.lstat(path).st_mtime >= cutoff:
                continue
            if name.startswith(QUARANTINE_PREFIX):
                shutil.rmtree(path)
            else:
                os.unlink(path)
            removed += 1
        except OSError:  # gone already, or not removable (no permission): left as it is
            pass
    for keep in _stale_keeps(os.fspath(store.pack_dir), cutoff):
        with suppress(OSError):
            os.unlink(keep)
            removed += 1
    return removed


def ingest_pack(store: DiskObjectStore, read: Callable[[int], bytes],
                links: PushLinks | None = None, into: Quarantine | None = None,
                rules: FsckRules | None = None) -> Pack | None:
    """Index the pack ``read`` yields into ``store`` (completing a thin pack); the new ``Pack``.

    ``PackIngest`` fed from ``read``, scanning the stream itself; None for a pack without objects.
    """
    ingest = PackIngest(store, links, into, rules)
    try:
        while chunk := read(READ_CHUNK):
            ingest.write(chunk)
        return ingest.commit()
    finally:
        ingest.abort()


READ_CHUNK = 1 << 16
THIN_BASE_LEVEL = 1
"""The zlib level git's ``index-pack --fix-thin`` writes the bases a thin pack left out at when the
repository sets neither ``core.looseCompression`` nor ``core.compression`` (its
``zlib_compression_level``, not ``pack.compression``'s default 6): a one-file push into a directory of
100,000 files appends its 3.9 MB tree, 0.14 s of the server's CPU at 6, 0.05 s at 1."""


class PackIngest:
    """receive-pack's ``index-pack --fix-thin``, fed as the pack arrives.

    The pack is written straight to a temporary file in the quarantine ``into``
    (or, without one, the object directory); bases come from the store.
    What each object is (offsets, type, delta base, CRC-32, a whole object's
    id) comes from the scan that found the end of the stream: the gateway's
    (``write(data, objects)``), or one of its own (``write(data)``).  So
    ``commit`` only inflates what it must: each commit, tree and tag, to check
    it, and each delta with its base, to name it.  Thin-pack bases are
    appended from the store, the index is written, and both are renamed to
    ``pack-<the pack's checksum>`` (as git names them) in the quarantine's or the
    store's pack directory (the pack first: a ``.pack`` without its ``.idx``
    is invisible to readers).  Errors raise
    ``ProtocolError`` (or dulwich's ``ObjectFormatException`` and
    ``ApplyDeltaError``); nothing is left in the object directory then.
    ``links`` collects what the checked commits, trees and tags link to, for ``connected``;
    ``base_level``: the zlib level of the appended bases (``THIN_BASE_LEVEL``).

    The objects are kept in columns (arrays of offsets, sizes, CRC-32s…, a list of ids), about
    100 bytes an object with its id: a record per object cost 500 and more, which a migration's
    push of millions of objects holds at once.
    """

    def __init__(self, store: DiskObjectStore, links: PushLinks | None = None,
                 into: Quarantine | None = None, rules: FsckRules | None = None,
                 base_level: int = THIN_BASE_LEVEL, lookups: StoreLookups | None = None) -> None:
        """``lookups``: the push's (its connectivity check looks up with them too), else made here."""
        self._lookups = lookups
        self._rules = rules or DEFAULT_FSCK
        self._base_level = base_level
        if into is None:
            sweep_stale_temporaries(store)  # a quarantine swept when it was made
        self._store = store
        self._format = object_format_of(store)
        self._new_hash = hash_constructor(self._format)
        self._links = links
        self._deferred: list[tuple[bytes, bytes | int, int, bool]] = []
        """Large whole trees (hex id, raw or index, how many entries, whether all are files) whose links wait for the store's tree at their path
        (``_link_deferred``), which parses them again: their parsed entries took 200 bytes an entry
        (a tuple, a name and a hex id each), 20 GB for the 256 MB of trees ``MAX_DEFERRED_TREE_BYTES``
        lets wait."""
        self._deferred_bytes = 0
        self._in_helper = False
        self._pack_dir = into.pack_dir if into is not None else os.fspath(store.pack_dir)
        fd, self._path = tempfile.mkstemp(dir=into.path if into is not None else store.path, prefix="tmp_pack_")
        self._file: BinaryIO | None = os.fdopen(fd, "w+b")
        _pack_file_mode(self._path, store)
        self._scanner: PackScanner | None = None
        self._size = 0
        self._view: mmap.mmap | None = None
        """The pack, mapped while its objects are resolved (a read of a small object costs less than
        a ``pread``); its pages are released every ``VIEW_RELEASE`` bytes read (``VIEW_FAULT_AROUND``)."""
        self._viewed = 0
        # The pack's objects in pack order, by index:
        self._offsets = array(_U32)
        """4 bytes an offset, or 8 once one is past 4 GiB (``_extended``); so are ``_lengths``,
        ``_sizes`` and ``_base_at``: 8 bytes each held 16 MB more for a million tiny objects."""
        self._heads = bytearray()
        """The length of each object's header: its compressed data follows."""
        self._lengths = array(_U32)
        """Of each object's compressed data."""
        self._kinds = bytearray()
        """Each object's type as stored (1-4, ``OFS_DELTA``, ``REF_DELTA``); a delta's is its
        object's once it is named."""
        self._sizes = array(_U32)
        """Inflated (a delta's: the delta's)."""
        self._crcs = array(_U32)
        self._base_at = array("i")
        """An ``OFS_DELTA``'s base offset; -1 for any other object, and none for the objects after the
        last delta (``_base_offset``): a push of a million tiny blobs held 4 MB of -1."""
        self._ref_bases: dict[int, bytes] = {}
        """A ``REF_DELTA``'s base id, by the delta's index."""
        self._names = _IdColumn(self._format.raw_len)
        """Each object's id: a whole object's from the scan, a delta's once it is named (a delta not
        named yet has a kind of ``OFS_DELTA`` or more)."""
        self._texts = bytearray()
        """The scan's texts (``KEPT_TEXT_BYTES`` of them) one after another: a dict of them by index
        held 11 MB for the corpus's 5.6 MB of texts (a bytes object each, the dict, its int keys),
        in the server and again in the helper it forks."""
        self._text_at = array("i")
        """Where each object's text starts in ``_texts`` (its length is the object's size), by index;
        -1 when it is not kept.  It covers the objects scanned until the budget is nearly spent
        (``KEPT_TEXT_BYTES``), not the whole pack: none after them is kept."""
        self._named = 0
        # Built for naming: the OFS_DELTAs sorted by their base's offset, and those offsets.
        self._children = array("Q")
        self._children_of = array("q")
        self._waiting: dict[bytes, list[int]] = {}
        """The REF_DELTAs below each base id not named yet."""
        # Built once every object is named: the indices in the order of their ids, those ids, and
        # the type of each in that order (``_names`` goes then: the sorted ids hold the same).
        self._by_name = array("Q")
        self._sorted_names = _SortedIds(b"", self._format.raw_len)
        self._kinds_by_name = b""
        self._dotfiles = DotFiles()
        self.warnings = FsckWarnings()
        """The findings the rules let through as warnings, for the client."""

    def write(self, data: bytes, objects: Sequence[PackedObject] | None = None) -> None:
        assert self._file is not None
        if objects is None:
            if self._scanner is None:
                self._scanner = PackScanner(object_format=self._format)
            if self._scanner.feed(data) < len(data):
                raise ProtocolError("bytes follow the end of the pushed pack")
            objects = self._scanner.take_objects()
        self._file.write(data)
        self._size += len(data)
        if objects:
            self._record(objects)

    def _record(self, objects: Sequence[PackedObject]) -> None:
        """Add the scanned objects to the columns, field by field (C-level maps, no per-object step
        but for a REF_DELTA's base and a record that carries a text).  (Not ``zip(*objects)``: its
        iterator a record, each tracked by the garbage collector, made a push of 100,000 files run
        about three full collections instead of one.)"""
        if not objects:
            return
        first = len(self._names)
        offsets = list(map(_OFFSET, objects))
        self._offsets = _extended(self._offsets, offsets, "Q")
        data_offsets = list(map(_DATA_OFFSET, objects))
        self._heads.extend(map(operator.sub, data_offsets, offsets))
        self._lengths = _extended(self._lengths, list(map(operator.sub, map(_END, objects), data_offsets)), "Q")
        kinds = bytes(map(_TYPE, objects))
        self._kinds += kinds
        self._sizes = _extended(self._sizes, list(map(_SIZE, objects)), "Q")
        self._crcs.extend(map(_CRC, objects))
        self._names.extend(list(map(_SHA, objects)))
        if OFS_DELTA in kinds or REF_DELTA in kinds:
            if len(self._base_at) < first:  # (the objects before, none a delta since the last)
                self._base_at.extend(itertools.repeat(-1, first - len(self._base_at)))
            self._base_at = _extended(self._base_at, [-1 if base is None or base.__class__ is bytes else base
                                                      for base in map(_BASE, objects)], "q")
        if REF_DELTA in kinds:
            for at, obj in enumerate(objects, first):
                if obj.type_num == REF_DELTA:
                    self._ref_bases[at] = obj.base  # type: ignore[assignment]
        texts = self._texts
        if len(texts) < KEPT_TEXT_BYTES - KEPT_TEXT_BYTES // 16:  # (then too little is left for 8 bytes an object)
            text_at = self._text_at
            carried = list(map(_TEXT, objects))
            start = len(text_at)
            text_at.extend(array("i", _NO_BASE) * len(carried))  # (its values are under KEPT_TEXT_BYTES)
            if carried.count(None) == len(carried):  # (a blob's record never carries one)
                return
            for n in itertools.compress(range(len(carried)), map(operator.is_not, carried, itertools.repeat(None))):
                text = carried[n]
                if len(text) <= KEPT_TEXT_BYTES - len(texts):
                    text_at[start + n] = len(texts)
                    texts += text

    def commit(self) -> Pack | None:
        """Index the pack and move it into the store; None if it holds no object."""
        assert self._file is not None
        if self._scanner is not None and not self._scanner.complete:
            raise ProtocolError("the pushed pack is truncated")
        if not self._names:
            return None
        self._file.flush()
        lookups = self._lookups or StoreLookups(self._store)
        try:
            return self._commit(lookups)
        finally:
            if lookups is not self._lookups:
                lookups.close()

    def _commit(self, lookups: StoreLookups) -> Pack:
        assert self._file is not None
        with PackObjectReader(self._store, lookups.views, mapped=lookups.mapped) as reader:
            get_raw = _raw_reader(reader, self._format.raw_len)
            with suppress(OSError, ValueError):  # (a file system that maps no file: read it)
                self._view = mmap.mmap(self._file.fileno(), 0, prot=mmap.PROT_READ)
            try:
                external = self._resolve(get_raw)
                self._sort_names()
                check_dotfiles(self._dotfiles, self._reader_of_own(get_raw), self._rules, self.warnings,
                               self._sized_of_own(reader))
                self._link_deferred(get_raw)
            finally:
                self._close_view()
            self._check_link_types(reader)
            self._heads, self._lengths, self._sizes, self._base_at = bytearray(), array("Q"), array("Q"), array("q")
            self._texts, self._text_at = bytearray(), array("q")
            pack_sha = self._complete(external, get_raw)
        return self._publish(pack_sha)

    def _check_link_types(self, reader: PackObjectReader) -> None:
        """Refuse the pack when one of its objects links to an object of another type than the link
        says (git's index-pack, strict, dies of it: ``Error on reachable objects``)."""
        if self._links is None:
            return
        ids = _IdColumn.over(self._sorted_names.blob, self._format.raw_len)
        own = {kind: ids.of_kind(self._kinds_by_name, kind) for kind in (COMMIT, TREE, BLOB, TAG)}
        wrong = self._links.settle(own, lambda: (self._sorted_names.blob, self._kinds_by_name))
        if wrong is None:
            wrong = self._links.mismatch(reader.type_of, reader.types_of)
        if wrong is not None:
            raise ProtocolError(f"the pushed pack is invalid: {wrong}")

    def _close_view(self) -> None:
        view, self._view = self._view, None
        if view is not None:
            view.close()

    def abort(self) -> None:
        self._close_view()
        file, self._file = self._file, None
        if file is not None:
            try:
                file.close()
            except OSError:  # bytes still buffered for a pack that goes anyway (a full disk)
                pass
        for leftover in (self._path, self._path + ".idx"):
            with suppress(FileNotFoundError):
                os.unlink(leftover)

    # -- naming every object ----------------------------------------------------------

    def _resolve(self, get_raw: Callable[[bytes], tuple[int, bytes]]) -> list[bytes]:
        """Name every object; the ids of the bases a thin pack left out, which the store holds."""
        n = len(self._names)
        kinds = self._kinds
        wholes = array("Q", itertools.compress(range(n), map(OFS_DELTA.__gt__, kinds)))
        deltas = list(itertools.compress(range(n), map(OFS_DELTA.__eq__, kinds)))
        deltas.sort(key=self._base_at.__getitem__)
        self._children = array("Q", deltas)
        self._children_of = array("q", map(self._base_at.__getitem__, deltas))
        del deltas
        for at, base in self._ref_bases.items():
            self._waiting.setdefault(base, []).append(at)
        started = time.monotonic()
        mine, theirs = _halves(wholes)
        helper = _ForkedHalf.start(self, theirs, n - len(wholes)) if n >= PARALLEL_MIN_OBJECTS else None
        try:
            self._resolve_roots(mine if helper is not None else wholes)
        except BaseException:
            if helper is not None:
                helper.stop()
            raise
        if helper is not None:
            taken = helper.result(started)
            if taken is None:  # the helper could not say: this process names its objects too
                self._resolve_roots(theirs)
            else:
                self._merge(taken)
        del wholes, mine, theirs
        external: list[bytes] = []
        progress = True
        while self._waiting and progress:  # bases outside the pack (a thin pack); one may be a delta's result
            progress = False
            for base in list(self._waiting):
                if base not in self._waiting:
                    continue
                try:
                    type_num, text = get_raw(base)
                except KeyError:
                    continue
                external.append(base)
                self._resolve_chains(type_num, text, self._waiting.pop(base), functools.partial(_text_of, get_raw, base),
                                     stored=True)
                progress = True
        if self._waiting or self._named != n:
            missing = next(iter(self._waiting), None)
            raise ProtocolError("the pushed pack has deltas against objects neither it nor the repository holds"
                                + (f" ({binascii.hexlify(missing).decode()})" if missing else ""))
        self._children, self._children_of = array("Q"), array("q")
        return external

    def _resolve_roots(self, roots: Sequence[int]) -> None:
        """Name and check the whole objects at ``roots`` (indexes, increasing) and every delta below
        them in the pack."""
        kinds, names = self._kinds, self._names
        for at in self._not_bare(roots):
            kind, sha = kinds[at], names[at]
            assert sha is not None
            self._named += 1
            children = self._below(at, sha)
            if kind != BLOB or children:
                text = self._inflate(at)
                shape = self._check(kind, text, sha, at=at) if kind != BLOB else None
                if children:
                    self._resolve_chains(kind, text, children, functools.partial(self._inflate, at), shape)

    def _not_bare(self, roots: Sequence[int]) -> Iterator[int]:
        """The ``roots`` (indexes, increasing) that need more than their scan gave, counting the
        others named: a blob no delta is below is named and needs no check.  Sorted out by C-level
        maps, ``ID_CHUNK`` at a time (the bases among them a set of that span's alone): a step an
        object (its id taken, its deltas looked for by two bisects) was 0.05 s of a push of
        100,000 files."""
        kinds, offsets, bases_at = self._kinds, self._offsets, self._children_of
        waiting, ids, width = self._waiting, self._names.blob, self._names.width
        for start in range(0, len(roots), ID_CHUNK):
            chunk = roots[start:start + ID_CHUNK]
            first, last = offsets[chunk[0]], offsets[chunk[-1]]
            bases = set(bases_at[bisect_left(bases_at, first):bisect_right(bases_at, last)])
            busy = list(map(operator.or_, map(BLOB.__ne__, map(kinds.__getitem__, chunk)),
                            map(bases.__contains__, map(offsets.__getitem__, chunk))))
            if waiting:  # (a REF_DELTA's base is known by its id)
                for n in itertools.compress(range(len(chunk)), map(operator.not_, busy)):
                    at = chunk[n]
                    busy[n] = bytes(ids[at * width:(at + 1) * width]) in waiting
            kept = list(itertools.compress(chunk, busy))
            self._named += len(chunk) - len(kept)
            yield from kept

    def _resolved_half(self, roots: Sequence[int]) -> _HalfResult:
        """In the helper process: ``_resolve_roots`` of ``roots``, and what it found besides what the
        parent knows (the names of deltas, links, dotfiles, warnings, the REF_DELTA bases it took)."""
        names, kinds = self._names, self._kinds
        unnamed = array("Q", itertools.compress(range(len(names)), map(OFS_DELTA.__le__, kinds)))
        waiting = set(self._waiting)
        links = self._links
        if links is not None:
            links.forget()
        self._dotfiles = DotFiles()
        self.warnings = FsckWarnings()
        self._resolve_roots(roots)
        named = array("Q", [i for i in unnamed if kinds[i] < OFS_DELTA])
        return _HalfResult(named=named, named_ids=b"".join(map(names.__getitem__, named)),
                           named_kinds=bytes(map(kinds.__getitem__, named)),
                           links=None if links is None else links.joined(),
                           links_kept=links is None or links._sets is not None,
                           gitmodules=self._dotfiles.gitmodules, gitattributes=self._dotfiles.gitattributes,
                           warnings=self.warnings.lines, more_warnings=self.warnings.more,
                           taken=list(waiting.difference(self._waiting)))

    def _merge(self, half: _HalfResult) -> None:
        """Take what the helper process found (``_resolved_half``) as if this process had."""
        names, kinds, width = self._names, self._kinds, self._format.raw_len
        ids = half.named_ids
        for n, (i, kind) in enumerate(zip(half.named, half.named_kinds)):
            names[i] = ids[n * width:(n + 1) * width]
            kinds[i] = kind
        self._named = len(names) - sum(map(OFS_DELTA.__le__, kinds))
        links = self._links
        if links is not None and links._sets is not None:
            if not half.links_kept or half.links is None:
                links._sets = None
            else:
                for kind, joined in half.links.items():
                    links.add_joined(kind, joined, width)
                links._check_bound()
        self._dotfiles.gitmodules |= half.gitmodules
        self._dotfiles.gitattributes |= half.gitattributes
        for line in half.warnings:
            self.warnings.add(line)
        self.warnings.more += half.more_warnings
        for base in half.taken:
            self._waiting.pop(base, None)

    def _ofs_span(self, at: int) -> tuple[int, int]:
        """Where in ``_children`` the OFS_DELTAs whose base is the object at index ``at`` are."""
        offset, keys = self._offsets[at], self._children_of
        lo = bisect_left(keys, offset)
        return (lo, bisect_right(keys, offset, lo)) if lo < len(keys) and keys[lo] == offset else (lo, lo)

    def _below(self, at: int, sha: bytes) -> list[int]:
        """The deltas whose base is the object at index ``at``, named ``sha``."""
        lo, hi = self._ofs_span(at)
        found = list(self._children[lo:hi]) if hi > lo else []
        if self._waiting:
            found += self._waiting.pop(sha, ())
        return found

    def _resolve_chains(self, type_num: int, text: bytes, children: list[int], reload: Callable[[], bytes],
                        shape: TreeShape | None = None, stored: bool = False) -> None:
        """Rebuild every delta below a base, depth first.  ``reload`` reads the base's text again;
        ``shape``: the base's, when it is a tree this push checked (``_check``); ``stored``: the base
        is the store's (a thin pack's), so a tree is linked where it differs from it (``_check``).

        A text is held only while deltas below it wait: an object's last delta lets go of it before
        its own deltas are rebuilt (so a chain holds one text), deltas with deltas below them come
        after their siblings, and past ``RESOLVE_TEXT_BUDGET`` the oldest texts held are dropped and
        rebuilt from the nearest text still held (or ``reload``) when their next delta comes.
        """
        names, kinds = self._names, self._kinds
        stack = [_Level(text, children, shape, -1, None)]
        held = len(text)
        rebuilt_bytes = 0

        def restore(level: _Level) -> bytes:
            """The dropped text of ``level``, rebuilt from the nearest level above it that holds one
            (or the chain's base, read again); the levels on the way that deltas still wait below
            keep theirs again (the budget then drops the oldest)."""
            nonlocal held, rebuilt_bytes
            path: list[_Level] = []
            node = level
            while node.text is None and node.parent is not None:
                path.append(node)
                node = node.parent
            text = node.text if node.text is not None else reload()
            for step in reversed(path):
                text = b"".join(apply_delta(text, self._inflate(step.at)))
                rebuilt_bytes += len(text)
                if step.children is not None:  # still on the stack
                    step.text = text
                    held += len(text)
            if rebuilt_bytes > REBUILD_LIMIT:
                raise _too_costly(rebuilt_bytes)
            trim()
            return text

        def trim() -> None:
            """Drop the oldest texts held past the budget (never the newest level's: it is in use)."""
            nonlocal held
            for old in stack[:-1]:
                if held <= RESOLVE_TEXT_BUDGET:
                    break
                if old.text is not None:
                    held -= len(old.text)
                    old.text = None

        while stack:
            level = stack[-1]
            assert level.children is not None
            child = level.children[level.next]
            level.next += 1
            if level.depth >= MAX_DEPTH:
                raise _too_deep()
            base = level.text if level.text is not None else restore(level)
            delta = self._inflate(child)
            sha = self._hashed_result(type_num, child, base, delta)
            rebuilt = None if sha is not None else _applied(base, delta)
            stored_tree = base if stored and level.parent is None and type_num == TREE else None
            del base
            if rebuilt is not None:
                sha = _object_id(type_num, rebuilt, self._new_hash)
            assert sha is not None
            names[child] = sha
            kinds[child] = type_num
            self._named += 1
            own = self._check(type_num, rebuilt, sha, level.shape, delta, stored_tree) \
                if rebuilt is not None and type_num != BLOB else None
            del stored_tree
            while stack and stack[-1].next == len(stack[-1].children or ()):  # no delta below it waits
                done = stack.pop()
                held -= len(done.text or b"")
                done.text = done.shape = done.children = None  # (kept for its place in the chain only)
            below = self._below(child, sha)
            if not below:
                continue
            assert rebuilt is not None  # (a hashed result has no delta below it)
            if len(below) > 1:
                below.sort(key=self._has_deltas)
            stack.append(_Level(rebuilt, below, own, child, level))
            held += len(rebuilt)
            trim()

    def _hashed_result(self, type_num: int, at: int, base: bytes, delta: bytes) -> bytes | None:
        """The id of the blob the delta at index ``at`` makes of ``base``, hashed without it being
        held (``HASHED_RESULT``), when that is worth it and nothing in the pack has it as its base;
        None to rebuild it."""
        if type_num != BLOB:
            return None
        sizes = delta_sizes(delta[:DELTA_HEAD_MAX])
        if sizes is None or sizes[1] < HASHED_RESULT or len(delta) * HASHED_DELTA_SHARE > sizes[1] \
                or self._has_deltas(at):
            return None
        sha = delta_result_id(type_num, base, delta, self._new_hash)
        return None if sha in self._waiting else sha  # a REF_DELTA's base: rebuilt for it

    def _has_deltas(self, at: int) -> bool:
        """Whether an OFS_DELTA of the pack has the object at index ``at`` as its base."""
        lo, hi = self._ofs_span(at)
        return hi > lo

    def _inflate(self, at: int) -> bytes:
        offset, size = self._offsets[at], self._sizes[at]
        if at < len(self._text_at) and (start := self._text_at[at]) >= 0:
            with memoryview(self._texts) as texts:
                return texts[start:start + size].tobytes()
        assert self._file is not None
        start, length = offset + self._heads[at], self._lengths[at]
        view = self._view
        if view is not None:
            raw = view[start:start + length]
            self._viewed += length + VIEW_FAULT_AROUND
            if self._viewed > VIEW_RELEASE:  # the pages read go back to the page cache, not held
                self._viewed = 0
                view.madvise(mmap.MADV_DONTNEED)
        else:
            raw = os.pread(self._file.fileno(), length, start)
        try:
            text = zlib.decompress(raw, 15, max(size, 1))
        except zlib.error:
            text = None
        if text is None or len(text) != size:
            raise ProtocolError(f"the pushed pack's object at offset {offset} does not inflate to its size")
        return text

    def _sort_names(self) -> None:
        """Order the (named) objects by id: for the index, and to find one by its id.  An object
        twice refuses the pack, as git's strict index-pack refuses it (its ``verify-pack``, and so
        ``git fsck``, fails the index of such a pack).  The ids in pack order go then (20 bytes an
        object, held until the index was written: a push of a million tiny blobs held them beside
        the sorted ones through its checks); the objects of a type are read from the sorted ones."""
        ids, order, twice = self._names.sorted()
        if twice is not None:
            raise ProtocolError(f"the same object {binascii.hexlify(twice).decode()} appears twice in the pushed pack")
        self._sorted_names, self._by_name = ids, order
        self._kinds_by_name = bytes(map(self._kinds.__getitem__, order))
        self._names = _IdColumn(self._format.raw_len)

    def _add_sorted(self, extra: list[bytes], first: int) -> None:
        """Put ``extra`` (ids of the objects at indexes ``first`` on, appended to the pack) among the
        sorted ids, in one pass: the pack-order ids they were sorted from are gone.  An id the pack
        holds already refuses it, as ``_sort_names``.  (Their types are not known: the checks that
        read the types in that order are done.)"""
        ids, order, width = self._sorted_names, self._by_name, self._format.raw_len
        blob = memoryview(ids.blob)
        added = sorted(zip(extra, range(first, first + len(extra))))
        joined = bytearray(len(blob) + len(added) * width)
        if first + len(extra) > 0xFFFFFFFF and order.typecode != "Q":
            order = array("Q", order)
        merged = array(order.typecode)
        done = at = 0
        previous = None
        for sha, index in added:
            to = bisect_left(ids, sha)
            if sha == previous or (to < len(ids) and ids[to] == sha):
                raise ProtocolError(f"the same object {binascii.hexlify(sha).decode()} appears twice in the pushed pack")
            previous = sha
            joined[at:at + (to - done) * width] = blob[done * width:to * width]
            at += (to - done) * width
            joined[at:at + width] = sha
            at += width
            merged.extend(order[done:to])
            merged.append(index)
            done = to
        joined[at:] = blob[done * width:]
        merged.extend(order[done:])
        del blob
        self._sorted_names, self._by_name, self._kinds_by_name = _SortedIds(joined, width), merged, b""

    def _base_offset(self, at: int) -> int:
        """The base offset of the object at index ``at`` if it is an ``OFS_DELTA``, else -1."""
        return self._base_at[at] if at < len(self._base_at) else -1

    def _index_of(self, sha: bytes) -> int | None:
        """The index of the object of this pack named ``sha`` (raw), None if there is none."""
        names = self._sorted_names
        at = bisect_left(names, sha)
        return self._by_name[at] if at < len(names) and names[at] == sha else None

    def _reader_of_own(self, get_raw: Callable[[bytes], tuple[int, bytes]]) -> Callable[[bytes], tuple[int, bytes]]:
        """``read(hex id) -> (type, raw)`` of an object of this pack (rebuilt along its delta chain),
        else of the store; ``KeyError`` when neither holds it.  For the few files ``DotFiles``
        checks once every object is named: a blob can come before the tree that names it.  The
        deltas it applies count against ``REBUILD_LIMIT`` (many such files at the ends of long
        chains of large texts would be rebuilt over and over)."""
        rebuilt_bytes = 0

        def read(hexsha: bytes) -> tuple[int, bytes]:
            nonlocal rebuilt_bytes
            try:
                at = self._index_of(binascii.unhexlify(hexsha))
            except binascii.Error:
                at = None
            if at is None:
                return get_raw(hexsha)
            chain = []
            while True:  # down a delta chain to a whole object, or a base from the store
                base_offset = self._base_offset(at)
                if base_offset < 0 and at not in self._ref_bases:
                    type_num, text = self._kinds[at], self._inflate(at)
                    break
                chain.append(at)
                if base_offset >= 0:
                    at = bisect_left(self._offsets, base_offset)
                    continue
                base = self._ref_bases[at]
                own = self._index_of(base)
                if own is None:
                    type_num, text = get_raw(base)
                    break
                at = own
            for delta in reversed(chain):
                text = b"".join(apply_delta(text, self._inflate(delta)))
                rebuilt_bytes += len(text)
            if rebuilt_bytes > REBUILD_LIMIT:
                raise _too_costly(rebuilt_bytes)
            return type_num, text

        return read

    def _sized_of_own(self, reader: PackObjectReader) -> Callable[[bytes], tuple[int, int] | None]:
        """``sized(hex id) -> (type, size)`` of an object of this pack once named (a whole one's
        size from its entry, a delta's from the delta's first bytes), else of the store's packs,
        nothing inflated past a delta's head; None when it cannot say (``read`` then tells)."""
        def sized(hexsha: bytes) -> tuple[int, int] | None:
            try:
                at = self._index_of(binascii.unhexlify(hexsha))
            except binascii.Error:
                return None
            if at is None:
                try:
                    return reader.type_of(hexsha), reader.size_of(hexsha)
                except (KeyError, CorruptPack, ValueError):
                    return None
            if self._base_offset(at) < 0 and at not in self._ref_bases:
                return self._kinds[at], self._sizes[at]
            size = self._delta_result_size(at)
            return None if size is None else (self._kinds[at], size)

        return sized

    def _delta_result_size(self, at: int) -> int | None:
        """The size of the object the delta at index ``at`` rebuilds, from its first bytes."""
        if at < len(self._text_at) and (start := self._text_at[at]) >= 0:
            head = bytes(self._texts[start:start + DELTA_HEAD_MAX])
        else:
            assert self._file is not None
            start = self._offsets[at] + self._heads[at]
            length = min(self._lengths[at], DELTA_HEAD_FEED)
            raw = self._view[start:start + length] if self._view is not None \
                else os.pread(self._file.fileno(), length, start)
            try:
                head = zlib.decompressobj().decompress(raw, DELTA_HEAD_MAX)
            except zlib.error:
                return None
        try:
            sizes = delta_sizes(head)
        except ProtocolError:
            return None
        return None if sizes is None else sizes[1]

    def _check(self, type_num: int, raw: bytes, sha: bytes, base: TreeShape | None = None,
               delta: bytes | None = None, stored: bytes | None = None, at: int = -1) -> TreeShape | None:
        """Check an object and note its links.  A tree without a finding is returned, for the deltas
        below it: with ``base``, such a tree that this push checked and linked, which the tree is a
        delta of, a tree whose entries keep their names is checked where it differs, and links only
        the entries that differ.  (A history's trees mostly change an id or two of 60 entries:
        the checks and links of every entry were half of a migration's push.)  With ``stored``, the
        store's tree it is a delta of, the tree is checked whole (nothing says that tree had no
        finding) and links only the entries that tree lacks (``_not_stored``).  ``at``: the index of a
        whole object (a large tree whose text the scan kept waits as that index, ``_deferring``)."""
        if type_num != TREE:
            linked = check_object(type_num, raw, self._rules, binascii.hexlify(sha), self._dotfiles, self.warnings,
                                  object_format=self._format)
            if self._links is not None:
                self._links.link(linked)
            return None
        shape, clean = check_tree(raw, self._rules, binascii.hexlify(sha), self._dotfiles, self.warnings,
                                  object_format=self._format, base=base, delta=delta)
        if self._links is not None:
            fresh = shape.fresh if shape.fresh is not None else \
                changed_entries(shape.entries, base.entries) if base is not None else \
                _not_stored(raw, stored, shape.entries, self._format.raw_len) if stored is not None else \
                self._deferring(sha, raw, shape.entries, at)
            self._links.link_entries(fresh)
        return shape if clean else None

    def _deferring(self, sha: bytes, raw: bytes, entries: list[TreeEntry], at: int = -1) -> list[TreeEntry]:
        """The entries of a whole tree to link now: none for a large one, kept to be linked once
        every object is named, against the store's tree at its path (``_link_deferred``): as its
        index ``at`` when the scan's texts hold it (a thousand trees of a thousand tiny files held
        32 MB twice, 16 of them), else as ``raw``."""
        if (len(raw) < LARGE_TREE_BYTES or self._in_helper
                or self._deferred_bytes + len(raw) > MAX_DEFERRED_TREE_BYTES):
            return entries
        kept = 0 <= at < len(self._text_at) and self._text_at[at] >= 0
        files = not any(mode & S_IFMT in _NOT_LEAVES for mode in set(map(_MODE_OF, entries)))
        self._deferred.append((binascii.hexlify(sha), at if kept else raw, len(entries), files))
        self._deferred_bytes += len(raw)
        return []

    def _link_deferred(self, get_raw: Callable[[bytes], tuple[int, bytes]]) -> None:
        """Link the large whole trees ``_deferring`` kept, each against the tree the store holds at
        its path in a pushed commit's parent, as a thin pack's tree against its stored base
        (``_not_stored``): the entries that tree holds byte for byte link to objects the store holds,
        of the types they say, by its invariant; every other entry is linked and checked.  A
        one-file commit into a directory of 100,000 files pushed without a thin pack (``git push
        --no-thin``, a client with no base) had its 100,000 links typed and looked up, 1 s of the
        push's 1.4 s of server CPU.  A tree with no such counterpart is linked whole."""
        deferred, self._deferred, self._deferred_bytes = self._deferred, [], 0
        if not deferred or self._links is None:
            return
        waiting = {oid: raw for oid, raw, _count, _files in deferred if isinstance(raw, bytes)}
        waiting.update((oid, b"") for oid, raw, _count, _files in deferred if not isinstance(raw, bytes))  # (read when paired)
        read = self._reader_of_own(get_raw)
        found: dict[bytes, bytes] = {}
        with suppress(KeyError, ValueError, ObjectFormatException, MissingObject):
            self._pair_with_stored(waiting, read, get_raw, found)
        del waiting
        raw_len = self._format.raw_len
        while deferred:
            oid, kept, count, files = deferred.pop()
            raw = kept if isinstance(kept, bytes) else self._inflate(kept)
            stored = found.pop(oid, None)
            if stored is None and files:  # (all links to blobs: their raw ids, nothing parsed)
                ids = entry_ids(raw, raw_len)
                if len(ids) == count:
                    self._links.link_ids(BLOB, ids)
                    del ids, raw
                    continue
            entries = list(parse_tree(raw, raw_len))  # (checked already)
            self._links.link_entries(entries if stored is None else _not_stored(raw, stored, entries, raw_len))
            del entries, raw

    def _pair_with_stored(self, waiting: Mapping[bytes, bytes], read: Callable[[bytes], tuple[int, bytes]],
                          get_raw: Callable[[bytes], tuple[int, bytes]], found: dict[bytes, bytes]) -> None:
        """Into ``found``: for each tree of ``waiting`` (hex id: raw tree), the raw tree the store (not this
        push) holds at its path in the parent of a pushed commit, walking down the pushed trees
        only, by name."""
        hex_len = self._format.hex_len
        if self._kinds_by_name.count(COMMIT) > MAX_PAIRED_COMMITS:
            return  # (a migration's push: its trees are mostly deltas of one another, linked where they differ)
        ids = _IdColumn.over(self._sorted_names.blob, self._format.raw_len)
        commits = list(ids.of_kind(self._kinds_by_name, COMMIT))
        commits.sort(key=lambda sha: self._index_of(sha) or 0)  # (in pack order, as they came)
        pairs: list[tuple[bytes, bytes]] = []
        for name in commits:
            tree, parents = _commit_links(read(binascii.hexlify(name))[1], hex_len)
            for parent in parents:
                if self._index_of(binascii.unhexlify(parent)) is None:
                    try:
                        kind, text = get_raw(parent)
                    except KeyError:
                        continue  # (missing: the connectivity check refuses the push)
                    if kind == COMMIT:
                        pairs.append((tree, _commit_links(text, hex_len)[0]))
        walked: set[bytes] = set()
        while pairs and len(found) < len(waiting):
            pushed, stored = pairs.pop()
            if pushed == stored or pushed in walked or self._index_of(binascii.unhexlify(pushed)) is None \
                    or self._index_of(binascii.unhexlify(stored)) is not None:
                continue  # (not pushed, walked already, or no stored counterpart: the push has it too)
            walked.add(pushed)
            try:
                kind, stored_raw = get_raw(stored)
            except KeyError:
                continue
            if kind != TREE:
                continue
            if pushed in waiting:
                found.setdefault(pushed, stored_raw)
            raw = waiting.get(pushed)
            entries = list(parse_tree(raw if raw else read(pushed)[1], self._format.raw_len))
            subtrees = [(name, child) for name, mode, child in entries if mode & S_IFMT == S_IFDIR]
            if not subtrees:
                continue
            theirs = {name: child for name, mode, child in parse_tree(stored_raw, self._format.raw_len)
                      if mode & S_IFMT == S_IFDIR}
            pairs += [(child, theirs[name]) for name, child in subtrees if name in theirs]

    # -- into the store ---------------------------------------------------------------

    def _complete(self, external: list[bytes], get_raw: Callable[[bytes], tuple[int, bytes]]) -> bytes:
        """Append a thin pack's bases; the pack's checksum."""
        assert self._file is not None
        store = self._store
        if external:
            pack_sha, extra = extend_pack(self._file, set(external), get_raw=get_raw,  # type: ignore[arg-type]
                                          object_format=store.object_format,
                                          compression_level=self._base_level)
            first = len(self._offsets)
            for sha, offset, crc in extra:  # the bases a thin pack left out, appended from the store
                self._offsets = _extended(self._offsets, [offset], "Q")
                self._crcs.append(crc or 0)
            self._add_sorted([sha for sha, _offset, _crc in extra], first)
        else:  # the scan checked the trailer against the content
            trailer = self._format.raw_len
            pack_sha = os.pread(self._file.fileno(), trailer, self._size - trailer)
        self._file.flush()
        if store.fsync_object_files:
            os.fsync(self._file.fileno())
        return pack_sha

    def _publish(self, pack_sha: bytes) -> Pack:
        assert self._file is not None
        store = self._store
        names, order = self._sorted_names, self._by_name
        offsets = array("Q", map(self._offsets.__getitem__, order))
        crcs = array(_U32, map(self._crcs.__getitem__, order))
        # The columns by pack order are done with (a sink keeps its ingest until the push ends; a
        # million objects' columns are 60 MB): the index is written from the sorted ones.
        self._names, self._kinds, self._offsets, self._crcs = _IdColumn(self._format.raw_len), bytearray(), array("Q"), array(_U32)
        self._by_name, self._sorted_names, self._ref_bases = array("Q"), _SortedIds(b"", self._format.raw_len), {}
        self._kinds_by_name = b""
        del order
        idx_path = self._path + ".idx"
        with open(idx_path, "wb") as idx:
            if store.pack_index_version in (None, 2) or self._format is not SHA1_FORMAT:
                write_index_v2(idx, names.blob, offsets, crcs, pack_sha, self._format)
            else:
                write_pack_index(idx, list(zip(map(names.__getitem__, range(len(names))), offsets, crcs)), pack_sha,
                                 version=store.pack_index_version)
            if store.fsync_object_files:
                idx.flush()
                os.fsync(idx.fileno())
        _pack_file_mode(idx_path, store)
        self._file.close()
        self._file = None
        base = os.path.join(self._pack_dir, "pack-" + binascii.hexlify(pack_sha).decode())
        if not (os.path.exists(base + ".pack") and os.path.exists(base + ".idx")):
            os.rename(self._path, base + ".pack")
            os.rename(idx_path, base + ".idx")
        # else this very pack is stored already; abort() removes the temporaries
        return Pack(base, object_format=store.object_format)


MAX_PAIRED_COMMITS = 10_000
"""A push of more commits links its large whole trees whole (reading every commit for their
parents would cost more than it saves)."""
MAX_DEFERRED_TREE_BYTES = 256 << 20
"""The large whole trees of a push kept until every object is named (``PackIngest._deferring``);
past it a tree is linked whole as it is checked."""


def _not_stored(raw: bytes, stored: bytes, entries: list[TreeEntry], raw_len: int) -> Iterable[TreeEntry]:
    """The entries of the pushed tree ``raw`` (``entries``, checked) that the store's tree ``stored``,
    which it is a delta of, does not hold byte for byte, as whole entries (``git_reach.entries_not_in``):
    the links of the others are to objects the store holds, of the types they say, by its invariant,
    and are neither typed nor looked up again.  A one-file commit into a directory of 100,000
    files had its 100,000 links typed (``PushLinks.mismatch``) and looked up (``PushLinks.closed``),
    0.7 s of the push's 0.9 s of server CPU.  All of them for a tree under ``LARGE_TREE_BYTES``
    (its links cost less than the comparison) and for one too unlike ``stored``."""
    if len(raw) < LARGE_TREE_BYTES:
        return entries
    found = entries_not_in(raw, stored, raw_len)
    return entries if found is None else found


def _pack_file_mode(path: str, store: DiskObjectStore) -> None:
    """A pack's or index's mode, as git's index-pack gives it: read-only less the umask, then
    ``core.sharedRepository``'s (the store's ``shared_perm``; an explicit mode such as ``0640``
    states it outright)."""
    os.chmod(path, PACK_MODE & ~process_umask())
    adjust_shared_perm(path, getattr(store, "shared_perm", None))


_OFFSET = operator.itemgetter(PackedObject._fields.index("offset"))
_DATA_OFFSET = operator.itemgetter(PackedObject._fields.index("data_offset"))
_END = operator.itemgetter(PackedObject._fields.index("end"))
_TYPE = operator.itemgetter(PackedObject._fields.index("type_num"))
_SIZE = operator.itemgetter(PackedObject._fields.index("size"))
_CRC = operator.itemgetter(PackedObject._fields.index("crc32"))
_SHA = operator.itemgetter(PackedObject._fields.index("sha"))
_BASE = operator.itemgetter(PackedObject._fields.index("base"))
_TEXT = operator.itemgetter(PackedObject._fields.index("text"))
_U32 = "I" if array("I").itemsize == 4 else "L"
"""The array type code of 32-bit unsigned ints (CRC-32s, an index's tables)."""
_NO_BASE = (-1,)
"""What ``_base_at`` holds for an object that is not an OFS_DELTA, and ``_text_at`` for one whose
text is not kept (an array of it times a count is made at once)."""
_BIG_ENDIAN = sys.byteorder == "big"


def _extended(column: array[int], values: list[int], wide: str) -> array[int]:
    """``column`` with ``values`` appended: itself, or a copy of type ``wide`` (8 bytes a value)
    when one of them does not fit its type (an offset or size past 4 GiB)."""
    start = len(column)
    try:
        column.extend(values)
    except OverflowError:
        del column[start:]  # (``extend`` appended the values before the one that did not fit)
        column = array(wide, column)
        column.extend(values)
    return column


def write_index_v2(out: BinaryIO, names: Sequence[bytes] | bytes | bytearray, offsets: Sequence[int], crcs: Sequence[int],
                   pack_sha: bytes, object_format: ObjectFormat = SHA1_FORMAT) -> None:
    """A version 2 pack index (gitformat-pack(5)) of objects sorted by id (``names``, raw, with
    their ``offsets`` and ``crcs``, in that order; or the ids joined already): each table in one piece.

    Fan-out, ids, CRC-32s, 31-bit offsets (or a pointer into the 64-bit table
    that follows), then the pack's checksum and the index's own.  A SHA-256
    repository's index has the same layout with 32-byte ids and checksums
    (``object_format`` sums it).
    """
    joined = names if isinstance(names, (bytes, bytearray)) else b"".join(names)
    firsts = joined[::object_format.raw_len]
    # (sorted: a bisection a first byte, where a count of each over them all was 0.07 s of a million's)
    fanout = [bisect_right(firsts, byte) for byte in range(256)]
    small, large = array(_U32), array("Q")
    if offsets and max(offsets) >= 0x80000000:
        for offset in offsets:
            if offset >= 0x80000000:
                small.append(0x80000000 | len(large))
                large.append(offset)
            else:
                small.append(offset)
    else:
        small = array(_U32, offsets)
    crc_table = array(_U32, crcs)
    for table in (small, large, crc_table):
        if not _BIG_ENDIAN:
            table.byteswap()
    summed = object_format.hasher()
    for piece in (b"\377tOc" + struct.pack(">I", 2) + struct.pack(">256I", *fanout), joined,
                  crc_table, small, large, pack_sha):  # (each as it is: joined, they were a copy of it all)
        out.write(piece)
        summed.update(piece)
    out.write(summed.digest())


def _object_id(type_num: int, text: bytes, new: Callable[[bytes], hashlib._Hash] = hashlib.sha1) -> bytes:
    """The id of an object of type ``type_num`` and content ``text`` (``new``: its format's
    ``hash_constructor``)."""
    digest = object_hash(type_num, len(text), new)
    digest.update(text)
    return digest.digest()


class PushedObjects(Collection[bytes]):
    """The objects a push added, by hex id: those of the packs it landed, as the packs' indexes
    list them (their ids in one piece, 20 bytes an object: a set took 100, and the pack may move
    out of its quarantine meanwhile), and ids added one by one (a memory store's)."""

    def __init__(self) -> None:
        self._packs: list[_SortedIds] = []
        self._ids: set[bytes] = set()

    def add_pack(self, pack: Pack) -> None:
        self._packs.append(_SortedIds.of(pack))

    def add(self, sha: bytes) -> None:
        self._ids.add(sha)

    def update(self, shas: Iterable[bytes]) -> None:
        self._ids.update(shas)

    def clear(self) -> None:
        self._packs.clear()
        self._ids.clear()

    def __contains__(self, sha: object) -> bool:
        return sha in self._ids or any(sha in ids for ids in self._packs)

    def __len__(self) -> int:
        """How many were added (an object added twice counts twice)."""
        return len(self._ids) + sum(map(len, self._packs))

    def __iter__(self) -> Iterator[bytes]:
        yield from self._ids
        for ids in self._packs:
            yield from ids


class _SortedIds:
    """The ids of a pack, sorted, ``width`` bytes each in one bytes object: indexing gives a raw
    id (for ``bisect``), ``in`` takes a hex id and iterating gives hex ids."""

    __slots__ = ("_blob", "_width")

    def __init__(self, blob: bytes | bytearray, width: int) -> None:
        self._blob = blob
        self._width = width

    @property
    def blob(self) -> bytes | bytearray:
        return self._blob

    @classmethod
    def of(cls, pack: Pack) -> _SortedIds:
        """The ids of ``pack``: the table of a version 2 index as it is, else as dulwich lists them."""
        width = pack.object_format.oid_length
        with open(pack._idx_path, "rb") as f:
            head = f.read(8 + 256 * 4)
            if head[:8] == b"\377tOc\0\0\0\2" and len(head) == 8 + 256 * 4:
                count = int.from_bytes(head[-4:], "big")
                blob = f.read(count * width)
                if len(blob) == count * width:
                    return cls(blob, width)
        return cls(b"".join(sorted(binascii.unhexlify(sha) for sha in pack)), width)

    def __len__(self) -> int:
        return len(self._blob) // self._width

    def __getitem__(self, at: int) -> bytes:
        if at < 0:
            at += len(self)
        if not 0 <= at < len(self):
            raise IndexError(at)
        return bytes(self._blob[at * self._width:(at + 1) * self._width])

    def __contains__(self, hexsha: object) -> bool:
        if not isinstance(hexsha, bytes) or len(hexsha) != 2 * self._width:
            return False
        try:
            sha = binascii.unhexlify(hexsha)
        except binascii.Error:
            return False
        at = bisect_left(self, sha)
        return at < len(self) and self[at] == sha

    def __iter__(self) -> Iterator[bytes]:
        blob, width = self._blob, self._width
        return (binascii.hexlify(blob[at:at + width]) for at in range(0, len(blob), width))


class _IdColumn:
    """The id of each object of a pushed pack, by index, ``width`` bytes each in one bytearray (20
    bytes an object: a list of bytes objects took 64, and a pack of millions of tiny objects
    holds millions).  A delta's stays zeros until it is named (its kind says which are)."""

    __slots__ = ("_blob", "_width", "_zero")

    def __init__(self, width: int) -> None:
        self._blob = bytearray()
        self._width = width
        self._zero = bytes(width)

    @classmethod
    def over(cls, blob: bytes | bytearray, width: int) -> _IdColumn:
        """A column over ``blob`` (ids one after another, read only: ``of_kind``)."""
        column = cls(width)
        column._blob = blob  # type: ignore[assignment]
        return column

    def __len__(self) -> int:
        return len(self._blob) // self._width

    @property
    def blob(self) -> bytearray:
        return self._blob

    @property
    def width(self) -> int:
        return self._width

    def __getitem__(self, at: int) -> bytes:
        width = self._width
        return bytes(self._blob[at * width:(at + 1) * width])

    def __setitem__(self, at: int, sha: bytes) -> None:
        width = self._width
        assert len(sha) == width
        self._blob[at * width:(at + 1) * width] = sha

    def append(self, sha: bytes | None) -> None:
        self._blob += self._zero if sha is None else sha

    def extend(self, shas: Iterable[bytes | None]) -> None:
        listed = shas if isinstance(shas, (list, tuple)) else list(shas)
        if None in listed:  # (a delta's, not named yet)
            zero = self._zero
            listed = [zero if sha is None else sha for sha in listed]
        self._blob += b"".join(listed)  # type: ignore[arg-type]

    def of_kind(self, kinds: bytes | bytearray, kind: int) -> _OfKind:
        """The ids of the objects whose kind is ``kind``, iterated afresh each time (none held)."""
        return _OfKind(self, kinds, kind)

    def sorted(self) -> tuple[_SortedIds, array[int], bytes | None]:
        """The ids sorted (``_SortedIds``), the index of each in that order, and an id that is there
        twice (None when none is).  Sorted a first byte at a time: only a 256th of the ids is ever held as bytes
        objects (sorting them all at once held 100 bytes an object more).  The sorted ids are
        written into one buffer made at their size, and the indexes are 4 bytes each where they fit
        (a pack's header counts its objects in 32 bits): a buffer grown and then copied into a
        bytes object, and 8-byte indexes, held 50 bytes an object on top of the column, under 30 now."""
        blob, width = self._blob, self._width
        code = "I" if len(blob) // width <= 0xFFFFFFFF else "Q"
        buckets: list[array[int]] = [array(code) for _ in range(256)]
        appends = [bucket.append for bucket in buckets]
        for at, first in enumerate(blob[::width]):
            appends[first](at)
        del appends
        joined, order, twice = bytearray(len(blob)), array(code), None
        done = 0
        for first in range(256):
            bucket, buckets[first] = buckets[first], array(code)
            if not bucket:
                continue
            keys = [bytes(blob[at * width:(at + 1) * width]) for at in bucket]
            ranked = sorted(range(len(keys)), key=keys.__getitem__)
            ordered = list(map(keys.__getitem__, ranked))
            if twice is None and len(ordered) > 1:
                twice = next((a for a, b in zip(ordered, itertools.islice(ordered, 1, None)) if a == b), None)
            joined[done:done + len(keys) * width] = b"".join(ordered)
            done += len(keys) * width
            order.extend(map(bucket.__getitem__, ranked))
            del keys, ranked, ordered, bucket
        return _SortedIds(joined, width), order, twice


ID_CHUNK = 4096
"""Ids unpacked at a time by ``_OfKind`` (80 KB of SHA-1 ids)."""


@functools.lru_cache(maxsize=8)
def _ids_of(width: int, count: int) -> struct.Struct:
    """A ``struct`` that unpacks ``count`` ids of ``width`` bytes in one call."""
    return struct.Struct(f"{width}s" * count)


class _OfKind(Collection[bytes]):
    """The ids of a pushed pack's objects of one kind (``_IdColumn.of_kind``), for ``PushLinks.settle``."""

    __slots__ = ("_ids", "_kind", "_kinds")

    def __init__(self, ids: _IdColumn, kinds: bytes | bytearray, kind: int) -> None:
        self._ids, self._kinds, self._kind = ids, kinds, kind

    def __iter__(self) -> Iterator[bytes]:
        """The ids unpacked ``ID_CHUNK`` at a time by C-level calls (an ``_IdColumn.__getitem__`` an
        object was 0.1 s of a push of 100,000 files, iterated by ``settle`` two or three times)."""
        count = min(len(self._kinds), len(self._ids))
        return itertools.chain.from_iterable(map(self._chunk, range(0, count, ID_CHUNK)))

    def _chunk(self, start: int) -> Iterator[bytes]:
        """The ids of the kind among ``ID_CHUNK`` objects from index ``start``."""
        ids, kind = self._ids, self._kind
        n = min(ID_CHUNK, len(self._kinds) - start, len(ids) - start)
        marks = self._kinds[start:start + n]
        if kind not in marks:
            return iter(())
        return itertools.compress(_ids_of(ids.width, n).unpack_from(ids.blob, start * ids.width), map(kind.__eq__, marks))

    def __len__(self) -> int:
        return self._kinds.count(self._kind)

    def __contains__(self, sha: object) -> bool:
        return any(sha == own for own in self)


MAX_LINKS = 4_000_000
"""Links (ids by type) a push's objects may make before the connectivity check walks instead (about
440 MB: 110 bytes a link, a bytes object and its set entry).  The walk reads every object the push
added again through the store: for the bench corpus's migration push (54,500 links, 6 MiB) 25 s
of CPU against 0.02 s for the links, and more memory, not less."""


SPILL_LINKS = 1 << 17
"""Links of one type kept in a set before they move to ``_Spilled`` (20 bytes a link there, about 95
in a set: a bytes object and its slot).  A push of a million tiny blobs held its million links to
them in sets, 94 MB at the peak of its ingest; a push of fewer links (a directory of 100,000 files)
keeps its sets and pays nothing for them."""


class _Spilled:
    """Links of one type as raw ids in 256 buffers by their first byte, ``width`` bytes each, in no
    order and maybe twice (``bucket`` drops the second): sorted out one first byte at a time, so
    that only a 256th of them is ever held as bytes objects in a set."""

    __slots__ = ("_buckets", "count", "width")

    def __init__(self, width: int) -> None:
        self._buckets = [bytearray() for _ in range(256)]
        self.count = 0
        """How many were added (an id added twice counts twice)."""
        self.width = width

    def add(self, ids: Iterable[bytes]) -> None:
        buckets, count = self._buckets, 0
        for sha in ids:
            buckets[sha[0]] += sha
            count += 1
        self.count += count

    def add_joined(self, joined: bytes) -> None:
        """Add the ids of ``joined``, ``width`` bytes each one after another."""
        buckets, width = self._buckets, self.width
        for at in range(0, len(joined), width):
            buckets[joined[at]] += joined[at:at + width]
        self.count += len(joined) // width

    def take(self, first: int) -> set[bytes]:
        """The ids whose first byte is ``first``, as a set, no longer held here."""
        blob, width = bytes(self._buckets[first]), self.width
        self._buckets[first] = bytearray()
        return {blob[at:at + width] for at in range(0, len(blob), width)}

    def joined(self) -> bytes:
        return b"".join(self._buckets)

    def compact(self) -> int:
        """Drop the ids held twice, a first byte at a time; how many are left (``count``)."""
        buckets, width, count = self._buckets, self.width, 0
        for first in range(256):
            if buckets[first]:
                held = bytes(buckets[first])
                ids = {held[at:at + width] for at in range(0, len(held), width)}
                del held
                buckets[first] = bytearray().join(ids)
                count += len(ids)
        self.count = count
        return count


class PushLinks:
    """Every id the commits, trees and tags of a push link to, as their checks parsed them, by
    the type each link says the object has (raw ids, one set per type).

    With these the connectivity check is one set difference: if every link
    is to an object the push added or the store holds, each pushed tip that
    exists is complete (the store's objects are, by its invariant).  Only if
    that fails, or the links outgrow ``max_links``, does it walk from the tips.
    ``settle`` drops the links to the pushed pack's own objects once it has checked
    their types; ``mismatch`` says whether a linked object is of another type than its link says
    (a tree entry with a file's mode naming a tree, a parent that is a tree…), which
    ``git fsck`` reports and no checkout survives.

    Each link to a stored object is looked up once, as git's receive-pack checks connectivity once
    (before pre-receive, not again when the refs are written): the lookup that gives its type
    (``mismatch``) finds it, and ``closed`` looks up only the links it did not find, and those
    linked since.  An object that a ``git prune`` removes between the two is not seen missing, as
    by git.  (A new root commit over a stored directory of 100,000 files had each of its 100,000
    links looked up twice: 0.3 s of the push's 0.87 s of server CPU.)
    """

    def __init__(self, max_links: int = MAX_LINKS) -> None:
        self._sets: dict[int, set[bytes]] | None = {kind: set() for kind in (ANY, COMMIT, TREE, BLOB, TAG)}
        self._max_links = max_links
        self._spilled: dict[int, _Spilled] = {}
        """Links moved out of ``_sets`` (``SPILL_LINKS``), by type; ``_gather`` brings them back."""
        self._compact_past = 0
        """How many links (an id named again counted again) the next ``_compacted`` waits for."""
        self._calls = 0
        self._closed: tuple[int, bool] | None = None
        self._unfound: set[bytes] | None = None
        """Once ``mismatch`` looked every link up: those it did not find, and those linked since (raw
        ids), which are all ``closed`` looks up; None before."""

    def linked(self) -> set[bytes] | None:
        """Every id (hex) linked to and not settled; None when the links outgrew the bound."""
        self._gather()
        if self._sets is None:
            return None
        return {binascii.hexlify(sha) for ids in self._sets.values() for sha in ids}

    def link(self, linked: Iterable[Link]) -> None:
        """Add links: ids in hex, each with its type."""
        sets = self._sets
        if sets is None:
            return
        unfound = self._unfound
        for sha, kind in linked:
            raw = binascii.unhexlify(sha)
            sets[kind].add(raw)
            if unfound is not None:  # (after the lookups: looked up by ``closed``)
                unfound.add(raw)
        self._closed = None
        self._bound()

    def link_entries(self, entries: Iterable[TreeEntry]) -> None:
        """Add the links of tree entries (``tree_links``: subtrees' and files' ids, a submodule's
        commit not), sorted by type with C-level maps and added as raw ids in one step a type: a
        tree of 100,000 files took 0.1 s through ``link`` (a tuple, a Python step and an
        ``unhexlify`` each)."""
        sets = self._sets
        if sets is None:
            return
        listed = entries if isinstance(entries, list) else list(entries)
        hexes = list(map(_ID_OF, listed))
        if not any(mode & S_IFMT in _NOT_LEAVES for mode in set(map(_MODE_OF, listed))):
            by_kind = [(BLOB, hexes)]
        else:
            kinds = list(map(S_IFMT.__and__, map(_MODE_OF, listed)))
            by_kind = [(TREE, list(itertools.compress(hexes, map(S_IFDIR.__eq__, kinds)))),
                       (BLOB, list(itertools.compress(hexes, map(operator.not_, map(_IS_NOT_LEAF, kinds)))))]
        unfound = self._unfound
        for kind, ids in by_kind:
            raw = list(map(binascii.unhexlify, ids))
            sets[kind].update(raw)
            if unfound is not None:  # (after the lookups: looked up by ``closed``)
                unfound.update(raw)
            if len(sets[kind]) > SPILL_LINKS:
                self._spill(kind)
        self._closed = None
        if len(listed) >= 256:
            self._calls += 1
            self._check_bound()
        else:
            self._bound()

    def _bound(self) -> None:
        self._calls += 1
        if self._calls % 256 == 0 or self._max_links < 256:  # (a sum of five lengths at every call costs)
            self._check_bound()

    def link_ids(self, kind: int, ids: list[bytes]) -> None:
        """Add links of type ``kind``: raw ids (``entry_ids``)."""
        sets = self._sets
        if sets is None:
            return
        sets[kind].update(ids)
        if self._unfound is not None:  # (after the lookups: looked up by ``closed``)
            self._unfound.update(ids)
        if len(sets[kind]) > SPILL_LINKS:
            self._spill(kind)
        self._closed = None
        self._calls += 1
        self._check_bound()

    def _check_bound(self) -> bool:
        """Whether the links are kept (not past the bound): the objects they name, as in sets.
        Spilled links hold an id each time a tree named it (each whole version of a directory
        names all of it again): past the bound they are compacted and counted again, and after that
        only once as many more have come as were left, or a quarter of the bound (linear in the
        links, not quadratic; at most twice the bound held, 20 bytes a link)."""
        if self._sets is None:
            return False
        total = sum(map(len, self._sets.values())) + sum(spilled.count for spilled in self._spilled.values())
        if total > self._max_links and self._spilled:
            if total <= self._compact_past:
                return True  # (named again or anew since the count: counted at ``_compact_past``)
            total = self._compacted()
            self._compact_past = max(self._max_links, total + max(total, self._max_links // 4))
        if total > self._max_links:
            self._sets = None
            self._spilled = {}
        return self._sets is not None

    def _compacted(self) -> int:
        """Every link spilled, each id once: how many links are kept."""
        sets = self._sets
        assert sets is not None
        for kind in list(sets):
            self._spill(kind)
        return sum(spilled.compact() for spilled in self._spilled.values())

    def _spill(self, kind: int) -> None:
        """Move the links of type ``kind`` out of their set into ``_spilled``."""
        sets = self._sets
        assert sets is not None
        if not sets[kind]:
            return
        spilled = self._spilled.get(kind)
        if spilled is None:
            spilled = self._spilled[kind] = _Spilled(len(next(iter(sets[kind]))))
        spilled.add(sets[kind])
        sets[kind] = set()

    def _gather(self) -> None:
        """Bring the spilled links back into the sets (for the checks that look at every link)."""
        spilled, self._spilled = self._spilled, {}
        if self._sets is None:
            return
        for kind, ids in spilled.items():
            into = self._sets[kind]
            for first in range(256):
                into |= ids.take(first)

    def add_joined(self, kind: int, joined: bytes, width: int) -> None:
        """Add links of type ``kind``: raw ids ``width`` bytes each, one after another (a forked
        helper's, ``PackIngest._merge``)."""
        sets = self._sets
        if sets is None or not joined:
            return
        if len(joined) // width > SPILL_LINKS:
            spilled = self._spilled.get(kind)
            if spilled is None:
                spilled = self._spilled[kind] = _Spilled(width)
            spilled.add_joined(joined)
        else:
            sets[kind].update(joined[at:at + width] for at in range(0, len(joined), width))
            if len(sets[kind]) > SPILL_LINKS:
                self._spill(kind)
        self._closed = None

    def joined(self) -> dict[int, bytes] | None:
        """Every link by type as raw ids one after another (for a forked helper's answer); None when
        the links outgrew the bound."""
        if self._sets is None:
            return None
        return {kind: b"".join(ids) + (self._spilled[kind].joined() if kind in self._spilled else b"")
                for kind, ids in self._sets.items()}

    def forget(self) -> None:
        """Drop every link (a forked helper starts afresh); the bound stays as it was."""
        if self._sets is not None:
            self._sets = {kind: set() for kind in self._sets}
        self._spilled = {}
        self._compact_past = 0

    def _checked_sets(self) -> tuple[dict[int, set[bytes]] | None, str | None]:
        """The links by type (None when they outgrew the bound), and what is wrong when one object
        is linked to as two types."""
        if not self._check_bound():
            return None, None
        return self._sets, self._clash()

    def _clash(self) -> str | None:
        sets = self._sets
        assert sets is not None
        for first, second in itertools.combinations((COMMIT, TREE, BLOB, TAG), 2):
            if not sets[first].isdisjoint(sets[second]):
                sha = min(sets[first] & sets[second])
                return (f"object {binascii.hexlify(sha).decode()} is linked to as a {TYPE_NAMES[first]} "
                        f"and as a {TYPE_NAMES[second]}; it cannot be both")
        return None

    def settle(self, own: Mapping[int, Iterable[bytes]],
               ordered: Callable[[], tuple[bytes | bytearray, bytes]] | None = None) -> str | None:
        """The pushed pack's objects (raw ids, by type; each iterated more than once, never held as a
        set): what is wrong when one of them is linked to
        as another type, or an object as two (None when all agree).  The links to them are dropped:
        the connectivity check needs only those to objects outside the pack (``closed``).
        ``ordered()``: the same objects' ids sorted, one after another, and the type of each in
        that order, with which links that were spilled are settled a first byte at a time
        (``_settle_spilled``), never all held in sets."""
        if self._spilled:
            if ordered is not None and self._check_bound():
                return self._settle_spilled(own, *ordered())
            self._gather()
        sets, wrong = self._checked_sets()
        if sets is None or wrong is not None:
            return wrong
        for kind, ids in own.items():
            for other in (COMMIT, TREE, BLOB, TAG):
                if other != kind and sets[other] and not sets[other].isdisjoint(ids):
                    sha = min(sets[other].intersection(ids))
                    return (f"object {binascii.hexlify(sha).decode()} is a {TYPE_NAMES[kind]}, "
                            f"not the {TYPE_NAMES[other]} that a pushed object links to it as")
        for kind, ids in own.items():  # (each pass over ``ids`` costs: an empty set needs none)
            for linked in (sets[kind], sets[ANY]):
                if linked:
                    linked.difference_update(ids)
            if self._unfound:
                self._unfound.difference_update(ids)
        for kind, ids in sets.items():  # (a set keeps its table as large as it was: 32 MB for a million links)
            sets[kind] = set(ids)
        self._closed = None
        return None

    def _settle_spilled(self, own: Mapping[int, Iterable[bytes]], ids: bytes | bytearray, kinds: bytes) -> str | None:
        """``settle`` with every link spilled, and the pack's objects as ``ids`` (sorted, one after
        another) and ``kinds`` (the type of each): one first byte at a time, the links of that byte
        and the pack's objects of that byte are made sets, checked as ``settle`` checks them and
        what is left of the links kept (the same findings, each with its smallest id, as the links'
        first bytes come in order).  After a finding the links are given up (the pack is refused;
        a check that went on would walk, ``closed``)."""
        sets = self._sets
        assert sets is not None
        for kind in list(sets):
            self._spill(kind)
        spilled, self._spilled = self._spilled, {}
        width = next(iter(spilled.values())).width
        firsts = ids[::width]
        typed = (COMMIT, TREE, BLOB, TAG)
        pairs = list(itertools.combinations(typed, 2))
        clashes: dict[tuple[int, int], bytes] = {}
        wrong: dict[tuple[int, int], bytes] = {}
        kept: dict[int, set[bytes]] = {kind: set() for kind in sets}
        lo = 0
        for first in range(256):
            linked = {kind: links.take(first) for kind, links in spilled.items()}
            for pair in pairs:
                one, two = linked.get(pair[0]), linked.get(pair[1])
                if one and two and pair not in clashes and not one.isdisjoint(two):
                    clashes[pair] = min(one & two)
            hi = bisect_right(firsts, first, lo)
            if hi > lo:
                chunk, of_kind = bytes(ids[lo * width:hi * width]), kinds[lo:hi]
                ours = [chunk[at:at + width] for at in range(0, len(chunk), width)]
                for kind in typed:
                    if kind not in of_kind:
                        continue
                    mine = set(itertools.compress(ours, map(kind.__eq__, of_kind)))
                    for other in typed:
                        theirs = linked.get(other)
                        if other != kind and theirs and (kind, other) not in wrong and not theirs.isdisjoint(mine):
                            wrong[(kind, other)] = min(theirs & mine)
                    if kind in linked:
                        linked[kind] -= mine
                if ANY in linked:
                    linked[ANY].difference_update(ours)
                lo = hi
            for kind, left in linked.items():
                kept[kind] |= left
        clash = next((pair for pair in pairs if pair in clashes), None)
        if clash is not None:
            self._sets = None
            return (f"object {binascii.hexlify(clashes[clash]).decode()} is linked to as a {TYPE_NAMES[clash[0]]} "
                    f"and as a {TYPE_NAMES[clash[1]]}; it cannot be both")
        found = next(((kind, other) for kind in own for other in typed if (kind, other) in wrong), None)
        if found is not None:
            self._sets = None
            return (f"object {binascii.hexlify(wrong[found]).decode()} is a {TYPE_NAMES[found[0]]}, "
                    f"not the {TYPE_NAMES[found[1]]} that a pushed object links to it as")
        self._sets = kept
        if self._unfound:
            for of_own in own.values():
                self._unfound.difference_update(of_own)
        self._closed = None
        return None

    def mismatch(self, type_of: Callable[[bytes], int],
                 types_of: Callable[[set[bytes]], Mapping[int, Collection[bytes]]] | None = None) -> str | None:
        """What is wrong when an object the push links to is not of the type its link says
        (``type_of(hex id)``, ``KeyError`` when the object is nowhere, which the connectivity check
        reports); None when all agree or the links were not kept (the connectivity walk looks then).
        ``types_of(raw ids)``: the same for many at once, the ids found by type (those found nowhere
        in none), which is asked instead of ``type_of`` (``PackObjectReader.types_of``).

        Every link is looked up here, those that say no type too: ``closed`` then looks up only
        the ones not found (``_unfound``)."""
        self._gather()
        sets, wrong = self._checked_sets()
        if sets is None or wrong is not None:
            return wrong
        unfound: set[bytes] = set()
        for expected in (ANY, COMMIT, TREE, BLOB, TAG):
            ids = sets[expected]
            if not ids:
                continue
            found = types_of(ids) if types_of is not None else _types_one_by_one(type_of, ids)
            for actual in sorted(found):
                if found[actual] and actual != expected and expected != ANY:
                    sha = min(found[actual])
                    return (f"object {binascii.hexlify(sha).decode()} is a {TYPE_NAMES.get(actual, 'bad object')}, "
                            f"not the {TYPE_NAMES[expected]} that a pushed object links to it as")
            if sum(map(len, found.values())) < len(ids):  # (each found one is of ``ids``)
                unfound.update(ids.difference(*found.values()))
        self._unfound = unfound
        self._closed = None
        return None

    def closed(self, added: Collection[bytes], has: Callable[[bytes], bool]) -> bool:
        """Whether every link is to an ``added`` object (hex ids) or one ``has`` finds (remembered
        per ``added``).  After ``mismatch``, only the links it did not find are looked at: the others
        were found then."""
        if not self._check_bound():
            return False
        self._gather()
        sets = self._sets
        assert sets is not None
        if self._closed is None or self._closed[0] != len(added):
            ids: Iterable[bytes] = (self._unfound if self._unfound is not None
                                    else itertools.chain.from_iterable(sets.values()))
            self._closed = (len(added), all(hexsha in added or has(hexsha) for hexsha in map(binascii.hexlify, ids)))
        return self._closed[1]


def _types_one_by_one(type_of: Callable[[bytes], int], ids: Iterable[bytes]) -> dict[int, set[bytes]]:
    """``ids`` (raw) by the type ``type_of(hex id)`` says, those it raises ``KeyError`` for in none."""
    found: dict[int, set[bytes]] = {}
    for sha in ids:
        try:
            actual = type_of(binascii.hexlify(sha))
        except KeyError:
            continue
        found.setdefault(actual, set()).add(sha)
    return found


ERROR, WARN, IGNORE = "error", "warn", "ignore"
"""What a finding of git's fsck does to a push: refuse it, let it through telling the client (as
git's receive-pack: ``remote: warning: object <id>: <msg-id>: <message>``), or let it through."""

FSCK_MESSAGES: dict[str, str] = {name.lower(): severity for name, severity in (
    # errors (git's fatal ones, which a setting cannot lower, in _FATAL)
    ("nulInHeader", ERROR), ("unterminatedHeader", ERROR),
    ("badDate", ERROR), ("badDateOverflow", ERROR), ("badEmail", ERROR), ("badName", ERROR),
    ("badObjectSha1", ERROR), ("badParentSha1", ERROR), ("badTimezone", ERROR), ("badTreeSha1", ERROR),
    ("badType", ERROR), ("duplicateEntries", ERROR), ("missingAuthor", ERROR), ("missingCommitter", ERROR),
    ("missingEmail", ERROR), ("missingNameBeforeEmail", ERROR), ("missingObject", ERROR),
    ("missingSpaceBeforeDate", ERROR), ("missingSpaceBeforeEmail", ERROR), ("missingTag", ERROR),
    ("missingTagEntry", ERROR), ("missingTree", ERROR), ("missingType", ERROR), ("missingTypeEntry", ERROR),
    ("multipleAuthors", ERROR), ("treeNotSorted", ERROR), ("zeroPaddedDate", ERROR),
    ("badTree", ERROR),  # a tree git's reader refuses (a mode not in octal digits, an empty name)
    # tree entries a checkout cannot honour (or writes into .git): git fsck only warns, but git's
    # receive-pack checks pushes strictly (receive.fsckObjects) and refuses them, and so does hgwire
    ("emptyName", ERROR), ("fullPathname", ERROR), ("hasDot", ERROR), ("hasDotdot", ERROR), ("hasDotgit", ERROR),
    # warnings: what old tools wrote into history, harmless to a checkout, let through by default
    ("nullSha1", WARN), ("zeroPaddedFilemode", WARN), ("nulInCommit", WARN),
    # git's "info", which its receive-pack reports as warnings, and so does hgwire
    ("badTagName", WARN), ("missingTaggerEntry", WARN), ("gitmodulesParse", WARN),
    ("gitattributesSymlink", WARN), ("gitignoreSymlink", WARN), ("mailmapSymlink", WARN),
    ("badFilemode", WARN),  # (a mode git's own trees never hold: 100600, 644, and 100664 as git's strict check)
    # a push's .gitmodules and .gitattributes files (backends.git_dotfiles)
    ("gitmodulesBlob", ERROR), ("gitmodulesLarge", ERROR), ("gitmodulesMissing", ERROR),
    ("gitmodulesName", ERROR), ("gitmodulesPath", ERROR), ("gitmodulesSymlink", ERROR),
    ("gitmodulesUpdate", ERROR), ("gitmodulesUrl", ERROR),
    ("gitattributesBlob", ERROR), ("gitattributesLarge", ERROR), ("gitattributesLineLength", ERROR),
    ("gitattributesMissing", ERROR),
)}
"""The findings hgwire checks pushed objects for, by git's message ids (``git help fsck``), and what
each does by default (git fsck's defaults, but for the tree names above: an error refuses the push,
a warning is let through)."""
_FATAL = frozenset({"nulinheader", "unterminatedheader", "badtree"})
"""Findings no setting lowers (``badTree`` is git's error, which hgwire keeps: no git reads such a tree)."""
_TREE_NAMES = frozenset({"emptyname", "fullpathname", "hasdot", "hasdotdot", "hasdotgit"})
_TREE_MODES = frozenset({"nullsha1", "zeropaddedfilemode", "badfilemode"})


class FsckError(ObjectFormatException):
    """A pushed object with a finding that refuses it: git's message id, and its words."""

    def __init__(self, msg_id: str, message: str, oid: bytes | None = None) -> None:
        self.msg_id = msg_id
        where = f"object {oid.decode('ascii', 'replace')}: " if oid else ""
        super().__init__(f"{where}{msg_id}: {message}")


@dataclass(frozen=True, slots=True)
class FsckRules:
    """A repository's ``receive.fsck.<msg-id>`` settings (``error``, ``warn`` or ``ignore``, by the
    lower-case id) and the objects of its ``receive.fsck.skipList`` (hex ids), which are not checked."""

    severities: Mapping[str, str] = field(default_factory=dict)
    skip: frozenset[bytes] = frozenset()
    tree_names: bool = True
    """A tree name finding refuses a push (by default): names are looked at in a tree whose names
    hold anything such a finding needs (``/``, ``.git``, ``~``, an empty, ``.`` or ``..`` name, an
    HFS+-ignorable code point), one search per tree otherwise.  Set by ``fsck_rules``."""
    tree_modes: bool = False
    """A mode or null-id finding refuses a push (only when made an error): every tree's modes and
    ids are then looked at.  Set by ``fsck_rules``, once per push."""
    mode_warnings: bool = True
    """A zero-padded or bad mode or a null id is a warning (by default): a tree whose length, bytes
    or modes hint at one (``_suspect_modes``) is looked at, to tell the client.  Set by
    ``fsck_rules``."""

    def severity(self, msg_id: str) -> str:
        key = msg_id.lower()
        return self.severities.get(key) or FSCK_MESSAGES[key]


DEFAULT_FSCK = FsckRules()


def fsck_rules(settings: Iterable[tuple[bytes, bytes]], skip_list: Iterable[bytes] = ()) -> FsckRules:
    """The rules of ``receive.fsck.*`` settings (name, value), as git's receive-pack reads them:
    an unknown id or value is skipped (git warns), and a fatal finding stays an error."""
    severities = {}
    for name, value in settings:
        key = name.decode("ascii", "replace").lower()
        severity = value.decode("ascii", "replace").strip().lower()
        if key not in FSCK_MESSAGES or severity not in (ERROR, WARN, IGNORE) or (key in _FATAL and severity != ERROR):
            continue
        severities[key] = severity
    def level(key: str) -> str:
        return severities.get(key, FSCK_MESSAGES[key])

    return FsckRules(severities, frozenset(skip_list),
                     tree_names=any(level(key) != IGNORE for key in _TREE_NAMES),
                     tree_modes=any(level(key) == ERROR for key in _TREE_MODES),
                     mode_warnings=WARN in (level("zeropaddedfilemode"), level("nullsha1"), level("badfilemode")))


MAX_WARNINGS_SHOWN = 100
"""The warnings of one push told to the client; the rest are counted."""


class FsckWarnings:
    """The findings of a push that its rules let through as warnings, in git's words
    (``object <id>: <msg-id>: <message>``): the first ``MAX_WARNINGS_SHOWN``, and how many more."""

    __slots__ = ("lines", "more")

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.more = 0

    def add(self, line: str) -> None:
        if len(self.lines) < MAX_WARNINGS_SHOWN:
            self.lines.append(line)
        else:
            self.more += 1

    def shown(self) -> list[str]:
        """What the client is told, one line each (without ``warning: ``)."""
        if not self.more:
            return list(self.lines)
        return [*self.lines, f"{self.more} more findings not shown (receive.fsck.<msg-id> = ignore silences one)"]


class _Findings:
    """Reports the findings of one object: raises for one the rules make an error, notes one they
    make a warning in ``warnings`` (when given), passes an ignored one."""

    __slots__ = ("_oid", "_rules", "_warnings", "found")

    def __init__(self, rules: FsckRules, oid: bytes | None, warnings: FsckWarnings | None = None) -> None:
        self._rules = rules
        self._oid = oid
        self._warnings = warnings
        self.found = 0
        """Findings reported, whatever the rules made of them."""

    def __call__(self, msg_id: str, message: str) -> None:
        self.found += 1
        severity = self._rules.severity(msg_id)
        if severity == IGNORE or (self._oid is not None and self._oid in self._rules.skip):
            return
        if severity == ERROR:
            raise FsckError(msg_id, message, self._oid)
        if self._warnings is not None:
            where = f"object {self._oid.decode('ascii', 'replace')}: " if self._oid else ""
            self._warnings.add(f"{where}{msg_id}: {message}")


def check_object(type_num: int, raw: bytes, rules: FsckRules = DEFAULT_FSCK, oid: bytes | None = None,
                 dotfiles: DotFiles | None = None, warnings: FsckWarnings | None = None, *,
                 object_format: ObjectFormat = SHA1_FORMAT) -> list[Link]:
    """Refuse an object with a finding of ``git fsck`` that ``rules`` make an error (raises
    ``FsckError``, a dulwich ``ObjectFormatException``); the ids (hex) it links to, each with the
    type the link says it has (``ANY`` for a tag whose ``type`` line names none).

    Commits: the tree and parent ids, exactly one author and a committer, each ident
    ``Name <email> <date> <+zone>``, the header ended and without a NUL (git's ``fsck_commit`` and
    ``fsck_ident``).  Trees: entries sorted as git sorts them (a subtree's name compares as
    ``name/``) and no name twice; the names and modes git only warns about (``.git``, ``..``,
    zero-padded modes …) are looked at when ``rules`` make one of them an error.  Tags: the
    object, type and tag lines, and the tagger's ident when there is one.  By default what git's
    fsck calls errors refuses, what it warns about (zero-padded modes, ``.git`` entries, tags
    without a tagger) passes, as ``git fsck`` has it.  ``dotfiles`` notes a tree's
    ``.gitmodules`` and ``.gitattributes`` files, for ``DotFiles.finish`` to check once the push's
    objects are all in.  ``warnings`` collects the findings ``rules`` let through as warnings
    (zero-padded modes and null ids are then looked for in trees whose length or bytes hint at
    them); without it they pass unseen.  ``object_format`` is the repository's: the length of the
    ids in trees (raw) and in commits and tags (hex), as git's ``parse_oid_hex`` of the repository's
    hash reads them (a SHA-1 id in a SHA-256 commit is a bad id).
    """
    if type_num == BLOB:
        return []
    if type_num == TREE:
        return tree_links(check_tree(raw, rules, oid, dotfiles, warnings, object_format=object_format)[0].entries)
    report = _Findings(rules, oid, warnings)
    if type_num == COMMIT:
        links = _check_commit(raw, report, _hex_id(object_format))
    else:
        links = _check_tag(raw, report, _hex_id(object_format))
    return links


def check_tree(raw: bytes, rules: FsckRules = DEFAULT_FSCK, oid: bytes | None = None,
               dotfiles: DotFiles | None = None, warnings: FsckWarnings | None = None, *,
               object_format: ObjectFormat = SHA1_FORMAT, base: TreeShape | None = None,
               delta: bytes | None = None) -> tuple[TreeShape, bool]:
    """``check_object`` of a tree: its entries (name, mode, hex id) once checked, and whether it had
    no finding at all (whatever the rules make of one).  ``base``: a tree that had none, of the
    same rules, which this one is a delta of, ``delta`` that delta (``_check_tree``)."""
    report = _Findings(rules, oid, warnings)
    # parses the entries itself: no dulwich Tree object as well
    try:
        shape = _check_tree(raw, report, rules, dotfiles, warnings is not None and rules.mode_warnings,
                            object_format, base, delta)
    except FsckError:
        raise
    except ObjectFormatException as exc:  # dulwich's parser's words ("SHA truncated"): git's instead
        raise FsckError("badTree", UNPARSABLE_TREE, oid) from exc
    return shape, not report.found


UNPARSABLE_TREE = "cannot be parsed as a tree"
"""git's words (``fsck_tree``) for a tree its reader refuses: an entry without its mode's end, its
name's NUL or a whole id.  No setting lets such a tree through (nothing could read it), a
``receive.fsck.skipList`` entry either."""


_ENTRY_IDS: dict[int, re.Pattern[bytes]] = {}


def entry_ids(raw: bytes, raw_len: int) -> list[bytes]:
    """The raw ids of the entries of the tree ``raw``, checked already (``check_tree``), in order:
    one scan in C (a mode's digits, a space, a name up to its NUL, then ``raw_len`` bytes of id),
    a bytes object an entry and no other.  ``parse_tree`` made a name, a hex id, a mode and a
    tuple of each, and the links made the hex id raw again: for a directory of 100,000 files 225 ms
    against 48 (on a loaded host), 1 s for a million tiny blobs' thousand trees.  A caller compares the count
    with the tree's entries (a tree this does not read as ``parse_tree`` does gets fewer or more)."""
    pattern = _ENTRY_IDS.get(raw_len)
    if pattern is None:
        pattern = _ENTRY_IDS[raw_len] = re.compile(rb"[0-7]+ [^\0]*\0(.{%d})" % raw_len, re.DOTALL)
    return pattern.findall(raw)


def tree_links(entries: Iterable[TreeEntry]) -> list[Link]:
    """The links of tree entries: subtrees' and files' ids (a submodule's commit is not linked)."""
    return [(child, TREE if mode & S_IFMT == S_IFDIR else BLOB)
            for _name, mode, child in entries if mode & S_IFMT != S_IFGITLINK]


def changed_entries(entries: list[TreeEntry], base: list[TreeEntry]) -> Iterable[TreeEntry]:
    """The entries of a tree that its delta base does not hold at the same place (all from the
    first entry added or removed on): compared in place, with C-level maps."""
    if len(entries) != len(base):
        return entries
    return itertools.compress(entries, map(operator.ne, entries, base))


Report = Callable[[str, str], None]


def check_dotfiles(dotfiles: DotFiles, read: Callable[[bytes], tuple[int, bytes]],
                   rules: FsckRules = DEFAULT_FSCK, warnings: FsckWarnings | None = None,
                   sized: Callable[[bytes], tuple[int, int] | None] | None = None) -> None:
    """Check the ``.gitmodules`` and ``.gitattributes`` files a push's trees named (``read``: hex
    id → type and raw, ``KeyError`` when nowhere), each finding against the file, as git's
    ``fsck_finish``; ``sized``: hex id → type and size without reading it, None when unknown."""
    dotfiles.finish(read, lambda oid: _Findings(rules, oid, warnings), sized)


def _header_end(raw: bytes, report: Report) -> bytes:
    """The header of a commit or tag, checked as git's ``verify_headers``: ended, without a NUL."""
    end = raw.find(b"\n\n")
    header = raw[:end + 1] if end >= 0 else raw
    nul = header.find(b"\0")
    if nul >= 0:
        report("nulInHeader", f"unterminated header: NUL at offset {nul}")
    elif end < 0 and not raw.endswith(b"\n"):
        report("unterminatedHeader", "unterminated header")
    return header


def _check_commit(raw: bytes, report: Report, hex_id: re.Pattern[bytes]) -> list[Link]:
    """git fsck's checks of a commit (its ``fsck_commit`` and ``fsck_ident``); the tree and parent ids.

    The header must end (a blank line, or a last line with its newline) and
    hold no NUL; it starts with ``tree``, the ``parent`` lines, exactly one
    ``author`` and a ``committer``, each ident as ``Name <email> <date> <+zone>``.
    Whatever follows the committer (``encoding``, ``gpgsig``, ``mergetag`` and
    any other header, the message) is the author's own business, as for git.
    A finding the rules let through is passed as git passes it (the rest of that
    ident, or of the commit after a missing line, is not looked at).  ``hex_id``: an id of the
    repository's format (``_hex_id``).
    """
    lines = _header_end(raw, report).split(b"\n")
    at = 0

    def take(prefix: bytes) -> bytes | None:
        nonlocal at
        if at < len(lines) and lines[at].startswith(prefix):
            at += 1
            return lines[at - 1][len(prefix):]
        return None

    tree = take(b"tree ")
    if tree is None:
        report("missingTree", "invalid format - expected 'tree' line")
        return []
    links: list[Link] = []
    if hex_id.fullmatch(tree):
        links.append((tree.lower(), TREE))
    else:
        report("badTreeSha1", "invalid 'tree' line format - bad sha1")
    while (parent := take(b"parent ")) is not None:
        if hex_id.fullmatch(parent):
            links.append((parent.lower(), COMMIT))
        else:
            report("badParentSha1", "invalid 'parent' line format - bad sha1")
    authors = 0
    while (author := take(b"author ")) is not None:
        authors += 1
        _check_ident(author, report)
    if authors != 1:
        report(*(("missingAuthor", "invalid format - expected 'author' line") if not authors
                 else ("multipleAuthors", "invalid format - multiple 'author' lines")))
    committer = take(b"committer ")
    if committer is None:
        report("missingCommitter", "invalid format - expected 'committer' line")
        return links
    _check_ident(committer, report)
    if b"\0" in raw:
        report("nulInCommit", "NUL byte in the commit object body")
    return links


_HEX_IDS = {f.hex_len: re.compile(rb"[0-9a-fA-F]{%d}" % f.hex_len) for f in OBJECT_FORMATS.values()}


def _hex_id(object_format: ObjectFormat) -> re.Pattern[bytes]:
    """A whole id in hex (either case) of ``object_format``, as git's ``parse_oid_hex`` reads one."""
    return _HEX_IDS[object_format.hex_len]

_ANGLE = re.compile(rb"[<>]")
_IDENT_DATE = re.compile(rb"([0-9]+) ([+-][0-9]{4})")
_MAX_DATE = (1 << 63) - 1
"""git's ``date_overflows`` on a 64-bit ``time_t``."""
_IDENT = "invalid author/committer line"


def _check_ident(ident: bytes, report: Report) -> None:
    """``Name <email> date zone`` as git's ``fsck_ident`` reads it (``ident``: the line, no newline)."""
    if ident.startswith(b"<"):
        return report("missingNameBeforeEmail", f"{_IDENT} - missing name before email")
    first = _ANGLE.search(ident)
    if first is None:
        return report("missingEmail", f"{_IDENT} - missing email")
    if first.group() == b">":
        return report("badName", f"{_IDENT} - bad name")
    lt = first.start()
    if ident[lt - 1:lt] != b" ":
        return report("missingSpaceBeforeEmail", f"{_IDENT} - missing space before email")
    second = _ANGLE.search(ident, lt + 1)
    if second is None or second.group() != b">":
        return report("badEmail", f"{_IDENT} - bad email")
    close = second.start()
    rest = ident[close + 1:]
    if not rest.startswith(b" "):
        return report("missingSpaceBeforeDate", f"{_IDENT} - missing space before date")
    rest = rest[1:]
    if not rest[:1].isdigit():
        return report("badDate", f"{_IDENT} - bad date")
    if rest.startswith(b"0") and rest[1:2] != b" ":
        return report("zeroPaddedDate", f"{_IDENT} - zero-padded date")
    digits = len(rest) - len(rest.lstrip(b"0123456789"))
    if digits > 19 or int(rest[:digits]) >= _MAX_DATE:  # (also before int() meets a million digits)
        return report("badDateOverflow", f"{_IDENT} - date causes integer overflow")
    if rest[digits:digits + 1] != b" ":
        return report("badDate", f"{_IDENT} - bad date")
    if not _IDENT_DATE.fullmatch(rest):
        return report("badTimezone", f"{_IDENT} - bad time zone")
    return None


_TYPES = frozenset({b"commit", b"tree", b"blob", b"tag"})
_TYPE_NUMBERS = {b"commit": COMMIT, b"tree": TREE, b"blob": BLOB, b"tag": TAG}


def _check_tag(raw: bytes, report: Report, hex_id: re.Pattern[bytes]) -> list[Link]:
    """git fsck's checks of a tag (``fsck_tag_standalone``): ``object``, ``type`` and ``tag``
    lines, then the tagger's ident when there is one; the tagged object's id (``hex_id``: of the
    repository's format, ``_hex_id``)."""
    header = _header_end(raw, report)
    lines = header.split(b"\n")
    if not lines[0].startswith(b"object "):
        report("missingObject", "invalid format - expected 'object' line")
        return []
    target = lines[0][len(b"object "):]
    declared = _TYPE_NUMBERS.get(lines[1][len(b"type "):], ANY) if len(lines) > 1 and lines[1].startswith(b"type ") \
        else ANY
    links = [(target.lower(), declared)] if hex_id.fullmatch(target) else []
    if not links:
        report("badObjectSha1", "invalid 'object' line format - bad sha1")
    if len(lines) < 2 or not lines[1].startswith(b"type "):
        report("missingTypeEntry", "invalid format - expected 'type' line")
        return links
    if len(lines) < 3:
        report("missingType", "invalid format - unexpected end after 'type' line")
        return links
    if lines[1][len(b"type "):] not in _TYPES:
        report("badType", "invalid 'type' value")
    if not lines[2].startswith(b"tag "):
        report("missingTagEntry", "invalid format - expected 'tag' line")
        return links
    if len(lines) < 4:
        report("missingTag", "invalid format - unexpected end after 'type' line")
        return links
    name = lines[2][len(b"tag "):]
    if not check_ref_format(Ref(b"tags/" + name)):
        report("badTagName", f"invalid 'tag' name: {name[:200].decode('utf-8', 'replace')}")
    if lines[3].startswith(b"tagger "):
        _check_ident(lines[3][len(b"tagger "):], report)
    else:
        report("missingTaggerEntry", "invalid format - expected 'tagger' line")
    return links


def _check_tree(raw: bytes, report: Report, rules: FsckRules = DEFAULT_FSCK, dotfiles: DotFiles | None = None,
                mode_warnings: bool = False, object_format: ObjectFormat = SHA1_FORMAT,
                base: TreeShape | None = None, delta: bytes | None = None) -> TreeShape:
    """Entries in git's order (a subtree sorts as ``name/``), no name twice.

    Strictly increasing keys and distinct names, tested with C-level sorts and
    sets; only a tree that fails is walked again to say which entry is wrong.
    The names and modes git's fsck warns about are looked at as ``rules`` say
    (``FsckRules.tree_names``, ``tree_modes``), and ``dotfiles`` notes the
    tree's ``.gitmodules`` and ``.gitattributes``; both first look at all the
    names at once (joined, lower-cased) with C-level substring tests.  Ids are ``object_format``'s
    (``raw_len`` bytes each).
    """
    raw_len = object_format.raw_len
    if base is not None and delta is not None and base.offsets is not None and not rules.tree_modes:
        checked = _checked_from_delta(raw, delta, base, dotfiles, report, mode_warnings, raw_len)
        if checked is not None:
            return checked
    entries = list(parse_tree(raw, raw_len))  # a list from the C parser, a generator from the Python one
    if base is not None and not rules.tree_modes:
        checked = _checked_in_place(raw, entries, base, dotfiles, report, mode_warnings, raw_len)
        if checked is not None:
            return checked
    # every step over the entries a C-level map: a tree of 100,000 files took 0.1 s in Python loops
    name_list = list(map(_NAME_OF, entries))
    mode_set = set(map(_MODE_OF, entries))
    dirs: list[bool] = []
    if any(mode & S_IFMT == S_IFDIR for mode in mode_set):
        dirs = list(map(S_IFDIR.__eq__, map(S_IFMT.__and__, map(_MODE_OF, entries))))
    subtrees = dirs.count(True)
    keys = list(map(bytes.__add__, name_list, map(_KEY_SUFFIX.__getitem__, dirs))) if subtrees else name_list
    names = set(name_list)
    if b"" in names:  # git's tree reader refuses it before its fsck looks at names (emptyName)
        report("badTree", "empty filename in tree entry")
    if len(names) != len(keys) or keys != sorted(keys) or (subtrees and len(set(keys)) != len(keys)):
        _explain_tree(entries, report)
    joined = b"\0".join(names).lower() if rules.tree_names or dotfiles is not None else b""
    size = (_canonical_size(names, keys, raw_len) if len(names) != len(keys)
            else sum(map(len, name_list)) + (8 + raw_len) * len(keys) - subtrees)
    if len(raw) != size:
        _check_written_modes(raw, raw_len, report)
    modes = rules.tree_modes or (mode_warnings and _suspect_modes(raw, size, mode_set, raw_len))
    if modes or (rules.tree_names and _suspect_names(joined)):
        _tree_warnings(raw, entries, report, modes=modes, raw_len=raw_len)
    if dotfiles is not None:
        dotfiles.tree(entries, report, joined)
    return TreeShape(entries, size, offsets=_offsets(name_list, mode_set, dirs, subtrees, raw_len) if len(raw) == size
                     else None)


_KEY_SUFFIX = (b"", b"/")
"""What a tree entry's name takes to be its sort key, by whether it is a subtree's (``_tree_key``)."""


def _offsets(names: list[bytes], modes: Collection[int], dirs: list[bool], subtrees: int,
             raw_len: int) -> list[int] | None:
    """``entry_offsets`` from a tree's names, the modes it holds and which entries are subtrees (when
    ``subtrees``), by C-level maps."""
    if not CANONICAL_MODE_VALUES.issuperset(modes):
        return None
    lengths: Iterable[int] = map((8 + raw_len).__add__, map(len, names))
    if subtrees:
        lengths = map(operator.sub, lengths, dirs)  # a subtree's mode, 40000, is a byte shorter
    return [0, *itertools.accumulate(lengths)]


def _checked_in_place(raw: bytes, entries: list[TreeEntry], base: TreeShape, dotfiles: DotFiles | None,
                      report: Report, mode_warnings: bool, raw_len: int) -> TreeShape | None:
    """Check a tree against ``base``, a tree that had no finding at all (of the same rules, which do
    not make mode findings errors) which it is a delta of, when every entry that differs keeps its
    base's name (a history's trees mostly change an id or two): its shape, with the entries that
    differ; None when that is not so, or the modes may hold a finding (the caller
    checks the whole tree).

    The names are the base's, so no name is there twice and no name finding is new; the order
    changes only where an entry turned from a file into a directory or back (its key gains or
    loses the ``/``); only the entries that differ can add a dotfile or a dotfile's link.  The
    modes are looked at as the whole check looks at them for warnings (``_suspect_modes``)."""
    if len(entries) != len(base.entries):
        return None
    olds = base.entries
    changed = list(itertools.compress(range(len(entries)), map(operator.ne, entries, olds)))
    last = len(entries) - 1
    size = base.size
    flipped = False
    for at in changed:
        name, mode, _child = entries[at]
        if name != olds[at][0]:
            return None
        was_dir, is_dir = olds[at][1] & S_IFMT == S_IFDIR, mode & S_IFMT == S_IFDIR
        if was_dir != is_dir:
            flipped = True
            size += was_dir - is_dir
            key = _tree_key(entries[at])
            if (at and _tree_key(entries[at - 1]) >= key) or (at < last and key >= _tree_key(entries[at + 1])):
                return None  # the whole check says what is wrong
    fresh = [entries[at] for at in changed]
    if len(raw) != size or (mode_warnings and _suspect_modes(raw, size, set(map(_MODE_OF, fresh)), raw_len)):
        return None  # (the base's modes had no finding; a mode written otherwise than git writes it is looked at)
    if dotfiles is not None and fresh:
        dotfiles.tree(fresh, report)
    # the base's offsets hold while every entry keeps its length: no subtree turned file or back,
    # and the new modes are git's (each written at least as long as git writes it, the sum equal)
    offsets = base.offsets if not flipped and all(entry[1] in CANONICAL_MODE_VALUES for entry in fresh) else None
    return TreeShape(entries, size, fresh,
                     offsets if offsets is not None or base.offsets is None else entry_offsets(entries, raw_len))


def _tree_key(entry: TreeEntry) -> bytes:
    """The name git sorts a tree's entry by: a subtree's is ``name/``."""
    return entry[0] + b"/" if entry[1] & S_IFMT == S_IFDIR else entry[0]


CANONICAL_MODES: Mapping[bytes, int] = {b"40000": 0o040000, b"100644": 0o100644, b"100755": 0o100755,
                                        b"120000": 0o120000, b"160000": 0o160000}
"""The modes git writes in a tree, as it writes them."""
CANONICAL_MODE_VALUES = frozenset(CANONICAL_MODES.values())

MAX_DELTA_ENTRIES = 16
"""Entries a delta may rewrite for ``_checked_from_delta`` to read them itself; past it the tree is
parsed whole (C-level), which is then cheaper."""


def entry_offsets(entries: list[TreeEntry], raw_len: int) -> list[int] | None:
    """Where each entry of a tree starts, then its end, from its parsed entries, when every mode is
    one git writes (``CANONICAL_MODES``); None otherwise.  Only for a tree whose length is its
    ``_canonical_size``: no mode string is shorter than git's for its value (the parser takes octal
    digits, maybe a sign), so with the lengths summing up each is git's own."""
    dirs = list(map(S_IFDIR.__eq__, map(_MODE_OF, entries)))
    return _offsets(list(map(_NAME_OF, entries)), set(map(_MODE_OF, entries)), dirs, dirs.count(True), raw_len)


def delta_result_id(type_num: int, base: bytes, delta: bytes,
                    new: Callable[[bytes], hashlib._Hash] = hashlib.sha1) -> bytes:
    """The id of the object of type ``type_num`` that ``delta`` makes of ``base``, hashed a copy or an
    insert at a time (views of ``base`` and ``delta``), never joined.  A delta git's ``patch_delta``
    refuses is refused (``ApplyDeltaError``): an operation past the base's end or the result's stated
    size (one after the result is complete too), operation 0, one cut short, a result short of its size."""
    try:
        return _delta_result_id(type_num, base, delta, new)
    except IndexError:
        raise ApplyDeltaError("delta is cut short") from None


def _delta_head(delta: bytes) -> tuple[int, int, int]:
    """A delta's base size, its result's size (two varints) and where its operations begin;
    ``IndexError`` when it is cut short."""
    pos, sizes = 0, []
    for _ in range(2):
        value = shift = 0
        while True:
            byte = delta[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        sizes.append(value)
    return sizes[0], sizes[1], pos


def _delta_result_id(type_num: int, base: bytes, delta: bytes, new: Callable[[bytes], hashlib._Hash]) -> bytes:
    base_size, size, pos = _delta_head(delta)
    if base_size != len(base):
        raise ApplyDeltaError(f"Unexpected source buffer size: {base_size} vs {len(base)}")
    digest = object_hash(type_num, size, new)
    update = digest.update
    base_view, delta_view = memoryview(base), memoryview(delta)
    left, end = size, len(delta)
    while pos < end:
        cmd = delta[pos]
        pos += 1
        if cmd & 0x80:
            offset, length, pos = _copy_operation(delta, pos, cmd)
            if offset + length > base_size or length > left:
                raise _gone_wild()
            update(base_view[offset:offset + length])
        elif cmd:
            length = cmd
            if pos + length > end or length > left:
                raise _gone_wild()
            update(delta_view[pos:pos + length])
            pos += length
        else:
            raise ApplyDeltaError("Invalid opcode 0")
        left -= length
    if left:
        raise _gone_wild()
    return digest.digest()


def _copy_operation(delta: bytes, pos: int, cmd: int) -> tuple[int, int, int]:
    """A delta's copy operation ``cmd`` (its bytes from ``pos``): its offset in the base, its length
    (none written is 64 KiB, as git reads it) and where the next operation starts; ``IndexError``
    when the delta is cut short."""
    offset = length = 0
    for bit, shift in ((0x01, 0), (0x02, 8), (0x04, 16), (0x08, 24)):
        if cmd & bit:
            offset |= delta[pos] << shift
            pos += 1
    for bit, shift in ((0x10, 0), (0x20, 8), (0x40, 16)):
        if cmd & bit:
            length |= delta[pos] << shift
            pos += 1
    return offset, length or 0x10000, pos


def _gone_wild() -> ApplyDeltaError:
    return ApplyDeltaError("the delta does not make its stated result (git: delta replay has gone wild)")


def _applied(base: bytes, delta: bytes) -> bytes:
    """``apply_delta``'s result, refused as git's ``patch_delta`` refuses it when the delta goes on
    past it: dulwich stops reading a delta once its result is complete, so a pushed delta with
    operations after that was stored, and every git client then failed to read it ("delta replay has
    gone wild": a clone of the repository, its ``git fsck``)."""
    rebuilt = b"".join(apply_delta(base, delta))
    if not _ends_with_result(delta):
        raise _gone_wild()
    return rebuilt


def _ends_with_result(delta: bytes) -> bool:
    """Whether a delta ``apply_delta`` took ends with the operation that completes its result (the
    walk counts lengths only: ``apply_delta`` checked each operation up to there)."""
    _base_size, left, pos = _delta_head(delta)
    end = len(delta)
    while left > 0 and pos < end:
        cmd = delta[pos]
        pos += 1
        if cmd & 0x80:  # (inline: this walk is on every pushed delta; only the length matters)
            pos += (cmd & 1) + (cmd >> 1 & 1) + (cmd >> 2 & 1) + (cmd >> 3 & 1)
            length = 0
            if cmd & 0x10:
                length = delta[pos]
                pos += 1
            if cmd & 0x20:
                length |= delta[pos] << 8
                pos += 1
            if cmd & 0x40:
                length |= delta[pos] << 16
                pos += 1
            left -= length or 0x10000
        else:
            pos += cmd
            left -= cmd
    return pos == end and not left


def _in_place_inserts(delta: bytes, length: int) -> list[tuple[int, int]] | None:
    """The byte ranges of a delta's result that its inserts wrote, when every copy takes the base's
    bytes to the same place (a tree whose entries changed an id, or a mode of the same length);
    None for any other delta, or one whose result is not ``length`` bytes."""
    try:
        return _inserts(delta, length)
    except IndexError:  # (cut short: dulwich's apply_delta would have refused it first)
        return None


def _inserts(delta: bytes, length: int) -> list[tuple[int, int]] | None:
    pos = _delta_head(delta)[2]
    out = 0
    inserts: list[tuple[int, int]] = []
    end = len(delta)
    while pos < end:
        cmd = delta[pos]
        pos += 1
        if cmd & 0x80:  # (``_copy_operation`` inline: this walk is on every pushed tree's delta)
            offset = size = 0
            for bit, shift in ((0x01, 0), (0x02, 8), (0x04, 16), (0x08, 24)):
                if cmd & bit:
                    offset |= delta[pos] << shift
                    pos += 1
            for bit, shift in ((0x10, 0), (0x20, 8), (0x40, 16)):
                if cmd & bit:
                    size |= delta[pos] << shift
                    pos += 1
            if offset != out:
                return None
            out += size or 0x10000
        elif cmd:
            inserts.append((out, out + cmd))
            out += cmd
            pos += cmd
        else:
            return None
    return inserts if out == length else None


def _checked_from_delta(raw: bytes, delta: bytes, base: TreeShape, dotfiles: DotFiles | None, report: Report,
                        mode_warnings: bool, raw_len: int) -> TreeShape | None:
    """``_checked_in_place`` without parsing the tree: when the delta copies every byte of ``base``
    it keeps to the same place, the entries its inserts touch are the only ones that may differ, and
    each must still be where the base's was (``base.offsets``), under the base's name, with a mode
    git writes; then the tree parses as the base's entries with those, and is checked where they
    differ.  None when that is not so (the caller parses and checks the tree).

    A history's trees are mostly such deltas (an id or two of their entries change): parsing each
    whole was the largest part of checking a migration's push."""
    offsets = base.offsets
    assert offsets is not None
    if len(raw) != offsets[-1]:
        return None
    inserts = _in_place_inserts(delta, len(raw))
    if inserts is None:
        return None
    touched: set[int] = set()
    for start, stop in inserts:
        touched.update(range(bisect_right(offsets, start) - 1, bisect_left(offsets, stop)))
        if len(touched) > MAX_DELTA_ENTRIES:
            return None
    olds = base.entries
    fresh_at: list[int] = []
    fresh: list[TreeEntry] = []
    for at in sorted(touched):
        name = olds[at][0]
        end = offsets[at + 1]
        nul = end - raw_len - 1
        space = nul - len(name) - 1
        if raw[nul] != 0 or raw[space] != 0x20 or raw[space + 1:nul] != name:
            return None
        mode = CANONICAL_MODES.get(raw[offsets[at]:space])
        if mode is None:
            return None
        entry = (name, mode, binascii.hexlify(raw[nul + 1:end]))
        if entry != olds[at]:
            fresh_at.append(at)
            fresh.append(entry)
    if mode_warnings and fresh and _suspect_entries(fresh, raw_len):
        return None  # (the whole check says what it is)
    if dotfiles is not None and fresh:
        dotfiles.tree(fresh, report)
    entries = olds
    if fresh:
        entries = list(olds)
        for at, entry in zip(fresh_at, fresh):
            entries[at] = entry
    return TreeShape(entries, base.size, fresh, offsets)


def _suspect_names(joined: bytes) -> bool:
    """Whether a tree's names (joined by NUL, lower-cased) could give a name finding: a ``/``,
    ``.git`` (every NTFS spelling holds it or a ``~``), a byte that may lead an HFS+-ignorable code
    point, an empty, ``.`` or ``..`` name.  Substring tests: a regular expression costs more."""
    if b"/" in joined or b".git" in joined or b"~" in joined or b"\xe2" in joined or b"\xef" in joined:
        return True
    padded = b"\0" + joined + b"\0"
    return b"\0\0" in padded or b"\0.\0" in padded or b"\0..\0" in padded


def _check_written_modes(raw: bytes, raw_len: int, report: Report) -> None:
    """Refuse a tree whose modes are not written in octal digits alone, as git's tree reader refuses
    it ("malformed mode in tree entry": no git can read the tree).  The parser takes ``+100644`` as
    100644; only a tree longer than git's own modes make it (``_canonical_size``) can hold one."""
    pos, end = 0, len(raw)
    while pos < end:
        space = raw.find(b" ", pos)
        if space <= pos or raw[pos:space].translate(None, b"01234567"):
            report("badTree", "malformed mode in tree entry")
            return
        pos = raw.find(b"\0", space) + 1 + raw_len
        if pos <= space:
            break  # (the parser refused a tree cut short already)


def _canonical_size(names: set[bytes], keys: list[bytes], raw_len: int = 20) -> int:
    """The length of a tree of these entries with git's own modes: each entry takes ``name + 8 +
    raw_len`` bytes (28 with SHA-1; ``40000`` of a subtree one less; a subtree's key is its name
    and ``/``).  C-level sums: walking the entries costs more."""
    names_size = sum(map(len, names))
    subtrees = sum(map(len, keys)) - names_size
    return names_size + (8 + raw_len) * len(keys) - subtrees


def _suspect_modes(raw: bytes, size: int, modes: Collection[int], raw_len: int = 20) -> bool:
    """Whether a tree may write a mode with a leading zero, hold a null id or a mode git's fsck
    calls bad: a tree of another length than its ``_canonical_size`` is looked at, one holding
    ``raw_len`` NUL bytes in a row (a substring test), and one with a mode ``_GOOD_MODES`` lacks
    (``modes``: the set of its entries' modes)."""
    return len(raw) != size or b"\0" * raw_len in raw or not _GOOD_MODES.issuperset(modes)


_NAME_OF = operator.itemgetter(0)
_MODE_OF = operator.itemgetter(1)
_ID_OF = operator.itemgetter(2)
_IS_NOT_LEAF = frozenset(_NOT_LEAVES).__contains__


def _suspect_entries(entries: list[TreeEntry], raw_len: int) -> bool:
    """``_suspect_modes`` for the entries of a tree that differ from a base without any finding, all
    written as git writes them (so no other entry can hold a null id, and the length is git's): a
    null id or a mode ``_GOOD_MODES`` lacks among them.  (Looking for the null id in the whole tree
    cost a scan of every tree of a push, 0.15 µs a KiB.)"""
    null_id = b"0" * (2 * raw_len)  # hex, as parse_tree gives ids (as _tree_warnings looks)
    return any(entry[2] == null_id for entry in entries) or not _GOOD_MODES.issuperset(map(_MODE_OF, entries))


def _explain_tree(entries: list[tuple[bytes, int, bytes]], report: Report) -> None:
    """Report the first entry named twice, then the first out of order (each once, as git does).

    In git's order an entry and a later one of the same name can only be a file
    ``X`` and a subtree ``X`` (keys ``X`` < ``X/``), with only names that start
    with ``X`` between them; so a subtree looks back over those alone.
    """
    names: list[bytes] = []
    previous = None
    twice: bytes | None = None
    unsorted: tuple[bytes, bytes] | None = None
    for name, mode, _child in entries:
        if mode & S_IFMT == S_IFDIR:
            key = name + b"/"
            for earlier in reversed(names):
                if earlier == name:
                    twice = twice or name
                    break
                if not earlier.startswith(name):
                    break
        else:
            key = name
        if previous is not None and key <= previous:
            if key == previous:
                twice = twice or name
            elif unsorted is None:
                unsorted = (name, previous)
        names.append(name)
        previous = key
    if twice is not None:
        report("duplicateEntries", f"contains duplicate file entries (tree has the entry '{_shown(twice)}' twice)")
    if unsorted is not None:
        report("treeNotSorted", f"not properly sorted ('{_shown(unsorted[0])}' after '{_shown(unsorted[1])}')")
    if twice is None and unsorted is None:
        raise AssertionError("a tree failed the check but no entry is wrong")


def _shown(name: bytes) -> str:
    """A tree entry's name as a person reads it in a refusal (not Python's ``b'...'``)."""
    return name[:200].decode("utf-8", "backslashreplace")


_GOOD_MODES = frozenset({0o100644, 0o100755, 0o120000, 0o040000, 0o160000})
"""The modes git's strict fsck (receive-pack's ``receive.fsckObjects``, ``index-pack --strict``)
takes; ``100664``, which old gits wrote, only its lenient ``git fsck`` lets pass."""


def _tree_warnings(raw: bytes, entries: list[tuple[bytes, int, bytes]], report: Report, modes: bool = True,
                   raw_len: int = 20) -> None:
    """The tree findings git's fsck only warns about (each reported once, as git does): the names
    (only those ``_suspect_names`` picks are looked at closely), and with ``modes`` the modes and ids
    (``raw_len`` bytes each)."""
    found: dict[str, str] = {}
    null_id = b"0" * (2 * raw_len)  # hex, as parse_tree gives ids
    for name, mode, child in entries:
        if modes:
            if child == null_id:
                found.setdefault("nullSha1", "contains entries pointing to null sha1")
            if mode not in _GOOD_MODES:
                found.setdefault("badFilemode", "contains bad file modes")
        if name and name != b"." and name != b".." and b"/" not in name and b"~" not in name \
                and b".git" not in name.lower() and b"\xe2" not in name and b"\xef" not in name:
            continue  # (nothing a name finding needs)
        if b"/" in name:
            found.setdefault("fullPathname", "contains full pathnames")
        if not name:
            found.setdefault("emptyName", "contains empty pathname")
        if name == b".":
            found.setdefault("hasDot", "contains '.'")
        if name == b"..":
            found.setdefault("hasDotdot", "contains '..'")
        if is_dotgit(name):
            found.setdefault("hasDotgit", "contains '.git'")
    pos = 0
    while modes and pos < len(raw):  # the modes as written: parse_tree reads "0100644" as 100644
        if raw[pos:pos + 1] == b"0":
            found.setdefault("zeroPaddedFilemode", "contains zero-padded file modes")
            break
        end = raw.find(b"\0", pos)
        if end < 0:
            break
        pos = end + 1 + raw_len
    for msg_id, message in found.items():
        report(msg_id, message)



ObjectReader = Callable[[bytes], tuple[int, bytes]]


StorePresence = tuple[list[PackIndexView], Callable[[bytes], bool]]
"""The cheap views of a store's packs and a presence test over them (``store_presence``)."""


def store_presence(store: DiskObjectStore, lookups: StoreLookups | None = None) -> StorePresence:
    """``cheap_views`` and a ``Presence`` over them: what ``connected`` looks objects up with, made
    once for the checks of many refs (each made its own: a listing of the pack directory and a
    stat a pack, a third of the time of a push of 16,000 new refs).  ``lookups``: the push's,
    whose views and mapped indexes it uses."""
    if lookups is not None:
        return lookups.views, Presence(store, lookups.views, lookups.all_viewed, lookups.mapped).__contains__
    views, all_viewed = cheap_views(store)
    return views, Presence(store, views, all_viewed).__contains__


def connected(store: DiskObjectStore, tips: Iterable[bytes], added: Collection[bytes],
              links: PushLinks | None = None, presence: StorePresence | None = None,
              lookups: StoreLookups | None = None) -> bool:
    """Whether every object reachable from ``tips`` (hex) is in ``store``, reading only ``added`` ones.

    ``links``: what the push's objects link to, as ``PackIngest`` checked them (their types
    too): when every link is present, no walk is needed.  The walk checks the types itself.
    ``presence``: ``store_presence(store, lookups)``, made once for several calls (else made here).
    ``lookups``: the push's, which the walk reads with too (``presence`` must be made from them).
    """
    views, has = presence if presence is not None else store_presence(store, lookups)
    if links is not None and links.closed(added, has):
        return tips is added or all(tip in added or has(tip) for tip in tips)  # (added ones are there)
    with PackObjectReader(store, views + quarantine_views(store),
                          mapped=lookups.mapped if lookups is not None else None) as reader:
        return walk_connected(tips, added, reader.read, has, reader.type_of, object_format=object_format_of(store))


def quarantine_views(store: DiskObjectStore) -> list[PackIndexView]:
    """Views of the packs waiting in the store's quarantine (``Quarantine.expose``): the walk reads
    the push's own objects from them.  Built for this walk only, never cached (they move)."""
    views = []
    raw_len = object_format_of(store).raw_len
    for alternate in store.alternates:
        path = os.fspath(getattr(alternate, "path", ""))
        if os.path.basename(path).startswith(QUARANTINE_PREFIX):
            for base in git_packindex.pack_basenames(os.path.join(path, "pack")):
                views.append(git_packindex.read_index(base + ".idx", base + ".pack", raw_len))
    return views


def walk_connected(tips: Iterable[bytes], added: Collection[bytes], read: ObjectReader,
                   has: Callable[[bytes], bool], type_of: Callable[[bytes], int] | None = None, *,
                   object_format: ObjectFormat = SHA1_FORMAT) -> bool:
    """The connectivity walk of any store: ``read(hexsha) -> (type, raw)``, ``has(hexsha)``; ids
    of the store's ``object_format``.

    Objects that were stored before the push are complete by the store's
    invariant: only ``added`` ones are read, the others only looked up, and
    blobs are never read.  Every object must be of the type its link says (a
    tree entry's mode, a commit's ``tree`` and ``parent`` lines, a tag's ``type``):
    ``type_of(hexsha)`` tells a stored one's (default: ``read``).
    """
    kind_of = type_of or (lambda sha: read(sha)[0])
    raw_len, hex_len = object_format.raw_len, object_format.hex_len
    seen: dict[bytes, int] = {}  # id -> its type, or ANY: present, type not asked
    stack: list[Link] = [(tip, ANY) for tip in tips]
    try:
        while stack:
            sha, expected = stack.pop()
            known = seen.get(sha)
            if known is not None and (expected == ANY or known == expected):
                continue
            if known not in (None, ANY):
                return False  # linked to as two types
            if expected == BLOB or sha not in added:  # a stored object, or a blob: looked up, not read
                if known is None and sha not in added and not has(sha):
                    return False
                if expected != ANY and kind_of(sha) != expected:
                    return False
                seen[sha] = expected
                continue
            type_num, raw = read(sha)
            if expected not in (ANY, type_num):
                return False
            seen[sha] = type_num
            if known is not None:
                continue  # walked already
            if type_num == COMMIT:
                tree, parents = _commit_links(raw, hex_len)
                stack.append((tree, TREE))
                stack.extend((parent, COMMIT) for parent in parents)
            elif type_num == TREE:
                for _name, mode, child in parse_tree(raw, raw_len):
                    kind = mode & S_IFMT
                    if kind == S_IFDIR:
                        stack.append((child, TREE))
                    elif kind != S_IFGITLINK:
                        stack.append((child, BLOB))
            elif type_num == TAG:
                stack.append((_tag_target(raw, hex_len), _tag_type(raw)))
    except (MissingObject, KeyError, ValueError):
        return False
    return True


def _tag_type(raw: bytes) -> int:
    """The type a tag's ``type`` line names (``ANY`` when it names none)."""
    lines = raw.split(b"\n", 2)
    return _TYPE_NUMBERS.get(lines[1][len(b"type "):], ANY) if len(lines) > 1 and lines[1].startswith(b"type ") \
        else ANY
