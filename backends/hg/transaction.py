"""The undo journal that makes a write all-or-nothing, in Mercurial's own format.

Before a store file grows, ``journal`` gets a line ``<path>\\0<old size>``; before
a file is replaced, ``journal.backupfiles`` gets ``<location>\\0<path>\\0<backup>\\0<0>``
after a version line ``2`` (an empty backup name means "did not exist").  Both
are written and fsynced before the change, so after a crash the old state can
be rebuilt: by :func:`recover` the next time hgwire opens the repository, or by
``hg recover`` (transaction.py ``rollback`` reads the same files).
Removing ``journal`` is the commit point.
"""

from __future__ import annotations

from collections.abc import Mapping

from backends.hg.vfs import Vfs
from protocols.errors import StorageError

JOURNAL = b"journal"
BACKUP_LIST = b"journal.backupfiles"
BACKUP_VERSION = b"2\n"
STORE = b""
PLAIN = b"plain"


def _backup_name(path: bytes) -> bytes:
    return b"journal.backup." + path.replace(b"/", b"~2f")


class Journal:
    """Undo records for one transaction; ``vfsmap`` maps a location to its vfs (b"" is the store)."""

    def __init__(self, vfsmap: Mapping[bytes, Vfs]) -> None:
        self.vfsmap = vfsmap
        self.store = vfsmap[STORE]
        self.appended: dict[bytes, int] = {}
        self.backups: dict[tuple[bytes, bytes], bytes] = {}
        self.store.replace(BACKUP_LIST, BACKUP_VERSION)
        self.store.replace(JOURNAL, b"")

    def record_append(self, path: bytes, size: int) -> None:
        """Remember a store file's size before its first append in this transaction."""
        if path in self.appended:
            return
        self.appended[path] = size
        self.store.append(JOURNAL, b"%s\0%d\n" % (path, size))
        self.store.fsync(JOURNAL)

    def backup(self, path: bytes, location: bytes = STORE) -> None:
        """Copy a file before its first replacement in this transaction."""
        key = (location, path)
        if key in self.backups:
            return
        vfs = self.vfsmap[location]
        name = b""
        if vfs.exists(path):
            name = _backup_name(path)
            vfs.replace(name, vfs.read(path))
        self.backups[key] = name
        self.store.append(BACKUP_LIST, b"%s\0%s\0%s\0%d\n" % (location, path, name, 0))
        self.store.fsync(BACKUP_LIST)

    def close(self) -> None:
        """Commit: make appended data durable, then drop the journal (the commit point)."""
        for path in self.appended:
            self.store.fsync(path)
        self.store.unlink(JOURNAL)
        self._cleanup(self.backups)

    def _cleanup(self, backups: Mapping[tuple[bytes, bytes], bytes]) -> None:
        for (location, _), name in backups.items():
            if name:
                self.vfsmap[location].unlink(name)
        self.store.unlink(BACKUP_LIST)
        self.store.unlink(JOURNAL)

    def rollback(self) -> None:
        """Undo everything recorded, then drop the journal."""
        _playback(self.vfsmap, self.appended, self.backups)
        self._cleanup(self.backups)


def _playback(
    vfsmap: Mapping[bytes, Vfs], appended: Mapping[bytes, int], backups: Mapping[tuple[bytes, bytes], bytes]
) -> None:
    """Restore backups first (a split revlog's old ``.i``), then cut appended files back."""
    for (location, path), name in backups.items():
        vfs = vfsmap[location]
        if name and vfs.exists(name):
            vfs.replace(path, vfs.read(name))
        elif not name:
            vfs.unlink(path)
    store = vfsmap[STORE]
    for path, size in appended.items():
        if size == 0:
            store.unlink(path)
        elif store.exists(path) and store.size(path) > size:
            store.truncate(path, size)


def needs_recovery(store: Vfs) -> bool:
    return store.exists(JOURNAL)


def recover(vfsmap: Mapping[bytes, Vfs]) -> None:
    """Roll back an interrupted transaction found on disk; the caller holds the locks."""
    store = vfsmap[STORE]
    appended: dict[bytes, int] = {}
    for line in store.read(JOURNAL).splitlines():
        path, sep, size = line.partition(b"\0")
        if sep and size.isdigit():
            appended.setdefault(path, int(size))
    backups: dict[tuple[bytes, bytes], bytes] = {}
    if store.exists(BACKUP_LIST):
        lines = store.read(BACKUP_LIST).splitlines()
        if lines and lines[0] + b"\n" != BACKUP_VERSION:
            raise StorageError("cannot recover: unknown journal backup format")
        for line in lines[1:]:
            fields = line.split(b"\0")
            if len(fields) == 4 and fields[0] in vfsmap:
                backups.setdefault((fields[0], fields[1]), fields[2])
    _playback(vfsmap, appended, backups)
    for (location, _), name in backups.items():
        if name:
            vfsmap[location].unlink(name)
    store.unlink(BACKUP_LIST)
    store.unlink(JOURNAL)
