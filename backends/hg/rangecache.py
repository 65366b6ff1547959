"""hgwire's own cache of hg-evolve's range hashes on disk (``.hg/cache/hgwire-obshashrange-v1``).

The first ``evoext_obshashrange_v1`` after a start hashed every range of the history (200,000
changesets and 3,500 markers: 2.4-2.8 s of CPU), where ``hg serve`` with evolve reads its own
caches (``.hg/cache/evoext-*``).  The ranges computed (their subranges, the ranges each is a
subrange of) and their hashes are written here, and read back by the next process where the file
fits the repository as it is now: its changelog's first ``count`` nodes (their digest: a strip and
the changesets added back in another order number them otherwise) and the obsstore whose markers
were hashed (its size, its markers' count and a digest of its bytes).  Anything else (another
format, a size that does not add up, a damaged or truncated file) is taken as absent; a value read
is checked where it is used (``FrozenRanges``), so a file made up to fit answers no worse than
made-up hashes: it neither fails nor loops.

Layout, little-endian: ``HEADER``; the sorted keys of the hashed ranges (``head << 32 | index``, 8
bytes each); each one's place in the blob of hashes that are not null (4 bytes, -1 for null);
that blob (20 bytes a hash); the sorted keys of the ranges cut into subranges; where each one's
subranges end in the next array (4 bytes each); those subranges' keys; the pairs (range, a range
it is a subrange of), sorted, as two arrays of keys; then the SHA-1 of all that.
"""

from __future__ import annotations

import hashlib
import struct
import sys
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

NULL_HASH = b"\0" * 20
PATH = b"cache/hgwire-obshashrange-v1"
"""Under ``.hg``; a name of hgwire's own (hg-evolve's are ``evoext-*``): hg leaves it alone."""
MAGIC = b"hgwire obshashrange\n"
VERSION = 1
HEADER = struct.Struct("<20sII20s20sQQ20sQQQQQ")
"""magic, version, count, the node of revision count-1, the digest of the first count nodes, the
obsstore's size, its markers' count and digest, then how many hashes, hashes not null, ranges cut,
subranges listed and (range, range above) pairs."""
BYTES_PER_REVISION = 1024
"""A file past this much a changeset (and ``SLACK``) is not read: a linear history's ranges take
about 76 (two ranges a changeset); a merge's add some."""
SLACK = 1 << 16
_KEY = "Q"
_PLACE = "i"
_END = "I"
_MASK = 0xFFFFFFFF

Range = tuple[int, int]


def key(rangeid: Range) -> int:
    return rangeid[0] << 32 | rangeid[1]


def unkey(packed: int) -> Range:
    return packed >> 32, packed & _MASK


@dataclass(frozen=True)
class Fit:
    """What a file must fit: the changelog's revisions it covers and the markers hashed."""

    count: int
    tip: bytes
    nodes_digest: bytes
    obs_size: int
    obs_count: int
    obs_digest: bytes


class FrozenRanges:
    """Ranges and hashes read back from disk, kept as the file's sorted arrays (some 70 bytes a
    changeset, where the same in dicts hold 420) and looked up by bisection.  Every value is
    checked where it is used: a place past the blob, or subranges that do not cut their range, is
    taken as not known."""

    __slots__ = ("blob", "dropped", "hashed", "keys", "places", "sub_ends", "sub_items", "sub_keys",
                 "sup_child", "sup_parent")

    def __init__(self, keys: array[int], places: array[int], blob: bytes, sub_keys: array[int],
                 sub_ends: array[int], sub_items: array[int], sup_child: array[int],
                 sup_parent: array[int]) -> None:
        self.keys, self.places, self.blob = keys, places, blob
        self.sub_keys, self.sub_ends, self.sub_items = sub_keys, sub_ends, sub_items
        self.sup_child, self.sup_parent = sup_child, sup_parent
        self.hashed = True
        """Whether its hashes are those of the markers used now (the ranges hold whatever they are)."""
        self.dropped: set[int] = set()
        """Keys whose hash went since (a marker changed what is relevant to a changeset of theirs)."""

    def hash_of(self, packed: int) -> bytes | None:
        if not self.hashed or packed in self.dropped:
            return None
        keys = self.keys
        at = bisect_left(keys, packed)
        if at == len(keys) or keys[at] != packed:
            return None
        place = self.places[at]
        if place < 0:
            return NULL_HASH
        found = self.blob[20 * place:20 * place + 20]
        return found if len(found) == 20 else None

    def subranges_of(self, packed: int) -> list[Range] | None:
        keys = self.sub_keys
        at = bisect_left(keys, packed)
        if at == len(keys) or keys[at] != packed:
            return None
        start = self.sub_ends[at - 1] if at else 0
        end = self.sub_ends[at]
        if not start < end <= len(self.sub_items):
            return None
        return [unkey(k) for k in self.sub_items[start:end]]

    def has_subranges(self, packed: int) -> bool:
        keys = self.sub_keys
        at = bisect_left(keys, packed)
        return at < len(keys) and keys[at] == packed

    def supers_of(self, packed: int) -> list[Range]:
        child = self.sup_child
        return [unkey(k) for k in self.sup_parent[bisect_left(child, packed):bisect_right(child, packed)]]

    def hashes(self, hashed: bool | None = None, dropped: set[int] | None = None) -> Iterable[tuple[int, bytes]]:
        """(key, hash) of every hash still held (or held when ``hashed`` and ``dropped`` were copied)."""
        if not (self.hashed if hashed is None else hashed):
            return
        dropped = self.dropped if dropped is None else dropped
        blob = self.blob
        for packed, place in zip(self.keys, self.places, strict=True):
            if packed in dropped:
                continue
            if place < 0:
                yield packed, NULL_HASH
            elif len(found := blob[20 * place:20 * place + 20]) == 20:
                yield packed, found

    def weight(self) -> int:
        arrays = (self.keys, self.places, self.sub_keys, self.sub_ends, self.sub_items, self.sup_child,
                  self.sup_parent)
        return 400 + sum(a.itemsize * len(a) for a in arrays) + len(self.blob) + 80 * len(self.dropped)


