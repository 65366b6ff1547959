"""The writers of this process that wait for a repository's lock: one deadline for the whole wait
(their turn here, then the lock file, then the second lock), their turns in arrival order, and every
one refused is told who holds the lock."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from backends.hg import FsLocks
from backends.hg import lock as lock_mod
from backends.hg.lock import FileLock, lock_prefix
from protocols.errors import StorageError


def _repo(tmp_path: Path) -> Path:
    (tmp_path / "r" / ".hg" / "store").mkdir(parents=True)
    return tmp_path / "r" / ".hg"


def _deadlines(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int, float, float]]:
    """Every wait's deadline as (``turn`` or ``file``, thread, deadline, when the wait began): what a
    wall clock on a loaded host cannot tell apart, one deadline for a write's whole wait or two."""
    seen: list[tuple[str, int, float, float]] = []
    enter, acquire_file = lock_mod._Gate.enter, FileLock._acquire_file

    def turn(self: object, deadline: float, waited: object) -> bool:
        seen.append(("turn", threading.get_ident(), deadline, time.monotonic()))
        return enter(self, deadline, waited)  # type: ignore[arg-type]

    def file(self: FileLock, deadline: float, waited: object) -> None:
        seen.append(("file", threading.get_ident(), deadline, time.monotonic()))
        acquire_file(self, deadline, waited)  # type: ignore[arg-type]

    monkeypatch.setattr(lock_mod._Gate, "enter", turn)
    monkeypatch.setattr(FileLock, "_acquire_file", file)
    return seen


def _until(condition: Callable[[], object]) -> None:
    """Wait for another thread to get somewhere (however long a loaded host takes; no sleep guessed)."""
    while not condition():
        time.sleep(0.001)


def _timed_acquire(lock: FileLock, results: dict[str, object], key: str) -> None:
    start = time.monotonic()
    try:
        lock.acquire()
    except StorageError as exc:
        results[key] = (time.monotonic() - start, str(exc))
    else:
        results[key] = (time.monotonic() - start, None)
        lock.release()


def test_a_writer_queued_behind_another_waits_its_timeout_in_all(tmp_path: Path, live_pid: int,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Queued behind a writer that waits for a process's lock file, a second writer waited its
    timeout for its turn and then its timeout again for the file."""
    hg = _repo(tmp_path)
    os.symlink(f"{lock_prefix()}:{live_pid}", hg / "store" / "lock")
    deadlines = _deadlines(monkeypatch)
    results: dict[str, object] = {}
    first_lock = FileLock(str(hg / "store" / "lock"), 0.3)  # (its wait ends well before the second's)
    first = threading.Thread(target=_timed_acquire, args=(first_lock, results, "1"))
    first.start()
    _until(lambda: first_lock._gate.held)  # the first has its turn and waits for the file
    _timed_acquire(FileLock(str(hg / "store" / "lock"), 2.0), results, "2")
    first.join()
    elapsed, message = results["2"]  # type: ignore[misc]
    assert elapsed > 1.9, elapsed  # (refused at its deadline, never before)
    mine = [(kind, deadline, began) for kind, thread, deadline, began in deadlines if thread == threading.get_ident()]
    assert [kind for kind, _, _ in mine] == ["turn", "file"], mine  # its turn came after the first's wait
    assert mine[0][1] == mine[1][1] <= mine[0][2] + 2.0, mine  # the file within what the turn left
    assert message == ("the repository is locked by another write in progress "
                       f"(held by process {live_pid} on this host); try again later")


def test_the_two_locks_of_a_write_share_one_deadline(tmp_path: Path, live_pid: int,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    hg = _repo(tmp_path)
    os.symlink(f"{lock_prefix()}:{live_pid}", hg / "wlock")
    os.symlink(f"{lock_prefix()}:{live_pid}", hg / "store" / "lock")
    deadlines = _deadlines(monkeypatch)
    threading.Timer(0.6, os.unlink, (hg / "wlock",)).start()  # the wlock is freed, the lock stays
    locks = FsLocks(str(hg), "r")
    locks.wlock.timeout = locks.lock.timeout = 1.0
    with pytest.raises(StorageError):
        locks.acquire()
    assert [kind for kind, *_ in deadlines] == ["turn", "file", "turn", "file"], deadlines  # both locks waited for
    assert len({deadline for _, _, deadline, _ in deadlines}) == 1, deadlines  # one deadline for the two
    assert deadlines[0][2] <= deadlines[0][3] + 1.0, deadlines
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
    for waiting, writer in enumerate(writers, 1):
        writer.start()

        def in_line(n: int = waiting) -> bool:
            return len(holder._gate.queue) == n

        _until(in_line)  # it waits in line before the next comes
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
