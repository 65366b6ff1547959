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
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import BinaryIO

from dulwich.file import SharedPerm, adjust_shared_perm

from backends.blobs import CHUNK, NotStored, VerifiedWriter, make_directory, open_chunks, store_verified
from protocols.errors import StorageError
from protocols.git_lfs import Lock

OBJECTS_DIR = os.path.join("lfs", "objects")
"""Under a git directory, or under a Mercurial store."""
MAX_OBJECT = 1 << 40
"""No object is refused for its size here: the request body bound of the transport applies."""
_HEX = frozenset("0123456789abcdef")


class LfsObjectRefused(ValueError):
    """An upload that is not what its name and size say: the message says why."""


class LfsObjectCorrupt(StorageError):
    """A stored object whose bytes do not hash to its name (the disk, or someone, changed them):
    it is not sent.  ``path`` is where it lies, for the operator's log; the message is the client's."""

    def __init__(self, oid: str, path: str) -> None:
        super().__init__(f"the server's copy of LFS object {oid} is corrupt (its contents do not match "
                         "its hash), so it was not sent; tell the server's operator")
        self.oid = oid
        self.path = path


CHECKED_MAX = 65536
"""Objects whose check ``_CHECKED`` remembers (the least recently checked forgotten first)."""
_CHECKED: OrderedDict[str, tuple[tuple[int, int, int, int, int], bool]] = OrderedDict()
"""An object's path -> the stamp of the file when its bytes were hashed (device, inode, size,
modification and change times) and whether they matched its name: a file unchanged since is not
hashed again before it is sent (it is hashed as it goes out instead, its last chunk held back
until the hash is known).  Shared by the threads: ``_CHECKED_LOCK``."""
_CHECKED_LOCK = threading.Lock()


def _stamp(st: os.stat_result) -> tuple[int, int, int, int, int]:
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def _remembered(path: str, st: os.stat_result) -> bool | None:
    """What the last check of ``path`` found, if the file is as it was then; else None."""
    with _CHECKED_LOCK:
        known = _CHECKED.get(path)
        if known is None or known[0] != _stamp(st):
            return None
        _CHECKED.move_to_end(path)
        return known[1]


def _remember(path: str, st: os.stat_result, intact: bool) -> None:
    with _CHECKED_LOCK:
        _CHECKED[path] = (_stamp(st), intact)
        _CHECKED.move_to_end(path)
        while len(_CHECKED) > CHECKED_MAX:
            _CHECKED.popitem(last=False)


def _hash_file(f: BinaryIO) -> str:
    digest = hashlib.sha256()
    f.seek(0)
    while chunk := f.read(CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def _hashed_chunks(f: BinaryIO, oid: str, path: str, size: int) -> Iterator[bytes]:
    """The whole of an object checked before (``_CHECKED``), hashed as it is read, each chunk given
    out only once the next is read: the last one only once the hash matches, so that a file
    changed in place since its check is cut short (``LfsObjectCorrupt``), never sent whole."""
    digest = hashlib.sha256()
    held = b""
    read = 0
    try:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            read += len(chunk)
            if held:
                yield held
            held = chunk
        if read != size or digest.hexdigest() != oid:
            with _CHECKED_LOCK:
                _CHECKED.pop(path, None)
            raise LfsObjectCorrupt(oid, path)
        if held:
            yield held
    finally:
        f.close()


def _plain_chunks(f: BinaryIO, left: int | None) -> Iterator[bytes]:
    try:
        while (left is None or left > 0) and (chunk := f.read(CHUNK if left is None else min(CHUNK, left))):
            if left is not None:
                left -= len(chunk)
            yield chunk
    finally:
        f.close()


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
        """Whether the stored object's bytes hash to its name (remembered while its file is
        unchanged); None when it is not here, or when hashing it would take more than what is left
        of ``budget`` (a one-item list of bytes, lowered by what is hashed)."""
        try:
            f = open(self._path(oid), "rb")  # noqa: SIM115 -- closed below
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError, LfsObjectRefused):
            return None
        with f:
            st = os.fstat(f.fileno())
            known = _remembered(f.name, st)
            if known is not None:
                return known
            if budget is not None:
                if st.st_size > budget[0]:
                    return None
                budget[0] -= st.st_size
            intact = _hash_file(f) == oid
            _remember(f.name, st, intact)
            return intact

    def open_checked(self, oid: str, first: int = 0, end: int | None = None) -> tuple[int, Iterator[bytes]] | None:
        """``open``, but an object whose bytes do not hash to its name raises ``LfsObjectCorrupt``
        before any of it is given out: it is hashed first (what is sent is read from the same open
        file), unless it is sent whole and was found intact before, its file unchanged since (then
        it is hashed as it goes and its last chunk held back until the hash matches)."""
        try:
            path = self._path(oid)
            f = open(path, "rb")  # noqa: SIM115 -- closed by the iterator
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError, LfsObjectRefused):
            return None
        try:
            st = os.fstat(f.fileno())
            whole = first == 0 and (end is None or end >= st.st_size)
            known = _remembered(path, st)
            if known and whole:
                return st.st_size, _hashed_chunks(f, oid, path, st.st_size)
            if known is None or not whole:  # (a span cannot be checked as it goes: the whole is, first)
                known = _hash_file(f) == oid
                _remember(path, st, known)
            if not known:
                raise LfsObjectCorrupt(oid, path)
            f.seek(first)
        except BaseException:
            f.close()
            raise
        return st.st_size, _plain_chunks(f, None if end is None else end - first)

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
