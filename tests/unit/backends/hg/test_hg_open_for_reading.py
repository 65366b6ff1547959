"""``open_for_reading`` gives an open repository again only while nothing an open reads changed."""

from __future__ import annotations

import gc
import os
import tracemalloc
from pathlib import Path

import pytest

from backends import hg
from backends.hg import create_repository, open_for_reading
from backends.hg.revlog import SHARED_INDEXES
from tests.unit.backends.hg.test_hg_small_indexes import SPLIT, revisions


def test_the_same_repository_until_its_files_change(tmp_path: Path) -> None:
    path = str(tmp_path / "r")
    create_repository(path, "r")
    first = open_for_reading(path, "r")
    assert open_for_reading(path, "r") is first
    assert open_for_reading(path, "other name") is not first  # (names are part of what it answers)
    journal = tmp_path / "r" / ".hg" / "store" / "journal"
    journal.write_bytes(b"")  # a write under way or interrupted: an open of its own, as before
    assert open_for_reading(path, "r") is not first
    assert not journal.exists()  # (that open rolled it back)
    second = open_for_reading(path, "r")
    requires = tmp_path / "r" / ".hg" / "requires"
    os.utime(requires, ns=(1, 1))  # rewritten requirements
    assert open_for_reading(path, "r") is not second


def test_a_repository_serving_hidden_changesets_is_never_given_again(tmp_path: Path) -> None:
    path = str(tmp_path / "r")
    create_repository(path, "r")
    first = open_for_reading(path, "r")
    first.serve_hidden = True  # (the gateway never asks it for such a request; were it set anyway)
    assert open_for_reading(path, "r") is not first


def test_a_repository_kept_for_reading_holds_no_filelog_index_once_its_request_is_done(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A clone reads every filelog's index; the repository it was given is kept for the next
    requests (16 of them), and kept the last 32 filelog indexes it read, beside the shared cache's
    budget: 16 x 32 indexes of any size, for good.  Filelog indexes are now only the shared cache's."""
    path = str(tmp_path / "r")
    create_repository(path, "r")
    data = tmp_path / "r" / ".hg" / "store" / "data"
    data.mkdir()
    for n in range(8):
        (data / f"f{n}.i").write_bytes(revisions(2000, SPLIT, salt=n * 7, inline=False))
    monkeypatch.setattr(SHARED_INDEXES, "budget", 0)  # (taken by other repositories' indexes)
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    try:
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        repo = open_for_reading(path, "r")
        assert sum(len(repo.filelog(b"f%d" % n).index.entries) for n in range(8)) == 16000  # a clone's reads
        del repo
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        if not tracing:
            tracemalloc.stop()
    assert held < 1_000_000, held  # (16,000 parsed entries are about 6 MB)
    assert open_for_reading(path, "r").filelog(b"f3").index.entries[5][4] == 5 + 21  # read again when asked


def test_repositories_kept_for_reading_hold_their_indexes_within_a_budget(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each kept repository holds its changelog's and manifest's parsed indexes (about 300 bytes a
    revision) for as long as it is kept: 16 of 100,000 revisions held some 480 MB for good.  They are
    now kept within ``READ_REUSE.budget``, weighed by what they hold as they come to hold it (each
    was opened, kept, then made to parse its indexes); a small one is still reused."""
    kept = hg.READ_REUSE
    monkeypatch.setattr(kept, "budget", 16 << 20)
    monkeypatch.setattr(SHARED_INDEXES, "budget", 0)  # (only what the kept repositories hold)
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    try:
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for n in range(10):
            path = str(tmp_path / f"r{n}")
            create_repository(path, "r")
            store = tmp_path / f"r{n}" / ".hg" / "store"
            (store / "00changelog.i").write_bytes(revisions(4000, SPLIT, salt=n, inline=False))
            (store / "00manifest.i").write_bytes(revisions(4000, SPLIT, salt=n + 100, inline=False))
            repo = open_for_reading(path, "r")
            assert len(repo.changelog().index.entries) + len(repo.manifestlog().index.entries) == 8000  # (a clone's)
            del repo
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        if not tracing:
            tracemalloc.stop()
    assert hg.kept.KEPT.held <= kept.budget
    assert held < 16 << 20, held  # (10 x 8,000 parsed entries are about 28 MB)
    assert kept.get((path, "r")) is not None  # (the last asked is kept: a large one too, within the budget)
    small = str(tmp_path / "small")
    create_repository(small, "small")
    assert open_for_reading(small, "small") is open_for_reading(small, "small")
