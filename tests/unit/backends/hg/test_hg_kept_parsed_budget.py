"""What the hg engine keeps parsed between requests (every store's views, indexes, branches..., the
repositories kept for read-only requests) is weighed by what it holds, as it grows, within one
budget (``backends.hg.kept.KEPT``, ``[limits] hg_kept_repositories_bytes``).  The views of 64
stores were kept by count, each with its changelog's index (100 MB for 200,000 changesets), and a
kept repository was weighed once, by its index files' sizes, when kept."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from backends import hg
from backends.hg import create_repository, kept, open_for_reading, open_repository, repository
from tests.unit.backends.hg.test_hg_small_indexes import SPLIT, revisions

BUDGET = 8 << 20
CHANGESETS = 4000
"""Each store's changelog: its index, node map and views hold about 2 MB."""


@pytest.fixture
def traced(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(kept.KEPT, "budget", 0)  # (what other tests kept is let go; restored after)
    kept.KEPT.budget = BUDGET
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    try:
        yield
    finally:
        if not tracing:
            tracemalloc.stop()


def _store(tmp_path: Path, n: int, changesets: int = CHANGESETS) -> str:
    path = str(tmp_path / f"r{n}")
    create_repository(path, f"r{n}")
    (tmp_path / f"r{n}" / ".hg" / "store" / "00changelog.i").write_bytes(
        revisions(changesets, SPLIT, salt=n, inline=False))
    return path


def _held() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def test_the_views_of_many_large_stores_stay_within_the_budget_weighed_as_they_hold(
        tmp_path: Path, traced: None) -> None:
    paths = [_store(tmp_path, n) for n in range(10)]
    before = _held()
    for path in paths:
        repo = open_repository(path, "r")
        assert len(repo.views().parents) == CHANGESETS
        assert repo.changelog().rev(repo.changelog().node(7)) == 7  # (its node map built)
        del repo
    held = _held() - before
    assert kept.KEPT.held <= BUDGET
    assert held < BUDGET + (1 << 20), held  # (10 stores' views held 20 MB, 64 would be kept)
    assert held < 1.25 * kept.KEPT.held, (held, kept.KEPT.held)  # weighed honestly: as much as they hold
    last = open_repository(paths[-1], "r")
    assert repository.SHARED_VIEWS.get(last.revlogs.scope or b"") is not None  # (the last used is kept)


def test_a_kept_repository_is_weighed_again_as_it_grows(tmp_path: Path, traced: None) -> None:
    """Kept while its changelog was small, then grown (pushes while it is polled): its weight follows,
    and the repositories kept stay within the budget; 16 such were kept whatever they grew to."""
    paths = [_store(tmp_path, n, changesets=10) for n in range(6)]
    repos = [open_for_reading(path, "r") for path in paths]
    assert all(open_for_reading(path, "r") is repo for path, repo in zip(paths, repos, strict=True))
    small = kept.KEPT.held
    del repos
    before = _held()
    for n, path in enumerate(paths):
        (Path(path) / ".hg" / "store" / "00changelog.i").write_bytes(revisions(CHANGESETS, SPLIT, salt=n, inline=False))
        repo = open_for_reading(path, "r")
        assert len(repo.views().parents) == CHANGESETS
        del repo
    held = _held() - before
    assert kept.KEPT.held <= BUDGET
    assert kept.KEPT.held > small + 2 * CHANGESETS * kept.INDEX_ENTRY_BYTES  # (grown, and counted so)
    assert held < BUDGET + (1 << 20), held  # (6 x 2 MB before, counted at 10 changesets each)
    kept_now = [entry[1] for entry in hg.READ_REUSE.values()]
    assert 1 <= len(kept_now) < 6 and kept_now[-1].name == "r"


def test_a_repository_larger_than_the_budget_is_served_but_not_kept(
        tmp_path: Path, traced: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kept.KEPT, "budget", 1 << 20)
    path = _store(tmp_path, 0)  # (about 2 MB parsed)
    first = open_for_reading(path, "r")
    assert len(first.views().parents) == CHANGESETS
    assert first.heads() == [first.changelog().node(CHANGESETS - 1)]
    second = open_for_reading(path, "r")
    assert second is not first
    assert repository.SHARED_VIEWS.get(first.revlogs.scope or b"") is None
    assert kept.KEPT.held <= 1 << 20
    assert len(second.views().parents) == CHANGESETS
