"""``lookup(b"tip")`` is the last visible changeset (a C-level search of the views' visibility
bytes), held to its definition, the highest visible revision, for every visibility of a history."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import pytest

import backends.hg as hgstore
from backends.hg.repository import HgRepo
from backends.interfaces import NULL_NODE
from bench.hg_storage_micro import HistoryBuilder


def test_tip_is_the_last_visible_revision_for_every_visibility(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    repo = hgstore.create_repository(str(tmp_path / "r"), "r")
    h = HistoryBuilder()
    node = h.commit({b"f": b"0\n"})
    for i in range(1, 6):
        node = h.commit({b"f": b"%d\n" % i}, node)
    tx = repo.transaction()
    tx.add_changegroup(h.groups())
    tx.commit()
    cl = repo.changelog()
    views = repo.views(cl)
    assert len(cl) == 6 and repo.lookup(b"tip") == cl.node(5)
    for marks in itertools.product((0, 1), repeat=6):
        shown = dataclasses.replace(views, visible=bytearray(marks))
        monkeypatch.setattr(HgRepo, "views", lambda self, cl=None, shown=shown: shown)
        visible = [rev for rev in range(6) if marks[rev]]
        assert repo.lookup(b"tip") == (cl.node(visible[-1]) if visible else NULL_NODE), marks
