"""The branch of every changeset, and Mercurial's ``rev-branch-cache`` files that keep it.

Branch heads, ``branchmap`` and ``lookup`` of a branch name need the branch of
every changeset.  Read from the changelog, that is one decompression and parse
per changeset (about 20 µs each: a tenth of a second per 5,000, on every server
start).  Mercurial keeps the answer in ``.hg/cache``:

* ``rbc-names-v2``: the branch names, separated by NUL, append-only;
* ``rbc-revs-v2``: one 8-byte record per revision, the first 4 bytes of its
  node and a big-endian index into the names, with the top bit set for a
  changeset that closes its branch (``-v1`` files have the same format).

A record counts only while its node prefix matches the changelog, so a stale
or foreign file costs a recomputation, never a wrong answer.  hgwire reads the
files, and writes them as hg does (under the ``wlock``, names only appended,
revision records appended or the file replaced whole by a rename, never
truncated in place, since hg may map it in memory), so that neither hgwire
after a restart nor hg itself has to read every changeset again.
"""

from __future__ import annotations

import re
import struct
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from backends.hg import kept
from backends.hg.changelog import DEFAULT_BRANCH, parse_changeset, parse_extra
from backends.hg.revlog import Revlog
from backends.hg.vfs import NotRegularFile, Stamp, Vfs
from backends.lru import LruCache

RBC_RECORD = struct.Struct(">4sI")
CLOSED_BIT = 0x80000000
NAMES_V2, REVS_V2 = b"cache/rbc-names-v2", b"cache/rbc-revs-v2"
NAMES_V1, REVS_V1 = b"cache/rbc-names-v1", b"cache/rbc-revs-v1"

Branches = list[tuple[bytes, bool]]
"""Per revision: (branch name, closes its branch)."""


_DATE_LINE = re.compile(rb"[0-9a-f]{40}\n[^\n]+\n-?[0-9]+(?:\.[0-9]+)? -?[0-9]+(?: ([^\n]*))?\n")
"""The first three lines of an ordinary changeset; the group is its extra (None without)."""


def branch_of(text: bytes) -> tuple[bytes, bool]:
    """(branch, closes the branch) of one changelog text, as ``parse_changeset`` gives them.

    Only the first three lines are looked at, the third being ``<time> <tz>[ <extra>]``, with one
    regular expression: reading every changeset's branch is what a cold start pays for.  Anything
    unusual (escapes in the extra, a header that is not plainly well formed) goes through the full
    parser, which also raises on a corrupt text.
    """
    m = _DATE_LINE.match(text)
    if m is None:
        cs = parse_changeset(text)
        return cs.branch, cs.closes_branch
    extra = m[1]
    if not extra or (b"branch" not in extra and b"close" not in extra):  # a key without ":" counts too
        return DEFAULT_BRANCH, False
    if b"\\" in extra:
        fields = parse_extra(extra)
    else:
        fields = {}
        for item in extra.split(b"\0"):
            if item:
                key, _, value = item.partition(b":")
                fields[key] = value
    return fields.get(b"branch", DEFAULT_BRANCH), b"close" in fields


def _names_and_records(plain: Vfs, cl: Revlog) -> tuple[bytes, bytes, list[bytes], bytes] | None:
    """The (names path, revs path, names, records) of the newest pair of files there is."""
    for names_path, revs_path in ((NAMES_V2, REVS_V2), (NAMES_V1, REVS_V1)):
        if plain.exists(names_path) and plain.exists(revs_path):
            break
    else:
        return None
    try:
        names = plain.read(names_path).split(b"\0")
        records = plain.read_range(revs_path, 0, RBC_RECORD.size * len(cl))
    except (OSError, NotRegularFile):  # (a FIFO there: absent, as hg takes a cache it cannot read; rewritten)
        return None
    return names_path, revs_path, names, records


