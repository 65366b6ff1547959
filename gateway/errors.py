"""Turn exceptions into wire responses: the one place that does (STYLE.md §3 "Errors").

Git columns of the table: before or within the advertisement an ``ERR``
pkt-line; after negotiation band 3 (the cores frame that, see
``UploadPackV0.fatal``); push refusals are report-status results, not
exceptions.  Over SSH the same message also goes to stderr with exit status
128, as git's own ``die()`` does.  The hg columns arrive with the hg transports.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator

from dulwich.errors import ObjectFormatException, PackedRefsException

from backends.blobs import BlobCorrupt
from backends.git_objects import LooseObjectCorrupt
from backends.git_reach import MissingObject
from backends.interfaces import Kind
from gateway.logs import SafeLogger
from protocols import pktline
from protocols.errors import (
    HgwireError,
    LimitExceeded,
    NotARepository,
    PermissionDenied,
    ProtocolError,
    PushRaced,
    ReadOnly,
    RepositoryNotFound,
    StorageError,
    UnsafeName,
    UnsupportedFeature,
)

log = SafeLogger()

GIT_EXIT_STATUS = 128
HG_EXIT_ABORT = 255
INTERNAL_ERROR = "internal error"

TMPDIR_ADVICE = "make room there or point TMPDIR elsewhere"
"""What the log tells the operator when the temporary directory refused a write."""


def temp_space_refusal(what: str, exc: OSError, outcome: str = "nothing was changed") -> str:
    """What a client is told when ``what`` could not be held in the temporary directory (full,
    over quota): one sentence, the reason and what to do."""
    return (f"the server could not hold {what} ({exc.strerror or exc} in its temporary directory); "
            f"{outcome}, try again later or tell the server's operator")


OUT_OF_FILES = "the server has too many open files right now; try again later"
"""What a client is told when the process ran out of descriptors (EMFILE, ENFILE) for its request."""
OUT_OF_FILES_ADVICE = ("raise the service's limit on open files (LimitNOFILE= of its systemd unit, "
                       "ulimit -n) or lower [limits] max_connections")
"""What the log tells the operator then: the clients are refused until descriptors are free again."""


def out_of_files(exc: BaseException | None) -> bool:
    """Whether ``exc`` is the process (EMFILE) or the system (ENFILE) out of open files: a
    refusal to retry, not an internal error with a traceback per request."""
    return isinstance(exc, OSError) and exc.errno in (errno.EMFILE, errno.ENFILE)


DISK_ERRNOS = {
    errno.ENOSPC: "free space on that file system",
    errno.EDQUOT: "raise the service's user's quota there or free space",
    errno.EFBIG: "raise the service's file size limit (LimitFSIZE=, ulimit -f)",
    errno.EACCES: "give the service's user write rights there",
    errno.EPERM: "give the service's user write rights there",
    errno.EROFS: "remount that file system read-write, or serve with --read-only",
    errno.EIO: "check that disk (dmesg), and the repository with git fsck or hg verify",
}
"""A write the server's disk refused, and what the operator does about it."""


def disk_refusal(exc: BaseException | None, fallback: str | None = None) -> str | None:
    """Where and why the server's disk refused a write behind ``exc`` (a push's pack, bundle, lock
    or spool: the ``OSError`` the backend's refusal was raised from), with what to do, for the
    operator's warning: ``/srv/repos/app.git/objects: Permission denied; give the service's user
    write rights there``.  The client is told the reason only (never a path of the server); the
    log is where the operator it sends to looks.  ``fallback``: the place named when the error names
    no file (a write to a file already open).  None where no such error is behind ``exc``."""
    for cause in _causes(exc):
        if isinstance(cause, OSError) and cause.errno in DISK_ERRNOS:
            place = _refused_place(cause) or (f"{fallback}: " if fallback else "")
            return f"{place}{cause.strerror or cause}; {DISK_ERRNOS[cause.errno]}"
    return None


