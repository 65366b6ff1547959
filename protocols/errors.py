"""The one exception hierarchy of hgwire.

Every layer raises from this tree; only ``gateway/errors.py`` turns these into
wire bytes (git ``ERR`` pkt-lines, report-status ``ng``, hg out-of-band errors,
HTTP statuses).  Messages are one sentence a person can act on.
"""

from __future__ import annotations

import errno


class HgwireError(Exception):
    """Base of every error hgwire raises on purpose."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        """What to do, where the client's protocol shows a hint apart (hg's ``(hint)`` line)."""

    def __str__(self) -> str:
        return self.message


class RepositoryNotFound(HgwireError):
    """The named repository does not exist."""


class NotARepository(HgwireError):
    """The name exists but is not a repository of the kind the client asked for."""


class UnsafeName(HgwireError):
    """A repository name that could escape the root or be read as an option."""


NO_REPOSITORY_NAMED = "no repository is named in the URL: add its name after the host, as in HOST/NAME"
"""What a client that named no repository (``git clone ssh://host/``, ``hg clone ssh://host``) reads."""

NAMES_ARE_UTF8 = ("repository names must be UTF-8: a repository whose name is in another charset (Latin-1) is not "
                  "served; the server's operator can rename it in UTF-8")
"""What a name that is not UTF-8 reads on every transport (``git://host/caf%E9.git``, the same bytes in an SSH
command, ``http://host/caf%E9.git``)."""

HOME_DIRECTORY_SERVERS = {"git": " (git daemon's --user-path)", "ssh": "", "http": " (a web server's UserDir)"}
"""What serves ``~user`` paths as home directories, by the URL scheme the client used: over SSH
each user's account has one (sshd's login shell reads the path from it), so no other is named."""


class HomePathRefused(UnsafeName):
    """A ``~user`` path (``git://host/~alice/r.git``, ``ssh://host/~alice/r``): a home directory to
    git and hg, which this server does not have; the refusal is worded for the client's transport
    (``over``) and says how to name the repository instead."""

    def __init__(self, user: str) -> None:
        self.user = "".join(ch if ch.isprintable() else "?" for ch in user[:64])  # (git:// checks it later)
        super().__init__(self.over("git", "git://HOST/team/project.git"))

    def over(self, scheme: str, example: str) -> str:
        """The sentence for a client that came by ``scheme`` (``git``, ``ssh``, ``http``), the
        repository named as in the URL ``example`` (hg's have no ``.git``)."""
        return (f"~{self.user} names a home directory{HOME_DIRECTORY_SERVERS.get(scheme, '')}, and this "
                f"server serves none: name the repository by its path under the server's root, as in {example}")


def home_path_user(path: str) -> str:
    """The user a ``~user`` path names (``alice`` of ``~alice/r.git``; empty for ``~/r``)."""
    return path.removeprefix("~").split("/", 1)[0]


class PermissionDenied(HgwireError):
    """The user may not do this to this repository."""


class ReadOnly(PermissionDenied):
    """The service (or the repository) refuses every write."""


class UnsupportedFeature(HgwireError):
    """A service, command or repository feature hgwire does not implement."""


class PushRaced(HgwireError):
    """Another push changed the repository between the client's look and its push."""


class StorageError(HgwireError):
    """Data at rest is corrupt or cannot be written; the operation was rolled back."""


class ProtocolError(HgwireError):
    """The peer sent bytes that break the protocol.

    ``http_status`` tells an HTTP adapter which status to answer with, as h11's
    ``error_status_hint`` does, so adapters never guess.
    """

    def __init__(self, message: str, http_status: int = 400) -> None:
        super().__init__(message)
        self.http_status = http_status


class LimitExceeded(ProtocolError):
    """An input went over one of the configured size or count limits."""

    def __init__(self, message: str, http_status: int = 413) -> None:
        super().__init__(message, http_status)


class UnsupportedContent(UnsupportedFeature):
    """A bundle2 mandatory part or parameter hgwire cannot process (``error:unsupportedcontent``)."""

    def __init__(self, message: str, part_type: bytes = b"", params: tuple[bytes, ...] = ()) -> None:
        super().__init__(message)
        self.part_type = part_type
        self.params = params


class PushkeyFailed(HgwireError):
    """A mandatory bundle2 ``pushkey`` part was refused (``error:pushkey``)."""

    def __init__(self, message: str, part_id: int, namespace: bytes, key: bytes) -> None:
        super().__init__(message)
        self.part_id = part_id
        self.namespace = namespace
        self.key = key


class ClientGone(HgwireError):
    """The client closed the connection while its request was being answered: what is left of a
    read-only request (the rest of a batch) is not run."""


class IntegrityError(ProtocolError):
    """A packet's MAC or authentication tag does not verify: the bytes were altered or the keys differ."""


LASTING_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})
"""Disk refusals that waiting does not end: a permission the service lacks, a read-only mount."""


def storage_advice(exc: OSError) -> str:
    """What a person told that the server's disk refused a write should do: wait (a full disk, a
    quota, an I/O error may pass), or not, for a refusal that lasts until the operator acts."""
    if exc.errno in LASTING_ERRNOS:
        return "tell the server's operator"
    return "try again later or tell the server's operator"
