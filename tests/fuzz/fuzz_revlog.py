"""Revlog indexes from hostile bytes: parsing, then reading every revision (chains, chunks, mpatch)."""

from __future__ import annotations

from backends.hg import mpatch
from backends.hg.revlog import (
    FLAG_GENERALDELTA,
    FLAG_INLINE,
    INDEX_ENTRY,
    NULL_REV,
    VERSION_REVLOGV1,
    Revlog,
    node_hash,
    parse_index,
)
from backends.hg.vfs import MemoryVfs
from backends.interfaces import NULL_NODE, Node

from .harness import Target

INDEX = b"data/f.i"
DATA = b"data/f.d"
SEPARATOR = b"\xff\xfeDATA"
MAX_REVS = 64


def run(data: bytes) -> None:
    index_bytes, _, data_bytes = data.partition(SEPARATOR)
    vfs = MemoryVfs()
    vfs.replace(INDEX, index_bytes)
    vfs.replace(DATA, data_bytes)
    index = parse_index(index_bytes, vfs.stamp(INDEX), FLAG_INLINE | VERSION_REVLOGV1)
    revlog = Revlog(vfs, INDEX, index)
    for rev in range(min(len(revlog), MAX_REVS)):
        revlog.parents(revlog.node(rev))
        revlog.stored_delta(rev)
        revlog.revision(rev, verify=rev % 2 == 0)


def build(texts: list[bytes], inline: bool, generaldelta: bool) -> bytes:
    """A valid revlog of a linear history: rev 0 full, the others deltas against their parent."""
    header = VERSION_REVLOGV1 | (FLAG_INLINE if inline else 0) | (FLAG_GENERALDELTA if generaldelta else 0)
    index, chunks = bytearray(), bytearray()
    parent: Node = NULL_NODE
    offset = 0
    for rev, text in enumerate(texts):
        chunk = b"u" + (text if rev == 0 else mpatch.diff(texts[rev - 1], text))
        node = node_hash(text, parent, NULL_NODE)
        base = 0 if rev == 0 or not generaldelta else rev - 1
        offset_flags = offset << 16 if rev else header << 32
        index += INDEX_ENTRY.pack(offset_flags, len(chunk), len(text), base, rev, rev - 1, NULL_REV, node)
        if inline:
            index += chunk
        else:
            chunks += chunk
        offset += len(chunk)
        parent = node
    return bytes(index) if inline else bytes(index) + SEPARATOR + bytes(chunks)


def seeds() -> list[bytes]:
    texts = [b"one\ntwo\n", b"one\ntwo\nthree\n", b"zero\none\ntwo\nthree\n", b"zero\nthree\n"]
    return [build(texts, inline, gd) for inline in (True, False) for gd in (True, False)]


TARGET = Target("revlog", run, seeds, max_size=8192)
