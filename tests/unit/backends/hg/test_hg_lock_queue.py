"""The writers of this process that wait for a repository's lock: one deadline for the whole wait
(their turn here, then the lock file, then the second lock), their turns in arrival order, and every
one refused is told who holds the lock."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from backends.hg import FsLocks
from backends.hg.lock import FileLock, lock_prefix
from protocols.errors import StorageError


def _repo(tmp_path: Path) -> Path:
    (tmp_path / "r" / ".hg" / "store").mkdir(parents=True)
    return tmp_path / "r" / ".hg"


def _timed_acquire(lock: FileLock, results: dict[str, object], key: str) -> None:
    start = time.monotonic()
    try:
        lock.acquire()
    except StorageError as exc:
        results[key] = (time.monotonic() - start, str(exc))
    else:
        results[key] = (time.monotonic() - start, None)
        lock.release()


def test_a_writer_queued_behind_another_waits_its_timeout_in_all(tmp_path: Path, live_pid: int) -> None:
    """Queued behind a writer that waits for a process's lock file, a second writer waited its
    timeout for its turn and then its timeout again for the file."""
    hg = _repo(tmp_path)
    os.symlink(f"{lock_prefix()}:{live_pid}", hg / "store" / "lock")
    results: dict[str, object] = {}
    first = threading.Thread(target=_timed_acquire, args=(FileLock(str(hg / "store" / "lock"), 1.0), results, "1"))
    first.start()
    time.sleep(0.3)
    _timed_acquire(FileLock(str(hg / "store" / "lock"), 1.0), results, "2")
    first.join()
    elapsed, message = results["2"]  # type: ignore[misc]
    assert 0.9 < elapsed < 1.4, elapsed
    assert message == ("the repository is locked by another write in progress "
                       f"(held by process {live_pid} on this host); try again later")


def test_the_two_locks_of_a_write_share_one_deadline(tmp_path: Path, live_pid: int) -> None:
    hg = _repo(tmp_path)
    os.symlink(f"{lock_prefix()}:{live_pid}", hg / "wlock")
    os.symlink(f"{lock_prefix()}:{live_pid}", hg / "store" / "lock")
    threading.Timer(0.6, os.unlink, (hg / "wlock",)).start()  # the wlock is freed, the lock stays
    locks = FsLocks(str(hg), "r")
    locks.wlock.timeout = locks.lock.timeout = 1.0
    start = time.monotonic()
    with pytest.raises(StorageError):
        locks.acquire()
    assert time.monotonic() - start < 1.4
    assert not (hg / "wlock").is_symlink(), "the wlock taken is given back"


def test_waiting_writers_take_the_lock_in_the_order_they_came(tmp_path: Path) -> None:
    """A write arriving as the lock was released took it before those that had waited (a push 20 s
    late won over earlier ones)."""
    hg = _repo(tmp_path)
    holder = FileLock(str(hg / "wlock"), 10.0)
    holder.acquire()
    order: list[int] = []

    def write(i: int) -> None:
        lock = FileLock(str(hg / "wlock"), 10.0)
        lock.acquire()
        order.append(i)
        time.sleep(0.01)
        lock.release()

    writers = [threading.Thread(target=write, args=(i,)) for i in range(6)]
    for writer in writers:
        writer.start()
        time.sleep(0.05)
    holder.release()
    write(6)  # arrives as the lock is freed: after those that wait
    for writer in writers:
        writer.join()
    assert order == list(range(7))


def test_a_writer_refused_in_the_queue_is_told_the_holder(tmp_path: Path) -> None:
    """Refused while a write of this server held the lock, a writer was told only "another write in
    progress"; the one waiting for the file of another process was told which."""
    hg = _repo(tmp_path)
    holder = FileLock(str(hg / "wlock"), 10.0)
    holder.acquire()
    try:
        with pytest.raises(StorageError) as refused:
            FileLock(str(hg / "wlock"), 0.3).acquire()
    finally:
        holder.release()
    assert str(refused.value) == ("the repository is locked by another write in progress "
                                  f"(held by process {os.getpid()} on this host); try again later")
