"""Byte-level file access for a store, on disk or in memory.

The revlog and transaction code talk to this small interface only, so the
filesystem engine and the in-memory engine share every format rule.  All paths
are store-relative byte strings (already encoded by ``store.py``).
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from typing import Protocol

from backends.blobs import process_umask
from backends.config_files import file_kind
from protocols.errors import StorageError

Stamp = tuple[int, int, int, int]
"""(size, mtime_ns, inode, ctime_ns) for a file on disk; (size, version, 0, 0) in memory.

The ctime: a file rewritten in place to its old size (a strip, then a commit) may get its
old mtime back, to the second, from hg's own ambiguity avoidance; its ctime, which no one
sets, still moves."""


class Vfs(Protocol):
    """The file operations the engine needs; writes are append, replace, truncate."""

    def stamp(self, path: bytes) -> Stamp | None: ...

    def read(self, path: bytes) -> bytes: ...

    def read_range(self, path: bytes, offset: int, length: int) -> bytes: ...

    def read_head(self, path: bytes, length: int, whole: Callable[[bytes], bool]) -> tuple[int, bytes] | None:
        """(size, first ``length`` bytes), or (size, every byte) when ``whole(first bytes)``; None if absent.

        One open for what a stream clone needs of each revlog index: its size,
        and its bytes if it is inline (the size and the bytes of the same file).
        """
        ...

    def size(self, path: bytes) -> int: ...

    def exists(self, path: bytes) -> bool: ...

    def append(self, path: bytes, data: bytes) -> None: ...

    def replace(self, path: bytes, data: bytes) -> None: ...

    def truncate(self, path: bytes, size: int) -> None: ...

    def rename(self, source: bytes, target: bytes) -> None:
        """Put ``source`` in place of ``target`` in one step (readers see one or the other)."""
        ...

    def unlink(self, path: bytes) -> None: ...

    def listdir(self, path: bytes) -> list[bytes]: ...

    def walk(self) -> Iterator[bytes]: ...


def create_mode(store_dir: bytes) -> int | None:
    """The mode hg gives the files and directories it creates in a repository (its ``_calcmode``):
    the store directory's own, when it differs from what the umask would give it (a repository
    made group-writable for several users); None otherwise (the umask's modes)."""
    try:
        mode = os.stat(store_dir).st_mode & 0o7777
    except OSError:
        return None
    return None if mode & 0o777 == 0o777 & ~process_umask() else mode


def break_hardlink(full: bytes) -> None:
    """Give ``full`` a file of its own when it has other links (another repository's store file).

    ``hg clone`` of a local repository and ``cp -al`` hardlink the store files, so an append or a
    truncation in place would change the other repository too.  Like hg's vfs (which copies a file
    with more than one link before it opens it to write), the file is copied, mode included, beside
    itself and renamed over its name: the other links keep the old bytes.  A link count below one
    (a filesystem that does not count) is not trusted either, as hg does not.
    """
    try:
        st = os.stat(full)
    except FileNotFoundError:
        return
    if st.st_nlink != 1 and stat.S_ISREG(st.st_mode):  # (the write refuses any other: a copy of a FIFO waited)
        _copy_in_place(full, st.st_mode)


def _copy_in_place(full: bytes, mode: int) -> None:
    """Put a copy of ``full`` (with ``mode``'s permission bits), made by this process, in its place."""
    directory, name = os.path.split(full)
    fd, tmp = tempfile.mkstemp(prefix=b"." + name + b"-", suffix=b"~", dir=directory or b".")
    try:
        with open(full, "rb") as src, os.fdopen(fd, "wb") as dst:
            os.fchmod(dst.fileno(), mode & 0o777)
            shutil.copyfileobj(src, dst, 1 << 20)
        os.replace(tmp, full)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


STAT_CHECKED = frozenset({b"00changelog.i", b"00manifest.i", b"phaseroots", b"obsstore", b"bookmarks"})
"""The files whose every write gets an mtime a reader cannot take for the old one (:func:`disambiguate`).

hg's long-running readers (``hg serve``, hgweb, chg: hg.py ``cachedlocalrepo``) reload a repository
only when the size or the whole-second mtime of ``00changelog.i``, ``phaseroots``, ``obsstore`` or
``bookmarks`` changes, and its file caches (scmutil.py ``filecache``) compare the size, ctime and
mtime in seconds; a bookmark moved or a phase root moved on rewrites its file at the same size.  hg
writes these with ``checkambig`` (its repository's ``cachedfiles``: the bookmarks, the phase roots,
the changelog's and root manifest's indexes; the obsstore when a rollback cuts it), and so does this
vfs, whether it replaces, appends to, cuts or renames over one, in the store or in ``.hg`` (appends to
the obsstore too, which hg leaves unchecked as they grow it)."""


def _seconds(ns: int) -> int:
    return ns // 1_000_000_000


def disambiguate(full: bytes, old: os.stat_result | None) -> None:
    """Give ``full``, just written, a later mtime when a reader could take it for its ``old`` self.

    The rule of hg's util.py ``filestat.isambig``/``avoidambig``: when the new ctime is the old one,
    to the second (two writes within a second), the mtime becomes the old mtime plus one second, so
    a size that did not change no longer hides the write, however many writes that second held.
    Beyond hg: the same when the new mtime is the old one, to the second, the ctimes apart; that is a
    write in the second the previous write's mtime was moved to (after exactly two writes in the
    second before), which hg's own writers leave looking unchanged to ``hg serve``.  A file another
    user owns, whose times only its owner may set, is first replaced by a copy of this process's,
    where hg copies it and leaves the times as they fall.  A new file (no ``old``) needs nothing.
    """
    if old is None:
        return
    new = os.stat(full)
    old_mtime = _seconds(old.st_mtime_ns)
    if _seconds(new.st_ctime_ns) != _seconds(old.st_ctime_ns) and _seconds(new.st_mtime_ns) != old_mtime:
        return
    later = ((old_mtime + 1) & 0x7FFFFFFF) * 1_000_000_000  # as hg: a time a signed 32-bit field holds
    try:
        os.utime(full, ns=(new.st_atime_ns, later))
    except PermissionError:
        _copy_in_place(full, new.st_mode)
        os.utime(full, ns=(new.st_atime_ns, later))


class NotRegularFile(StorageError):
    """A file of ``.hg`` that hg writes itself (a cache, the dirstate, a store file, ``requires``)
    is a FIFO, a device or a socket: hgwire does not read it, where an open of a FIFO waited for a
    writer for ever, in a worker thread every repository shares, and ``/dev/zero`` never ended.
    Where hg rebuilds the file (a cache), the caller takes it as absent; elsewhere the repository
    is refused with this one sentence."""


_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC
"""(``O_NONBLOCK``: the open of a FIFO returns at once; a regular file's reads ignore it.)"""


def open_regular(full: str | bytes) -> tuple[int, int]:
    """A descriptor of the regular file ``full``, to read, and its size: ``NotRegularFile`` for a FIFO, a
    device or a socket, ``IsADirectoryError`` for a directory (as ``open`` raises), and
    ``FileNotFoundError`` for a missing one.  One ``fstat`` more than a plain open."""
    fd = os.open(full, _READ_FLAGS)
    try:
        st = os.fstat(fd)
    except BaseException:
        os.close(fd)
        raise
    mode = st.st_mode
    if stat.S_ISREG(mode):
        return fd, st.st_size
    os.close(fd)
    raise _not_regular(full, mode)


def _not_regular(full: str | bytes, mode: int, does: str = "reads") -> OSError | NotRegularFile:
    """What refuses the file ``full`` of ``mode`` that is not regular: ``IsADirectoryError`` for a
    directory (as ``open`` raises), else ``NotRegularFile`` naming it from the repository's ``.hg``
    and saying what hgwire ``does`` (reads, writes) only with regular files."""
    name = os.fsdecode(full)
    if stat.S_ISDIR(mode):
        return IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), name)
    at = name.rfind("/.hg/")  # (named from the repository's .hg: a client is not shown where the server keeps it)
    shown = name[at + 1:] if at >= 0 else name
    return NotRegularFile(f"the repository's {shown} is {file_kind(mode)}, where hgwire {does} only regular files, "
                          "so it does not serve the repository; tell the server's operator")


