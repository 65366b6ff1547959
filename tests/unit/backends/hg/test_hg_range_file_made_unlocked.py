"""The range file's making (hg-evolve's range hashes written to ``.hg/cache/hgwire-obshashrange-v1``
after the answer, ``take_after_answer``) holds the ranges' lock only to copy them: it exported and
encoded them under it (a second of CPU for 200,000 changesets), and the client's next question, asked
as soon as the first was answered, waited for all of it.  The encoding is held here by the test while
another question is asked; then the file is written and read back as it was computed."""

from __future__ import annotations

import hashlib
import random
import threading
from pathlib import Path

import pytest

from backends.hg import forget, open_for_reading, rangecache
from protocols import hg_obsmarkers as obs
from tests.unit.backends.hg.test_hg_kept_parsed_budget import _store
from tests.unit.backends.hg.test_hg_range_hashes_after_markers import _marker

CHANGESETS = 2000
WAIT = 30


def test_a_question_is_answered_while_the_range_file_is_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _store(tmp_path, 0, changesets=CHANGESETS)
    cl = open_for_reading(path, "r").changelog()
    rng = random.Random(5)
    markers = [_marker(rng, hashlib.sha1(cl.node(r)).digest(), (cl.node(r),), None) for r in range(0, CHANGESETS, 2)]
    (Path(path) / ".hg" / "store" / "obsstore").write_bytes(b"".join(obs.encode(markers, 1)))
    forget(path)
    repo = open_for_reading(path, "r")
    tip = cl.node(CHANGESETS - 1)
    first = repo.obsmarker_range_hashes([(tip, 0)])
    work = repo.take_after_answer()
    assert work is not None
    encoding, release = threading.Event(), threading.Event()
    encode = rangecache.encode

    def held(*args: object) -> bytes:
        encoding.set()
        release.wait(2 * WAIT)
        return encode(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(rangecache, "encode", held)
    making = threading.Thread(target=work)
    making.start()
    try:
        assert encoding.wait(WAIT)
        answers: list[list[bytes]] = []
        asking = threading.Thread(target=lambda: answers.append(repo.obsmarker_range_hashes([(cl.node(1500), 0)])))
        asking.start()
        asking.join(WAIT)  # (before: it waited on the ranges' lock the making held)
        answered_while_held = bool(answers)
    finally:
        release.set()
        making.join(WAIT)
    assert answered_while_held, "the question waited for the range file's making"
    asking.join(WAIT)
    cache = Path(path) / ".hg" / "cache" / "hgwire-obshashrange-v1"
    assert cache.is_file()
    forget(path)
    assert open_for_reading(path, "r").obsmarker_range_hashes([(tip, 0), (cl.node(1500), 0)]) == [*first, *answers[0]]
