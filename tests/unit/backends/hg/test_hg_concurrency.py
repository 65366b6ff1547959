"""Readers never see a half-written repository while a writer appends (same process, several threads)."""

from __future__ import annotations

import threading
from pathlib import Path

import backends.hg as hgstore
from backends.interfaces import DeltaMode, Node, RevisionGroup
from bench.hg_storage_micro import linear_history
from tests.integration.test_hg_changelog_format import inline_changelog


def _batches(count: int, size: int) -> list[list[RevisionGroup]]:
    """Changegroups of ``size`` changesets each, continuing one linear history."""
    full = linear_history(count, files=5)
    memory = hgstore.MemoryHgRepository("src")
    tx = memory.transaction()
    tx.add_changegroup(full.groups())
    tx.commit()
    nodes = memory.missing([], memory.heads())
    return [list(memory.emit_groups(nodes[i : i + size], DeltaMode.PREVIOUS)) for i in range(0, count, size)]


def _materialize(groups: list[RevisionGroup]) -> list[RevisionGroup]:
    return [RevisionGroup(g.section, g.path, iter(list(g.revisions))) for g in groups]


def test_readers_during_writes(tmp_path: Path) -> None:
    batches = [_materialize(b) for b in _batches(120, 10)]
    repo = hgstore.create_repository(str(tmp_path / "r"), "r")
    errors: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        reader = hgstore.open_repository(str(tmp_path / "r"), "r")
        last = 0
        try:
            while not done.is_set():
                heads = reader.heads()
                size = len(reader.changelog())
                assert size >= last and len(heads) == 1
                last = size
                nodes: list[Node] = reader.missing([], heads) if size else []
                for group in reader.emit_groups(nodes[-5:], DeltaMode.ANY):
                    for rd in group.revisions:
                        assert rd.node
        except BaseException as exc:  # noqa: BLE001 -- every failure is reported to the main thread
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for groups in batches:
            tx = repo.transaction()
            tx.add_changegroup(iter(groups))
            tx.commit()
    finally:
        done.set()
        for t in threads:
            t.join()
    assert not errors, errors
    assert len(repo.changelog()) == 120


def _read_all(path: Path) -> int:
    """Open the repository as another session would and read every revision a clone sends."""
    reader = hgstore.open_repository(str(path), "r")
    for group in reader.emit_groups(reader.missing([], reader.heads()), DeltaMode.ANY):
        for rd in group.revisions:
            assert rd.node
    return len(reader.changelog())


def test_an_inline_changelog_is_split_in_one_step_at_the_commit(tmp_path: Path) -> None:
    """A changelog older writers left inline is split by the next write (as hg 7 does), and the
    split is one replacement of its index at the commit: before it, with the pending index and the
    new ``.d`` written for the hooks, other sessions read the inline changelog as it was; after it,
    the split one with every revision."""
    first, second = (_materialize(b) for b in _batches(40, 20))
    path = tmp_path / "r"
    repo = hgstore.create_repository(str(path), "r")
    tx = repo.transaction()
    tx.add_changegroup(iter(first))
    tx.commit()
    inline_changelog(path)
    index = path / ".hg/store/00changelog.i"
    inline = index.read_bytes()
    tx = repo.transaction()
    tx.add_changegroup(iter(second))
    assert tx.write_pending() is not None  # type: ignore[attr-defined]
    assert (path / ".hg/store/00changelog.d").exists() and index.read_bytes() == inline
    assert _read_all(path) == 20
    tx.commit()
    assert not index.read_bytes()[1] & 1  # the inline flag
    assert _read_all(path) == 40