_APPEND_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | os.O_CLOEXEC
"""(``O_NONBLOCK``: the open of a FIFO no process reads fails at once, ENXIO, where ``open(, "ab")``
waited for a reader for ever; one some process reads opens, and ``fstat`` refuses it.)"""


def open_append(full: bytes) -> int:
    """A descriptor appending to the regular file ``full``, made when missing (``FileNotFoundError``
    when its directory is): ``NotRegularFile`` for a FIFO, a device or a socket, whose bytes would
    go to whatever reads it (or to nothing, ``/dev/null``) rather than into the repository."""
    try:
        fd = os.open(full, _APPEND_FLAGS, 0o666)
    except OSError as exc:
        if exc.errno != errno.ENXIO:  # (a FIFO no one reads, or a device without its driver)
            raise
        raise _not_regular(full, os.stat(full).st_mode, "writes") from None
    try:
        mode = os.fstat(fd).st_mode
    except BaseException:
        os.close(fd)
        raise
    if stat.S_ISREG(mode):
        return fd
    os.close(fd)
    raise _not_regular(full, mode, "writes")


def read_regular(full: str | bytes) -> bytes:
    """The whole of the regular file ``full`` (``open_regular``'s errors otherwise)."""
    fd, size = open_regular(full)
    try:
        parts = []
        want = size + 1  # (one more: a file that grew meanwhile is read to its end)
        while chunk := os.read(fd, want):
            parts.append(chunk)
            want = 1 << 20
        return parts[0] if len(parts) == 1 else b"".join(parts)
    finally:
        os.close(fd)


