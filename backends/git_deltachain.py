"""Git pack deltas (copy/insert instruction streams): reading, writing and composing them.

A delta turns a base into a target: after two sizes (base, target; little-endian 7-bit
groups), each instruction either copies a range of the base (a byte with the high bit set,
whose low seven bits say which offset and size bytes follow) or inserts the 1 to 127 bytes
that follow its length byte.

``compose_chain`` makes one delta out of a stored chain ``A -> B1 -> ... -> X`` without
resolving any of the texts: the innermost delta is kept as a list of pieces of its target
(each a range of ``A`` or literal bytes), and each outer delta's copies are mapped through the
pieces of the target they copy from.  The pack writer (``backends/git_fastpack.py``) uses it to
send an object as a delta against an ancestor of its stored chain that the pack holds, where
it sent the object whole.
"""

from __future__ import annotations

import functools
import re
from array import array
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

MAX_COPY_SIZE = 0xFFFFFF        # three size bytes
MAX_COPY_OFFSET = 0xFFFFFFFF    # four offset bytes
MAX_INSERT = 0x7F


class DeltaError(ValueError):
    """A delta that does not parse, or does not fit the base it is applied or composed to."""


@dataclass(slots=True)
class Pieces:
    """A target described as consecutive pieces: ``source[i] >= 0`` copies ``length[i]`` bytes of
    the base from that offset; ``source[i] == -1`` inserts ``literal[i]``."""

    base_size: int
    starts: list[int]           # target offset where each piece starts (ascending)
    source: list[int]
    length: list[int]
    literal: list[bytes]

    @property
    def target_size(self) -> int:
        return self.starts[-1] + self.length[-1] if self.starts else 0

    def __len__(self) -> int:
        return len(self.starts)

    def append(self, src: int, size: int, lit: bytes) -> None:
        """One more piece at the end: a copy of ``size`` bytes of the base from ``src``, or (``src``
        -1) the inserted ``lit``; merged into the last piece where it continues it (a copy from
        where the last copy ended, an insert after an insert)."""
        source, length = self.source, self.length
        if source and src >= 0 and source[-1] >= 0 and source[-1] + length[-1] == src:
            length[-1] += size
        elif source and src < 0 and source[-1] < 0:
            self.literal[-1] += lit
            length[-1] += size
        else:
            self.starts.append(self.target_size)
            source.append(src)
            length.append(size)
            self.literal.append(lit)


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(data):
            raise DeltaError("the delta ends inside its header")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at
        if shift > 63:
            raise DeltaError("a delta size does not fit in 64 bits")


def parse_delta(delta: bytes) -> Pieces:
    """The pieces of a delta's target in terms of its base (checked against the declared sizes)."""
    base_size, at = _varint(delta, 0)
    target_size, at = _varint(delta, at)
    pieces = Pieces(base_size, [], [], [], [])
    starts, source, length, literal = pieces.starts, pieces.source, pieces.length, pieces.literal
    out = 0
    end = len(delta)
    while at < end:
        op = delta[at]
        at += 1
        if op & 0x80:
            offset = size = 0
            for bit, shift in ((0x01, 0), (0x02, 8), (0x04, 16), (0x08, 24)):
                if op & bit:
                    if at >= end:
                        raise DeltaError("the delta ends inside a copy instruction")
                    offset |= delta[at] << shift
                    at += 1
            for bit, shift in ((0x10, 0), (0x20, 8), (0x40, 16)):
                if op & bit:
                    if at >= end:
                        raise DeltaError("the delta ends inside a copy instruction")
                    size |= delta[at] << shift
                    at += 1
            if size == 0:
                size = 0x10000
            if offset + size > base_size:
                raise DeltaError("a copy instruction reads past the end of the base")
            if source and source[-1] >= 0 and source[-1] + length[-1] == offset:
                length[-1] += size  # contiguous with the previous copy: one piece
            else:
                starts.append(out)
                source.append(offset)
                length.append(size)
                literal.append(b"")
        elif op:
            if at + op > end:
                raise DeltaError("the delta ends inside an insert instruction")
            starts.append(out)
            source.append(-1)
            length.append(op)
            literal.append(delta[at:at + op])
            size = op
            at += op
        else:
            raise DeltaError("a delta holds the reserved instruction 0")
        out += size
    if out != target_size:
        raise DeltaError("the delta's instructions do not make its declared target size")
    return pieces


