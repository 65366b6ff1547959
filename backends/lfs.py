"""The LFS objects of a repository on disk, each under its SHA-256, in the layout its own tools use.

A git repository keeps them in ``<git dir>/lfs/objects/<aa>/<bb>/<sha256>``,
git-lfs's own layout (a clone's ``.git/lfs/objects``); a Mercurial one (hg's
``lfs`` extension) in ``.hg/store/lfs/objects/<aa>/<the other 62 digits>``, as
``hg serve`` with the extension keeps them (and ``hg verify`` reads them).  An upload is
written to a temporary beside its final name, checked against its name (SHA-256)
and declared size, then renamed: a reader never sees half of one, and a wrong or
cut upload leaves nothing.  Nothing here removes an object.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator

from backends.blobs import open_chunks, store_verified

OBJECTS_DIR = os.path.join("lfs", "objects")
"""Under a git directory, or under a Mercurial store."""
MAX_OBJECT = 1 << 40
"""No object is refused for its size here: the request body bound of the transport applies."""
_HEX = frozenset("0123456789abcdef")


class LfsObjectRefused(ValueError):
    """An upload that is not what its name and size say: the message says why."""


def _checked(oid: str) -> str:
    if len(oid) != 64 or not set(oid) <= _HEX:
        raise LfsObjectRefused("the object name is not a SHA-256 in lower-case hex")
    return oid


class LfsStore:
    """The LFS objects of one repository: ``root/lfs/objects``; ``hg_layout``: Mercurial's names."""

    def __init__(self, root: str, hg_layout: bool = False) -> None:
        self._dir = os.path.join(root, OBJECTS_DIR)
        self._hg = hg_layout

    def _path(self, oid: str) -> str:
        oid = _checked(oid)
        if self._hg:
            return os.path.join(self._dir, oid[:2], oid[2:])
        return os.path.join(self._dir, oid[:2], oid[2:4], oid)

    def size(self, oid: str) -> int | None:
        """The stored object's size; None when it is not here."""
        try:
            return os.stat(self._path(oid)).st_size
        except (FileNotFoundError, NotADirectoryError, LfsObjectRefused):
            return None

    def open(self, oid: str) -> tuple[int, Iterator[bytes]] | None:
        """The object's size and bytes in chunks; None when it is not here."""
        try:
            return open_chunks(self._path(oid))
        except LfsObjectRefused:
            return None

    def put(self, oid: str, size: int, data: Iterable[bytes]) -> None:
        """Keep an upload once it is ``size`` bytes that hash to ``oid``; raises ``LfsObjectRefused``
        (nothing kept) otherwise."""
        store_verified(self._path(oid), data, hashlib.sha256(), oid, LfsObjectRefused, MAX_OBJECT, size)
