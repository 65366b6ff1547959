"""What a push of a wide manifest, many files or a large file text costs in memory, measured with
tracemalloc: bounded by a small multiple of the texts, not by a Python object per manifest line or
per file."""

from __future__ import annotations

import binascii
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import backends.hg as hgstore
from backends.hg import writer as writer_mod
from backends.hg.changelog import Changeset, format_changeset
from backends.hg.mpatch import HUNK_HEADER, full_replacement
from backends.hg.repository import HgRepo
from backends.hg.revlog import node_hash
from backends.interfaces import NULL_NODE, Node, RevisionDelta, RevisionGroup, Section
from bench.hg_storage_micro import HistoryBuilder
from protocols.errors import ProtocolError


class WidePush:
    """One changeset whose manifest lists ``count`` files, each a one-line text."""

    def __init__(self, count: int) -> None:
        self.paths = sorted(b"d%03d/sub/file%07d.txt" % (i % 100, i) for i in range(count))
        self.texts = [b"x%d\n" % i for i in range(count)]
        self.nodes = [node_hash(text, NULL_NODE, NULL_NODE) for text in self.texts]
        self.manifest = b"".join(path + b"\0" + binascii.hexlify(node) + b"\n"
                                 for path, node in zip(self.paths, self.nodes, strict=True))
        manifest_node = node_hash(self.manifest, NULL_NODE, NULL_NODE)
        changeset = format_changeset(Changeset(manifest_node, b"a <a@example.com>", 1700000000.0, 0,
                                               {b"branch": b"default"}, tuple(self.paths[:10]), b"wide"))
        self.changeset = Node(node_hash(changeset, NULL_NODE, NULL_NODE))
        self.changelog_delta = RevisionDelta(self.changeset, NULL_NODE, NULL_NODE, self.changeset, NULL_NODE,
                                             full_replacement(0, changeset))
        self.manifest_delta = RevisionDelta(manifest_node, NULL_NODE, NULL_NODE, self.changeset, NULL_NODE,
                                            full_replacement(0, self.manifest))

    def groups(self, files: bool) -> Iterator[RevisionGroup]:
        yield RevisionGroup(Section.CHANGELOG, b"", iter([self.changelog_delta]))
        yield RevisionGroup(Section.MANIFEST, b"", iter([self.manifest_delta]))
        if files:
            for path, text, node in zip(self.paths, self.texts, self.nodes, strict=True):
                yield RevisionGroup(Section.FILE, path, iter([
                    RevisionDelta(node, NULL_NODE, NULL_NODE, self.changeset, NULL_NODE, full_replacement(0, text))]))


def _peak(work: Callable[[], object]) -> int:
    """The most memory ``work`` held at once beyond what was held before it."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        work()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


@pytest.fixture(params=["fs", "memory"])
def repo(request: pytest.FixtureRequest, tmp_path: Path) -> HgRepo:
    if request.param == "fs":
        return hgstore.create_repository(str(tmp_path / "r"), "r")
    return hgstore.MemoryHgRepository("r")


def test_a_wide_manifest_refused_for_its_missing_files_costs_a_few_times_its_text(repo: HgRepo) -> None:
    """Its lines were a list, their paths another, and the revisions they name a dict of a byte
    string per path: 6.7 times the manifest's text (a 1,000,000-file push took 400 MB more)."""
    push = WidePush(50_000)

    def refused() -> None:
        tx = repo.transaction()
        with pytest.raises(ProtocolError, match="refers to a missing revision of 'd000/sub/file0000000.txt'"):
            tx.add_changegroup(push.groups(files=False))

    assert _peak(refused) < 4 * len(push.manifest)
    assert len(repo.changelog()) == 0


def test_a_push_of_many_files_holds_no_writer_per_file_until_its_commit(tmp_path: Path) -> None:
    """Each file's released writer stayed until the commit, 2 KB a file (2 GB for 1,000,000).  On
    disk: the memory backend's store is the memory measured."""
    repo = hgstore.create_repository(str(tmp_path / "r"), "r")
    push = WidePush(5_000)

    def pushed() -> None:
        tx = repo.transaction()
        tx.add_changegroup(push.groups(files=True))
        tx.commit()

    peak = _peak(pushed)
    assert peak < 4 * len(push.manifest) + 400 * len(push.paths)
    assert repo.heads() == [push.changeset]
    revlog = repo.filelog(push.paths[-1])
    assert revlog.revision(0) == push.texts[-1]


def test_a_large_file_changed_by_deltas_holds_its_last_text_and_the_next(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Each revision's node was checked on a helper thread with up to eight texts waiting for it:
    a 512 MiB file's chain of deltas held 4 GB.  Now the texts waiting are bounded in bytes; the
    last one, the next delta's base, and the text it makes are what the push holds."""
    size = 40 << 20
    line = b"%s\n" % (b"0123456789abcdef" * 4095)
    text = (line * (size // len(line) + 1))[:size - 1] + b"\n"
    history = HistoryBuilder()
    parent = history.commit({b"big": text})
    for i in range(4):
        text = text[:1000] + b"changed %d\n" % i + text[1000:]
        parent = history.commit({b"big": text}, parent)
    del text
    revisions = history.files[b"big"]
    for i in range(1, len(revisions)):  # each a delta on the one before, as hg sends them
        added = b"changed %d\n" % (i - 1)
        revisions[i] = revisions[i]._replace(base=revisions[i - 1].node,
                                             delta=HUNK_HEADER.pack(1000, 1000, len(added)) + added)
    history.contents.clear()
    groups = list(history.groups())
    slow_hash = node_hash

    def hash_slowly(text: bytes, p1: Node, p2: Node) -> bytes:  # a slower core: the checks fall behind
        if len(text) > 1 << 20:
            time.sleep(0.3)
        return slow_hash(text, p1, p2)

    monkeypatch.setattr(writer_mod, "node_hash", hash_slowly)
    repo = hgstore.create_repository(str(tmp_path / "r"), "r")

    def pushed() -> None:
        tx = repo.transaction()
        tx.add_changegroup(iter(groups))
        tx.commit()

    assert _peak(pushed) < 2.5 * size
    assert repo.heads() == [parent]