def compose(parsed: Pieces, inner: Pieces, max_pieces: int | None = None) -> Pieces:
    """The pieces of ``parsed``'s target (a parsed outer delta) in terms of ``inner``'s base, where
    the outer delta's base is ``inner``'s target.  ``max_pieces``: DeltaError past that many.

    Pieces are merged as ``Pieces.append`` merges them, written out here on the result's lists
    (a shallow fetch of every branch composes 150,000 pieces; a method call each was a tenth of it).
    """
    if parsed.base_size != inner.target_size:
        raise DeltaError("the outer delta's base size is not the inner delta's target size")
    result = Pieces(inner.base_size, [], [], [], [])
    starts, source, length, literal = result.starts, result.source, result.length, result.literal
    i_starts, i_source, i_length, i_literal = inner.starts, inner.source, inner.length, inner.literal
    out = 0          # where the next piece starts in the target
    last = -2        # the last piece's source (-1: an insert; -2: none yet)
    last_end = -1    # where the last copy ended in the base

    for src, size, lit in zip(parsed.source, parsed.length, parsed.literal, strict=True):
        if src < 0:
            if last == -1:
                literal[-1] += lit
                length[-1] += size
            else:
                starts.append(out)
                source.append(-1)
                length.append(size)
                literal.append(lit)
                last = -1
            out += size
            continue
        k = bisect_right(i_starts, src) - 1
        while size:
            skip = src - i_starts[k]
            take = i_length[k] - skip
            take = min(take, size)
            copied = i_source[k]
            if copied >= 0:
                copied += skip
                if last >= 0 and last_end == copied:
                    length[-1] += take
                else:
                    starts.append(out)
                    source.append(copied)
                    length.append(take)
                    literal.append(b"")
                    last = copied
                last_end = copied + take
            elif last == -1:
                literal[-1] += i_literal[k][skip:skip + take]
                length[-1] += take
            else:
                starts.append(out)
                source.append(-1)
                length.append(take)
                literal.append(i_literal[k][skip:skip + take])
                last = -1
            out += take
            src += take
            size -= take
            k += 1
        if max_pieces is not None and len(starts) > max_pieces:
            raise DeltaError("the composed delta has too many pieces")
    return result


def compose_chain(deltas: Sequence[bytes]) -> Pieces:
    """One delta's pieces for a chain given target first: ``deltas[0]`` makes the target from
    the target of ``deltas[1]``, ..., ``deltas[-1]`` is against the base the result is against."""
    if not deltas:
        raise DeltaError("no delta to compose")
    pieces = parse_delta(deltas[-1])
    for outer in reversed(deltas[:-1]):
        pieces = compose(parse_delta(outer), pieces)
    return pieces


MIN_COPY = 8
PREFIX_BLOCK = 1024
"""Bytes ``common_prefix`` compares first, then twice as many each time (a large tree differs somewhere)."""
"""Copies shorter than this go as inserted bytes in ``rebase`` (an instruction costs up to 8)."""


def rebase(target: Pieces, sibling: Pieces, base: bytes, max_pieces: int | None = None) -> Pieces:
    """The pieces of ``target`` in terms of ``sibling``, where both are pieces against ``base``
    (two objects whose stored chains end at the same whole object, ``base`` its text).

    A range of ``base`` that ``target`` copies is copied from where ``sibling`` holds the same
    bytes of ``base`` (the sibling's copy reaching furthest at each point); what the sibling does
    not hold is inserted, from ``base``; ``target``'s own inserts stay.  DeltaError past
    ``max_pieces``.
    """
    if len(base) != target.base_size or len(base) != sibling.base_size:
        raise DeltaError("the texts are not against the same base")
    # the sibling's copies by where they read the base, each with the furthest end reached so far
    spans = sorted((src, src + size, at) for src, size, at in zip(sibling.source, sibling.length, sibling.starts,
                                                                   strict=True) if src >= 0)
    starts = [span[0] for span in spans]
    best: list[int] = []   # index of the span with the furthest end among spans[:i + 1]
    for i, span in enumerate(spans):
        best.append(i if not best or span[1] > spans[best[-1]][1] else best[-1])
    result = Pieces(sibling.target_size, [], [], [], [])
    r_starts = result.starts

    def add(src: int, size: int, lit: bytes) -> None:
        result.append(-1 if src >= 0 and size < MIN_COPY else src, size, lit)  # a short copy goes as its bytes

    for src, size, lit in zip(target.source, target.length, target.literal, strict=True):
        if src < 0:
            add(-1, size, lit)
            continue
        end = src + size
        while src < end:
            k = bisect_right(starts, src) - 1
            if k >= 0 and spans[best[k]][1] > src:
                s_start, s_end, s_at = spans[best[k]]
                take = min(end, s_end) - src
                add(s_at + src - s_start, take, base[src:src + take] if take < MIN_COPY else b"")
            else:
                take = min(end, starts[k + 1] if k + 1 < len(starts) else end) - src
                add(-1, take, base[src:src + take])
            src += take
        if max_pieces is not None and len(r_starts) > max_pieces:
            raise DeltaError("the rebased delta has too many pieces")
    return result


