"""A share-safe repository read while ``hg debugupgraderepo`` makes it share-safe: hg writes
``.hg/requires`` (naming share-safe) first and ``.hg/store/requires`` just after, so a clone that
opened the repository in between met "share-safe repository without .hg/store/requires" (a 500 over
HTTP, found with clones running beside the upgrade). The store's file is now waited for a moment."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from backends.hg import read_requirements
from protocols.errors import StorageError

WC = b"share-safe\n"
STORE = b"dotencode\nfncache\ngeneraldelta\nrevlogv1\nsparserevlog\nstore\n"


def _half_upgraded(tmp_path: Path) -> Path:
    hg_dir = tmp_path / ".hg"
    (hg_dir / "store").mkdir(parents=True)
    (hg_dir / "requires").write_bytes(WC)
    return hg_dir


def test_a_store_requires_written_just_after_the_working_one_is_read(tmp_path: Path) -> None:
    hg_dir = _half_upgraded(tmp_path)
    writer = threading.Timer(0.05, (hg_dir / "store" / "requires").write_bytes, args=(STORE,))
    writer.start()
    try:
        found = read_requirements(str(hg_dir))
    finally:
        writer.join()
    assert {"share-safe", "store", "fncache", "dotencode", "generaldelta", "revlogv1", "sparserevlog"} <= found


def test_a_store_requires_that_never_comes_is_refused_saying_what_to_do(tmp_path: Path) -> None:
    hg_dir = _half_upgraded(tmp_path)
    started = time.monotonic()
    with pytest.raises(StorageError) as refused:
        read_requirements(str(hg_dir))
    assert time.monotonic() - started < 2
    said = str(refused.value)
    assert ".hg/store/requires is missing" in said and "try again" in said and "operator" in said, said
