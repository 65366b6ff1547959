"""Files kept whole under the hash of their bytes (LFS objects, largefiles): written only once
they are what their name says, and read back in chunks; and directories made whole beside their
place, then renamed there (``made_whole``: a new repository).

``open_checked`` reads one back only once its bytes still hash to its name (``intact`` checks one
without reading it out): a file the disk (or someone) changed raises ``BlobCorrupt`` before its
first byte is given out, and a file found intact before and unchanged since is hashed as it goes
instead, its last chunk held back until the hash is known.

``store_verified`` writes an upload to a temporary beside its final name, hashes it as it
goes, checks its size and hash, fsyncs it and renames it into place: a reader never sees half
of one, and a wrong, oversized or cut upload leaves nothing behind.  ``VerifiedWriter`` does the
same a chunk at a time, for an upload read as it arrives.  The temporary is ``flock``ed while it
is written: one that nobody holds any more is a dead upload's (the service killed, ``kill -9`` or
the machine's end, mid-upload), and the next upload into its directory removes it, where each
such upload left its bytes (up to 2 GiB an object) for good.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import stat
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO

from dulwich.file import SharedPerm, adjust_shared_perm

from protocols.errors import ProtocolError, StorageError, storage_advice

CHUNK = 1 << 17


class NotStored(ProtocolError):
    """The server's disk refused an upload (full, over quota, an I/O error): nothing was kept.
    HTTP 507 Insufficient Storage, as Git LFS's API has it."""

    def __init__(self, exc: OSError, what: str = "the upload", after: str = "nothing was kept") -> None:
        super().__init__(f"the server could not store {what} ({exc.strerror or exc}); {after}, "
                         f"{storage_advice(exc)}", http_status=507)


def store_verified(final: str | bytes, data: Iterable[bytes], digest: Any, expected: str,
                   refuse: Callable[[str], Exception], max_size: int, exact_size: int | None = None,
                   perm: SharedPerm | None = None) -> None:
    """Write ``data`` to ``final`` once it hashes (``digest``, a fresh hashlib object) to the hex
    ``expected`` and is ``exact_size`` bytes (or at most ``max_size``); else raise ``refuse(why)``,
    or ``NotStored`` when the disk refuses it.  ``perm``: as ``VerifiedWriter``'s."""
    writer = VerifiedWriter(final, digest, expected, refuse, max_size, exact_size, perm)
    try:
        for chunk in data:
            writer.write(chunk)
        writer.finish()
    finally:
        writer.abort()


