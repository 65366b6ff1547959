"""The LFS objects of a repository on disk, each under its SHA-256, in the layout its own tools use.

A git repository keeps them in ``<git dir>/lfs/objects/<aa>/<bb>/<sha256>``,
git-lfs's own layout (a clone's ``.git/lfs/objects``); a Mercurial one (hg's
``lfs`` extension) in ``.hg/store/lfs/objects/<aa>/<the other 62 digits>``, as
``hg serve`` with the extension keeps them (and ``hg verify`` reads them).  An upload is
written to a temporary beside its final name, checked against its name (SHA-256)
and declared size, then renamed: a reader never sees half of one, and a wrong or
cut upload leaves nothing.  Nothing here removes an object.

``LfsLocks`` keeps a git repository's file locks (git-lfs's locking API) in
``<git dir>/lfs/locks.json``: each change reads, changes and rewrites the file
(a temporary renamed over it) under an exclusive ``flock`` of
``lfs/locks.lock``, so concurrent requests, of this process or another, see
each other's locks and a crash leaves the old file or the new one.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime

from dulwich.file import SharedPerm, adjust_shared_perm

from backends.blobs import (
    BlobCorrupt,
    NotStored,
    VerifiedWriter,
    check_intact,
    make_directory,
    open_checked,
    open_chunks,
    store_verified,
)
from protocols.errors import StorageError
from protocols.git_lfs import Lock

OBJECTS_DIR = os.path.join("lfs", "objects")
"""Under a git directory, or under a Mercurial store."""
MAX_OBJECT = 1 << 40
"""No object is refused for its size here: the request body bound of the transport applies."""
_HEX = frozenset("0123456789abcdef")


class LfsObjectRefused(ValueError):
    """An upload that is not what its name and size say: the message says why."""

    status = 422
    """The HTTP status it is answered with (the gateway sets another for Git LFS uploads)."""


class LfsObjectCorrupt(BlobCorrupt):
    """A stored object whose bytes do not hash to its name (``backends.blobs.BlobCorrupt``)."""

    kind = "LFS object"

    def __init__(self, oid: str, path: str) -> None:
        super().__init__(f"the server's copy of LFS object {oid} is corrupt (its contents do not match "
                         "its hash), so it was not sent; tell the server's operator", oid, path)
        self.oid = oid


def _checked(oid: str) -> str:
    if len(oid) != 64 or not set(oid) <= _HEX:
        raise LfsObjectRefused("the object name is not a SHA-256 in lower-case hex")
    return oid


class LfsStore:
    """The LFS objects of one repository: ``root/lfs/objects``; ``hg_layout``: Mercurial's names;
    ``perm``: the modes a git repository's ``core.sharedRepository`` asks of what is written (its
    objects, its locks and the directories made for them), as git gives its own files."""

    def __init__(self, root: str, hg_layout: bool = False, perm: SharedPerm | None = None) -> None:
        self._root = root
        self._dir = os.path.join(root, OBJECTS_DIR)
        self._hg = hg_layout
        self._perm = perm

    def locks(self) -> LfsLocks | None:
        """The repository's file locks; None for a Mercurial one (hg's lfs extension has none)."""
        return None if self._hg else LfsLocks(self._root, self._perm)

    def _path(self, oid: str) -> str:
        oid = _checked(oid)
        if self._hg:
            return os.path.join(self._dir, oid[:2], oid[2:])
        return os.path.join(self._dir, oid[:2], oid[2:4], oid)

    def path_of(self, oid: str) -> str:
        """Where the object ``oid`` is kept (for the operator's log)."""
        return self._path(oid)

    def size(self, oid: str) -> int | None:
        """The stored object's size; None when it is not here."""
        try:
            return os.stat(self._path(oid)).st_size
        except (FileNotFoundError, NotADirectoryError, LfsObjectRefused):
            return None

    def open(self, oid: str, first: int = 0, end: int | None = None) -> tuple[int, Iterator[bytes]] | None:
        """The object's size and its bytes in chunks, from byte ``first`` up to ``end`` (exclusive;
        None: the whole object); None when it is not here."""
        try:
            return open_chunks(self._path(oid), first, end)
        except LfsObjectRefused:
            return None

    def intact(self, oid: str, budget: list[int] | None = None) -> bool | None:
        """Whether the stored object's bytes hash to its name (``backends.blobs.check_intact``:
        remembered while its file is unchanged; None when it is not here or past ``budget``)."""
        try:
            path = self._path(oid)
        except LfsObjectRefused:
            return None
        return check_intact(path, oid, hashlib.sha256, budget)

    def open_checked(self, oid: str, first: int = 0, end: int | None = None) -> tuple[int, Iterator[bytes]] | None:
        """``open``, but an object whose bytes do not hash to its name raises ``LfsObjectCorrupt``
        before any of it is given out (``backends.blobs.open_checked``)."""
        try:
            path = self._path(oid)
        except LfsObjectRefused:
            return None
        return open_checked(path, oid, hashlib.sha256, LfsObjectCorrupt, first, end)

    def put(self, oid: str, size: int, data: Iterable[bytes]) -> None:
        """Keep an upload once it is ``size`` bytes that hash to ``oid``; raises ``LfsObjectRefused``
        (nothing kept) otherwise."""
        store_verified(self._path(oid), data, hashlib.sha256(), oid, LfsObjectRefused, MAX_OBJECT, size, self._perm)

    def upload(self, oid: str, size: int | None) -> VerifiedWriter:
        """``put`` a chunk at a time (an upload read as it arrives): written beside the object's place,
        kept by ``finish`` once it is ``size`` bytes (None: any size up to the limit) that hash to
        ``oid``.  ``LfsObjectRefused`` for a name that is not an object's."""
        return VerifiedWriter(self._path(oid), hashlib.sha256(), oid, LfsObjectRefused, MAX_OBJECT, size, self._perm)


MAX_LOCKS = 100_000
"""Locks one repository may hold: a create beyond this is refused (the file is read whole)."""
_THREADS = threading.Lock()
"""``flock`` serialises processes; this, the threads of one process (each opens its own descriptor)."""


class LockConflict(ValueError):
    """A lock on the path exists already: ``lock`` is it."""

    def __init__(self, lock: Lock) -> None:
        self.lock = lock
        super().__init__(f"'{lock.path}' is already locked by {lock.owner}")


class LockNotFound(KeyError):
    """No lock has that id."""


class LockNotOwned(PermissionError):
    """The lock is another user's and the unlock was not forced: ``lock`` is it."""

    def __init__(self, lock: Lock) -> None:
        self.lock = lock
        super().__init__(f"'{lock.path}' is locked by {lock.owner}; unlock it with --force to remove their lock")


class LfsLocks:
    """The file locks of one git repository, in ``<git dir>/lfs/locks.json``, oldest first;
    ``perm``: as ``LfsStore``'s."""

    def __init__(self, git_dir: str, perm: SharedPerm | None = None) -> None:
        self._dir = os.path.join(git_dir, "lfs")
        self._file = os.path.join(self._dir, "locks.json")
        self._perm = perm

    def all(self) -> list[Lock]:
        with self._held(write=False):
            return self._read()

    def create(self, path: str, owner: str, now: datetime | None = None) -> Lock:
        """Lock ``path`` for ``owner``; raises ``LockConflict`` when it is locked already."""
        with self._held(write=True):
            locks = self._read()
            held = next((lock for lock in locks if lock.path == path), None)
            if held is not None:
                raise LockConflict(held)
            if len(locks) >= MAX_LOCKS:
                raise StorageError(f"this repository holds {MAX_LOCKS} locks already; unlock some first")
            stamp = (now or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds")
            lock = Lock(secrets.token_hex(16), path, stamp, owner)
            self._write([*locks, lock])
            return lock

    def remove(self, lock_id: str, owner: str, force: bool) -> Lock:
        """Remove the lock ``lock_id``: ``owner``'s own, or another's when ``force``; raises
        ``LockNotFound`` or ``LockNotOwned``."""
        with self._held(write=True):
            locks = self._read()
            lock = next((lock for lock in locks if lock.id == lock_id), None)
            if lock is None:
                raise LockNotFound(lock_id)
            if lock.owner != owner and not force:
                raise LockNotOwned(lock)
            self._write([other for other in locks if other.id != lock_id])
            return lock

    @contextmanager
    def _held(self, write: bool) -> Iterator[None]:
        if write:
            make_directory(self._dir, self._perm)
        elif not os.path.exists(self._file):
            yield
            return
        with _THREADS, open(os.path.join(self._dir, "locks.lock"), "a+b") as guard:
            if write:
                with suppress(OSError):  # (one another user made keeps its modes)
                    adjust_shared_perm(guard.name, self._perm)
            fcntl.flock(guard.fileno(), fcntl.LOCK_EX if write else fcntl.LOCK_SH)
            yield

    def _read(self) -> list[Lock]:
        try:
            with open(self._file, "rb") as f:
                stored = json.load(f)
            return [Lock(str(item["id"]), str(item["path"]), str(item["locked_at"]), str(item["owner"]))
                    for item in stored["locks"]]
        except FileNotFoundError:
            return []
        except (ValueError, KeyError, TypeError) as exc:
            raise StorageError(f"the repository's LFS lock file {self._file} is damaged ({exc}); "
                               "fix or remove it on the server") from None

    def _write(self, locks: list[Lock]) -> None:
        body = json.dumps({"version": 1, "locks": [{"id": lock.id, "path": lock.path, "locked_at": lock.locked_at,
                                                    "owner": lock.owner} for lock in locks]}, indent=1).encode()
        try:
            fd, temporary = tempfile.mkstemp(dir=self._dir, prefix="locks.json.")
        except OSError as exc:
            raise NotStored(exc, "the lock", "the locks are as they were") from exc
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(body)
                f.flush()
                os.fsync(f.fileno())
            adjust_shared_perm(temporary, self._perm)  # (mkstemp's 0600, widened as git's files are)
            os.replace(temporary, self._file)
        except BaseException as exc:
            with suppress(FileNotFoundError):
                os.unlink(temporary)
            if isinstance(exc, OSError):  # a full disk: the locks stay as they were
                raise NotStored(exc, "the lock", "the locks are as they were") from exc
            raise
