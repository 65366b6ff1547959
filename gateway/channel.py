"""The contract between a transport and a service session.

A *session* is one run of a service (git upload-pack, git receive-pack, hg
serve --stdio) over a byte stream.  git:// gives it a TCP connection, SSH an
exec channel; both wrap their transport in a ``Channel``.  The session is
driven by ``data_received``/``eof_received`` and writes through the channel;
``finish`` ends it with an exit status (sent as SSH ``exit-status``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from twisted.internet.interfaces import IPushProducer

if TYPE_CHECKING:
    from backends.interfaces import Backend
    from gateway.auth import Authorizer


class Channel(Protocol):
    """Where a session writes: stdout (``write``), stderr, flow control and the end.

    It is also an ``IConsumer`` (``registerProducer``/``unregisterProducer``), so
    ``gateway.threads.IteratorProducer`` can stream a pack into it.
    """

    def write(self, data: bytes) -> None: ...

    def registerProducer(self, producer: IPushProducer, streaming: bool) -> None: ...

    def unregisterProducer(self) -> None: ...

    def write_stderr(self, data: bytes) -> None:
        """Bytes for the user's terminal (SSH extended data); dropped where there is none."""
        ...

    def pause_input(self) -> None:
        """Stop delivering ``data_received`` until ``resume_input`` (inbound backpressure)."""
        ...

    def resume_input(self) -> None: ...

    def finish(self, exit_status: int) -> None:
        """End the session: flush, send the exit status where the transport has one, close."""
        ...


class Session(Protocol):
    """One service run, fed by its transport."""

    def data_received(self, data: bytes) -> None: ...

    def eof_received(self) -> None: ...

    def connection_lost(self) -> None:
        """The transport went away: release locks, close streams, write nothing more."""
        ...


@dataclass(frozen=True)
class SessionContext:
    """Who asks, over what, for which repository: everything a session may decide on."""

    backend: Backend
    repo_name: str
    transport: str  # git-daemon | git-ssh | git-http | hg-ssh | hg-http
    peer: str
    user: str | None = None
    read_only: bool = False
    create_on_push: bool = False
    protocol_version: int = 0
    extra: dict[str, str] = field(default_factory=dict)
    authorizer: Authorizer | None = None
