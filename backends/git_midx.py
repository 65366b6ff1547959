"""A multi-pack index's bitmap order: which pack and which entry each of its bits stands for.

A repository repacked geometrically (``git repack --geometric=2 -d --write-midx
--write-bitmap-index``, what hosts run; or ``git multi-pack-index write
--bitmap``) keeps several packs under one multi-pack index (gitformat-pack(5),
"multi-pack-index"), and one reachability bitmap over all of them:
``multi-pack-index-<checksum>.bitmap``.  Its bit ``n`` is the ``n``-th object
of the "pseudo-pack": the packs concatenated, the preferred pack first, each
in offset order, an object held by several packs counted once, in the pack the
index chose for it.  The index's reverse index says which object that is (the
``RIDX`` chunk, or a ``multi-pack-index-<checksum>.rev`` file from git before
2.39): the index position (name order) of each pseudo-pack position.

``midx_layout`` reads that into a ``MidxLayout``: a ``PackIndexView`` in
pseudo-pack order (its positions are the bitmap's bits, its ``idx_to_pos``
maps the index's name order to them, as a pack's view does for a pack
bitmap), and, for each pack, the run of positions it holds and the pack
position of each.  Everything is checked against the packs' own indexes (the
same object at the same offset) before it is used: a stale or damaged index
is no layout, and the counting walks instead.
"""

from __future__ import annotations

import os
import sys
from array import array
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import groupby, pairwise

from backends.git_packindex import LARGE_OFFSET_FLAG, ObjectsBoundCache, PackIndexView

MIDX_NAME = "multi-pack-index"
MIDX_MAGIC = b"MIDX"
MIDX_VERSION = 1
RIDX_MAGIC = b"RIDX"
HEADER_SIZE = 12
CHUNK_ENTRY = 12
MAX_CHUNKS = 64
"""Chunks a multi-pack index may list (git writes at most seven)."""
OID_VERSIONS = {20: 1, 32: 2}
"""The header's object id version of each name length (SHA-1, SHA-256)."""
_NAME_LENGTHS = {version: length for length, version in OID_VERSIONS.items()}
MAX_CACHED_LAYOUTS = 4
"""Layouts kept whatever their size (one takes about 100 bytes an object, beside its packs' views)."""
MAX_CACHED_LAYOUT_OBJECTS = 500_000
"""Past ``MAX_CACHED_LAYOUTS``, more are kept while all of them hold no more objects than this."""
MAX_LAYOUTS_KEPT = 1024
"""Layouts kept at most, however small."""


class MidxError(Exception):
    """The multi-pack index cannot be used: malformed, of another hash, or not matching its packs."""


@dataclass(frozen=True, eq=False)
class MidxLayout:
    """A multi-pack index in its bitmap's order."""

    path: str
    checksum: bytes
    view: PackIndexView
    """Pseudo-pack order: ``names``, ``position`` and ``idx_to_pos`` (index order to pseudo-pack order)
    of every object; no offsets (``pack_path`` is the index's, ``pack_size`` 0)."""
    packs: tuple[str, ...]
    """The packs' paths (``…/pack-<hash>.pack``) in pseudo-pack order."""
    starts: tuple[int, ...]
    """Where each pack's run of positions starts; one more: the object count."""
    pack_positions: array[int]
    """Each pseudo-pack position's position in its own pack (that pack's offset order)."""

    def bitmap_path(self) -> str:
        return os.path.join(os.path.dirname(self.path), f"{MIDX_NAME}-{self.checksum.hex()}.bitmap")

    def split(self, positions: Sequence[int]) -> list[array[int]]:
        """Ascending pseudo-pack positions as each pack's own positions (ascending), by pack."""
        runs = []
        lo = 0
        for end in self.starts[1:]:
            hi = bisect_left(positions, end, lo)
            runs.append(array("q", map(self.pack_positions.__getitem__, positions[lo:hi])))
            lo = hi
        return runs


def midx_stamp(pack_dir: str) -> tuple[int, int, int] | None:
    """Size, mtime and inode of ``pack_dir``'s multi-pack index; None without one."""
    try:
        st = os.stat(os.path.join(pack_dir, MIDX_NAME))
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns, st.st_ino


def midx_bitmap_present(pack_dir: str) -> bool:
    """Whether ``pack_dir`` holds a multi-pack index and the bitmap written for it (named by its
    trailing checksum; a bitmap of an index since replaced does not count).  Reads the index's
    header and trailer only."""
    path = os.path.join(pack_dir, MIDX_NAME)
    try:
        with open(path, "rb") as f:
            header = f.read(HEADER_SIZE)
            raw_len = _NAME_LENGTHS.get(header[5]) if len(header) == HEADER_SIZE else None
            if header[:4] != MIDX_MAGIC or raw_len is None:
                return False
            f.seek(-raw_len, os.SEEK_END)
            checksum = f.read(raw_len)
    except OSError:
        return False
    return os.path.exists(os.path.join(pack_dir, f"{MIDX_NAME}-{checksum.hex()}.bitmap"))


