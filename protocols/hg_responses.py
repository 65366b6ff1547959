"""Transport-neutral values returned by Mercurial wire command handlers.

The SSH and HTTP adapters render these per transport, as
``mercurial/wireprototypes.py`` does with ``bytesresponse``, ``streamres``,
``pushres``, ``pusherr`` and ``ooberror``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from backends.interfaces import Node


@dataclass(frozen=True, slots=True)
class BytesResponse:
    """A string response: SSH frames it as ``<len>\\n<data>``, after ``output`` (server output for
    the user, SSH stderr's ``remote:`` lines; over HTTP a command puts it in ``data`` if anywhere)."""

    data: bytes
    output: bytes = b""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """The changesets a getbundle answer sends, for the repository's ``preoutgoing`` and
    ``outgoing`` hooks (``changegroup.makestream`` runs them only when it makes a changegroup)."""

    first: Node
    """The first changeset sent: the ``outgoing`` hook's ``HG_NODE``."""
    bundle2: bool
    """The client reads bundle2: a refusal is an ``error:abort`` part (``wireprotov1server.getbundle``)."""


@dataclass(frozen=True, slots=True)
class StreamResponse:
    """A raw byte stream (getbundle, stream_out, a bundle2 push reply).

    SSH sends the chunks unframed; HTTP may compress them unless
    ``prefer_uncompressed`` (stream clone data is already compact).
    ``output`` is server output for the user that goes to SSH stderr first.
    """

    chunks: Iterator[bytes]
    prefer_uncompressed: bool = False
    output: bytes = b""
    share_key: bytes | None = None
    """Names the bytes of ``chunks`` when identical concurrent requests may share one
    generation of them (a clone): the same key means the same bytes, for one repository."""
    compressible_bundle: bool = False
    """A getbundle answer that SSH may compress inside its bundle2 (``hg_ssh.compressed_bundle2``)."""
    outgoing: Outgoing | None = None
    """A getbundle answer's changesets, when it sends any (the same for every request that shares it)."""
    refused: str | None = None
    """A bundle2 push reply that refuses the push (its ``error:abort`` part): why, for the server's log."""


@dataclass(frozen=True, slots=True)
class PushResponse:
    """The result of a bundle1 push: an integer plus the server output shown as ``remote:``."""

    result: int
    output: bytes = b""
    refused: str | None = field(default=None, compare=False)
    """A push refused in its answer (result 0 and an ``abort:`` line): why, for the server's log (not
    part of the answer: two answers that say the same are equal)."""


@dataclass(frozen=True, slots=True)
class PushError:
    """A bundle1 push refused by a race check: the message plus server output (``pusherr``)."""

    message: bytes
    output: bytes = b""


@dataclass(frozen=True, slots=True)
class OobError:
    """An out-of-band error: SSH stderr ``msg\\n-\\n`` plus ``\\n``; HTTP ``application/hg-error``."""

    message: bytes


Response = BytesResponse | StreamResponse | PushResponse | PushError | OobError


BROKEN_PUSH = ("internal error: the push was rolled back and nothing changed; "
               "tell the server's operator, whose log says what went wrong")
"""What the client is told of a push that failed inside its transaction for no reason a refusal names."""

PUSH_FAILED_EARLY = ("internal error: the push failed before anything was changed; "
                     "tell the server's operator, whose log says what went wrong")
"""What the client is told of a push that failed for no reason a refusal names before its transaction
opened (keeping the bundle, opening the transaction, reading the bundle's header)."""

PUSH_FAILED_UNSURE = ("internal error: the push failed and may or may not have landed; run 'hg outgoing' "
                      "to see, and tell the server's operator, whose log says what went wrong")
"""What the client is told of a push that failed for no reason a refusal names once its transaction
had opened but not inside it (answering, or ending a transaction that would not end)."""


class BrokenPush(Exception):
    """A push that failed for no reason a refusal names (a backend's or the engine's bug): ``reply``
    tells the client so, in its bundle's format, as hg serve answers an abort raised while it applies
    a bundle; ``what`` says what became of the push, for the server's log.  Raised ``from`` the
    error, for the server's log."""

    def __init__(self, reply: Response, what: str = "the push broke and was rolled back",
                 message: str = BROKEN_PUSH) -> None:
        super().__init__(message)
        self.reply = reply
        self.what = what
