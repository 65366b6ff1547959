"""Reads of a served repository's config files, git's and hg's, and the files they include.

Both clients read such a file as long as it goes on: git's and hg's config readers wait for ever
on a FIFO no one writes and read ``/dev/zero`` until memory runs out (hg 7.2 grew to 21 GB in
65 s), and so did hgwire's readers, in a worker thread of the service that serves every other
repository too.  ``ConfigReads`` reads regular files only (``/dev/null`` as empty), a bounded
number of bytes in all, and says in one sentence why it will not read more.
"""

from __future__ import annotations

import errno
import io
import os
import stat
from typing import BinaryIO

from protocols.errors import StorageError


class ConfigReads:
    """Reads of one config file and the files it includes: regular files only (``/dev/null`` reads
    as empty), ``limit`` bytes in all; ``StorageError`` past that, or for a FIFO, a device or a
    socket.  A directory raises ``IsADirectoryError``, as an open of one for reading does; a
    missing file ``FileNotFoundError``.  ``whose`` names the config in the messages ("the
    repository's git config"); without ``includes``, the one file read is named alone ("the
    repository's" /srv/app/.hg/localtags)."""

    def __init__(self, whose: str, limit: int, includes: bool = True) -> None:
        self.whose = whose
        """Which config, for the messages (the repository's, or the server's ``[git] config``)."""
        self.left = limit
        self.limit = limit
        self.includes = includes
        self._first = True

    def read(self, path: str | os.PathLike[str] | bytes) -> bytes:
        name = os.fsdecode(path)
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # (a FIFO's open waits for a writer)
        try:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), name)
            if not stat.S_ISREG(st.st_mode):
                if stat.S_ISCHR(st.st_mode) and st.st_rdev == _null_device():
                    return b""
                where = f"{self.whose} {name} is" if self._first else f"{self.whose} includes {name},"
                raise StorageError(f"{where} {file_kind(st.st_mode)}, where hgwire reads only regular files, so it "
                                   "does not serve the repository; tell the server's operator")
            chunks: list[bytes] = []
            got = 0
            while got <= self.left:
                chunk = os.read(fd, min(1 << 20, self.left + 1 - got))
                if not chunk:
                    break
                chunks.append(chunk)
                got += len(chunk)
        finally:
            os.close(fd)
            self._first = False
        data = b"".join(chunks)
        self.count(name, data)
        return data

    def count(self, name: str, data: bytes) -> None:
        """Count ``data``, the file ``name`` read some other way (a repository kept in memory),
        towards ``limit``: ``StorageError`` past it."""
        self._first = False
        if len(data) > self.left:
            self.left = -1
            if not self.includes:
                raise StorageError(f"{self.whose} {name} holds more than {_size(self.limit)}, more than hgwire "
                                   "reads, so it does not serve the repository; tell the server's operator")
            raise StorageError(f"{self.whose} and the files it includes hold more than {_size(self.limit)} "
                               f"({name} passes that), more than hgwire reads, so it does not serve the "
                               "repository; tell the server's operator")
        self.left -= len(data)

    def open(self, path: str | os.PathLike[str]) -> BinaryIO:
        """``read`` as a file, for dulwich's ``file_opener``."""
        return io.BytesIO(self.read(path))


def _size(limit: int) -> str:
    return f"{limit >> 20} MiB" if limit >= 1 << 20 else f"{limit >> 10} KiB"


def _null_device() -> int:
    try:
        return os.stat(os.devnull).st_rdev
    except OSError:
        return -1


def file_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISCHR(mode):
        return "a character device"
    return "not a file"