ViewOf = Callable[[str], PackIndexView | None]
"""A pack's view by its ``.pack`` path; None when that pack is not there."""


class _LayoutCache:
    """Layouts by (path, size, mtime, inode, name length), kept as the packs' views are
    (``git_packindex.ObjectsBoundCache``)."""

    def __init__(self, limit: int, max_objects: int = MAX_CACHED_LAYOUT_OBJECTS) -> None:
        self._layouts: ObjectsBoundCache[tuple[str, int, int, int, int], MidxLayout] = ObjectsBoundCache(
            limit, max_objects, lambda layout: len(layout.view), MAX_LAYOUTS_KEPT)

    def get(self, pack_dir: str, raw_len: int, view_of: ViewOf) -> MidxLayout | None:
        stamp = midx_stamp(pack_dir)
        if stamp is None:
            return None
        key = (os.path.join(pack_dir, MIDX_NAME), *stamp, raw_len)
        layout = self._layouts.get(key)
        if layout is None:
            layout = read_midx(key[0], raw_len, view_of)
            self._layouts.put(key, layout)
        if not all(view_of(pack) is not None for pack in layout.packs):
            raise MidxError(f"{key[0]}: a pack it names is gone")
        return layout

    def __len__(self) -> int:
        return len(self._layouts)


_CACHE = _LayoutCache(MAX_CACHED_LAYOUTS)


def forget_layouts(match: Callable[[object], bool]) -> int:
    """Let go of the kept layouts of the multi-pack indexes whose paths ``match`` (a repository found gone)."""
    return _CACHE._layouts.drop_where(match)


def midx_layout(pack_dir: str, raw_len: int, view_of: ViewOf) -> MidxLayout | None:
    """The (cached) layout of ``pack_dir``'s multi-pack index; None without one.  ``view_of`` gives
    the views of the packs it names.  Raises ``MidxError`` when the index cannot be used."""
    return _CACHE.get(pack_dir, raw_len, view_of)


def _u32s(raw: bytes | memoryview) -> array[int]:
    words = array("I")
    if words.itemsize != 4:  # pragma: no cover - exotic platforms
        return array("q", (int.from_bytes(raw[i:i + 4], "big") for i in range(0, len(raw), 4)))
    words.frombytes(raw)
    if sys.byteorder == "little":
        words.byteswap()
    return words


