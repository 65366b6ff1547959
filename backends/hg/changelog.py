"""Changeset, manifest and filelog text formats.

Changeset (helptext/internals/changelog... and Mercurial's changelog.py)::

    <manifest hex>\\n<user>\\n<time> <tz>[ <extra>]\\n<file>\\n...\\n\\n<description>

``extra`` is ``key:value`` pairs joined by NUL with ``\\\\``, ``\\n``, ``\\r``
and NUL escaped.  A flat manifest is sorted lines ``<path>\\0<hex node><flags>``
(flags ``x`` executable, ``l`` symlink).  A filelog text may start with a
``\\1\\n``-framed metadata block holding ``copy`` and ``copyrev``.
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import cast

from backends.interfaces import Node
from protocols.errors import StorageError

DEFAULT_BRANCH = b"default"
META_MARKER = b"\x01\n"


@dataclass(frozen=True, slots=True)
class Changeset:
    """The parsed fields of one changelog entry."""

    manifest: Node
    user: bytes
    time: float
    tz: int
    extra: Mapping[bytes, bytes]
    files: tuple[bytes, ...]
    description: bytes

    @property
    def branch(self) -> bytes:
        return self.extra.get(b"branch", DEFAULT_BRANCH)

    @property
    def closes_branch(self) -> bool:
        return b"close" in self.extra


def _unescape_extra(value: bytes) -> bytes:
    if b"\\" not in value:
        return value
    out = bytearray()
    i = 0
    while i < len(value):
        c = value[i]
        if c == 0x5C and i + 1 < len(value):
            nxt = value[i + 1 : i + 2]
            out += {b"n": b"\n", b"r": b"\r", b"0": b"\0", b"\\": b"\\"}.get(nxt, b"\\" + nxt)
            i += 2
        else:
            out.append(c)
            i += 1
    return bytes(out)


def _escape_extra(value: bytes) -> bytes:
    return value.replace(b"\\", b"\\\\").replace(b"\n", b"\\n").replace(b"\r", b"\\r").replace(b"\0", b"\\0")


def parse_extra(text: bytes) -> dict[bytes, bytes]:
    extra: dict[bytes, bytes] = {}
    for item in text.split(b"\0"):
        if item:
            key, _, value = _unescape_extra(item).partition(b":")
            extra[key] = value
    return extra


def format_extra(extra: Mapping[bytes, bytes]) -> bytes:
    return b"\0".join(_escape_extra(k + b":" + v) for k, v in sorted(extra.items()))


def parse_changeset(text: bytes) -> Changeset:
    """Parse a changelog revision text; raise StorageError if it is malformed."""
    head, _, description = text.partition(b"\n\n")
    lines = head.split(b"\n")
    if len(lines) < 3:
        raise StorageError("corrupt changeset: too few header lines")
    try:
        manifest = Node(binascii.unhexlify(lines[0]))
        when, tz, *rest = lines[2].split(b" ", 2)
        extra = parse_extra(rest[0]) if rest else {}
        parsed_time, parsed_tz = float(when), int(tz)
    except (ValueError, binascii.Error) as exc:
        raise StorageError(f"corrupt changeset: {exc}") from exc
    return Changeset(manifest, lines[1], parsed_time, parsed_tz, extra, tuple(lines[3:]), description)


def format_changeset(cs: Changeset) -> bytes:
    """Produce the changelog text for ``cs`` (the inverse of :func:`parse_changeset`)."""
    when = b"%d" % cs.time if cs.time == int(cs.time) else repr(cs.time).encode()
    date = b"%s %d" % (when, cs.tz)
    extra = dict(cs.extra)
    if extra.get(b"branch") == DEFAULT_BRANCH:
        del extra[b"branch"]
    if extra:
        date += b" " + format_extra(extra)
    lines = [binascii.hexlify(cs.manifest), cs.user, date, *sorted(cs.files)]
    return b"\n".join(lines) + b"\n\n" + cs.description


def manifest_entries(text: bytes) -> list[tuple[bytes, Node, bytes]]:
    """Entries (path, file node, flags) of a flat manifest in stored (sorted) order, empty lines
    skipped, as plain tuples: a manifest of 100,000 files is parsed for each page of it (too large
    for the pages' cache), and an object per entry, then a tuple of it, took twice as long."""
    entries: list[tuple[bytes, bytes, bytes]] = []
    append = entries.append
    for line in text.split(b"\n"):
        if not line:
            continue
        path, sep, rest = line.partition(b"\0")
        if not sep or len(rest) < 40:
            raise StorageError("corrupt manifest line")
        try:
            append((path, binascii.unhexlify(rest[:40]), rest[40:]))
        except binascii.Error as exc:
            raise StorageError("corrupt manifest node") from exc
    return cast(list[tuple[bytes, Node, bytes]], entries)  # (a Node each: no call to say so, per entry)


def manifest_lookup(text: bytes, path: bytes) -> Node | None:
    """The node of one path in a flat manifest text, without parsing the rest of it: a binary
    search over its lines, which are sorted by path (hg's own parser refuses a manifest that is
    not, and a push's manifests are checked for it).  About 13 steps of a few bytes each for 6,000
    files, where a search of the text for ``\npath\0`` read half of it (180 KB) on average."""
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi) // 2
        start = text.rfind(b"\n", lo, mid) + 1 or lo  # the line holding mid (lo: a line start)
        nul = text.find(b"\0", start, hi)
        end = text.find(b"\n", start, hi)
        if end < 0:
            end = hi
        if nul < 0 or nul > end:  # a line without a NUL: not a manifest
            raise StorageError("corrupt manifest line")
        found = text[start:nul]
        if found == path:
            try:
                return Node(binascii.unhexlify(text[nul + 1 : nul + 41]))
            except binascii.Error as exc:
                raise StorageError("corrupt manifest node") from exc
        if found < path:
            lo = end + 1
        else:
            hi = start
    return None


