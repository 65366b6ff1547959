"""Files kept whole under the hash of their bytes (LFS objects, largefiles): written only once
they are what their name says, and read back in chunks; and directories made whole beside their
place, then renamed there (``made_whole``: a new repository).

``store_verified`` writes an upload to a temporary beside its final name, hashes it as it
goes, checks its size and hash, fsyncs it and renames it into place: a reader never sees half
of one, and a wrong, oversized or cut upload leaves nothing behind.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO

from protocols.errors import ProtocolError

CHUNK = 1 << 17


class NotStored(ProtocolError):
    """The server's disk refused an upload (full, over quota, an I/O error): nothing was kept.
    HTTP 507 Insufficient Storage, as Git LFS's API has it."""

    def __init__(self, exc: OSError, what: str = "the upload", after: str = "nothing was kept") -> None:
        super().__init__(f"the server could not store {what} ({exc.strerror or exc}); {after}, "
                         "try again later or tell the server's operator", http_status=507)


def store_verified(final: str | bytes, data: Iterable[bytes], digest: Any, expected: str,
                   refuse: Callable[[str], Exception], max_size: int, exact_size: int | None = None) -> None:
    """Write ``data`` to ``final`` once it hashes (``digest``, a fresh hashlib object) to the hex
    ``expected`` and is ``exact_size`` bytes (or at most ``max_size``); else raise ``refuse(why)``,
    or ``NotStored`` when the disk refuses it."""
    try:
        _store_verified(final, data, digest, expected, refuse, max_size, exact_size)
    except OSError as exc:
        raise NotStored(exc) from exc


def _store_verified(final: str | bytes, data: Iterable[bytes], digest: Any, expected: str,
                    refuse: Callable[[str], Exception], max_size: int, exact_size: int | None) -> None:
    parent = os.path.dirname(final)
    os.makedirs(parent, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.fsdecode(parent), prefix=".tmp-")
    try:
        written = 0
        limit = max_size if exact_size is None else min(max_size, exact_size)
        with os.fdopen(fd, "wb") as f:
            for chunk in data:
                written += len(chunk)
                if written > limit:
                    raise refuse(f"the upload is larger than the {exact_size} bytes it was announced with"
                                 if exact_size is not None and exact_size <= max_size
                                 else f"the upload is larger than {max_size} bytes")
                digest.update(chunk)
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        if exact_size is not None and written != exact_size:
            raise refuse(f"the upload has {written} bytes, not the {exact_size} it was announced with")
        if digest.hexdigest() != expected:
            raise refuse("the upload's contents do not match its hash")
        os.chmod(tmp, 0o644 & ~process_umask())  # as a file the service made (mkstemp's is 0600)
        os.replace(tmp, final)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)  # (the space it took is free again)


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
        os.chmod(building, stat.S_IMODE(os.stat(parent).st_mode))  # as a directory made there (not 0700)
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


def open_chunks(path: str | bytes) -> tuple[int, Iterator[bytes]] | None:
    """A file's size and its bytes in chunks (open until they are read or the iterator is closed);
    None when there is no such file."""
    try:
        f = open(path, "rb")  # noqa: SIM115 -- closed by the iterator
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    return os.fstat(f.fileno()).st_size, _chunks(f)


def _chunks(f: BinaryIO) -> Iterator[bytes]:
    try:
        while chunk := f.read(CHUNK):
            yield chunk
    finally:
        f.close()