def encode(fit: Fit, hashes: Mapping[int, bytes], subranges: Mapping[int, Sequence[int]]) -> bytes:
    """The file's bytes: ``hashes`` and ``subranges`` keyed by ``key``."""
    keys = array(_KEY, sorted(hashes))
    places = array(_PLACE)
    blob = bytearray()
    for packed in keys:
        value = hashes[packed]
        if value == NULL_HASH:
            places.append(-1)
        else:
            places.append(len(blob) // 20)
            blob += value
    sub_keys = array(_KEY, sorted(subranges))
    sub_ends = array(_END)
    sub_items = array(_KEY)
    pairs: list[tuple[int, int]] = []
    for packed in sub_keys:
        subs = subranges[packed]
        sub_items.extend(subs)
        sub_ends.append(len(sub_items))
        pairs.extend((sub, packed) for sub in subs)
    pairs.sort()
    sup_child = array(_KEY, [child for child, _parent in pairs])
    sup_parent = array(_KEY, [parent for _child, parent in pairs])
    header = HEADER.pack(MAGIC, VERSION, fit.count, fit.tip, fit.nodes_digest, fit.obs_size, fit.obs_count,
                         fit.obs_digest, len(keys), len(blob) // 20, len(sub_keys), len(sub_items), len(pairs))
    body = [header, *(_little(a) for a in (keys, places)), bytes(blob),
            *(_little(a) for a in (sub_keys, sub_ends, sub_items, sup_child, sup_parent))]
    data = b"".join(body)
    return data + hashlib.sha1(data).digest()


def header(data: bytes) -> Fit | None:
    """What the file's header says it fits; None for another format."""
    if len(data) < HEADER.size:
        return None
    fields = HEADER.unpack_from(data)
    if fields[0] != MAGIC or fields[1] != VERSION:
        return None
    return Fit(*fields[2:8])


def expected_size(data: bytes) -> int:
    """The size the file's header makes it (``header`` said it is of this format)."""
    n_hashes, n_blob, n_sub, n_items, n_pairs = HEADER.unpack_from(data)[8:]
    return int(HEADER.size + 12 * n_hashes + 20 * n_blob + 12 * n_sub + 8 * n_items + 16 * n_pairs + 20)


def bound(count: int) -> int:
    """The largest file read for ``count`` changesets."""
    return SLACK + BYTES_PER_REVISION * count


def decode(data: bytes) -> FrozenRanges | None:
    """The ranges of a file of this format (``header``); None unless its size adds up and its
    digest matches."""
    if len(data) != expected_size(data) or hashlib.sha1(data[:-20]).digest() != data[-20:]:
        return None
    n_hashes, n_blob, n_sub, n_items, n_pairs = HEADER.unpack_from(data)[8:]
    view = memoryview(data)
    at = HEADER.size
    parts: list[array[int]] = []
    blob = b""
    for code, count in ((_KEY, n_hashes), (_PLACE, n_hashes), ("blob", n_blob), (_KEY, n_sub), (_END, n_sub),
                        (_KEY, n_items), (_KEY, n_pairs), (_KEY, n_pairs)):
        if code == "blob":
            blob = bytes(view[at:at + 20 * count])
            at += 20 * count
            continue
        found = array(code)
        found.frombytes(view[at:at + found.itemsize * count])
        if sys.byteorder != "little":
            found.byteswap()
        at += found.itemsize * count
        parts.append(found)
    keys, places, sub_keys, sub_ends, sub_items, sup_child, sup_parent = parts
    return FrozenRanges(keys, places, blob, sub_keys, sub_ends, sub_items, sup_child, sup_parent)


def _little(values: array[int]) -> bytes:
    if sys.byteorder == "little":
        return values.tobytes()
    swapped = array(values.typecode, values)
    swapped.byteswap()
    return swapped.tobytes()


__all__ = ["PATH", "Fit", "FrozenRanges", "bound", "decode", "encode", "header", "key", "unkey"]
