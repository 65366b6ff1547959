"""The undo journal that makes a write all-or-nothing, in Mercurial's own format.

Before a store file grows, ``journal`` gets a line ``<path>\\0<old size>``; before
a file is replaced, ``journal.backupfiles`` gets ``<location>\\0<path>\\0<backup>\\0<0>``
after a version line ``2`` (an empty backup name means "did not exist").  Both
are written (unbuffered) before the change, so after the writer dies the old state
can be rebuilt: by :func:`recover` the next time hgwire opens the repository, or by
``hg recover`` (transaction.py ``rollback`` reads the same files).
Removing ``journal`` is the commit point.  Like Mercurial, we do not fsync
appends: this protects against a killed process, not against power loss.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping

from backends.hg.vfs import Vfs
from protocols.errors import StorageError

JOURNAL = b"journal"
BACKUP_LIST = b"journal.backupfiles"
BACKUP_VERSION = b"2\n"
STORE = b""
PLAIN = b"plain"
STORE_ALIAS = b"store"
"""Mercurial also names the store location ``store`` in journals it writes."""


Encoder = Callable[[bytes], bytes]
"""Maps a logical store path (``data/README.i``) to its name on disk (``data/_r_e_a_d_m_e.i``)."""


def _backup_name(location: bytes, path: bytes) -> bytes:
    """A flat name that store path encoding leaves unchanged, so ``hg recover`` finds it too."""
    return b"journal.backup.%s.bck" % hashlib.sha1(location + b"\0" + path).hexdigest().encode()


def _disk_path(location: bytes, path: bytes, encode: Encoder) -> bytes:
    return encode(path) if location in (STORE, STORE_ALIAS) else path


class Journal:
    """Undo records for one transaction; ``vfsmap`` maps a location to its vfs (b"" is the store).

    Paths in the journal are logical store paths, as Mercurial writes them
    (its store vfs encodes them on use); ``encode`` turns them into file names.
    """

    def __init__(self, vfsmap: Mapping[bytes, Vfs], encode: Encoder) -> None:
        self.vfsmap = vfsmap
        self.encode = encode
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

    def backup(self, path: bytes, location: bytes = STORE) -> None:
        """Copy a file before its first replacement in this transaction."""
        key = (location, path)
        if key in self.backups:
            return
        vfs = self.vfsmap[location]
        name = b""
        disk = _disk_path(location, path, self.encode)
        if vfs.exists(disk):
            name = _backup_name(location, path)
            vfs.replace(name, vfs.read(disk))
        self.backups[key] = name
        self.store.append(BACKUP_LIST, b"%s\0%s\0%s\0%d\n" % (location, path, name, 0))

    def close(self) -> None:
        """Commit: drop the journal (the commit point)."""
        self.store.unlink(JOURNAL)
        self._cleanup(self.backups)

    def _cleanup(self, backups: Mapping[tuple[bytes, bytes], bytes]) -> None:
        for (location, _), name in backups.items():
            if name:
                self.vfsmap[location].unlink(_disk_path(location, name, self.encode))
        self.store.unlink(BACKUP_LIST)
        self.store.unlink(JOURNAL)

    def rollback(self) -> None:
        """Undo everything recorded, then drop the journal."""
        _playback(self.vfsmap, self.appended, self.backups, self.encode)
        self._cleanup(self.backups)


def _playback(
    vfsmap: Mapping[bytes, Vfs],
    appended: Mapping[bytes, int],
    backups: Mapping[tuple[bytes, bytes], bytes],
    encode: Encoder,
) -> None:
    """Restore backups first (a split revlog's old ``.i``), then cut appended files back."""
    for (location, logical), name in backups.items():
        vfs = vfsmap[STORE if location == STORE_ALIAS else location]
        path = _disk_path(location, logical, encode)
        backup = _disk_path(location, name, encode) if name else b""
        if not logical:  # Mercurial's entry for a temporary file (e.g. 00changelog.i.a): delete it
            vfs.unlink(backup)
        elif backup and vfs.exists(backup):
            vfs.replace(path, vfs.read(backup))
        elif not name:
            vfs.unlink(path)
    store = vfsmap[STORE]
    for logical, size in appended.items():
        path = encode(logical)
        if size == 0:
            store.unlink(path)
        elif store.exists(path) and store.size(path) > size:
            store.truncate(path, size)


def needs_recovery(store: Vfs) -> bool:
    return store.exists(JOURNAL)


def recover(vfsmap: Mapping[bytes, Vfs], encode: Encoder) -> None:
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
            if len(fields) == 4 and (fields[0] in vfsmap or fields[0] == STORE_ALIAS):
                backups.setdefault((fields[0], fields[1]), fields[2])
    _playback(vfsmap, appended, backups, encode)
    for (location, _), name in backups.items():
        if name:
            vfsmap[STORE if location == STORE_ALIAS else location].unlink(_disk_path(location, name, encode))
    store.unlink(BACKUP_LIST)
    store.unlink(JOURNAL)