class FsVfs:
    """A directory on disk; ``replace`` is write-to-temp then rename so readers never see half a file.

    ``createmode`` (``create_mode``): the files it creates get its read and write bits and the
    directories it creates all of it, as hg's vfs gives them; a file ``replace`` rewrites keeps its mode.
    ``append`` and ``truncate`` first break a hardlink (:func:`break_hardlink`): a store shared by
    ``hg clone`` or ``cp -al`` with another repository is written in its own files only.  A write
    to one of ``STAT_CHECKED`` leaves it an mtime hg's readers see change (:func:`disambiguate`)."""

    def __init__(self, root: bytes, createmode: int | None = None, *, mode_of: bytes | None = None) -> None:
        self.root = root
        self._createmode = createmode
        self._mode_of = mode_of
        """A directory whose ``create_mode`` is ``createmode``, asked when first needed: a read-only
        request (most of them) never writes, and asking costs a stat and a read of /proc."""

    @property
    def createmode(self) -> int | None:
        if self._mode_of is not None:
            self._createmode, self._mode_of = create_mode(self._mode_of), None
        return self._createmode

    def join(self, path: bytes) -> bytes:
        return os.path.join(self.root, path)

    def _before(self, path: bytes) -> os.stat_result | None:
        """What :func:`disambiguate` compares a write of ``path`` with: None when not checked or new."""
        if path not in STAT_CHECKED:
            return None
        try:
            return os.stat(self.join(path))
        except FileNotFoundError:
            return None

    def stamp(self, path: bytes) -> Stamp | None:
        try:
            st = os.stat(self.join(path))
        except FileNotFoundError:
            return None
        return (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)

    def read(self, path: bytes) -> bytes:
        return read_regular(self.join(path))

    def read_range(self, path: bytes, offset: int, length: int) -> bytes:
        fd, _size = open_regular(self.join(path))
        try:
            data = os.pread(fd, length, offset)
            if len(data) == length or not data:
                return data
            parts = [data]  # (a short read: rare, so joined only then)
            got = len(data)
            while got < length and (chunk := os.pread(fd, length - got, offset + got)):
                parts.append(chunk)
                got += len(chunk)
            return b"".join(parts)
        finally:
            os.close(fd)

    def read_head(self, path: bytes, length: int, whole: Callable[[bytes], bool]) -> tuple[int, bytes] | None:
        try:
            fd, size = open_regular(self.join(path))
        except FileNotFoundError:
            return None
        try:  # plain descriptors: a stream clone does this for every file of the store
            head = os.read(fd, length) if length else b""
            if not whole(head):
                return size, head
            parts = [head]
            done = len(head)
            while done < size:
                chunk = os.read(fd, size - done)
                if not chunk:
                    break
                parts.append(chunk)
                done += len(chunk)
            return size, b"".join(parts)
        finally:
            os.close(fd)

    def size(self, path: bytes) -> int:
        try:
            return os.stat(self.join(path)).st_size
        except FileNotFoundError:
            return 0

    def exists(self, path: bytes) -> bool:
        return os.path.lexists(self.join(path))

    def _makedirs(self, path: bytes) -> None:
        parent = os.path.dirname(self.join(path))
        if not parent:
            return
        if self.createmode is None:
            os.makedirs(parent, exist_ok=True)
            return
        missing = []
        while parent and not os.path.isdir(parent):
            missing.append(parent)
            parent = os.path.dirname(parent)
        for directory in reversed(missing):
            try:
                os.mkdir(directory)
            except FileExistsError:  # made meanwhile
                continue
            os.chmod(directory, self.createmode)

    def append(self, path: bytes, data: bytes) -> None:
        full = self.join(path)
        old = self._before(path)
        break_hardlink(full)
        created = self.createmode is not None and not os.path.lexists(full)
        try:
            fd = open_append(full)  # (a FIFO, a device: NotRegularFile, not a wait nor bytes sent away)
        except FileNotFoundError:  # a new directory (a push's first file there): rarely
            self._makedirs(path)
            fd = open_append(full)
        with open(fd, "ab") as f:
            if created:
                os.fchmod(fd, self.createmode & 0o666)  # type: ignore[operator]
            f.write(data)
        disambiguate(full, old)

    def replace(self, path: bytes, data: bytes) -> None:
        self._makedirs(path)
        full = self.join(path)
        tmp = full + b".hgwire-tmp"
        try:
            mode: int | None = os.lstat(full).st_mode & 0o777  # as hg's atomic files: the mode it had
        except FileNotFoundError:
            mode = self.createmode & 0o666 if self.createmode is not None else None
        try:  # (a stale one, of any kind: a FIFO's open waited for ever, a link's wrote where it pointed)
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666), "wb") as f:
            if mode is not None:
                os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        old = self._before(path)
        os.replace(tmp, full)
        disambiguate(full, old)

    def truncate(self, path: bytes, size: int) -> None:
        full = self.join(path)
        old = self._before(path)
        break_hardlink(full)
        os.truncate(full, size)
        disambiguate(full, old)

    def rename(self, source: bytes, target: bytes) -> None:
        full = self.join(target)
        old = self._before(target)
        os.replace(self.join(source), full)
        disambiguate(full, old)

    def unlink(self, path: bytes) -> None:
        try:
            os.unlink(self.join(path))
        except FileNotFoundError:
            pass

    def listdir(self, path: bytes) -> list[bytes]:
        try:
            return sorted(os.listdir(self.join(path)))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def walk(self) -> Iterator[bytes]:
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames.sort()
            rel = os.path.relpath(dirpath, self.root)
            for name in sorted(filenames):
                yield name if rel == b"." else os.path.join(rel, name)


