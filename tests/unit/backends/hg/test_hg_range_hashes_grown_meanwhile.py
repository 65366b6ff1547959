"""Two requests of one store share hg-evolve's range hashes: one opened before a push (its
changelog snapshot shorter), one after.  When the newer one grew the shared ranges past the older
one's changelog between the older one's check of them and its questions, the older one's save of
the ranges to disk (``.hg/cache/hgwire-obshashrange-v1``) named revisions its changelog does not
have: its pull failed, or the file named the wrong changesets."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.hg import open_for_reading, rangecache, repository
from tests.unit.backends.hg.test_hg_kept_parsed_budget import _store
from tests.unit.backends.hg.test_hg_small_indexes import SPLIT, revisions

BEFORE = 100
AFTER = 120


def _after_answer(repo: repository.HgRepo) -> None:
    """What the gateway runs once a request's answer is sent: the range file's write, if due."""
    if (work := repo.take_after_answer()) is not None:
        work()


def test_a_request_on_the_changelog_before_a_push_saves_only_what_it_has(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _store(tmp_path, 0, changesets=BEFORE)
    changelog = Path(path) / ".hg" / "store" / "00changelog.i"
    older = open_for_reading(path, "r")
    tip = older.changelog().node(BEFORE - 1)
    shared = repository.HgRepo._range_hashes
    newer_asked: list[list[bytes]] = []
    started: list[bool] = []

    def meanwhile(self: repository.HgRepo, cl: object, views: object) -> object:
        found = shared(self, cl, views)  # type: ignore[arg-type]
        if not started:  # (the older one's check made: a push lands, a newer request asks)
            started.append(True)
            changelog.write_bytes(revisions(AFTER, SPLIT, salt=0, inline=False))
            newer = open_for_reading(path, "r")
            new_tip = newer.changelog().node(AFTER - 1)
            newer_asked.append(newer.obsmarker_range_hashes([(new_tip, AFTER - 1)]))  # (its one revision)
            _after_answer(newer)
        return found

    monkeypatch.setattr(repository.HgRepo, "_range_hashes", meanwhile)
    answers = older.obsmarker_range_hashes([(tip, 0)])
    assert newer_asked and len(answers) == 1
    monkeypatch.undo()
    _after_answer(older)
    cache = Path(path) / ".hg" / "cache" / "hgwire-obshashrange-v1"
    assert not cache.exists()  # (the older one does not save ranges past its changelog: the newer ones do)
    latest = open_for_reading(path, "r")
    latest.obsmarker_range_hashes([(latest.changelog().node(AFTER - 1), 0)])
    _after_answer(latest)
    fit = rangecache.header(cache.read_bytes())
    assert fit is not None and fit.count == AFTER and fit.tip == latest.changelog().node(AFTER - 1)
