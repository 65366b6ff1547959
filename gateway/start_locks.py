"""Locks a start takes on the files one service may not share with another: its ``--pidfile`` and
its ``--logfile``.

twistd checks a pid file when it starts and writes it only once the service is made, seconds
later: two starts racing on one file both found it free, both ran, and the first to stop removed
the other's file.  twistd's ``--logfile`` is renamed by its own rotation (``--log-size``,
SIGUSR1): two services writing one file rotated each other's lines away, each writing on into
the file the other had renamed.  Each file is now claimed by an exclusive ``flock``, taken without
waiting and held for the life of the process (twistd's daemon inherits it through its forks; the
kernel lets it go with the process, whatever ends it), so the second start is told at once.

The pid file is claimed through a ``FILE.lock`` beside it: twistd removes a stale pid file and
writes a new one, so a lock on the file itself would not outlive that.  The log file is locked
itself (a ``FILE.lock`` beside a log is one more file for logrotate's ``*`` to rotate away), and
the lock follows the file each time it is opened anew (``follow_log_file``).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os

_pid_lock: list[tuple[int, str]] = []
"""The descriptor and path of the pid file's lock, while it is held."""
_log_lock: list[int] = []
"""The descriptor holding the log file's lock (a file at the log's path, now or earlier)."""


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


def claim_log_file(path: str) -> bool:
    """Lock the log file at ``path`` (made if missing, as twistd makes it) for this process; False
    when another process holds it.  OSError when it cannot be opened."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    if _log_lock and _same(_log_lock[-1], path):  # (options parsed again in one process: embedding, tests)
        os.close(fd)
        return True
    if not _locked(fd):
        os.close(fd)
        return False
    _log_lock.append(fd)
    return True


def follow_log_file(fd: int) -> bool:
    """The log file was opened anew as ``fd`` (a rotation, a reopen after logrotate moved it): move
    the lock onto it.  False when another process locked that file first."""
    if not _log_lock:
        return True
    held = os.fstat(_log_lock[-1])
    now = os.fstat(fd)
    if (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino):
        return True  # the same file (copytruncate, or no rotation): locked already
    mine = os.dup(fd)  # the lock's own descriptor: twistd closes its own at the next rotation
    if not _locked(mine):
        os.close(mine)
        return False
    while _log_lock:
        os.close(_log_lock.pop())
    _log_lock.append(mine)
    return True