class VerifiedWriter:
    """``store_verified`` a chunk at a time, for an upload read as it arrives: ``write`` each chunk,
    then ``finish`` (the checks, the rename); ``abort`` (a no-op once finished) removes what was
    written.  Each raises ``refuse(why)`` for an upload that is not what it says, ``NotStored`` when
    the disk refuses it; either way nothing is kept.  ``perm``: the modes a git repository's
    ``core.sharedRepository`` asks, given to the file and the directories made for it, as git
    gives them to what it writes (dulwich's ``adjust_shared_perm``), so that the other members of
    the group can write there too; None: the umask's."""

    def __init__(self, final: str | bytes, digest: Any, expected: str, refuse: Callable[[str], Exception],
                 max_size: int, exact_size: int | None = None, perm: SharedPerm | None = None) -> None:
        self._final = os.fsdecode(final)
        self._digest = digest
        self._expected = expected
        self._refuse = refuse
        self._max_size = max_size
        self._exact_size = exact_size
        self._limit = max_size if exact_size is None else min(max_size, exact_size)
        self._perm = perm
        self.written = 0
        self._tmp: str | None = None
        parent = os.path.dirname(self._final)
        self._made = _missing_directories(parent)
        """The directories this upload made for its object (``aa/bb/``): removed again if it is refused."""
        try:
            for attempt in range(3):
                try:
                    os.makedirs(parent, exist_ok=True)
                    _share_directories(reversed(self._made), perm)
                    fd, self._tmp = tempfile.mkstemp(dir=parent, prefix=TEMPORARY_PREFIX)
                    break
                except FileNotFoundError:  # another refused upload removed a directory on the way meanwhile
                    if attempt == 2:
                        raise
            self._file: BinaryIO = os.fdopen(fd, "wb")
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # (its own new file: never held by another)
        except OSError as exc:
            self.abort()
            raise NotStored(exc) from exc
        _sweep_now_and_then(parent)

    def write(self, chunk: bytes) -> None:
        if self._tmp is None:
            raise ValueError("the upload is over")
        self.written += len(chunk)
        if self.written > self._limit:
            self.abort()
            exact = self._exact_size
            raise self._refuse(f"the upload is larger than the {exact} bytes it was announced with"
                               if exact is not None and exact <= self._max_size
                               else f"the upload is larger than {self._max_size} bytes")
        self._digest.update(chunk)
        try:
            self._file.write(chunk)
        except OSError as exc:
            self.abort()
            raise NotStored(exc) from exc

    def finish(self) -> None:
        """Keep the upload under its final name once its size and hash are right."""
        if self._tmp is None:
            raise ValueError("the upload is over")
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
        except OSError as exc:
            self.abort()
            raise NotStored(exc) from exc
        if self._exact_size is not None and self.written != self._exact_size:
            self.abort()
            raise self._refuse(f"the upload has {self.written} bytes, not the {self._exact_size} it was "
                               "announced with")
        if self._digest.hexdigest() != self._expected:
            self.abort()
            raise self._refuse("the upload's contents do not match its hash")
        try:
            os.chmod(self._tmp, 0o644 & ~process_umask())  # as a file the service made (mkstemp's is 0600)
            adjust_shared_perm(self._tmp, self._perm)
            os.replace(self._tmp, self._final)
        except OSError as exc:
            self.abort()
            raise NotStored(exc) from exc
        self._tmp = None

    def abort(self) -> None:
        """Drop what was written (the space it took is free again)."""
        tmp, self._tmp = self._tmp, None
        if tmp is None:
            return
        file = getattr(self, "_file", None)
        if file is not None:
            with contextlib.suppress(OSError):
                file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        for directory in self._made:  # the deepest first; one another upload uses stays
            with contextlib.suppress(OSError):
                os.rmdir(directory)


TEMPORARY_PREFIX = ".tmp-"

DEAD_AFTER = 5.0
"""Seconds since a temporary was last written before it may be found dead (no ``flock`` on it):
the moment between another upload's ``mkstemp`` and its ``flock`` is not mistaken for death."""


SWEEP_INTERVAL = 3600.0
"""Seconds between two looks for dead temporaries in one directory (hg's largefiles share one
directory, of maybe 100,000 files: listing it took 0.1 s, too much for every upload)."""

_swept: dict[str, float] = {}
"""When each directory was last looked at for dead temporaries (this process's uploads)."""


def _sweep_now_and_then(directory: str) -> None:
    import time

    now = time.monotonic()
    last = _swept.get(directory)
    if last is not None and now - last < SWEEP_INTERVAL:
        return
    if len(_swept) >= 65536:
        _swept.clear()
    _swept[directory] = now
    remove_dead_temporaries(directory)


