"""The obsstore hg-evolve's range hashes were computed on is held by them until the next range
question (to tell which ranges the markers added since touch): after a push of markers, the store
before it was held, uncounted in what the hg engine keeps (``kept.KEPT``), until then; it is
weighed now while held, once (it is the same object as the store's own until the markers change)."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

from backends.hg import forget, kept, open_for_reading
from protocols import hg_obsmarkers as obs
from tests.unit.backends.hg.test_hg_kept_parsed_budget import _store, traced  # noqa: F401
from tests.unit.backends.hg.test_hg_range_hashes_after_markers import _marker

CHANGESETS = 1000


def _held(obj: object) -> bool:
    return id(obj) in kept.KEPT._objects


def test_the_store_the_range_hashes_were_computed_on_is_weighed_while_held(
        tmp_path: Path, traced: None) -> None:  # noqa: F811
    path = _store(tmp_path, 0, changesets=CHANGESETS)
    cl = open_for_reading(path, "r").changelog()
    rng = random.Random(4)
    markers = [_marker(rng, hashlib.sha1(cl.node(r)).digest(), (cl.node(r),), None) for r in range(0, CHANGESETS, 3)]
    obsstore = Path(path) / ".hg" / "store" / "obsstore"
    obsstore.write_bytes(b"".join(obs.encode(markers, 1)))
    forget(path)
    tip = cl.node(CHANGESETS - 1)
    repo = open_for_reading(path, "r")
    repo.obsmarker_range_hashes([(tip, 0)])
    old = repo.obsstore()
    assert _held(old)
    held = kept.KEPT.held
    del repo
    with obsstore.open("ab") as f:  # a push's marker
        f.write(b"".join(obs.encode([_marker(rng, cl.node(500), (), None)], 1, header=False)))
    again = open_for_reading(path, "r")
    new = again.obsstore()
    again.head_revs(again.views())  # (a request: what it keeps weighed again)
    again = open_for_reading(path, "r")
    assert new is not old and _held(new)
    assert _held(old)  # (held by the range hashes: it was not counted)
    assert kept.KEPT.held >= held + kept.markers_bytes(new)
    again.obsmarker_range_hashes([(tip, 0)])  # (the next question: they move on to the new store)
    again = open_for_reading(path, "r")
    assert not _held(old)  # (let go once the range hashes moved on)
