"""Files kept whole (LFS objects, largefiles) get the mode a file the service made gets: 0644 less
the process's umask, which ``process_umask`` reads as it is now (a daemon sets it after start)."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from backends.blobs import process_umask, store_verified


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077, 0o002])
def test_a_stored_blob_gets_the_umask_s_mode(tmp_path: Path, mask: int) -> None:
    previous = os.umask(mask)
    try:
        assert process_umask() == mask
        final = tmp_path / "blob"
        store_verified(str(final), [b"data"], hashlib.sha256(), hashlib.sha256(b"data").hexdigest(),
                       ValueError, max_size=10)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(final.stat().st_mode) == 0o644 & ~mask
    assert final.read_bytes() == b"data"
