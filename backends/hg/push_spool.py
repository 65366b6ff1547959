"""A pushed bundle kept whole before it is applied, as ``hg serve`` keeps it.

Mercurial's ``unbundle`` (wireprotov1server.py) writes the bundle a client
sends to a temporary file and only then takes the repository's locks to apply
it: the locks are held while the bundle is applied, not while a client on a
slow link (or one that stalls, up to the server's idle timeout) is still
sending, which would make every other push to the repository wait and fail.

The file is in the repository's ``.hg`` (``TMPDIR`` only for a repository held
in memory), so a full ``TMPDIR`` refuses no push: the bundle takes room on the
disk the push's revisions are written to.  It has no name (``O_TMPFILE``, where
the file system has it; else it is unlinked as soon as it is made), so whatever
becomes of the push or of the server, nothing is left to sweep.
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from backends.hg.writer import not_stored

READ_BACK = 256 * 1024
"""Bytes of the kept bundle read at a time as it is applied."""


@contextmanager
def spooled(directory: bytes | None, chunks: Iterator[bytes]) -> Iterator[Iterator[bytes]]:
    """Read ``chunks`` to their end into an unnamed file in ``directory``, then give them back from it.

    The file goes when the ``with`` ends; a disk that cannot hold it refuses the push
    (``StorageError``), and the caller reads what the client still sends.
    """
    where = None if directory is None else os.fsdecode(directory)
    try:
        spool = tempfile.TemporaryFile(dir=where, prefix="hgwire-unbundle-")  # noqa: SIM115 (closed below)
    except OSError as exc:
        raise not_stored(exc) from exc
    try:
        for chunk in chunks:
            spool.write(chunk)
        spool.seek(0)  # (writes out what the buffer holds)
    except OSError as exc:
        _discard(spool)
        raise not_stored(exc) from exc
    except BaseException:
        _discard(spool)
        raise
    with spool:
        yield iter(functools.partial(spool.read, READ_BACK), b"")


def _discard(spool: IO[bytes]) -> None:
    """Close a spool whose bytes are no longer wanted.  Closing flushes the buffer first, which a full
    disk refuses again (the descriptor is let go all the same): that refusal is not the push's error."""
    try:
        spool.close()
    except OSError:
        pass