def read_midx(path: str, raw_len: int, view_of: ViewOf) -> MidxLayout:
    """Read and check the multi-pack index at ``path`` (of ``raw_len``-byte names)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise MidxError(f"{path}: {exc.strerror or exc}") from exc
    if len(data) < HEADER_SIZE + CHUNK_ENTRY + raw_len or data[:4] != MIDX_MAGIC or data[4] != MIDX_VERSION:
        raise MidxError(f"{path}: not a version-1 multi-pack index")
    if data[5] != OID_VERSIONS.get(raw_len):
        raise MidxError(f"{path}: of another object format than the repository")
    n_chunks, n_bases = data[6], data[7]
    n_packs = int.from_bytes(data[8:12], "big")
    if n_bases:
        raise MidxError(f"{path}: an incremental multi-pack index (a chain of {n_bases}) is not read")
    body_end = len(data) - raw_len
    checksum = data[body_end:]
    chunks = _chunks(data, n_chunks, body_end, path)
    for required in (b"PNAM", b"OIDF", b"OIDL", b"OOFF"):
        if required not in chunks:
            raise MidxError(f"{path}: no {required.decode()} chunk")
    fanout = chunks[b"OIDF"]
    if len(fanout) != 256 * 4:
        raise MidxError(f"{path}: a fan-out of {len(fanout)} bytes")
    count = int.from_bytes(fanout[-4:], "big")
    if len(chunks[b"OIDL"]) != count * raw_len or len(chunks[b"OOFF"]) != count * 8:
        raise MidxError(f"{path}: its tables do not hold {count} objects")
    names = bytes(chunks[b"PNAM"]).split(b"\0")
    pack_names = [name.decode("ascii", "replace") for name in names[:n_packs]]
    if len(names) <= n_packs or any(names[n_packs:]) or not all(_pack_name_ok(name) for name in pack_names):
        raise MidxError(f"{path}: its pack names are not {n_packs} pack index names")
    directory = os.path.dirname(path)
    pack_paths = [os.path.join(directory, name[:-4] + ".pack") for name in pack_names]
    order = _pseudo_order(chunks, count, path, raw_len, checksum)
    entries = _u32s(chunks[b"OOFF"])
    pack_ids, offsets = entries[0::2], entries[1::2]
    if b"LOFF" in chunks and offsets and max(offsets) & LARGE_OFFSET_FLAG:
        large = chunks[b"LOFF"]
        wide = array("q", offsets)
        for i, o in enumerate(offsets):
            if o & LARGE_OFFSET_FLAG:
                at = (o & ~LARGE_OFFSET_FLAG) * 8
                if at + 8 > len(large):
                    raise MidxError(f"{path}: a large offset out of its table")
                wide[i] = int.from_bytes(large[at:at + 8], "big")
        offsets = wide
    pseudo_packs = list(map(pack_ids.__getitem__, order))
    pseudo_offsets = array("q", map(offsets.__getitem__, order))
    packs: list[str] = []
    starts = [0]
    pack_positions = array("q")
    pseudo_names: list[bytes] = []
    for pack_id, run in groupby(pseudo_packs):
        start = starts[-1]
        end = start + sum(1 for _ in run)
        if pack_id >= n_packs or pack_paths[pack_id] in packs:
            raise MidxError(f"{path}: its objects are not in pack order")
        view = view_of(pack_paths[pack_id])
        if view is None:
            raise MidxError(f"{path}: {pack_names[pack_id]} is not there")
        run_offsets = pseudo_offsets[start:end]
        positions = array("q", map(partial(bisect_left, view.offsets), run_offsets))
        if max(positions, default=-1) >= len(view) \
                or array("q", map(view.offsets.__getitem__, positions)) != run_offsets \
                or any(a >= b for a, b in pairwise(positions)):
            raise MidxError(f"{path}: {pack_names[pack_id]} does not hold the objects it lists there")
        packs.append(pack_paths[pack_id])
        starts.append(end)
        pack_positions.extend(positions)
        pseudo_names.extend(map(view.names.__getitem__, positions))
    oidl = bytes(chunks[b"OIDL"])
    idx_names = [oidl[at:at + raw_len] for at in range(0, count * raw_len, raw_len)]
    if list(map(idx_names.__getitem__, order)) != pseudo_names:
        raise MidxError(f"{path}: its packs hold other objects at the offsets it lists")
    idx_to_pos = array("l", bytes(array("l").itemsize * count))
    for pos, i in enumerate(order):
        idx_to_pos[i] = pos
    pseudo = tuple(pseudo_names)
    view = PackIndexView(pack_path=path, pack_size=0, checksum=checksum, names=pseudo, offsets=array("q"),
                         idx_to_pos=idx_to_pos, _pos_of=dict(zip(pseudo, range(count))), raw_len=raw_len)
    return MidxLayout(path=path, checksum=checksum, view=view, packs=tuple(packs), starts=tuple(starts),
                      pack_positions=pack_positions)


def _pack_name_ok(name: str) -> bool:
    return name.endswith(".idx") and name.startswith("pack-") and "/" not in name and "\\" not in name \
        and name.isascii() and len(name) <= 255


def _chunks(data: bytes, n_chunks: int, body_end: int, path: str) -> dict[bytes, memoryview]:
    """The chunk table: each chunk's bytes by id (chunks end where the next one starts)."""
    if n_chunks > MAX_CHUNKS or HEADER_SIZE + (n_chunks + 1) * CHUNK_ENTRY > body_end:
        raise MidxError(f"{path}: a chunk table of {n_chunks} chunks")
    table = [(data[at:at + 4], int.from_bytes(data[at + 4:at + 12], "big"))
             for at in range(HEADER_SIZE, HEADER_SIZE + (n_chunks + 1) * CHUNK_ENTRY, CHUNK_ENTRY)]
    if table[-1][0] != b"\0\0\0\0":
        raise MidxError(f"{path}: its chunk table does not end")
    view = memoryview(data)
    chunks: dict[bytes, memoryview] = {}
    table_end = HEADER_SIZE + (n_chunks + 1) * CHUNK_ENTRY
    for (chunk_id, start), (_next_id, end) in pairwise(table):
        if not table_end <= start <= end <= body_end or chunk_id in chunks:
            raise MidxError(f"{path}: a chunk out of place")
        chunks[chunk_id] = view[start:end]
    return chunks


def _pseudo_order(chunks: dict[bytes, memoryview], count: int, path: str, raw_len: int,
                  checksum: bytes) -> array[int]:
    """The index position of each pseudo-pack position: the ``RIDX`` chunk, or the ``.rev`` file
    written beside the index (git before 2.39), which must name this index by its checksum."""
    if b"RIDX" in chunks:
        raw: bytes | memoryview = chunks[b"RIDX"]
    else:
        rev_path = os.path.join(os.path.dirname(path), f"{MIDX_NAME}-{checksum.hex()}.rev")
        try:
            with open(rev_path, "rb") as f:
                rev = f.read()
        except OSError as exc:
            raise MidxError(f"{path}: no reverse index (no RIDX chunk, no .rev file)") from exc
        if (len(rev) != 12 + 4 * count + 2 * raw_len or rev[:4] != RIDX_MAGIC
                or int.from_bytes(rev[4:8], "big") != 1 or rev[8:12] != OID_VERSIONS[raw_len].to_bytes(4, "big")
                or rev[12 + 4 * count:12 + 4 * count + raw_len] != checksum):
            raise MidxError(f"{rev_path}: not the reverse index of {path}")
        raw = memoryview(rev)[12:12 + 4 * count]
    if len(raw) != 4 * count:
        raise MidxError(f"{path}: a reverse index of {len(raw) // 4} positions for {count} objects")
    order = _u32s(raw)
    if count and (max(order) >= count or len(set(order)) != count):
        raise MidxError(f"{path}: its reverse index is not an order of its objects")
    return order