def remove_dead_temporaries(directory: str, now: float | None = None) -> list[str]:
    """Remove the temporaries in ``directory`` that no upload writes any more (no ``flock`` on them,
    unwritten for ``DEAD_AFTER`` seconds); their names.  Best effort: whatever cannot be looked at
    or removed stays."""
    import time

    now = time.time() if now is None else now
    removed: list[str] = []
    try:
        names = [n for n in os.listdir(directory) if n.startswith(TEMPORARY_PREFIX)]
    except OSError:
        return removed
    for name in names:
        path = os.path.join(directory, name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            found = os.fstat(fd)
            if not stat.S_ISREG(found.st_mode) or now - found.st_mtime < DEAD_AFTER:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # an upload writes it
                continue
            with contextlib.suppress(OSError):
                os.unlink(path)
                removed.append(name)
        finally:
            os.close(fd)
    return removed


def _missing_directories(path: str) -> list[str]:
    """``path`` and its parents that do not exist yet, the deepest first."""
    missing: list[str] = []
    while path and not os.path.isdir(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return missing


def make_directory(path: str, perm: SharedPerm | None) -> None:
    """Make ``path`` and the directories above it that are missing, each given ``perm``'s modes."""
    made = _missing_directories(path)
    os.makedirs(path, exist_ok=True)
    _share_directories(reversed(made), perm)


def _share_directories(directories: Iterable[str], perm: SharedPerm | None) -> None:
    """Give directories just made ``core.sharedRepository``'s modes (``perm``), the topmost first;
    one another process made meanwhile, and owns, keeps the modes it gave it."""
    for directory in directories:
        with contextlib.suppress(OSError):
            adjust_shared_perm(directory, perm)


def _proc_umask() -> int | None:
    """The process's umask as ``/proc`` tells it now (thread-safe), or None where it does not."""
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _import_umask() -> int:
    """The umask at import, set and restored (before any thread writes files)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


UMASK: int = _import_umask()
"""The umask at import, for where ``/proc`` cannot tell it at the time (``process_umask`` asks
each time: a daemon's umask is set after this module is imported)."""


def process_umask() -> int:
    """The process's umask now (``/proc``), or at import where that cannot be read: for a file
    made with ``mkstemp`` (0600) and then given the mode an ``open`` would have given it."""
    mask = _proc_umask()
    return UMASK if mask is None else mask


def made_whole(target: str, make: Callable[[str], None], prefix: str) -> None:
    """Make the directory ``target`` with ``make(directory)`` in a hidden one beside it (named
    ``prefix`` and a random part), then rename that into place: ``target`` never exists half made
    (a full disk, a killed server).  ``FileExistsError`` when ``target`` exists (but as an empty
    directory); whatever else fails leaves nothing."""
    parent = os.path.dirname(target)
    building = tempfile.mkdtemp(dir=parent, prefix=prefix)
    try:
        # as ``mkdir`` would make it there (mkdtemp's is 0700): the umask's mode, and a setgid
        # parent's group bit, which the new directory inherited (not the parent's whole mode)
        inherited = os.stat(building).st_mode & stat.S_ISGID
        os.chmod(building, (0o777 & ~process_umask()) | inherited)
        make(building)
        try:
            os.rename(building, target)
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
                raise FileExistsError(f"{target} exists already") from exc
            raise
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise


def open_chunks(path: str | bytes, first: int = 0, end: int | None = None) -> tuple[int, Iterator[bytes]] | None:
    """A file's size and its bytes in chunks (open until they are read or the iterator is closed),
    from byte ``first`` up to ``end`` (exclusive; None: its end); None when there is no such file."""
    try:
        f = open(path, "rb")  # noqa: SIM115 -- closed by the iterator
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    if first:
        f.seek(first)
    return os.fstat(f.fileno()).st_size, _chunks(f, None if end is None else end - first)


def _chunks(f: BinaryIO, left: int | None = None) -> Iterator[bytes]:
    try:
        while (left is None or left > 0) and (chunk := f.read(CHUNK if left is None else min(CHUNK, left))):
            if left is not None:
                left -= len(chunk)
            yield chunk
    finally:
        f.close()


class BlobCorrupt(StorageError):
    """A stored file whose bytes no longer hash to its name (the disk, or someone, changed them):
    it is not sent.  ``name`` is its hash, ``path`` where it lies (for the operator's log); the
    message is the client's; ``kind`` says what it is, in the operator's words."""

    kind = "stored file"

    def __init__(self, message: str, name: str, path: str) -> None:
        super().__init__(message)
        self.name = name
        self.path = path


CHECKED_MAX = 65536
"""Files whose check ``_CHECKED`` remembers (the least recently checked forgotten first)."""
_CHECKED: OrderedDict[str, tuple[tuple[int, int, int, int, int], bool]] = OrderedDict()
"""A file's path -> the stamp of the file when its bytes were hashed (device, inode, size,
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


def _hash_file(f: BinaryIO, new_digest: Callable[[], Any]) -> str:
    digest = new_digest()
    f.seek(0)
    while chunk := f.read(CHUNK):
        digest.update(chunk)
    return str(digest.hexdigest())


def _hashed_chunks(f: BinaryIO, name: str, path: str, size: int, new_digest: Callable[[], Any],
                   corrupt: Callable[[str, str], BlobCorrupt]) -> Iterator[bytes]:
    """The whole of a file checked before (``_CHECKED``), hashed as it is read, each chunk given
    out only once the next is read: the last one only once the hash matches, so that a file
    changed in place since its check is cut short (``corrupt(name, path)``), never sent whole."""
    digest = new_digest()
    held = b""
    read = 0
    try:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            read += len(chunk)
            if held:
                yield held
            held = chunk
        if read != size or digest.hexdigest() != name:
            with _CHECKED_LOCK:
                _CHECKED.pop(path, None)
            raise corrupt(name, path)
        if held:
            yield held
    finally:
        f.close()


_ABSENT = (FileNotFoundError, NotADirectoryError, IsADirectoryError)


def remembered_intact(path: str) -> bool | None:
    """What the last check of the file at ``path`` found, if it is unchanged since; None when it
    was not checked, changed since, or is not there (nothing is hashed: as cheap as a stat)."""
    try:
        st = os.stat(path)
    except (*_ABSENT, PermissionError):
        return None
    return _remembered(path, st)


def check_intact(path: str, name: str, new_digest: Callable[[], Any], budget: list[int] | None = None) -> bool | None:
    """Whether the bytes of the file at ``path`` hash (``new_digest()``, a fresh hashlib object)
    to the hex ``name`` (remembered while its file is unchanged); None when it is not there, or
    when hashing it would take more than what is left of ``budget`` (a one-item list of bytes,
    lowered by what is hashed)."""
    try:
        f = open(path, "rb")  # noqa: SIM115 -- closed below
    except _ABSENT:
        return None
    with f:
        st = os.fstat(f.fileno())
        known = _remembered(path, st)
        if known is not None:
            return known
        if budget is not None:
            if st.st_size > budget[0]:
                return None
            budget[0] -= st.st_size
        intact = _hash_file(f, new_digest) == name
        _remember(path, st, intact)
        return intact


def open_checked(path: str, name: str, new_digest: Callable[[], Any], corrupt: Callable[[str, str], BlobCorrupt],
                 first: int = 0, end: int | None = None) -> tuple[int, Iterator[bytes]] | None:
    """``open_chunks``, but a file whose bytes do not hash (``new_digest()``) to the hex ``name``
    raises ``corrupt(name, path)`` before any of it is given out: it is hashed first (what is sent
    is read from the same open file), unless it is sent whole and was found intact before, its
    file unchanged since (then it is hashed as it goes and its last chunk held back until the
    hash matches).  None when there is no such file."""
    try:
        f = open(path, "rb")  # noqa: SIM115 -- closed by the iterator
    except _ABSENT:
        return None
    try:
        st = os.fstat(f.fileno())
        whole = first == 0 and (end is None or end >= st.st_size)
        known = _remembered(path, st)
        if known and whole:
            return st.st_size, _hashed_chunks(f, name, path, st.st_size, new_digest, corrupt)
        if known is None or not whole:  # (a span cannot be checked as it goes: the whole is, first)
            known = _hash_file(f, new_digest) == name
            _remember(path, st, known)
        if not known:
            raise corrupt(name, path)
        f.seek(first)
    except BaseException:
        f.close()
        raise
    return st.st_size, _chunks(f, None if end is None else end - first)