def parse_manifest(text: bytes) -> dict[bytes, tuple[Node, bytes]]:
    return {path: (node, flags) for path, node, flags in manifest_entries(text)}


def format_manifest(entries: Mapping[bytes, tuple[Node, bytes]]) -> bytes:
    return b"".join(
        path + b"\0" + binascii.hexlify(node) + flags + b"\n" for path, (node, flags) in sorted(entries.items())
    )


@dataclass(frozen=True, slots=True)
class FileRevision:
    """A filelog text split into copy metadata and file content."""

    data: bytes
    meta: Mapping[bytes, bytes] = field(default_factory=dict)

    @property
    def copy_source(self) -> tuple[bytes, Node] | None:
        if b"copy" not in self.meta:
            return None
        return self.meta[b"copy"], Node(binascii.unhexlify(self.meta[b"copyrev"]))


def parse_filelog_text(text: bytes) -> FileRevision:
    """Split the ``\\1\\n`` metadata block (copy/copyrev) from the file data."""
    if not text.startswith(META_MARKER):
        return FileRevision(text)
    end = text.find(META_MARKER, 2)
    if end < 0:
        raise StorageError("corrupt filelog metadata: no end marker")
    meta = {}
    for line in text[2:end].split(b"\n"):
        if line:
            key, _, value = line.partition(b": ")
            meta[key] = value
    return FileRevision(text[end + 2 :], meta)


def format_filelog_text(rev: FileRevision) -> bytes:
    """Build a filelog text; data starting with ``\\1\\n`` needs an (empty) metadata block."""
    if not rev.meta and not rev.data.startswith(META_MARKER):
        return rev.data
    meta = b"".join(k + b": " + v + b"\n" for k, v in sorted(rev.meta.items()))
    return META_MARKER + meta + META_MARKER + rev.data