class MemoryVfs:
    """A dict of byte arrays; stamps carry a version counter so caches see every write."""

    def __init__(self) -> None:
        self.files: dict[bytes, bytearray] = {}
        self._versions: dict[bytes, int] = {}
        self._counter = 0

    def _touch(self, path: bytes) -> None:
        self._counter += 1
        self._versions[path] = self._counter

    def stamp(self, path: bytes) -> Stamp | None:
        data = self.files.get(path)
        if data is None:
            return None
        return (len(data), self._versions[path], 0, 0)

    def read(self, path: bytes) -> bytes:
        try:
            return bytes(self.files[path])
        except KeyError:
            raise FileNotFoundError(path.decode("latin-1")) from None

    def read_range(self, path: bytes, offset: int, length: int) -> bytes:
        return bytes(self.files[path][offset : offset + length])

    def read_head(self, path: bytes, length: int, whole: Callable[[bytes], bool]) -> tuple[int, bytes] | None:
        data = self.files.get(path)
        if data is None:
            return None
        head = bytes(data[:length])
        return len(data), (bytes(data) if whole(head) else head)

    def size(self, path: bytes) -> int:
        return len(self.files.get(path, b""))

    def exists(self, path: bytes) -> bool:
        return path in self.files

    def append(self, path: bytes, data: bytes) -> None:
        self.files.setdefault(path, bytearray()).extend(data)
        self._touch(path)

    def replace(self, path: bytes, data: bytes) -> None:
        self.files[path] = bytearray(data)
        self._touch(path)

    def truncate(self, path: bytes, size: int) -> None:
        del self.files[path][size:]
        self._touch(path)

    def rename(self, source: bytes, target: bytes) -> None:
        self.files[target] = self.files.pop(source)
        self._touch(source)
        self._touch(target)

    def unlink(self, path: bytes) -> None:
        self.files.pop(path, None)
        self._touch(path)

    def listdir(self, path: bytes) -> list[bytes]:
        prefix = b"" if path in (b"", b".") else path.rstrip(b"/") + b"/"
        return sorted({p[len(prefix) :].split(b"/")[0] for p in self.files if p.startswith(prefix)})

    def walk(self) -> Iterator[bytes]:
        yield from sorted(self.files)
