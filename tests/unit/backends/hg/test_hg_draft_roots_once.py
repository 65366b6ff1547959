"""The draft roots ``listkeys phases`` lists are found once per changelog snapshot: an evolve push
asks three times (its discovery, its ``check:phases``, after it) and each walked every revision
from the first draft's (200,000 changesets, 3,500 drafts: 8 ms each); and ``graph.phase_roots``
steps from one non-public revision to the next where they are few (3.4 ms), with the same roots."""

from __future__ import annotations

import binascii
import random
from array import array
from pathlib import Path

import pytest

from backends.hg import graph, open_repository
from backends.hg.graph import ParentColumns
from tests.unit.backends.hg.test_hg_kept_parsed_budget import _store


def test_listkeys_phases_finds_the_draft_roots_once_per_snapshot(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    path = _store(tmp_path, 0, changesets=300)
    repo = open_repository(path, "r")
    cl = repo.changelog()
    (Path(path) / ".hg" / "store" / "phaseroots").write_bytes(
        b"".join(b"1 %s\n" % binascii.hexlify(cl.node(rev)) for rev in (120, 50, 200)))
    calls = []
    phase_roots = graph.phase_roots

    def counted(parents: object, phases: bytearray) -> dict[int, list[int]]:
        calls.append(len(phases))
        return phase_roots(parents, phases)  # type: ignore[arg-type]

    monkeypatch.setattr(graph, "phase_roots", counted)
    repo = open_repository(path, "r")
    answers = [repo.listkeys(b"phases") for _ in range(3)]
    assert answers[0] == {binascii.hexlify(cl.node(50)): b"1", b"publishing": b"True"}  # (a linear history)
    assert answers == [answers[0]] * 3
    assert calls == [300]  # (three before)


def _plain_roots(parents: list[tuple[int, int]], phases: bytearray) -> dict[int, list[int]]:
    """Minimal revisions of each ``{phase >= level}``, by definition."""
    roots: dict[int, list[int]] = {}
    for rev, (p1, p2) in enumerate(parents):
        above = max(phases[p1] if p1 >= 0 else 0, phases[p2] if p2 >= 0 else 0)
        for level in (1, 2, 32, 96):
            if above < level <= phases[rev]:
                roots.setdefault(level, []).append(rev)
    return roots


@pytest.mark.parametrize("seed", range(12))
def test_phase_roots_are_the_minimal_revisions_of_each_phase(seed: int) -> None:
    rng = random.Random(seed)
    count = rng.randrange(1, 400)
    parents = [(rng.randrange(-1, rev) if rev else -1, rng.randrange(-1, rev) if rev and rng.random() < 0.2 else -1)
               for rev in range(count)]
    rate = rng.choice((0.001, 0.02, 0.5, 1.0))  # few drafts off a public history, or many
    roots = {rev: rng.choice((1, 2, 32, 96)) for rev in range(count) if rng.random() < rate}
    phases = graph.compute_phases(parents, roots)
    columns = ParentColumns(*(array("i", column) for column in zip(*parents, strict=True)))
    assert graph.phase_roots(columns, phases) == graph.phase_roots(parents, phases) == _plain_roots(parents, phases)
