"""The native Mercurial storage engine (issue 4): open, create and hold ``.hg`` repositories.

Entry points for the backend integrator: :func:`open_repository`,
:func:`create_repository`, :func:`is_hg_repository` and
:class:`MemoryHgRepository`; every repository object conforms to
``backends.interfaces.HgRepository``.  Nothing here imports Mercurial or runs ``hg``.

Supported on disk: what ``hg init`` of Mercurial 6.x/7.x makes (revlogv1, store,
fncache, dotencode, generaldelta, sparserevlog, share-safe, zstd, zlib or no
chunk compression), the layout of Mercurial 1.1 to 1.6 (fncache without dotencode),
legacy (non-generaldelta) revlogs, inline and split revlogs, bookmarksinstore,
largefiles, lfs and persistent-nodemap (left as hg wrote it: see
``requirements.PERSISTENT_NODEMAP``).  Refused with ``UnsupportedFeature`` ("unsupported repository
feature: X"): any other requirement (treemanifest, revlogv2, changelogv2, narrowhg,
internal phases, ...), shares (``hg share``: their store is another repository's) and
repositories older than fncache (with how to upgrade them).  Obsolescence markers (``obsstore``,
format 0 or 1) hide the changesets they obsolete, as in hg's server (``obsstore``).

Module map: ``mpatch`` (bounded deltas), ``store`` (path encoding), ``revlog``
(index, chunks, writer), ``changelog`` (text formats), ``keys`` (phaseroots,
bookmarks, hgrc), ``obsstore`` (obsolescence markers, hidden changesets), ``graph`` (DAG set computations), ``repository`` (queries and
changegroup emission), ``writer`` (ingest transactions), ``transaction`` (the
hg-compatible undo journal), ``lock`` (hg-compatible locks), ``vfs`` (disk or
memory files), ``memory`` (the in-memory repository).
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import time

from backends.blobs import made_whole
from backends.hg import kept, revlog
from backends.hg import requirements as reqs
from backends.hg.lock import FileLock
from backends.hg.memory import MemoryHgRepository
from backends.hg.repository import HgRepo, range_hashes_parts, views_parts
from backends.hg.vfs import FsVfs, read_regular
from backends.interfaces import LockWait
from backends.lru import LruCache, naming_under
from protocols.errors import RepositoryNotFound, StorageError, UnsupportedFeature

DUMMY_CHANGELOG = b"\0\0\xff\xff dummy changelog to prevent using the old repo layout"
"""``.hg/00changelog.i`` of a store repo: a revlog header no old client accepts."""


class FsLocks:
    """``.hg/wlock`` then ``.hg/store/lock``, exactly the files a real ``hg`` takes."""

    def __init__(self, hg_dir: str, name: str) -> None:
        # (named as hg names them in its waiting message, the repository by its name here, not its path)
        self.wlock = FileLock(os.path.join(hg_dir, "wlock"), desc=f"working directory of {name}")
        self.lock = FileLock(os.path.join(hg_dir, "store", "lock"), desc=f"repository {name}")

    def acquire(self, wait: LockWait | None = None) -> None:
        """Both, within one wait for the two together (``wait.timeout``, else ``FileLock.timeout``)."""
        timeout = wait.timeout if wait is not None and wait.timeout is not None else self.wlock.timeout
        deadline = time.monotonic() + timeout
        notify = wait.notify if wait is not None else None
        self.wlock.acquire(deadline, notify)
        try:
            self.lock.acquire(deadline, notify)
        except BaseException:
            self.wlock.release()
            raise

    def release(self) -> None:
        try:
            self.lock.release()
        finally:
            self.wlock.release()

    def held_by_other(self) -> bool:
        return self.wlock.held_by_other() or self.lock.held_by_other()

    def try_acquire_wlock(self) -> bool:
        """The ``wlock`` alone, if it is free now: what hg takes to write its caches."""
        return self.wlock.try_acquire()

    def release_wlock(self) -> None:
        self.wlock.release()


def is_hg_repository(path: str) -> bool:
    """True if ``path`` holds a ``.hg`` directory with a requires file."""
    return os.path.isfile(os.path.join(path, ".hg", "requires"))


def read_requirements(hg_dir: str) -> frozenset[str]:
    """Working-copy requirements plus, with share-safe, the store's own file."""
    found = reqs.parse(read_regular(os.path.join(hg_dir, "requires")))  # (a FIFO: NotRegularFile, not a wait)
    if found & {"shared", "relshared"}:  # its store is another repository's (.hg/sharedpath)
        raise UnsupportedFeature("unsupported repository feature: a share of another repository (hg share); "
                                 "serve the repository its .hg/sharedpath names instead")
    if reqs.SHARE_SAFE in found:
        found |= _store_requirements(hg_dir)
    reqs.check(found)
    return frozenset(found)


STORE_REQUIRES_WAIT = 0.5
"""Seconds a share-safe repository's missing ``.hg/store/requires`` is waited for: ``hg
debugupgraderepo`` making a repository share-safe writes ``.hg/requires`` first and the store's file
just after, and a clone opening the repository in between waits rather than fails."""


