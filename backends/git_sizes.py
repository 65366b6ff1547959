"""Object sizes without inflating the objects: what v2 ``object-info``, the ``blob:limit=`` filter
of a partial clone and a tree's listing in the pages need.

In a pack, an entry's header holds the object's size; a delta's header holds the delta's size,
and the object's is the second number of the delta itself, so only its first bytes are inflated.
A loose object (few, recent) is read whole.  Packs are mapped once per reader and released on
``close``: a repack meanwhile cannot pull them away from a reader in use.

Blocking (file reads).
"""

from __future__ import annotations

import binascii
import mmap
import os
import zlib
from collections.abc import Iterable
from types import TracebackType
from typing import Self, cast

from dulwich.object_store import BaseObjectStore, DiskObjectStore
from dulwich.objects import ObjectID

from backends.git_fastpack import OFS_DELTA, REF_DELTA, parse_entry
from backends.git_packindex import PackIndexView, pack_views
from protocols.errors import StorageError
from protocols.git_receive import DELTA_HEAD_MAX, delta_sizes

DELTA_HEAD = 64
"""Compressed bytes of a delta fed to the inflater at a time."""


class SizeReader:
    """Sizes of a store's objects by hex id; ``with SizeReader(store) as sizes: sizes.size(oid)``."""

    def __init__(self, store: BaseObjectStore) -> None:
        self.store = store
        self.views: list[PackIndexView] = []
        if isinstance(store, DiskObjectStore):
            self.views = pack_views(os.fspath(store.pack_dir))
        self._maps: dict[str, mmap.mmap] = {}

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        for mapped in self._maps.values():
            mapped.close()
        self._maps.clear()

    def size(self, oid: bytes) -> int:
        """The size of object ``oid`` (hex); KeyError for one the store does not have."""
        binsha = binascii.unhexlify(oid)
        for view in self.views:
            position = view.position(binsha)
            if position is None:
                continue
            found = self._packed_size(view, int(view.offsets[position]))
            if found is not None:
                return found
        return len(self.store.get_raw(cast(ObjectID, oid))[1])  # loose (or a pack the views do not hold yet)

    def sizes(self, oids: Iterable[bytes]) -> list[tuple[bytes, int]]:
        return [(oid, self.size(oid)) for oid in oids]

    def _map(self, view: PackIndexView) -> mmap.mmap | None:
        mapped = self._maps.get(view.pack_path)
        if mapped is None:
            try:
                with open(view.pack_path, "rb") as f:
                    mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            except (OSError, ValueError):  # removed by a repack: the store's own reader answers
                return None
            self._maps[view.pack_path] = mapped
        return mapped

    def _packed_size(self, view: PackIndexView, offset: int) -> int | None:
        mapped = self._map(view)
        if mapped is None or offset >= len(mapped):
            return None
        entry = parse_entry(mapped, offset)
        if entry.type_num not in (OFS_DELTA, REF_DELTA):
            return _varint_size(entry.size_header)
        inflater = zlib.decompressobj()
        head = pending = b""
        at = entry.data_start
        while len(head) < DELTA_HEAD_MAX and not inflater.eof:
            if not pending:
                if at >= len(mapped):
                    break
                pending = mapped[at:at + DELTA_HEAD]
                at += DELTA_HEAD
            head += inflater.decompress(pending, DELTA_HEAD_MAX - len(head))
            pending = inflater.unconsumed_tail
        sizes = delta_sizes(head)
        if sizes is None:
            raise StorageError(f"a delta in {view.pack_path} ends before its sizes")
        return sizes[1]


def _varint_size(header: bytes) -> int:
    """The size in a pack entry's type-and-size header."""
    size = header[0] & 0x0F
    shift = 4
    for byte in header[1:]:
        size |= (byte & 0x7F) << shift
        shift += 7
    return size