def _matching(records: bytes, cl: Revlog) -> int:
    """How many leading records' node prefixes are the changelog's (all compared at once: a strided
    view of the records against the joined prefixes of its nodes)."""
    count = min(len(records) // RBC_RECORD.size, len(cl))
    if count == 0:
        return 0
    words = memoryview(records)[: count * RBC_RECORD.size].cast("I")  # native order: only compared as bytes
    prefixes = words[0::2].tobytes()
    expected = cl.index.node_prefixes(count)  # each node's first 4 bytes
    if prefixes != expected:
        count = next(i for i in range(count) if prefixes[4 * i:4 * i + 4] != expected[4 * i:4 * i + 4])
    return count


def _vouched_count(names: list[bytes], records: bytes, cl: Revlog) -> int:
    """How many leading records match the changelog's node prefixes with a name index in range.

    The prefixes are compared all at once (``_matching``): this runs at every push's
    commit, and a loop per record cost 9 ms per 5,000 changesets.
    """
    count = _matching(records, cl)
    values = _values(memoryview(records)[: count * RBC_RECORD.size].cast("I")[1::2].tobytes())
    limit = len(names)
    if all(value & ~CLOSED_BIT < limit for value in set(values)):  # (a repository has few names)
        return count
    for rev, value in enumerate(values):
        if value & ~CLOSED_BIT >= limit:
            return rev
    return count


def _values(data: bytes) -> tuple[int, ...]:
    """Big-endian 32-bit words as integers."""
    return struct.unpack(f">{len(data) // 4}I", data)


class _OutOfRange(Exception):
    """A record's name index past the names (``_Pairs``)."""


class _Pairs(dict[int, tuple[bytes, bool]]):
    """A record's value -> (name, closed), made at the first record of each value (a repository
    has few), shared by the others; a name index out of range raises ``_OutOfRange``."""

    def __init__(self, names: list[bytes]) -> None:
        super().__init__()
        self._names = names

    def __missing__(self, value: int) -> tuple[bytes, bool]:
        index = value & ~CLOSED_BIT
        if index >= len(self._names):
            raise _OutOfRange
        pair = self[value] = (self._names[index], value >= CLOSED_BIT)
        return pair


def _vouched(names: list[bytes], records: bytes, cl: Revlog) -> Branches:
    """The (name, closed) of each leading record that ``_vouched_count`` counts.

    Each record's value is decoded once and looked up by a C-level map, its pair made at its first
    record: the first push after a start into 200,000 changesets decoded them twice, each time into
    a set, before the list (9 ms of CPU)."""
    count = _matching(records, cl)
    values = _values(memoryview(records)[: count * RBC_RECORD.size].cast("I")[1::2].tobytes())
    pairs = _Pairs(names)
    try:
        return list(map(pairs.__getitem__, values))
    except _OutOfRange:  # (taken up to the first such record)
        limit = len(names)
        cut = next(rev for rev, value in enumerate(values) if value & ~CLOSED_BIT >= limit)
        return list(map(pairs.__getitem__, values[:cut]))


def read(plain: Vfs, cl: Revlog) -> Branches:
    """The leading revisions the files vouch for: the first record whose node prefix does not
    match the changelog (or whose name index is out of range) ends what is taken.

    Files that vouch for every record they hold (``rbc-*-v2``, as ``write`` leaves them) are
    remembered as ``write`` remembers what it wrote: the next push's ``write`` appends to them
    without checking every record against the changelog again."""
    stamps = (plain.stamp(NAMES_V2), plain.stamp(REVS_V2))
    found = _names_and_records(plain, cl)
    if found is None:
        return []
    names_path, _, names, records = found
    known = _vouched(names, records, cl)
    count = len(known)
    key = getattr(plain, "root", None)
    if (isinstance(key, bytes) and names_path == NAMES_V2 and names != [b""] and stamps[1] is not None
            and count and stamps[1][0] == count * RBC_RECORD.size
            and (plain.stamp(NAMES_V2), plain.stamp(REVS_V2)) == stamps):
        _WRITTEN.put(key, _Written(stamps[0], stamps[1], tuple(names), count))
    return known


@dataclass(frozen=True)
class _Written:
    """What :func:`write` last left in a repository's files: their stamps, the names, how many
    records they vouch for (checked against the changelog then)."""

    names_stamp: Stamp | None
    revs_stamp: Stamp | None
    names: tuple[bytes, ...]
    count: int


_WRITTEN: LruCache[bytes, _Written] = LruCache(
    sys.maxsize, pool=kept.KEPT, parts=lambda written: (
        (written, 300 + sum(kept.TAG_BYTES + len(name) for name in written.names)),))
"""By ``.hg`` directory: the next push appends without checking every record again (within
``kept.KEPT``: a repository of many branches' names are many)."""


def _unchanged(plain: Vfs, cl: Revlog, written: _Written) -> bool:
    """The files are as :func:`write` left them and still agree with the changelog (the node at
    their last record is still there: a strip renumbers what follows it, as ``_branches`` checks)."""
    if not 0 < written.count <= len(cl) or written.revs_stamp is None:
        return False
    if written.revs_stamp[0] != written.count * RBC_RECORD.size:
        return False
    if plain.stamp(NAMES_V2) != written.names_stamp or plain.stamp(REVS_V2) != written.revs_stamp:
        return False
    last = plain.read_range(REVS_V2, (written.count - 1) * RBC_RECORD.size, RBC_RECORD.size)
    return last[:4] == cl.index.node(written.count - 1)[:4]


def write(plain: Vfs, cl: Revlog, known: Sequence[tuple[bytes, bool]]) -> int:
    """Bring ``rbc-names-v2``/``rbc-revs-v2`` up to ``known`` (the branches of the first
    ``len(known)`` revisions of ``cl``); the caller holds the ``wlock``.

    What the files already vouch for is kept byte for byte; new names are
    appended; new records are appended when the file ends where they start,
    else the file is replaced whole.  Without usable v2 names, both files are
    written afresh, the records' file removed first (as hg does) so that no
    reader pairs old records with new names.  Returns how many revisions the
    files now vouch for.
    """
    count = min(len(known), len(cl))
    if count == 0:
        return 0
    key = getattr(plain, "root", None)
    written = _WRITTEN.get(key) if isinstance(key, bytes) else None
    names: list[bytes] = []
    kept_records = b""
    if written is not None and _unchanged(plain, cl, written):
        names, start, appendable = list(written.names), written.count, True  # no pass over every record
    else:
        if plain.exists(NAMES_V2) and plain.exists(REVS_V2):
            found = _names_and_records(plain, cl)
            if found is not None and found[2] != [b""]:
                names, records = found[2], found[3]
                kept_records = records[: RBC_RECORD.size * _vouched_count(names, records, cl)]
        start = len(kept_records) // RBC_RECORD.size
        appendable = bool(names) and plain.size(REVS_V2) == len(kept_records)
    if start >= count:
        return start
    index: dict[bytes, int] = {}
    for i, name in enumerate(names):
        index.setdefault(name, i)
    fresh = not names
    added: list[bytes] = []
    node = cl.index.node
    out = bytearray()
    for rev in range(start, count):
        name, closed = known[rev]
        if name not in index:
            index[name] = len(names) + len(added)
            added.append(name)
        i = index[name]
        out += RBC_RECORD.pack(node(rev)[:4], i | (CLOSED_BIT if closed else 0))
    if fresh:
        plain.unlink(REVS_V2)
        plain.replace(NAMES_V2, b"\0".join(added))
    elif added:
        plain.append(NAMES_V2, b"\0" + b"\0".join(added))
    if appendable:
        plain.append(REVS_V2, bytes(out))
    else:
        plain.replace(REVS_V2, kept_records + bytes(out))
    if isinstance(key, bytes):
        _WRITTEN.put(key, _Written(plain.stamp(NAMES_V2), plain.stamp(REVS_V2), (*names, *added), count))
    return count