def tree_pieces(target: bytes, base: bytes, raw_len: int) -> Pieces:
    """The pieces of the tree ``target`` in terms of the tree ``base`` (``raw_len``: the bytes of an
    object name), one entry at a time: an entry ``base`` holds byte for byte is copied from there
    (the next entry from where the last copy ended, when it holds it there too), an entry whose
    mode and name ``base`` holds with another object name has that prefix copied and the name
    inserted, any other entry is inserted.  A few dict lookups an entry, where composing the stored
    chain between two versions of a tree went through each of its deltas' pieces.  DeltaError for
    bytes that are not a tree.

    The entries that go on where the base goes on are found as one run of bytes in common
    (``common_prefix``), only their ends looked for; the base's entries are indexed when an entry
    does not go on so (the next version of a tree of 150 files, two of them changed: its 150
    entries were each looked up and appended, 14,000 such trees 1.5 s of a shallow fetch)."""
    if not _tree_bytes(raw_len).fullmatch(base):
        raise DeltaError("the base is not a tree")
    if len(target) == len(base) and (pieces := _id_pieces(target, base, raw_len)) is not None:
        return pieces
    index: tuple[dict[bytes, int], dict[bytes, int]] | None = None
    pieces = Pieces(len(base), [], [], [], [])
    append = pieces.append
    at, end = 0, len(target)
    find = target.find
    follows = 0   # where the base continues after the last entry copied (-1: nowhere known)
    while at < end:
        if follows >= 0:
            same = at + common_prefix(target, at, base, follows)
            run = at
            while (nul := find(b"\0", run, same)) >= 0 and nul + 1 + raw_len <= same:
                run = nul + 1 + raw_len  # (a whole entry in common)
            if run > at:
                append(follows, run - at, b"")
                follows += run - at
                at = run
                continue
        nul = find(b"\0", at)
        if nul < 0 or nul + 1 + raw_len > end:
            raise DeltaError("the target is not a tree")
        stop = nul + 1 + raw_len
        size = stop - at
        if follows >= 0 and base.startswith(target[at:nul + 1], follows) and follows + size <= len(base):
            named = follows  # (the entry the base goes on with: its mode and name, another id)
        else:
            if index is None:
                index = _tree_index(base, raw_len)
            src = index[0].get(target[at:stop], -1)
            if src >= 0:
                append(src, size, b"")
                follows = src + size
                at = stop
                continue
            named = index[1].get(target[at:nul + 1], -1)
        if named >= 0:
            append(named, nul + 1 - at, b"")
            append(-1, raw_len, target[nul + 1:stop])
            follows = named + size
        else:
            append(-1, size, target[at:stop])
            follows = -1
        at = stop
    return pieces


ID_BLOCK = 512
"""Bytes ``changed_ids`` compares first from an entry's end, then twice as many each time they match."""


def changed_ids(new: bytes, old: bytes, starts: Sequence[int], raw_len: int, limit: int | None = None) -> list[int] | None:
    """The entries (by number in ``starts``: ``old``'s entry starts and, last, its end) whose ids
    ``new`` changes, when the two trees, as long as each other, differ only in ids (files changed,
    none added, removed or renamed); None when a byte differs outside an id.  Where they first
    differ is an entry's id, every byte before it the same: ``new`` holds ``old``'s entries up to
    there and that entry's mode and name, and the comparison goes on from that entry's end, in
    blocks (``ID_BLOCK``, doubling while they match), the first differing byte found by their XOR.
    Past ``limit`` entries, the first ``limit + 1`` only."""
    size = len(new)
    changed: list[int] = []
    at, index, block = 0, 0, ID_BLOCK
    while at < size:
        end = min(size, at + block)
        mine, theirs = new[at:end], old[at:end]
        if mine == theirs:
            at, block = end, block * 2
            continue
        first = end - 1 - ((int.from_bytes(mine, "big") ^ int.from_bytes(theirs, "big")).bit_length() - 1) // 8
        index = bisect_right(starts, first, index) - 1
        at = starts[index + 1]
        if first < at - raw_len:
            return None  # (a mode, a name or their NUL differs: the entry starts may not be new's)
        changed.append(index)
        if limit is not None and len(changed) > limit:
            break
        block = ID_BLOCK
    return changed


