"""Mercurial-compatible locks: ``.hg/wlock`` and ``.hg/store/lock``.

Mercurial creates the lock as a symlink whose target is ``host:pid`` (with the
Linux pid namespace appended to the host), atomically, and breaks it only when
the holder is a dead process on this same host (lock.py).  Doing exactly the
same makes a real ``hg`` and hgwire exclude each other.
"""

from __future__ import annotations

import errno
import math
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import ClassVar

from backends.hg.vfs import open_regular
from protocols.errors import StorageError, storage_advice

DEFAULT_TIMEOUT = 120.0
"""Seconds a write waits in all for a lock someone else holds, then is refused.  hg's ``ui.timeout``
is 600, but a waiting push holds one of the server's push threads (``gateway.threads.HOOK_POOL_SIZE``,
shared with git hooks and LFS uploads) and a connection that may see no byte meanwhile, which
``idle_timeout`` (600 s) would drop: two minutes lets a burst of pushes through a slow hook each."""
WARN_AFTER = 1.0
"""Seconds of waiting after which the writer is told who holds the lock (hg tells at once)."""


def lock_prefix() -> str:
    """``hostname`` plus ``/<pid namespace inode>`` on Linux, as Mercurial writes it."""
    host = socket.gethostname()
    try:
        host += f"/{os.stat('/proc/self/ns/pid').st_ino:x}"
    except OSError:
        pass
    return host


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (one of another user counts: it exists)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_holder(path: str) -> str | None:
    """The ``host:pid`` text of a held lock (symlink or plain file), or None if free."""
    try:
        return os.readlink(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
    try:  # a regular file only: a FIFO there held the worker for ever (NotRegularFile says so)
        fd, _size = open_regular(path)
    except FileNotFoundError:
        return None
    try:
        parts = []
        while chunk := os.read(fd, 4096):
            parts.append(chunk)
    finally:
        os.close(fd)
    return b"".join(parts).decode("utf-8", "replace")


def held_message(path: str, holder: str | None) -> str:
    """Why a write waited for the lock ``path`` in vain, and what to do: a holder on another host
    (another machine or container sharing the disk, or one whose name changed since) may be long
    gone, and nothing here can tell; hg's own ``debuglocks`` frees such a lock."""
    which = "wlock" if os.path.basename(path) == "wlock" else "lock"
    host, _, pid = (holder or "").rpartition(":")
    if not pid.isdigit() or host == lock_prefix():  # this server, or another program here (hg itself)
        return ("the repository is locked by another write in progress"
                + (f" (held by process {pid} on this host)" if pid.isdigit() else "") + "; try again later")
    return (f"the repository is locked by process {pid} on host '{host.partition('/')[0][:64]}', which this "
            f"server cannot check; if it stays locked, ask the server's operator to free it "
            f"(hg debuglocks --force-free-{which})")


def waiting_message(desc: str, holder: str) -> str:
    """hg's words for a writer that waits (``lock.trylock``): ``waiting for lock on repository NAME
    held by process '123' on host 'HOST'``."""
    host, colon, pid = holder.rpartition(":")
    if not colon:
        return f"waiting for lock on {desc} held by {holder[:80]!r}"
    return f"waiting for lock on {desc} held by process {pid[:20]!r} on host {host[:80]!r}"


def _lock_key(path: str) -> str:
    """Which lock file ``path`` is, for the threads of this process: its directory's device and
    inode and its name, so that two spellings of one repository (a symbolic link to it) share one
    lock, and a repository renamed under a write is still the same one."""
    directory, name = os.path.split(path)
    try:
        st = os.stat(directory)
    except OSError:
        return os.path.realpath(path)
    return f"{st.st_dev}:{st.st_ino}/{name}"


def _is_stale(holder: str) -> bool:
    host, _, pid = holder.rpartition(":")
    if host != lock_prefix() or not pid.isdigit():
        return False
    return not pid_alive(int(pid))


def _break(path: str, holder: str) -> None:
    """Remove the lock ``path`` of a dead ``holder``, rechecking under ``<path>.break`` as Mercurial does.

    A breaker that died while breaking leaves ``<path>.break`` behind; it is
    broken the same way, under ``<path>.break.break`` (Mercurial takes the
    ``.break`` lock with its own lock class, staleness test included).  Else
    every later writer would spin here for good.
    """
    breaker = path + ".break"
    try:
        os.symlink(f"{lock_prefix()}:{os.getpid()}", breaker)
    except FileExistsError:
        breaker_holder = read_holder(breaker)
        if breaker_holder is not None and _is_stale(breaker_holder):
            _break(breaker, breaker_holder)
        else:
            time.sleep(0.05)
        return
    try:
        if read_holder(path) == holder:
            os.unlink(path)
    finally:
        os.unlink(breaker)


class _Gate:
    """The threads of this process that want one lock file, let through one at a time in the order
    they came (a ticket queue): a write arriving later never overtakes one that waits already."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.queue: deque[object] = deque()
        self.held = False

    def enter(self, deadline: float, waited: _Waiting) -> bool:
        """Wait for this thread's turn until ``deadline``; False if it did not come."""
        ticket = object()
        with self.changed:
            self.queue.append(ticket)
            try:
                while self.held or self.queue[0] is not ticket:
                    now = time.monotonic()
                    if now >= deadline:
                        return False
                    waited.tick()
                    self.changed.wait(min(deadline, waited.next_tick()) - now)
                self.held = True
                return True
            finally:
                self.queue.remove(ticket)
                self.changed.notify_all()  # the next in line may be the head now

    def try_enter(self) -> bool:
        with self.changed:
            if self.held or self.queue:
                return False
            self.held = True
            return True

    def leave(self) -> None:
        with self.changed:
            self.held = False
            self.changed.notify_all()


class _Waiting:
    """What a waiting writer is told, as hg's ``lock.trylock`` tells it (``ui.warn``): who holds the
    lock once the wait passes ``WARN_AFTER``, and how long it took once it is taken."""

    def __init__(self, lock: FileLock, notify: Callable[[str], None] | None) -> None:
        self._lock = lock
        self._notify = notify
        self._started = time.monotonic()
        self._announced = False

    def next_tick(self) -> float:
        """When ``tick`` next has something to say (a wait without a listener: never)."""
        return self._started + WARN_AFTER if self._notify is not None and not self._announced else math.inf

    def tick(self) -> None:
        if self._notify is not None and not self._announced and time.monotonic() >= self.next_tick():
            self._announced = True
            self._notify(waiting_message(self._lock.desc, self._lock.holder()))

    def got(self) -> None:
        if self._notify is not None and self._announced:
            self._notify(f"got lock after {int(time.monotonic() - self._started)} seconds")


class FileLock:
    """One Mercurial lock file; the threads of this process take it one at a time, in arrival order."""

    _gates: ClassVar[dict[str, _Gate]] = {}
    _registry_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, path: str, timeout: float | None = None, desc: str | None = None) -> None:
        self.path = path
        self.timeout = DEFAULT_TIMEOUT if timeout is None else timeout
        self.desc = desc or path
        """What hg's waiting message calls it: ``repository NAME``, ``working directory of NAME``."""
        with FileLock._registry_lock:
            self._gate = FileLock._gates.setdefault(_lock_key(path), _Gate())

    def acquire(self, deadline: float | None = None, notify: Callable[[str], None] | None = None) -> None:
        """Take the lock, waiting while a thread here or a live process has it; StorageError, naming
        the holder, at ``deadline`` (``time.monotonic()``; by default ``timeout`` from now), one
        deadline for the turn among this process's threads and for the file.  ``notify`` is told
        hg's ``waiting for lock …`` once the wait passes ``WARN_AFTER``, then ``got lock after N
        seconds``."""
        deadline = time.monotonic() + self.timeout if deadline is None else deadline
        waited = _Waiting(self, notify)
        if not self._gate.enter(deadline, waited):
            raise StorageError(held_message(self.path, self.holder()))
        try:
            self._acquire_file(deadline, waited)
        except BaseException:
            self._gate.leave()
            raise
        waited.got()

    def holder(self) -> str:
        """Who holds the lock now: its file's ``host:pid``, or this process while a thread here has
        its turn and has not written the file yet."""
        return read_holder(self.path) or f"{lock_prefix()}:{os.getpid()}"

    def _acquire_file(self, deadline: float, waited: _Waiting) -> None:
        me = f"{lock_prefix()}:{os.getpid()}"
        while True:
            try:
                os.symlink(me, self.path)
                return
            except FileExistsError:
                pass
            except OSError as exc:  # a read-only or full disk: no write could follow
                raise StorageError(f"the server could not lock the repository ({exc.strerror or exc}); "
                                   f"nothing was changed, {storage_advice(exc)}") from exc
            holder = read_holder(self.path)
            if holder is not None and (holder == me or _is_stale(holder)):
                # ours, yet no thread here holds it (this thread has this file's turn):
                # left by a write whose repository was moved or renamed under it, never released
                _break(self.path, holder)
                continue
            if time.monotonic() > deadline:
                raise StorageError(held_message(self.path, holder))
            waited.tick()
            time.sleep(0.05)

    def try_acquire(self) -> bool:
        """Take the lock only if nobody (no thread here, no other process) holds it or waits for it now."""
        if not self._gate.try_enter():
            return False
        try:
            os.symlink(f"{lock_prefix()}:{os.getpid()}", self.path)
        except FileExistsError:
            self._gate.leave()
            return False
        except BaseException:
            self._gate.leave()
            raise
        return True

    def release(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:  # the repository was moved or removed meanwhile: its lock went with it
            pass
        finally:
            self._gate.leave()

    def held_by_other(self) -> bool:
        """True if a live process (a real ``hg`` or another writer) holds the lock now."""
        holder = read_holder(self.path)
        return holder is not None and not _is_stale(holder)
