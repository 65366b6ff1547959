"""``FsVfs.append`` (a push's revlog ``.i`` and ``.d``, the journal, the rbc caches) opened its file
with a plain ``open(path, "ab")``: a FIFO there held the worker (and the repository's lock) for ever
while no process read it, and gave the pushed bytes away to one that did; a link to a device wrote
to it.  It now opens without waiting and writes only to a regular file: ``NotRegularFile``, the
reads' sentence saying it writes, otherwise.

Each FIFO has a reader thread that drains it, so that code which still opens it as before writes
its bytes there (and the test fails) rather than hanging."""

from __future__ import annotations

import contextlib
import os
import select
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from backends.hg.vfs import FsVfs, NotRegularFile

NOT_SERVED = "where hgwire writes only regular files, so it does not serve the repository; tell the server's operator"


@contextlib.contextmanager
def drained_fifo_at(path: Path) -> Iterator[list[bytes]]:
    """A FIFO at ``path`` with a reader that keeps it open and collects what is written to it."""
    os.mkfifo(path)
    got: list[bytes] = []
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # (a writer's open then finds a reader)
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            if select.select([fd], [], [], 0.05)[0]:
                with contextlib.suppress(BlockingIOError):
                    if chunk := os.read(fd, 1 << 16):
                        got.append(chunk)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        yield got
    finally:
        stop.set()
        thread.join()
        os.close(fd)


def test_an_append_to_a_fifo_someone_reads_is_refused_and_sends_nothing(tmp_path: Path) -> None:
    vfs = FsVfs(os.fsencode(tmp_path))
    with drained_fifo_at(tmp_path / "f.d") as got, pytest.raises(NotRegularFile) as refused:
        vfs.append(b"f.d", b"a pushed revision")
    assert str(refused.value) == f"the repository's {tmp_path / 'f.d'} is a FIFO, {NOT_SERVED}"
    assert got == []


def test_an_append_to_a_fifo_no_one_reads_is_refused_at_once(tmp_path: Path) -> None:
    """(Before, this open waited for a reader for ever; the test above shows the old code failing.)"""
    os.mkfifo(tmp_path / "f.d")
    with pytest.raises(NotRegularFile) as refused:
        FsVfs(os.fsencode(tmp_path)).append(b"f.d", b"a pushed revision")
    assert str(refused.value) == f"the repository's {tmp_path / 'f.d'} is a FIFO, {NOT_SERVED}"


def test_an_append_through_a_link_to_a_device_is_refused(tmp_path: Path) -> None:
    (tmp_path / "f.d").symlink_to(os.devnull)
    with pytest.raises(NotRegularFile) as refused:
        FsVfs(os.fsencode(tmp_path)).append(b"f.d", b"a pushed revision")
    assert str(refused.value) == f"the repository's {tmp_path / 'f.d'} is a character device, {NOT_SERVED}"


def test_a_hardlinked_fifo_is_refused_not_copied(tmp_path: Path) -> None:
    """An append first gives a file with other links a copy of its own; a FIFO's copy waited for a
    writer (here one comes and goes, so that such a copy ends and the test fails, not hangs)."""
    stop = threading.Event()

    def writer() -> None:
        while not stop.wait(0.01):
            with contextlib.suppress(OSError):
                os.close(os.open(tmp_path / "other", os.O_WRONLY | os.O_NONBLOCK))

    with drained_fifo_at(tmp_path / "f.d") as got:
        os.link(tmp_path / "f.d", tmp_path / "other")
        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        try:
            with pytest.raises(NotRegularFile):
                FsVfs(os.fsencode(tmp_path)).append(b"f.d", b"a pushed revision")
        finally:
            stop.set()
            thread.join()
    assert got == []


def test_appends_to_regular_files_as_before(tmp_path: Path) -> None:
    vfs = FsVfs(os.fsencode(tmp_path), 0o2770)
    vfs.append(b"data/new/f.i", b"first ")  # (a new directory, a new file: the repository's mode)
    vfs.append(b"data/new/f.i", b"second")
    assert (tmp_path / "data" / "new" / "f.i").read_bytes() == b"first second"
    assert (tmp_path / "data" / "new" / "f.i").stat().st_mode & 0o777 == 0o660
    (tmp_path / "linked").write_bytes(b"shared ")
    os.link(tmp_path / "linked", tmp_path / "other")
    vfs.append(b"linked", b"mine")
    assert (tmp_path / "linked").read_bytes() == b"shared mine"
    assert (tmp_path / "other").read_bytes() == b"shared "
    (tmp_path / "d").mkdir()
    with pytest.raises(IsADirectoryError):
        vfs.append(b"d", b"x")


def test_a_replace_is_not_led_astray_by_what_is_at_its_temporary_name(tmp_path: Path) -> None:
    """``replace`` writes ``NAME.hgwire-tmp`` then renames it over ``NAME``: a FIFO left at that
    name took the bytes (or waited for a reader for ever) and was renamed into place, a link wrote
    through to where it pointed."""
    vfs = FsVfs(os.fsencode(tmp_path))
    outside = tmp_path / "outside"
    outside.write_bytes(b"not the repository's")
    (tmp_path / "phaseroots.hgwire-tmp").symlink_to(outside)
    vfs.replace(b"phaseroots", b"1 " + b"0" * 40 + b"\n")
    assert (tmp_path / "phaseroots").read_bytes() == b"1 " + b"0" * 40 + b"\n"
    assert not (tmp_path / "phaseroots").is_symlink()
    assert outside.read_bytes() == b"not the repository's"
    with drained_fifo_at(tmp_path / "bookmarks.hgwire-tmp") as got:
        vfs.replace(b"bookmarks", b"marks")
    assert (tmp_path / "bookmarks").read_bytes() == b"marks"
    assert got == []
