"""hg-evolve's range hashes (``HgRepo.obsmarker_range_hashes``) are kept between requests within
the budget of what the hg engine keeps parsed (``kept.KEPT``), weighed as what they hold, by the
kept repository that computed them and by the store's share: they were held and not counted."""

from __future__ import annotations

import hashlib
from pathlib import Path

from backends.hg import kept, open_for_reading, repository
from protocols import hg_obsmarkers as obs
from tests.unit.backends.hg.test_hg_kept_parsed_budget import _held, _store, traced  # noqa: F401

CHANGESETS = 4000


def test_the_range_hashes_are_weighed_as_they_hold(tmp_path: Path, traced: None) -> None:  # noqa: F811
    path = _store(tmp_path, 0, changesets=CHANGESETS)
    repo = open_for_reading(path, "r")
    cl = repo.changelog()
    nodes = [cl.node(r) for r in range(0, CHANGESETS, 3)]
    markers = [obs.Marker(hashlib.sha1(n).digest(), (n,), 0, (), (0.0, 0), None) for n in nodes]
    (Path(path) / ".hg" / "store" / "obsstore").write_bytes(b"".join(obs.encode(markers, 1)))
    repo = open_for_reading(path, "r")
    repo.views()
    repo.obsstore()
    counted = kept.KEPT.held
    before = _held()
    tip = cl.node(CHANGESETS - 1)
    first = repo.obsmarker_range_hashes([(tip, 0)])
    assert repo.obsmarker_range_hashes([(tip, 0)]) == first and first[0] != b"\0" * 20
    del repo
    again = open_for_reading(path, "r")  # (the kept repository, weighed again as it is given out)
    held = _held() - before
    grown = kept.KEPT.held - counted
    assert held > 300 * CHANGESETS, held
    assert 0.8 * held < grown < 1.25 * held, (held, grown)
    shared = repository.SHARED_RANGE_HASHES.get(again.revlogs.scope or b"")
    assert shared is not None and again._kept_range_hashes is shared
    assert again.obsmarker_range_hashes([(tip, 0)]) == first
