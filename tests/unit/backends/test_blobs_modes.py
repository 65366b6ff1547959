"""Files kept whole (LFS objects, largefiles) get the mode a file the service made gets: 0644 less
the process's umask, which ``process_umask`` reads as it is now (a daemon sets it after start)."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from backends.blobs import made_whole, process_umask, store_verified


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


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077])
def test_a_directory_made_whole_gets_the_umask_s_mode_not_its_parent_s(tmp_path: Path, mask: int) -> None:
    """A new repository's top directory (``made_whole``) is made as ``mkdir`` makes one, as the
    directories inside it are: ``twistd --umask 027`` under a 0755 root gives 0750, not 0755."""
    tmp_path.chmod(0o755)
    target = tmp_path / "new.git"
    previous = os.umask(mask)
    try:
        made_whole(str(target), lambda building: os.mkdir(os.path.join(building, "objects")), ".tmp-")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(target.stat().st_mode) == 0o777 & ~mask
    assert stat.S_IMODE((target / "objects").stat().st_mode) == 0o777 & ~mask


def test_a_directory_made_whole_under_a_setgid_parent_keeps_the_group_bit(tmp_path: Path) -> None:
    tmp_path.chmod(0o2775)
    previous = os.umask(0o002)
    try:
        made_whole(str(tmp_path / "new.git"), lambda building: None, ".tmp-")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "new.git").stat().st_mode) == 0o2775