def _causes(exc: BaseException | None) -> Iterator[BaseException]:
    """``exc`` and what it was raised from or while handling, each once."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _refused_place(exc: OSError) -> str:
    """The file a refused write named, as ``PATH: ``: the directory it was to be made in when a
    permission or a read-only mount refused making it (where the rights are missing); "" for none."""
    if not exc.filename or not isinstance(exc.filename, str | bytes):
        return ""
    path = os.fsdecode(exc.filename)
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS) and not os.path.lexists(path):
        path = os.path.dirname(path) or path
    return f"{path}: "


def _repository_directory(backend: object, repo: str) -> str | None:
    """Where a backend that keeps repositories in directories (``fs``: ``root`` and ``locate``)
    keeps ``repo``; None for any other backend, or a name it no longer finds."""
    root, locate = getattr(backend, "root", None), getattr(backend, "locate", None)
    if not isinstance(root, str) or locate is None:
        return None
    try:
        found = locate(repo)
    except Exception:  # noqa: BLE001 - only a better warning is lost: the one without the place is logged
        return None
    return os.path.join(root, found[0]) if found else None


def fault_place(exc: BaseException | None) -> str:
    """For the operator's warning of a repository the server may not read (``storage_fault``): the
    directory behind it and what to do (`` (/srv/repos/app.git/objects: give the service's user read
    rights there)``), or "" where the error names none.  The client is told the reason only."""
    for cause in _causes(exc):
        if isinstance(cause, OSError) and cause.errno in (errno.EACCES, errno.EPERM) and \
                isinstance(cause.filename, str | bytes) and cause.filename:
            path = os.fsdecode(cause.filename)
            parent = os.path.dirname(path)
            if not os.path.lexists(path) and os.path.isdir(parent) and os.access(parent, os.R_OK | os.X_OK) \
                    and not os.access(parent, os.W_OK):  # refused making it (a new repository): its directory
                return f" ({parent}: give the service's user write rights there)"
            return f" ({path}: give the service's user read rights there)"
    return ""


def warn_disk_refusal(proto: str, repo: str, exc: BaseException | None, backend: object = None) -> bool:
    """Log a warning naming what the server's disk refused a push (``disk_refusal``), on every
    transport the same line; whether there was such a refusal behind ``exc``.  ``backend``: the
    service's, whose directory of ``repo`` is named when the error names no file (``fs``'s)."""
    if disk_refusal(exc) is None:
        return False
    if getattr(exc, "disk_refusal_logged", False):  # (met again on its way out: one line a refusal)
        return True
    where = disk_refusal(exc, _repository_directory(backend, repo))
    with contextlib.suppress(AttributeError):
        exc.disk_refusal_logged = True  # type: ignore[union-attr]
    log.warn("{proto} push to {repo}: the server's disk refused a write, so the push was refused: {where}",  # noqa: G010
             proto=proto, repo=repo, where=where)
    return True


GIT_EXPECTED: tuple[type[HgwireError], ...] = (
    RepositoryNotFound,
    NotARepository,
    UnsafeName,
    PermissionDenied,
    ReadOnly,
    UnsupportedFeature,
    ProtocolError,
    LimitExceeded,
    PushRaced,
    StorageError,
)
"""Errors whose message is shown to the git user as it is; anything else is 'internal error'."""


def is_expected(exc: BaseException) -> bool:
    """Whether the error is ours to explain (no traceback in the log)."""
    return isinstance(exc, GIT_EXPECTED)


def unreadable_object(exc: BaseException) -> str | None:
    """What a user is told when the repository holds an object dulwich cannot read (a tag or
    tree an old tool wrote, a damaged loose file), which git may serve: not a bare "internal
    error" (the log keeps the traceback); None for any other error."""
    if not isinstance(exc, ObjectFormatException):
        return None
    return (f"the repository holds an object the server cannot read ({str(exc)[:200]}); "
            "tell the server's operator, 'git fsck' in the repository names it")


def damaged_repository(exc: BaseException) -> str | None:
    """What a user is told when the repository itself is damaged where a request reads it: an
    object its refs lead to is missing (a ``KeyError`` of an object id, as dulwich raises it; or
    one below a commit the client named, its shallow line's that ``--unshallow`` walks down from,
    which the repository holds without its parent: git's "bad object"), or
    its ``packed-refs`` cannot be read; git refuses those too ("not our ref", "unexpected line in
    packed-refs").  One sentence for the client and one line for the log, not "internal error"
    and a traceback per clone; None for any other error."""
    if isinstance(exc, PackedRefsException):
        return (f"the repository's packed-refs file is damaged ({str(exc)[:200]}); tell the server's "
                "operator ('git fsck' in the repository says more)")
    if isinstance(exc, MissingObject) or (isinstance(exc, KeyError) and len(exc.args) == 1):
        found = exc.args[0] if exc.args else None
        if isinstance(found, bytes) and len(found) in _RAW_ID_LENGTHS:
            found = found.hex().encode()
        if isinstance(found, bytes) and len(found) in _HEX_ID_LENGTHS and all(c in _HEX for c in found):
            return (f"the repository lacks object {found.decode()}, which a ref or a commit the client named "
                    "leads to; tell the server's operator ('git fsck' in the repository names what is damaged)")
    return None


_HEX = frozenset(b"0123456789abcdef")
_HEX_ID_LENGTHS = frozenset({40, 64})
_RAW_ID_LENGTHS = frozenset({20, 32})


def corrupt_on_disk(exc: BaseException | None) -> str | None:
    """The operator's account of a stored file found corrupt as it was about to be sent
    (``backends.blobs.BlobCorrupt``: which, where, and what to do), for one log line; None for
    any other error."""
    if not isinstance(exc, BlobCorrupt):
        return None
    return (f"{exc.kind} {exc.name} is corrupt on disk ({exc.path}: its contents do not match its hash), so it "
            "was not sent; restore the file from a backup, or copy it there from a clone or cache that holds it "
            "(a file named by its hash)")


