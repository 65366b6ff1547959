"""The store of Mercurial's ``largefiles`` extension on a server: ``.hg/largefiles/<sha1>``.

A client with the extension keeps big files out of history: a changeset holds a
standin (``.hglf/<path>``, the file's SHA-1 in hex) and the file itself travels
apart, by three wire commands (``hgext/largefiles/proto.py``): ``statlfile``
(is it here?), ``putlfile`` (upload one before pushing the changesets that name
it) and ``getlfile`` (download one to update a working copy).  On the server the
files sit whole, each under its hash, in the repository's ``.hg/largefiles``.

Only repositories on disk keep them (a file may be gigabytes).  A file is
written to a temporary beside its final name, checked against its hash, then
renamed: a reader never sees half of one, and a wrong or cut upload leaves
nothing.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterable, Iterator

from backends.interfaces import LargefileRefused

STORE_DIR = b"largefiles"
"""Under ``.hg``: where the server keeps them (hg's ``lfutil.longname``)."""
STANDIN_DIR = b".hglf/"
"""Where a changeset keeps the standins of its largefiles (hg's ``lfutil.shortnameslash``)."""
REQUIREMENT = "largefiles"
MAX_LARGEFILE = 1 << 32
"""Bytes of one uploaded largefile (4 GiB, as a git push's pack by default)."""
CHUNK = 1 << 17

_SHA = re.compile(rb"[0-9a-f]{40}")


class LargefileError(LargefileRefused):
    """An upload refused: the message says why (hg's own words where it has some)."""


def valid_hash(sha: bytes) -> bool:
    """A largefile is named by its SHA-1 in lower-case hex, nothing else (never a path)."""
    return _SHA.fullmatch(sha) is not None


class LargefileStore:
    """The largefiles of one repository on disk (its ``.hg`` directory)."""

    def __init__(self, hg_dir: bytes) -> None:
        self._dir = os.path.join(hg_dir, STORE_DIR)

    def _path(self, sha: bytes) -> bytes:
        if not valid_hash(sha):
            raise LargefileError(f"invalid largefile hash {sha[:80].decode('ascii', 'replace')!r}")
        return os.path.join(self._dir, sha)

    def has(self, sha: bytes) -> bool:
        """Whether the file is here (``statlfile``: its contents are not hashed again, as with hg)."""
        return valid_hash(sha) and os.path.isfile(self._path(sha))

    def open(self, sha: bytes) -> tuple[int, Iterator[bytes]] | None:
        """The file's size and its bytes in chunks (the file stays open until they are read or the
        iterator is closed); None when it is not here."""
        if not valid_hash(sha):
            return None
        try:
            f = open(self._path(sha), "rb")  # noqa: SIM115 -- closed by the iterator
        except (FileNotFoundError, IsADirectoryError):
            return None
        size = os.fstat(f.fileno()).st_size
        return size, _chunks(f)

    def put(self, sha: bytes, data: Iterable[bytes]) -> None:
        """Store an upload under ``sha`` once its bytes hash to it (``putlfile``); raises
        ``LargefileError`` (nothing kept) otherwise.  An upload of a file that is here already is
        read and dropped."""
        final = self._path(sha)
        os.makedirs(self._dir, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self._dir, prefix=b".tmp-")
        try:
            digest = hashlib.sha1()
            size = 0
            with os.fdopen(fd, "wb") as f:
                for chunk in data:
                    size += len(chunk)
                    if size > MAX_LARGEFILE:
                        raise LargefileError(f"largefile {sha.decode()} is larger than {MAX_LARGEFILE >> 30} GiB")
                    digest.update(chunk)
                    f.write(chunk)
                f.flush()
                os.fsync(f.fileno())
            if digest.hexdigest().encode() != sha:
                raise LargefileError("largefile contents do not match hash")
            os.chmod(tmp, 0o644)
            os.replace(tmp, final)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


def _chunks(f: object) -> Iterator[bytes]:
    try:
        while chunk := f.read(CHUNK):  # type: ignore[attr-defined]
            yield chunk
    finally:
        f.close()  # type: ignore[attr-defined]
