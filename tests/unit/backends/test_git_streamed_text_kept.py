"""A commit, tree or tag the scan of a pushed pack inflates piece by piece (past 1 MiB, or split
across the pieces the stream arrives in) goes to the store with its text, as one inflated in one
call does, within the scan's budget (``TEXT_BATCH_BYTES``): the store checks it from that text
instead of inflating it again.  A tree of 100,000 files (3.9 MB) was inflated twice, the second
time 11 ms of its push's server CPU."""

from __future__ import annotations

import io
import zlib
from pathlib import Path
from typing import Any

import pytest
from dulwich.object_format import SHA1
from dulwich.objects import Blob, RawObjectID, Tree
from dulwich.pack import write_pack_objects
from dulwich.repo import Repo

from backends import git_ingest
from protocols import git_receive

PIECE = 64 << 10


def _large_tree(files: int) -> tuple[Tree, Blob]:
    blob = Blob.from_string(b"same\n")
    tree = Tree()
    for n in range(files):
        tree.add(b"f%06d.txt" % n, 0o100644, blob.id)
    return tree, blob


def _pack(tree: Tree, blob: Blob) -> bytes:
    buf = io.BytesIO()
    write_pack_objects(buf, [(blob, None), (tree, None)], object_format=SHA1)
    return buf.getvalue()


def _scanned(data: bytes, piece: int) -> list[Any]:
    scanner = git_receive.PackScanner()
    objects = []
    for at in range(0, len(data), piece):
        scanner.feed(data[at:at + piece])
        objects += scanner.take_objects()
    assert scanner.complete
    return objects


@pytest.mark.parametrize("piece", [PIECE, 1 << 30])
def test_a_tree_inflated_in_pieces_carries_its_text(piece: int) -> None:
    tree, blob = _large_tree(40_000)  # 1.5 MB: past what the scan inflates in one call
    (blob_record, tree_record) = _scanned(_pack(tree, blob), piece)
    assert tree_record.text == tree.as_raw_string() and tree_record.sha == tree.sha().digest()
    assert blob_record.text is None


def test_the_texts_of_one_batch_stay_within_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tree larger than what the batch may still carry goes without its text (the store inflates
    it), and the next batch has its whole budget again."""
    monkeypatch.setattr(git_receive, "TEXT_BATCH_BYTES", 1 << 20)
    tree, blob = _large_tree(40_000)
    (_blob_record, tree_record) = _scanned(_pack(tree, blob), PIECE)
    assert tree_record.text is None
    small, small_blob = _large_tree(20_000)  # 760 KB: within the budget
    (_blob_record, small_record) = _scanned(_pack(small, small_blob), PIECE)
    assert small_record.text == small.as_raw_string()


def test_the_store_checks_such_a_tree_without_inflating_it_again(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    tree, blob = _large_tree(40_000)
    data = _pack(tree, blob)
    inflated: list[int] = []
    decompress = zlib.decompress

    def counted(raw: Any, *args: Any) -> bytes:
        out = decompress(raw, *args)
        inflated.append(len(out))
        return out

    store = Repo.init_bare(str(tmp_path / "r.git"), mkdir=True).object_store
    ingest = git_ingest.PackIngest(store)
    try:
        scanner = git_receive.PackScanner()
        for at in range(0, len(data), PIECE):  # as the gateway hands it on
            piece = data[at:at + PIECE]
            scanner.feed(piece)
            ingest.write(piece, scanner.take_objects())
        monkeypatch.setattr(zlib, "decompress", counted)
        pack = ingest.commit()
    except BaseException:
        ingest.abort()
        raise
    assert pack is not None
    try:
        assert pack.index.object_offset(RawObjectID(tree.sha().digest())) > 0
    finally:
        pack.close()
    assert not [size for size in inflated if size > 1 << 20], "the tree was inflated again"
