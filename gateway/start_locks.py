"""Locks a start takes on the files one service may not share with another: its ``--pidfile``.

twistd checks a pid file when it starts and writes it only once the service is made, seconds
later: two starts racing on one file both found it free, both ran, and the first to stop removed
the other's file.  The file is now claimed by an exclusive ``flock``, taken without waiting and
held for the life of the process (twistd's daemon inherits it through its forks; the kernel lets
it go with the process, whatever ends it), so the second start is told at once.

The pid file is claimed through a ``FILE.lock`` beside it: twistd removes a stale pid file and
writes a new one, so a lock on the file itself would not outlive that.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os

_pid_lock: list[tuple[int, str]] = []
"""The descriptor and path of the pid file's lock, while it is held."""


class Held(Exception):
    """Another process holds the lock; ``holder`` is the process number it wrote, if any."""

    def __init__(self, holder: int | None) -> None:
        super().__init__(holder)
        self.holder = holder


def _same(fd: int, path: str) -> bool:
    """Whether ``path`` still names the file open as ``fd``."""
    try:
        at_path = os.stat(path)
    except OSError:
        return False
    held = os.fstat(fd)
    return (at_path.st_dev, at_path.st_ino) == (held.st_dev, held.st_ino)


def _locked(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def claim_pid_file(path: str) -> None:
    """Lock ``path.lock`` for this process (written with its number), or raise ``Held`` naming the
    number its holder wrote; OSError when it cannot be made.  The holder that exits removes it
    (``release_pid_file``), so a start that opened it just before locks the next one."""
    lock_path = path + ".lock"
    if any(held == lock_path for _, held in _pid_lock):  # (options parsed again in one process: embedding, tests)
        return
    for _ in range(8):  # (each time, the file opened was removed by its holder exiting meanwhile)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        if not _locked(fd):
            holder = os.read(fd, 32).strip()
            os.close(fd)
            raise Held(int(holder) if holder.isdigit() else None)
        if _same(fd, lock_path):
            break
        os.close(fd)
    else:
        raise Held(None)
    os.ftruncate(fd, 0)
    os.write(fd, b"%d\n" % os.getpid())
    _pid_lock.append((fd, lock_path))
    atexit.register(release_pid_file)  # (an exit by a signal runs no atexit: the service's stop calls it too)


def release_pid_file() -> None:
    """Remove the lock file, still held: a start that opened it just before finds it removed and
    locks a new one, then finds the pid file naming this process until twistd removes it.  The lock
    itself goes with the process.  A directory this user may no longer write (twistd's ``--uid``)
    keeps the file, which the next start locks as it is."""
    for fd, lock_path in _pid_lock:
        if _same(fd, lock_path):
            with contextlib.suppress(OSError):
                os.remove(lock_path)


def drop_pid_file_claim() -> None:
    """Let the claim go at once (the start is refused after it was taken)."""
    release_pid_file()
    while _pid_lock:
        os.close(_pid_lock.pop()[0])