def _store_requirements(hg_dir: str) -> set[str]:
    path = os.path.join(hg_dir, "store", "requires")
    deadline = time.monotonic() + STORE_REQUIRES_WAIT
    while True:
        try:
            return reqs.parse(read_regular(path))
        except FileNotFoundError:
            if time.monotonic() >= deadline:
                raise StorageError("the repository's .hg/requires says share-safe but its .hg/store/requires is "
                                   "missing (an hg debugupgraderepo under way?); try again, or tell the server's "
                                   "operator") from None
        time.sleep(0.02)


def open_repository(path: str, name: str) -> HgRepo:
    """Open an existing repository, rolling back a transaction a killed writer left behind."""
    if not is_hg_repository(path):
        old = os.path.join(path, ".hg", "00changelog.i")
        if os.path.isfile(old) or os.path.isdir(os.path.join(path, ".hg", "data")):  # Mercurial before 0.9.2
            raise UnsupportedFeature("unsupported repository feature: a Mercurial repository without "
                                     ".hg/requires (made by Mercurial before 0.9.2); upgrade it with "
                                     "'hg clone --pull OLD NEW' to serve it")
        raise RepositoryNotFound(f"repository {name} not found")
    hg_dir = os.path.join(path, ".hg")
    found = read_requirements(hg_dir)
    store_dir = os.fsencode(os.path.realpath(os.path.join(hg_dir, "store")))
    # (hg's: the working directory's vfs takes the store's mode too; read at the first write)
    store = FsVfs(store_dir, mode_of=store_dir)
    # Index snapshots are shared with every other open of this store (same directory).
    repo = HgRepo(name, store, FsVfs(os.fsencode(hg_dir), mode_of=store_dir), found, FsLocks(hg_dir, name),
                  cache_scope=store_dir)
    repo.recover_if_needed()
    return repo


READ_REUSE_BUDGET = kept.KEPT_BYTES
"""Bytes the engine keeps parsed between requests in all (``kept.KEPT``): the repositories
``open_for_reading`` keeps (at most ``READ_KEPT``), the views, indexes, branches, tags... of
every store; the gateway sets ``READ_REUSE.budget`` (the pool's) from ``[limits]
hg_kept_repositories_bytes``, else this, as the policy is read (``gateway.limits.apply_hg_kept_budget``)."""

READ_KEPT = 16
"""Repositories ``open_for_reading`` keeps at most (the most recently asked)."""

REPO_BYTES = 20_000
"""A kept ``HgRepo`` itself, beside its indexes and views: its vfs, locks, caches' records."""


def _kept_parts(kept_repo: tuple[tuple[int, ...], HgRepo]) -> list[tuple[object, int]]:
    """What a kept repository holds (``kept.KEPT``), as it holds it now: its changelog's and
    manifest's snapshots (every index it keeps but filelogs'), its views, branches, markers and
    hg-evolve's range hashes;
    weighed again each time it is given to a request, since requests make it hold more."""
    repo = kept_repo[1]
    parts: list[tuple[object, int]] = [(repo, REPO_BYTES)]
    parts.extend((index, kept.index_bytes(index)) for index in repo.revlogs.kept_indexes())
    views, hidden, branches, markers = repo._views, repo._hidden_views, repo._branch_cache[0], repo._obsstore
    if views is not None:
        parts.extend(views_parts(views))
    if hidden is not None and hidden[1] is not views:
        parts.extend(views_parts(hidden[1]))
    if branches:
        parts.append((branches, kept.branches_bytes(branches)))
    if markers is not None:
        parts.append((markers[1], kept.markers_bytes(markers[1])))
    ranges = repo._kept_range_hashes
    if ranges is not None:
        parts.extend(range_hashes_parts(ranges))
    return parts


class _KeptRepositories(LruCache[tuple[str, str], tuple[tuple[int, ...], HgRepo]]):
    """``READ_REUSE``: its ``budget`` is the whole pool's (``kept.KEPT``), and a repository
    holding more than that is not kept (no quarter rule: one large repository polled often may be
    kept alone)."""

    @property
    def budget(self) -> int:
        return kept.KEPT.budget

    @budget.setter
    def budget(self, budget: int) -> None:
        if budget != kept.KEPT.budget:
            kept.KEPT.budget = budget

    def _too_large(self, cost: int) -> bool:
        return cost > kept.KEPT.budget


READ_REUSE = _KeptRepositories(READ_REUSE_BUDGET, pool=kept.KEPT, parts=_kept_parts, regrow=True,
                               max_entries=READ_KEPT)
"""Repositories ``open_for_reading`` gave, by path and name, with what their files said when
opened: the most recently asked ``READ_KEPT`` within ``kept.KEPT``, weighed by what they hold
(``_kept_parts``: about 500 bytes a changeset for the changelog's index, node map and views, 440
a manifest revision once its index is read; an index of more than ``revlog.LAZY_ENTRIES`` entries,
read lazily, 92 bytes an entry and 136 more once its node map is built), a repository holding more than the whole budget not
kept: each request opens it, as before; its filelogs' indexes only the shared cache keeps
(``RevlogCache.share_filelogs_only``)."""
_READ_REUSE_LOCK = threading.Lock()


