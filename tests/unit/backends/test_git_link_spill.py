"""backends.git_ingest.PushLinks: what a push's links hold for each of them once they are many (the
links of a million tiny blobs' trees), and that the links kept that way are settled against the
pack's own objects with the same findings, in the same words, as links kept in sets."""

from __future__ import annotations

import hashlib
import tracemalloc
from collections.abc import Callable

import pytest

from backends import git_ingest
from backends.git_ingest import ANY, BLOB, COMMIT, TAG, TREE

LINKS = 200_000
BYTES_A_LINK = 35
"""A link kept in a set took about 95 bytes (a bytes object and its slot): 94 MB for the million
links of a million tiny blobs, at the peak of their push.  (The test spills at a sixteenth of its
links, as a million links spill past ``SPILL_LINKS``.)"""


def _id(n: int, salt: bytes = b"") -> bytes:
    return hashlib.sha1(salt + b"%d" % n).digest()


def _entries(ids: list[bytes], mode: int = 0o100644) -> list[tuple[bytes, int, bytes]]:
    return [(b"f%d" % n, mode, sha.hex().encode()) for n, sha in enumerate(ids)]


def test_many_links_take_few_bytes_each(monkeypatch: pytest.MonkeyPatch) -> None:
    """Trees of 1,000 files each, 200,000 links: what the links hold stays under ``BYTES_A_LINK``."""
    monkeypatch.setattr(git_ingest, "SPILL_LINKS", LINKS // 16)
    ids = [_id(n) for n in range(LINKS)]
    chunks = [_entries(ids[at:at + 1000]) for at in range(0, LINKS, 1000)]
    del ids
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        links = git_ingest.PushLinks()
        for entries in chunks:
            links.link_entries(entries)
        held = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert held / LINKS < BYTES_A_LINK, f"{held / LINKS:.0f} bytes a link"
    assert len(links.linked() or ()) == LINKS


def _ordered(own: dict[int, list[bytes]]) -> Callable[[], tuple[bytes, bytes]]:
    pairs = sorted((sha, kind) for kind, ids in own.items() for sha in ids)
    return lambda: (b"".join(sha for sha, _kind in pairs), bytes(kind for _sha, kind in pairs))


def _case(name: str) -> tuple[dict[int, list[bytes]], list[tuple[int, list[bytes]]]]:
    """The pack's own objects by type and the links (type, raw ids) of a case."""
    blobs, trees, commits = ([_id(n, salt) for n in range(300)] for salt in (b"b", b"t", b"c"))
    stored = [_id(n, b"s") for n in range(50)]
    own = {COMMIT: commits, TREE: trees, BLOB: blobs, TAG: []}
    links = [(BLOB, blobs + stored), (TREE, trees[1:]), (COMMIT, commits[1:]), (ANY, commits[:5] + stored[:3])]
    if name == "a-tree-linked-as-a-blob":
        links.append((BLOB, trees[7:9]))
    elif name == "a-blob-linked-as-a-tree-and-a-blob":
        links.append((TREE, stored[10:12]))
    elif name == "a-blob-linked-as-a-commit":
        links.append((COMMIT, [blobs[3]]))
    return own, links


def _linked(linked: list[tuple[int, list[bytes]]]) -> git_ingest.PushLinks:
    links = git_ingest.PushLinks()
    for kind, ids in linked:
        for at in range(0, len(ids), 40):
            if kind == TREE:
                links.link_entries(_entries(ids[at:at + 40], 0o040000))
            elif kind == BLOB:
                links.link_entries(_entries(ids[at:at + 40]))
            else:
                links.link([(sha.hex().encode(), kind) for sha in ids[at:at + 40]])
    return links


def _settled(name: str, spill: bool, monkeypatch: pytest.MonkeyPatch, ordered: bool = True
             ) -> tuple[str | None, set[bytes] | None]:
    monkeypatch.setattr(git_ingest, "SPILL_LINKS", 16 if spill else 1 << 30)
    own, linked = _case(name)
    links = _linked(linked)
    assert bool(links._spilled) == spill
    wrong = links.settle({kind: list(ids) for kind, ids in own.items()}, _ordered(own) if ordered else None)
    return wrong, None if wrong is not None else links.linked()


@pytest.mark.parametrize("name", ["agreeing", "a-tree-linked-as-a-blob", "a-blob-linked-as-a-tree-and-a-blob",
                                  "a-blob-linked-as-a-commit"])
def test_spilled_links_settle_as_links_in_sets(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same finding in the same words (the smallest id of the first kind of finding), and the
    same links left: those to objects outside the pack."""
    in_sets = _settled(name, False, monkeypatch)
    spilled = _settled(name, True, monkeypatch)
    assert spilled == in_sets
    if name == "agreeing":
        assert in_sets[0] is None and in_sets[1] == {_id(n, b"s").hex().encode() for n in range(50)}
    else:
        assert in_sets[0] is not None


@pytest.mark.parametrize("name", ["agreeing", "a-tree-linked-as-a-blob"])
def test_spilled_links_are_checked_whole_without_the_packs_order(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the pack's sorted ids (a caller of ``settle`` that has none), spilled links are
    brought back into sets first: the same answer."""
    assert _settled(name, True, monkeypatch, ordered=False) == _settled(name, False, monkeypatch)
