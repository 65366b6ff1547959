"""``twistd --logfile FILE`` under an outside log rotator (logrotate).

twistd writes FILE through its own ``LogFile``: opened at its end without ``O_APPEND``, rotated by
itself at 1,000,000 bytes and on SIGUSR1 (FILE to FILE.1, FILE.1 to FILE.2…).  Under logrotate
that went wrong both ways an operator configures it:

- ``copytruncate``: the file was truncated under a descriptor that went on writing at its old
  offset, so the file began with that many NUL bytes (``grep`` called it a binary file, and its
  size on disk was back where it was before the truncation);
- a rename and ``postrotate kill -USR1``: twistd's rotation did nothing when FILE had gone (it
  checks it may write FILE), so the service wrote into the renamed file forever; with logrotate's
  ``create`` it renamed the new empty FILE to FILE.1 and logrotate's own FILE.1 to FILE.2.

``manage_log_file`` takes over the ``LogFile`` twistd made (the one its SIGUSR1 handler rotates):
its descriptor writes in append mode (after a truncation the next line lands at the start), its
size is the file's own, and SIGUSR1 reopens FILE when the file at that path is no longer the one
written (moved or removed: nginx's ``kill -USR1``), and rotates it as twistd did otherwise.  SIGHUP
(the service's reload) reopens such a moved or removed FILE too (``reopen_if_moved``), and never rotates.
Without ``--logfile`` (``-n`` to the journal, ``--syslog``), SIGUSR1 is logged and changes nothing:
its default action ended the process at once, every clone and push with it (a logrotate
``postrotate`` or a habit from nginx).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import stat
from typing import Any, cast

from twisted.python import logfile, threadable

from gateway.logs import SafeLogger
from gateway.start_locks import follow_log_file

log = SafeLogger()

RotatingFile = logfile.LogFile | logfile.DailyLogFile
"""What twistd's ``--logfile`` writes through (``LogFile``), and its daily sibling."""


def twistd_log_file(handler: Any) -> RotatingFile | None:
    """The ``LogFile`` twistd's SIGUSR1 handler (``rotateLog``) rotates, or None (no ``--logfile``:
    standard output, syslog, or a handler that is not twistd's)."""
    for cell in getattr(handler, "__closure__", None) or ():
        with contextlib.suppress(ValueError):  # an empty cell
            if isinstance(cell.cell_contents, (logfile.LogFile, logfile.DailyLogFile)):
                return cell.cell_contents
    return None


def _append(log_file: logfile.BaseLogFile) -> None:
    """The open file's descriptor writes at the file's end whatever was done to it meanwhile."""
    fd = log_file._file.fileno()
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_APPEND)


def _same_file(log_file: logfile.BaseLogFile) -> bool:
    """Whether the path still names the file being written."""
    try:
        at_path = os.stat(log_file.path)
    except OSError:
        return False
    written = os.fstat(log_file._file.fileno())
    return (at_path.st_dev, at_path.st_ino) == (written.st_dev, written.st_ino)


def rotate_or_reopen(log_file: RotatingFile) -> None:
    """SIGUSR1's work: reopen the path when the file was moved or removed (an outside rotator's
    ``postrotate``), else rotate it as twistd does (FILE to FILE.1)."""
    path = log_file.path
    if _same_file(log_file):
        log_file.rotate()
        if _same_file(log_file) and getattr(log_file, "refused_at", None) is None:  # twistd's gives up without a word
            log.warn("SIGUSR1: the log file {path} could not be rotated: the service's user may not "  # noqa: G010
                     "write it or its directory {directory}; make them that user's, or let logrotate "
                     "move the file and send SIGUSR1", path=path, directory=log_file.directory)
        return
    _reopen(log_file, "SIGUSR1")


def reopen_if_moved(log_file: RotatingFile) -> None:
    """SIGHUP's part: reopen the path when the file was moved or removed, as SIGUSR1 does (a
    logrotate ``postrotate`` that sends SIGHUP, as for rsyslog and many daemons, left hgwire writing
    the moved file), and nothing else (a file where it was is not rotated)."""
    if not _same_file(log_file):
        _reopen(log_file, "SIGHUP")


def _reopen(log_file: RotatingFile, signal_name: str) -> None:
    """Open the log file's path anew (its file was moved or removed), or say why it cannot be."""
    path = log_file.path
    created = os.path.exists(path)  # logrotate's create: its mode (create 0640 …) is the operator's
    try:
        with open(path, "ab"):
            pass
        if created:  # kept, and given to twistd's own rotations after it: twistd set the mode the file had
            log_file.defaultMode = stat.S_IMODE(os.stat(path).st_mode)  # at the start on each file it opened
    except OSError as e:
        log.warn("{signal}: the log file {path} was moved or removed and cannot be opened again "  # noqa: G010
                 "({reason}); hgwire goes on writing the old one: let the service's user create it "
                 "(logrotate's create with that user) and send {signal} again",
                 signal=signal_name, path=path, reason=e.strerror or str(e))
        return
    log_file.reopen()
    log.info("{signal}: the log file {path} was moved or removed; hgwire writes a new one there",
             signal=signal_name, path=path)


