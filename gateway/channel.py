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
from twisted.python.failure import Failure

from gateway.logs import SafeLogger
from protocols.errors import HgwireError, StorageError

if TYPE_CHECKING:
    from backends.interfaces import Backend
    from gateway.auth import Authorizer


log = SafeLogger()


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


def peer_text(address: object) -> str:
    """How a session names its peer (``SessionContext.peer``): ``host:port``, an IPv6 host in
    ``[]`` (``[2001:db8::7]:51234``, as git daemon logs it: ``2001:db8::7:51234`` is itself an
    address); the host alone, an IPv6 one in ``[]`` too, when the port is not known (0: a client a
    trusted reverse proxy names, whose port it does not give)."""
    host, port = getattr(address, "host", "?"), getattr(address, "port", 0)
    shown = url_host(str(host))
    return f"{shown}:{port}" if port else shown


def url_host(host: str) -> str:
    """``host`` as a URL or a ``host:port`` names it: an IPv6 address in ``[]``, anything else as it is."""
    return f"[{host}]" if ":" in host else host


def peer_host(peer: str) -> str | None:
    """The address in a ``peer_text``; None when it names none (``?``)."""
    if peer.startswith("["):
        host = peer[1:peer.find("]")] if "]" in peer else ""
    elif ":" not in peer:
        host = peer
    else:
        host = peer.rpartition(":")[0].strip("[]")
    return host if host and host != "?" else None


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


class OneShotSession:
    """A session that reads nothing: one blocking step in the pool (``answer``), whose bytes go to
    stdout with exit status 0, or whose refusal (an ``HgwireError``; anything else is logged and
    called an internal error) goes to stderr as ``refusal_line`` says, with ``refusal_status``.
    ``hg init`` and ``git-lfs-authenticate`` are such sessions."""

    refusal_status = 1
    what = "a session"
    """Names the session in the log of an unexpected failure."""

    def __init__(self, ctx: SessionContext, channel: Channel) -> None:
        from gateway.threads import run_blocking

        self.ctx = ctx
        self.channel = channel
        self._closed = False
        d = run_blocking(self.answer)
        d.addCallbacks(self._send, self._refused)

    def answer(self) -> bytes:
        raise NotImplementedError

    def refusal_line(self, message: str) -> bytes:
        return f"hgwire: {message}\n".encode("utf-8", "replace")

    def _send(self, body: bytes) -> None:
        if not self._closed and body:
            self.channel.write(body)
        self._end(0)

    def _refused(self, failure: Failure) -> None:
        exc = failure.value
        if not isinstance(exc, HgwireError):
            log.failure("{what} for {repo}", failure, what=self.what, repo=self.ctx.repo_name)
        message = exc.message if isinstance(exc, HgwireError) else "internal error"
        from gateway.errors import fault_place

        if isinstance(exc, StorageError):  # the server's own files (a repository ROOT will not take): a warning
            log.warn("{what} for {repo}: {reason}", what=self.what, repo=self.ctx.repo_name,  # noqa: G010
                     reason=message + fault_place(exc))
        if not self._closed:
            self.channel.write_stderr(self.refusal_line(message))
        self._end(self.refusal_status)

    def _end(self, status: int) -> None:
        if not self._closed:
            self._closed = True
            self.channel.finish(status)

    def data_received(self, data: bytes) -> None:
        """Nothing is read."""

    def eof_received(self) -> None:
        """Nothing to do: the answer ends the session."""

    def connection_lost(self) -> None:
        self._closed = True
