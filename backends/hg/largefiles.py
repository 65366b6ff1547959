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
nothing.  One is sent only while its bytes still hash to its name
(``backends.blobs.open_checked``): a corrupt one raises ``LargefileCorrupt`` before its first byte.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Iterator

from backends.blobs import BlobCorrupt, open_checked, open_chunks, remembered_intact, store_verified
from backends.interfaces import LargefileRefused

STORE_DIR = b"largefiles"
"""Under ``.hg``: where the server keeps them (hg's ``lfutil.longname``)."""
STANDIN_DIR = b".hglf/"
"""Where a changeset keeps the standins of its largefiles (hg's ``lfutil.shortnameslash``)."""
REQUIREMENT = "largefiles"
MAX_LARGEFILE = 1 << 32
"""Bytes of one uploaded largefile (4 GiB, as a git push's pack by default)."""

_SHA = re.compile(rb"[0-9a-f]{40}")


class LargefileError(LargefileRefused):
    """An upload refused: the message says why (hg's own words where it has some)."""


class LargefileCorrupt(BlobCorrupt):
    """A stored largefile whose bytes do not hash to its name (``backends.blobs.BlobCorrupt``)."""

    kind = "largefile"

    def __init__(self, sha: str, path: str) -> None:
        super().__init__(f"the server's copy of largefile {sha} is corrupt (its contents do not match its hash), "
                         "so it was not sent; tell the server's operator", sha, path)


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

    def known_corrupt(self, sha: bytes) -> bool:
        """Whether an earlier check found the file corrupt and it is unchanged since (nothing is
        hashed: ``statlfile`` answers ``1`` for it, hg's word for a damaged one)."""
        return valid_hash(sha) and remembered_intact(os.fsdecode(self._path(sha))) is False

    def path_of(self, sha: bytes) -> str:
        """Where the file ``sha`` is kept (for the operator's log)."""
        return os.fsdecode(self._path(sha))

    def open_checked(self, sha: bytes) -> tuple[int, Iterator[bytes]] | None:
        """``open``, but a file whose bytes do not hash to its name raises ``LargefileCorrupt``
        before any of it is given out (``backends.blobs.open_checked``)."""
        if not valid_hash(sha):
            return None
        return open_checked(self.path_of(sha), sha.decode("ascii"), hashlib.sha1, LargefileCorrupt)

    def open(self, sha: bytes) -> tuple[int, Iterator[bytes]] | None:
        """The file's size and its bytes in chunks; None when it is not here."""
        return open_chunks(self._path(sha)) if valid_hash(sha) else None

    def put(self, sha: bytes, data: Iterable[bytes]) -> None:
        """Store an upload under ``sha`` once its bytes hash to it (``putlfile``); raises
        ``LargefileError`` (nothing kept) otherwise."""
        store_verified(self._path(sha), data, hashlib.sha1(), sha.decode("ascii"), LargefileError, MAX_LARGEFILE)