def own_rotations(path: str) -> tuple[int, str | None]:
    """How many of twistd's own rotations of ``path`` there are: ``FILE.1``, ``FILE.2``… up to the
    first number missing (each rotation renames N to N+1, so they run unbroken from 1), and the
    first name of that run that is no regular file (a directory, a symlink), which is not one of
    them, or None.  Whatever lies beyond (logrotate's ``FILE.20261201`` of ``dateext``, a
    ``FILE.7`` after a gap) and any other name (``FILE.1.gz``, ``FILE.bak``) is none of them.
    (twistd counted every ``FILE.*`` ending in a number: ``--log-keep`` deleted such a file, and a
    directory made the rotation raise at every line, each line lost.)"""
    count = 0
    while True:
        name = f"{path}.{count + 1}"
        try:
            found = os.lstat(name)
        except FileNotFoundError:
            return count, None
        except OSError:
            return count, name
        if not stat.S_ISREG(found.st_mode):
            return count, name
        count += 1


class KeepingLogFile(logfile.LogFile):
    """twistd's ``LogFile`` whose rotation renames and deletes its own rotations alone
    (``own_rotations``), keeps ``maxRotatedFiles`` of them, and says in the log why it could not
    rotate (then writing on to FILE, as twistd does when it may not write there)."""

    synchronized = ["rotate"]  # noqa: RUF012 - under ``write``'s lock (a worker's line, SIGUSR1's rotation)
    reactor: Any = None
    refused_at: int | None = None
    """FILE's size when a rotation could not be done: the next try waits until it has grown by
    ``rotateLength`` again."""

    def rotate(self) -> None:
        self.refused_at = None
        if not (os.access(self.directory, os.W_OK) and os.access(self.path, os.W_OK)):
            return  # (twistd's test; a SIGUSR1 says so: ``rotate_or_reopen``)
        problem = self._rotate_own()
        if problem is None:
            return
        self.refused_at = os.fstat(self._file.fileno()).st_size
        if self.reactor is not None:  # (not now: this is the log's own write)
            self.reactor.callFromThread(
                log.warn, "the log file {path} was not rotated: {problem}; hgwire goes on writing it",
                path=self.path, problem=problem)

    def _rotate_own(self) -> str | None:
        """Rotate, or say why it could not be done (nothing renamed then)."""
        path, keep = self.path, self.maxRotatedFiles or 0
        count, stranger = own_rotations(path)
        if stranger is not None and (not keep or count < keep):  # FILE.{count} would be renamed onto it
            return (f"{stranger} is not a file (a directory or a link) and not one of its rotations; "
                    "move it out of the way")
        try:
            for number in range(count, 0, -1):
                if keep and number >= keep:
                    os.remove(f"{path}.{number}")
                else:
                    os.rename(f"{path}.{number}", f"{path}.{number + 1}")
        except OSError as exc:
            return f"{exc.filename}: {exc.strerror}"
        self._file.close()
        try:
            os.rename(path, f"{path}.1")
        except OSError as exc:
            return f"{path}: {exc.strerror}"
        finally:
            self._openFile()
        return None


threadable.synchronize(KeepingLogFile)


def _no_log_file() -> None:
    log.info("SIGUSR1: hgwire writes no --logfile (its log goes to standard output or syslog), so there "
             "is nothing to rotate or reopen; hgwire goes on serving")


def manage_log_file(reactor: Any, size: int = 1_000_000, keep: int = 0) -> RotatingFile | None:
    """Take over twistd's ``--logfile`` (see the module's text); None when there is none.  ``size``:
    the bytes that rotate it (``--log-size``; 0 never), ``keep``: the rotated files kept
    (``--log-keep``; 0 every one, as twistd: its directory grew for ever without logrotate)."""
    handler = signal.getsignal(signal.SIGUSR1)
    log_file = twistd_log_file(handler)
    if log_file is None:
        if handler in (signal.SIG_DFL, None):  # its default ended the process at once, clients and all
            signal.signal(signal.SIGUSR1, lambda signum, frame: reactor.callFromThread(_no_log_file))
        return None
    opened = log_file._openFile

    def open_appending() -> None:
        opened()
        _append(log_file)
        if not follow_log_file(log_file._file.fileno()):  # (another start took the new file meanwhile)
            reactor.callFromThread(log.warn, "the log file {path} is locked by another process now: another "
                                   "hgwire writes it too; give each its own --logfile", path=log_file.path)

    log_file._openFile = open_appending  # type: ignore[method-assign]
    _append(log_file)
    if isinstance(log_file, logfile.LogFile):
        log_file.__class__ = KeepingLogFile  # (its rotation: see the class)
        sized = cast(KeepingLogFile, log_file)
        sized.rotateLength = size
        sized.maxRotatedFiles = keep or None
        sized.reactor = reactor

        def should_rotate() -> bool:
            # the file's own size: a truncation by copytruncate starts it again at 0; after a rotation
            # that could not be done, once it has grown by as much again (not at every line)
            if not sized.rotateLength:
                return False
            written = os.fstat(sized._file.fileno()).st_size
            return bool(written >= sized.rotateLength + (sized.refused_at or 0))

        sized.shouldRotate = should_rotate  # type: ignore[method-assign]

    def on_usr1(signum: int, frame: Any) -> None:
        reactor.callFromThread(rotate_or_reopen, log_file)

    signal.signal(signal.SIGUSR1, on_usr1)
    return log_file
