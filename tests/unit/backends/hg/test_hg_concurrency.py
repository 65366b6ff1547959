"""Readers never see a half-written repository while a writer appends (same process, several threads)."""

from __future__ import annotations

import threading
from pathlib import Path

import backends.hg as hgstore
from backends.interfaces import DeltaMode, Node, RevisionGroup
from bench.hg_storage_micro import linear_history


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
