"""Read whole objects straight from memory-mapped packs, for the counting walk.

Counting without a bitmap reads every new commit and tree (tens of thousands
on a real history), and the per-call overhead of a general object store
dominates that.  This reader keeps the pack index views, maps each pack once,
inflates with ``zlib`` and applies deltas with dulwich's C ``apply_delta``,
with a small cache of resolved delta bases (most tree deltas share a base).
Objects that are not in a pack (loose, alternates) come from the store.
"""

from __future__ import annotations

import binascii
import mmap
import zlib
from collections import OrderedDict
from types import TracebackType
from typing import Self

from dulwich.object_store import BaseObjectStore
from dulwich.objects import ObjectID

try:
    from dulwich._pack import apply_delta  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - dulwich built without its C extension
    from dulwich.pack import apply_delta

from backends.git_packindex import PackIndexView

OFS_DELTA = 6
REF_DELTA = 7
SHA_LEN = 20
MAX_HEADER = 32
BASE_CACHE_BYTES = 16 << 20
MAX_CHAIN = 10000


class CorruptPack(Exception):
    """A stored entry could not be decoded."""


class PackObjectReader:
    """``read(hexsha) -> (type_num, raw)`` over a fixed list of packs, then the store."""

    def __init__(self, store: BaseObjectStore, views: list[PackIndexView]) -> None:
        self._store = store
        self._views = views
        self._maps: list[mmap.mmap | None] = [None] * len(views)
        self._cache: OrderedDict[tuple[int, int], tuple[int, bytes]] = OrderedDict()
        self._cached_bytes = 0

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        for mapped in self._maps:
            if mapped is not None:
                mapped.close()
        self._maps = [None] * len(self._views)
        self._cache.clear()
        self._cached_bytes = 0

    def read(self, hexsha: bytes) -> tuple[int, bytes]:
        binsha = binascii.unhexlify(hexsha)
        for i, view in enumerate(self._views):
            pos = view.position(binsha)
            if pos is not None:
                return self._read_at(i, pos)
        return self._store.get_raw(ObjectID(hexsha))

    def _map(self, i: int) -> mmap.mmap:
        mapped = self._maps[i]
        if mapped is None:
            with open(self._views[i].pack_path, "rb") as f:
                mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            if len(mapped) != self._views[i].pack_size:
                mapped.close()
                raise CorruptPack(f"{self._views[i].pack_path} changed under its index")
            self._maps[i] = mapped
        return mapped

    def _read_at(self, i: int, pos: int) -> tuple[int, bytes]:
        """Resolve the entry at pack position ``pos`` of pack ``i``, following its delta chain.

        Every object resolved on the way is cached: walks go from new to old
        history and git stores new versions whole and old ones as deltas
        against them, so the base of the next tree is usually in the cache.
        """
        view = self._views[i]
        mapped = self._map(i)
        chain: list[tuple[int, bytes]] = []   # (position, delta data), requested entry first
        at = pos
        for _ in range(MAX_CHAIN):
            cached = self._cache.get((i, at))
            if cached is not None:
                self._cache.move_to_end((i, at))
                base = cached
                break
            kind, data, base_ref = self._entry(view, mapped, at)
            if kind == OFS_DELTA:
                chain.append((at, data))
                at = base_ref
            elif kind == REF_DELTA:
                chain.append((at, data))
                base = self.read(binascii.hexlify(_ref_name(base_ref, mapped, view, at)))
                break
            else:
                base = (kind, data)
                self._remember((i, at), base)
                break
        else:
            raise CorruptPack("delta chain too long")
        kind, raw = base
        for at, delta in reversed(chain):
            raw = b"".join(apply_delta(raw, delta))
            self._remember((i, at), (kind, raw))
        return kind, raw

    def _entry(self, view: PackIndexView, mapped: mmap.mmap, pos: int) -> tuple[int, bytes, int]:
        """(type, inflated data, base position for OFS_DELTA / header end for REF_DELTA)."""
        start = view.offsets[pos]
        end = view.entry_end(pos)
        head = mapped[start:start + MAX_HEADER]
        byte = head[0]
        kind = (byte >> 4) & 7
        p = 1
        while byte & 0x80:
            byte = head[p]
            p += 1
        base_ref = 0
        if kind == OFS_DELTA:
            byte = head[p]
            p += 1
            distance = byte & 0x7F
            while byte & 0x80:
                byte = head[p]
                p += 1
                distance = ((distance + 1) << 7) | (byte & 0x7F)
            found = view.position_at_offset(start - distance)
            if found is None:
                raise CorruptPack(f"bad OFS_DELTA base at offset {start}")
            base_ref = found
        elif kind == REF_DELTA:
            base_ref = start + p
            p += SHA_LEN
        try:
            data = zlib.decompress(mapped[start + p:end])
        except zlib.error as exc:
            raise CorruptPack(f"bad zlib data at offset {start}") from exc
        return kind, data, base_ref

    def _remember(self, key: tuple[int, int], value: tuple[int, bytes]) -> None:
        size = len(value[1])
        if size > BASE_CACHE_BYTES // 8:
            return
        self._cache[key] = value
        self._cached_bytes += size
        while self._cached_bytes > BASE_CACHE_BYTES:
            _, (_, dropped) = self._cache.popitem(last=False)
            self._cached_bytes -= len(dropped)


def _ref_name(at: int, mapped: mmap.mmap, view: PackIndexView, pos: int) -> bytes:
    name = mapped[at:at + SHA_LEN]
    if len(name) != SHA_LEN or at + SHA_LEN > view.entry_end(pos):
        raise CorruptPack("truncated REF_DELTA base name")
    return name