def _id_pieces(target: bytes, base: bytes, raw_len: int) -> Pieces | None:
    """``tree_pieces`` of two trees that differ only in ids (``changed_ids``), else None: what
    precedes a changed id is copied, the id inserted; the same pieces as the entry-by-entry walk
    (the next version of a tree of 150 files: 150 entry ends were looked for one by one, 60 us of
    each of a hostile --deepen's 14,000 such trees).  ``base`` reads as a tree (``_tree_bytes``)."""
    starts = _tree_starts(base, raw_len)
    changed = changed_ids(target, base, starts, raw_len)
    if changed is None:
        return None
    pieces = Pieces(len(base), [], [], [], [])
    follows = 0
    for index in changed:
        stop = starts[index + 1]
        if stop - raw_len > follows:
            pieces.append(follows, stop - raw_len - follows, b"")
        pieces.append(-1, raw_len, target[stop - raw_len:stop])
        follows = stop
    if len(target) > follows:
        pieces.append(follows, len(target) - follows, b"")
    return pieces


def _tree_starts(tree: bytes, raw_len: int) -> array[int]:
    """Where each entry of ``tree`` starts and, last, where it ends (``tree`` reads as a tree)."""
    return array("q", accumulate(map(len, _tree_entry(raw_len).findall(tree)), initial=0))


@functools.cache
def _tree_entry(raw_len: int) -> re.Pattern[bytes]:
    """One tree entry: a name up to a NUL, then ``raw_len`` bytes (``_tree_bytes``'s unit)."""
    return re.compile(rb"[^\0]*\0.{%d}" % raw_len, re.DOTALL)


def _tree_index(base: bytes, raw_len: int) -> tuple[dict[bytes, int], dict[bytes, int]]:
    """Where each entry of the tree ``base`` starts, by its bytes and by its mode and name (the first
    of each)."""
    at_entry: dict[bytes, int] = {}
    at_name: dict[bytes, int] = {}
    at, end = 0, len(base)
    find = base.find
    while at < end:
        nul = find(b"\0", at)
        stop = nul + 1 + raw_len
        at_entry.setdefault(base[at:stop], at)
        at_name.setdefault(base[at:nul + 1], at)
        at = stop
    return at_entry, at_name


@functools.cache
def _tree_bytes(raw_len: int) -> re.Pattern[bytes]:
    """Bytes that read as tree entries to their end: a name up to a NUL, then ``raw_len`` bytes."""
    return re.compile(rb"(?:[^\0]*\0.{%d})*" % raw_len, re.DOTALL)


def common_prefix(a: bytes, at: int, b: bytes, there: int) -> int:
    """How many bytes ``a[at:]`` and ``b[there:]`` share first."""
    size = min(len(a) - at, len(b) - there)
    lo, block = 0, PREFIX_BLOCK
    while lo < size:  # (blocks that double: a difference near the start costs little of a large tree)
        hi = min(size, lo + block)
        x, y = a[at + lo:at + hi], b[there + lo:there + hi]
        if x != y:  # (the first differing byte: where the XOR of the two blocks, read big-endian, starts)
            return hi - -((int.from_bytes(x, "big") ^ int.from_bytes(y, "big")).bit_length() // -8)
        lo, block = hi, block * 2
    return size


def _put_varint(out: bytearray, value: int) -> None:
    while value >= 0x80:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)


def encode_delta(pieces: Pieces) -> bytes:
    """The delta for ``pieces`` (copies split at 16 MiB, inserts at 127 bytes)."""
    out = bytearray()
    _put_varint(out, pieces.base_size)
    _put_varint(out, pieces.target_size)
    for src, size, lit in zip(pieces.source, pieces.length, pieces.literal, strict=True):
        if src < 0:
            for at in range(0, size, MAX_INSERT):
                part = lit[at:at + MAX_INSERT]
                out.append(len(part))
                out += part
            continue
        while size:
            take = min(size, MAX_COPY_SIZE)
            if src > MAX_COPY_OFFSET:
                raise DeltaError("a copy reaches past the 4 GiB a delta instruction can address")
            op = 0x80
            args = bytearray()
            for bit, shift in ((0x01, 0), (0x02, 8), (0x04, 16), (0x08, 24)):
                byte = (src >> shift) & 0xFF
                if byte:
                    op |= bit
                    args.append(byte)
            for bit, shift in ((0x10, 0), (0x20, 8), (0x40, 16)):
                byte = (take >> shift) & 0xFF
                if byte:
                    op |= bit
                    args.append(byte)
            out.append(op)
            out += args
            src += take
            size -= take
    return bytes(out)


def apply_pieces(pieces: Pieces, base: bytes) -> bytes:
    """The target the pieces describe over ``base`` (for tests and checks)."""
    if len(base) != pieces.base_size:
        raise DeltaError("the base is not the size the delta expects")
    return b"".join(lit if src < 0 else base[src:src + size]
                    for src, size, lit in zip(pieces.source, pieces.length, pieces.literal, strict=True))
