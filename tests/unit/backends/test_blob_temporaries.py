"""``remove_dead_temporaries``: an upload's temporary is removed only once nobody writes it."""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from pathlib import Path

import pytest

from backends.blobs import DEAD_AFTER, VerifiedWriter, remove_dead_temporaries


def test_a_temporary_being_written_or_just_made_is_kept_a_dead_one_removed(tmp_path: Path) -> None:
    data = b"x" * 10
    final = tmp_path / "aa" / hashlib.sha256(data).hexdigest()
    writer = VerifiedWriter(str(final), hashlib.sha256(), final.name, ValueError, max_size=100)
    writer.write(data[:5])
    (live,) = (tmp_path / "aa").glob(".tmp-*")
    dead = tmp_path / "aa" / ".tmp-dead"
    dead.write_bytes(b"half")
    young = tmp_path / "aa" / ".tmp-young"
    young.write_bytes(b"half")
    long_ago = time.time() - DEAD_AFTER - 10
    for path in (live, dead):
        os.utime(path, (long_ago, long_ago))
    assert remove_dead_temporaries(str(tmp_path / "aa")) == [".tmp-dead"]
    assert live.exists() and young.exists()
    writer.write(data[5:])
    writer.finish()
    assert final.read_bytes() == data


def test_another_process_s_lock_keeps_its_temporary(tmp_path: Path) -> None:
    held = tmp_path / ".tmp-held"
    held.write_bytes(b"half")
    os.utime(held, (0, 0))
    with open(held, "rb") as other:  # another open file: as another process's upload
        fcntl.flock(other.fileno(), fcntl.LOCK_EX)
        assert remove_dead_temporaries(str(tmp_path)) == []
    assert remove_dead_temporaries(str(tmp_path)) == [".tmp-held"]


def test_a_directory_is_looked_at_once_an_interval(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """hg's largefiles share one directory: it is not listed again for every upload."""
    from backends import blobs

    def upload(data: bytes) -> None:
        writer = VerifiedWriter(str(tmp_path / hashlib.sha256(data).hexdigest()), hashlib.sha256(),
                                hashlib.sha256(data).hexdigest(), ValueError, max_size=100)
        writer.write(data)
        writer.finish()

    upload(b"one")
    dead = tmp_path / ".tmp-dead"
    dead.write_bytes(b"half")
    os.utime(dead, (0, 0))
    upload(b"two")
    assert dead.exists()
    monkeypatch.setattr(blobs, "SWEEP_INTERVAL", 0.0)
    upload(b"three")
    assert not dead.exists()


def test_an_upload_whose_directory_another_refused_upload_removes_meanwhile_is_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A refused or abandoned upload removes the directories it made (``lfs/objects/aa/``); another
    upload making its own below them at that moment found one gone inside ``os.makedirs`` and was
    refused (507, "the server's temporary space is full") though nothing was full."""
    data = b"y" * 10
    final = tmp_path / "lfs" / "objects" / "bb" / hashlib.sha256(data).hexdigest()
    makedirs = os.makedirs
    raced: list[str] = []

    def racing(name: str, *args: object, **kwargs: object) -> None:
        if not raced:  # the first time: the parent is removed between makedirs' look and its mkdir
            raced.append(str(name))
            raise FileNotFoundError(2, "No such file or directory", str(name))
        makedirs(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "makedirs", racing)
    writer = VerifiedWriter(str(final), hashlib.sha256(), final.name, ValueError, max_size=100)
    writer.write(data)
    writer.finish()
    assert raced and final.read_bytes() == data