def corrupt_loose_object(exc: BaseException | None) -> str | None:
    """The operator's account of a loose object found damaged as it was streamed into a pack
    (``backends.git_objects.LooseObjectCorrupt``: which, where, and what to do), for one log line
    in place of a traceback; None for any other error."""
    if not isinstance(exc, LooseObjectCorrupt):
        return None
    return (f"{str(exc)[:200]} ({exc.path[-300:]}), so what held it was cut short; restore the file from a "
            "backup, or copy the object in from a clone that holds it ('git fsck --full' in the repository names "
            "what else is damaged)")


def storage_fault(exc: BaseException) -> str | None:
    """What a user is told of a ``StorageError`` (the server's own files: a git config it cannot
    read, a damaged store), worded for them, over HTTP as git:// and SSH tell it: not a bare
    "internal error" with a traceback in the log for each request; None for any other error."""
    return str(exc) if isinstance(exc, StorageError) else None


KIND_ADVICE: dict[Kind, str] = {
    Kind.GIT: "a Git repository, not a Mercurial one; use git for it (git clone, git fetch, git push)",
    Kind.HG: "a Mercurial repository, not a Git one; use hg for it (hg clone, hg pull, hg push)",
}
"""What a client that asked a repository of the other kind is told it is, and what to use instead."""


def wrong_kind(name: str, kind: Kind) -> NotARepository:
    """A git client's request of a Mercurial repository or an hg client's of a git one, on every
    transport: one sentence naming the kind it is and the command to use (DESIGN.md "Repositories
    and URLs"), as its plain-text HTTP page says."""
    return NotARepository(f"{name} is {KIND_ADVICE[kind]}")


def push_refusal(repo: object, name: str) -> ReadOnly | None:
    """The refusal of every push to ``repo`` its backend gives up front (the optional
    ``refuses_push() -> str | None`` of a repository: a read-only mirror's reason), answered as
    ``--read-only`` is, before the client sends anything; None when it takes pushes.  Blocking
    (the backend may ask its storage), for the pool."""
    refuses = getattr(repo, "refuses_push", None)  # optional: a backend may not have it
    reason = refuses() if refuses is not None else None
    if reason is None or reason is False:
        return None
    text = str(reason).strip() if isinstance(reason, str) else ""
    return ReadOnly(text or f"{name} is read-only; pushes to it are refused")


def git_message(exc: BaseException) -> bytes:
    """The one-line message a git user sees for ``exc`` (never internals)."""
    text = str(exc) if is_expected(exc) else (damaged_repository(exc) or unreadable_object(exc)
                                              or (OUT_OF_FILES if out_of_files(exc) else INTERNAL_ERROR))
    return text.replace("\n", " ").encode("utf-8", "replace")[: pktline.MAX_PAYLOAD - 16]


def git_outcome(exc: BaseException) -> str:
    """A git session's outcome, for its log line: the message its client was given, so that the
    log says why (``error: repository name 'wt/.git' contains a hidden segment '.git'``), not only
    the exception's class; ``error: internal error`` for what was logged with its traceback."""
    return "error: " + git_message(exc).decode("utf-8", "replace")


def git_err_line(exc: BaseException) -> bytes:
    """``ERR <message>`` as a pkt-line: git prints ``fatal: remote error: <message>``."""
    return pktline.encode(b"ERR " + git_message(exc))


def git_stderr(exc: BaseException) -> bytes:
    """The stderr line for transports that have one (SSH), as git's ``fatal:`` prefix."""
    return b"fatal: " + git_message(exc) + b"\n"


SSH_REFUSALS: dict[str, tuple[str, int]] = {
    "git-ssh": ("fatal: ", GIT_EXIT_STATUS),  # git's die(); the client adds "Could not read from remote repository"
    "hg-ssh": ("abort: ", HG_EXIT_ABORT),  # hg's abort; the client shows "remote: abort: …"
}
"""How a command refused at the SSH door ends, by the client that sent it: what its own server
says before it dies, so the refusal reads as git's and hg's others do (``repository X not found``)."""
SSH_REFUSAL_OTHER = ("hgwire: ", 1)
"""The same for a command that is neither git's nor hg's (``ls``, an unknown command)."""


def ssh_refusal(proto: str, message: str) -> tuple[bytes, int]:
    """The stderr line and exit status of a command ``proto`` (``git-ssh``, ``hg-ssh``, ``ssh``)
    refused at the door with ``message``."""
    prefix, status = SSH_REFUSALS.get(proto, SSH_REFUSAL_OTHER)
    return f"{prefix}{message.replace(chr(10), ' ')}\n".encode("utf-8", "replace"), status