def open_for_reading(path: str, name: str) -> HgRepo:
    """``open_repository``'s repository for a request that only reads it and sets nothing on it
    (the HTTP wire commands a poll sends: ``capabilities``, ``batch``, ``listkeys``...): the one
    opened before for ``path`` is given again while nothing an open reads has changed on disk
    (``_open_state``), so that such requests stop paying an open each.  What it answers is read
    afresh from disk as with any open (the changelog, phases, bookmarks, markers, the hgrc: by
    their stamps), so a push through hgwire or a commit by ``hg`` in the repository is seen by the
    next request.  Threads may share it: it keeps its derived data under its own lock.  Never for
    a push (``transaction``) or a request that changes what it serves (``serve_hidden``)."""
    state = _open_state(path)
    key = (path, name)
    if state is not None:
        with _READ_REUSE_LOCK:
            kept = READ_REUSE.get(key)
        if kept is not None and kept[0] == state and not kept[1].serve_hidden:
            return kept[1]
    repo = open_repository(path, name)
    repo.revlogs.share_filelogs_only()  # (what one request read must not stay with it for the next ones)
    if state is not None and not repo.recovered and state == _open_state(path):
        with _READ_REUSE_LOCK:
            READ_REUSE.put(key, (state, repo))
        repo.revlogs.on_grow = functools.partial(READ_REUSE.reweigh, key)  # (weighed again as it grows)
    return repo


def forget(path: str) -> int:
    """Let go of everything the engine keeps of the repository that was at ``path``, found gone
    (removed or renamed: an open of it failed): the repository ``open_for_reading`` kept, and in every
    cache of ``kept.KEPT`` its store's indexes, views, branches, tags, bookmarks, markers and store
    paths, the manifests its pages read, what the branch cache last wrote, and the digests of its
    split indexes.  They were held until the budget pushed them out.  How many values went."""
    hg_dir = os.path.join(path, ".hg")
    # (the keys name the repository's path, its store's as ``open_repository`` names it, or its ``.hg``)
    named = (path, os.fsencode(os.path.join(hg_dir, "store")), os.fsencode(hg_dir))
    return kept.KEPT.drop_named(*named) + revlog.forget_appends(naming_under(path))


def _open_state(path: str) -> tuple[int, ...] | None:
    """What ``open_repository`` reads and keeps, as stamps: the identity of ``.hg`` and of its store
    (a moved, replaced or upgraded repository is another), the requirements files' (inode, size,
    modification time); None while the store has a journal (a write under way or interrupted: an
    open then rolls a killed one back) or when one cannot be read (an open says why)."""
    hg_dir = os.path.join(path, ".hg")
    store = os.path.join(hg_dir, "store")
    try:
        own, linked, real, requires = os.lstat(hg_dir), os.lstat(store), os.stat(store), os.stat(
            os.path.join(hg_dir, "requires"))
        if os.path.lexists(os.path.join(store, "journal")):
            return None
        try:
            shared = os.stat(os.path.join(store, "requires"))
            store_requires: tuple[int, ...] = (shared.st_ino, shared.st_size, shared.st_mtime_ns, shared.st_ctime_ns)
        except FileNotFoundError:
            store_requires = ()
    except OSError:
        return None
    return (own.st_ino, own.st_dev, linked.st_ino, linked.st_mode, real.st_ino, real.st_dev, requires.st_ino,
            requires.st_size, requires.st_mtime_ns, requires.st_ctime_ns, *store_requires)


def create_repository(path: str, name: str) -> HgRepo:
    """Create a repository laid out exactly as ``hg init`` of Mercurial 7.2 does."""
    made = not os.path.isdir(path)
    os.makedirs(path, exist_ok=True)

    def make(building: str) -> None:
        os.makedirs(os.path.join(building, "store"))
        with open(os.path.join(building, "00changelog.i"), "wb") as f:
            f.write(DUMMY_CHANGELOG)
        with open(os.path.join(building, "store", "requires"), "wb") as f:
            f.write(reqs.format_requirements(reqs.STORE_DEFAULT))
        with open(os.path.join(building, "requires"), "wb") as f:
            f.write(reqs.format_requirements(reqs.WORKING_COPY_DEFAULT))

    try:
        made_whole(os.path.join(path, ".hg"), make, ".hg-creating-")
    except FileExistsError:
        raise FileExistsError(f"repository {name} already exists") from None
    except BaseException:
        if made:
            with contextlib.suppress(OSError):
                os.rmdir(path)
        raise
    return open_repository(path, name)


__all__ = [
    "HgRepo", "MemoryHgRepository", "create_repository", "forget", "is_hg_repository", "open_for_reading",
    "open_repository",
]
