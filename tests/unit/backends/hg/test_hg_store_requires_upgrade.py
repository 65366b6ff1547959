"""A share-safe repository read while ``hg debugupgraderepo`` makes it share-safe: hg writes
``.hg/requires`` (naming share-safe) first and ``.hg/store/requires`` just after, so a clone that
opened the repository in between met "share-safe repository without .hg/store/requires" (a 500 over
HTTP, found with clones running beside the upgrade). The store's file is now waited for a moment."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

import backends.hg as hg_backend
from backends.hg import read_requirements
from protocols.errors import StorageError

WC = b"share-safe\n"
STORE = b"dotencode\nfncache\ngeneraldelta\nrevlogv1\nsparserevlog\nstore\n"


def _half_upgraded(tmp_path: Path) -> Path:
    hg_dir = tmp_path / ".hg"
    (hg_dir / "store").mkdir(parents=True)
    (hg_dir / "requires").write_bytes(WC)
    return hg_dir


def _sleeps(monkeypatch: pytest.MonkeyPatch, then: Callable[[int], object] = lambda n: None) -> list[float]:
    """The reader's waits between its looks for the store's file; ``then(n)`` after the n-th."""
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)
        then(len(slept))

    monkeypatch.setattr(hg_backend, "time", SimpleNamespace(monotonic=time.monotonic, sleep=sleep))
    return slept


def test_a_store_requires_written_just_after_the_working_one_is_read(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    hg_dir = _half_upgraded(tmp_path)
    monkeypatch.setattr(hg_backend, "STORE_REQUIRES_WAIT", 600.0)  # (a loaded host's stalls are no part of it)
    slept = _sleeps(monkeypatch, lambda n: n == 1 and (hg_dir / "store" / "requires").write_bytes(STORE))
    found = read_requirements(str(hg_dir))  # missing when first looked for, there once it waited
    assert {"share-safe", "store", "fncache", "dotencode", "generaldelta", "revlogv1", "sparserevlog"} <= found
    assert len(slept) == 1


def test_a_store_requires_that_never_comes_is_refused_saying_what_to_do(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    hg_dir = _half_upgraded(tmp_path)
    slept = _sleeps(monkeypatch)
    with pytest.raises(StorageError) as refused:
        read_requirements(str(hg_dir))
    assert slept and sum(slept) <= hg_backend.STORE_REQUIRES_WAIT + max(slept)  # no longer than it says (wall: no)
    said = str(refused.value)
    assert ".hg/store/requires is missing" in said and "try again" in said and "operator" in said, said
