"""Readers never see a half-written repository while a writer appends (same process, several threads)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import backends.hg as hgstore
from backends.hg import revlog as revlog_mod
from backends.interfaces import DeltaMode, Node, RevisionGroup, Section
from bench.hg_storage_micro import linear_history
from tests.integration.test_hg_changelog_format import inline_changelog


def _batches(count: int, size: int, files: int = 5) -> list[list[RevisionGroup]]:
    """Changegroups of ``size`` changesets each, continuing one linear history (of ``files`` files
    at most: 7 makes seven files of several revisions each)."""
    full = linear_history(count, files=files)
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


def _store_files(path: Path) -> dict[str, bytes]:
    store = path / ".hg" / "store"
    return {str(p.relative_to(store)): p.read_bytes() for p in sorted(store.rglob("*")) if p.is_file()}


def _halved(groups: list[RevisionGroup]) -> list[RevisionGroup]:
    """Each file group of two revisions or more sent as two groups of that file (a second group of one
    file goes on from the first, which a split waiting for the commit must not lose); the groups
    given keep their revisions, for another use."""
    out: list[RevisionGroup] = []
    for i, g in enumerate(groups):
        revisions = list(g.revisions)
        groups[i] = RevisionGroup(g.section, g.path, iter(revisions))
        if g.section is Section.FILE and len(revisions) > 1:
            half = len(revisions) // 2
            out += [RevisionGroup(g.section, g.path, iter(revisions[:half])),
                    RevisionGroup(g.section, g.path, iter(revisions[half:]))]
        else:
            out.append(RevisionGroup(g.section, g.path, iter(revisions)))
    return out


def test_an_inline_filelog_or_manifest_split_waits_for_the_commit(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Inline filelogs and manifest that a transaction splits (here every one it writes to) keep their
    ``.i`` while it is open (the manifest's gets the new revisions appended) and the split index waits
    beside it (``data-s/``, ``00manifest.i.s``), as hg's: another session reads the repository as it
    was; an abort leaves every byte of the store as it was; the commit puts the split indexes in place."""
    first, second = _batches(40, 20, files=7)
    path = tmp_path / "r"
    repo = hgstore.create_repository(str(path), "r")
    tx = repo.transaction()
    tx.add_changegroup(iter(_materialize(first)))
    tx.commit()
    before = _store_files(path)
    monkeypatch.setattr(revlog_mod, "MAX_INLINE", 1)
    tx = repo.transaction()
    tx.add_changegroup(iter(_halved(second)))
    assert tx.write_pending() is not None  # type: ignore[attr-defined]
    during = _store_files(path)
    filelogs = [name for name in before if name.startswith("data/")]
    assert filelogs and all(during[name] == before[name] for name in filelogs)
    assert during["00manifest.i"].startswith(before["00manifest.i"])
    assert {"00manifest.i.s", "00manifest.d"} <= during.keys()
    aside = [name for name in during if name.startswith("data-s/")]
    assert aside and {name.replace("data-s/", "data/", 1) for name in aside} <= set(filelogs)
    assert _read_all(path) == 20
    tx.abort()
    assert _store_files(path) == before
    tx = repo.transaction()
    tx.add_changegroup(iter(_halved(second)))
    tx.commit()
    after = _store_files(path)
    assert not [name for name in after if name.startswith("data-s/") or name.endswith(".i.s")]
    split = [name.replace("data-s/", "data/", 1) for name in aside] + ["00manifest.i"]
    assert all(not after[name][1] & 1 and name[:-1] + "d" in after for name in split)  # the inline flag
    assert _read_all(path) == 40
