"""git:// — the git daemon protocol on a Twisted TCP (or any stream) endpoint.

The first pkt-line names the service and repository (``protocols.git_request``);
the rest of the connection belongs to a ``gateway.git_session`` session, to
which the TCP transport is adapted as a ``Channel``.  receive-pack is refused
under ``--read-only``, as ``git daemon`` refuses it without
``--enable=receive-pack``, and, since nobody logs in over git://, whenever a
``--config`` is given (the authorizer decides, as for every transport).  One
log event per request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from twisted.internet import protocol
from twisted.internet.interfaces import IDelayedCall, IHalfCloseableProtocol, IPushProducer, ITransport
from twisted.python.failure import Failure
from zope.interface import implementer

from gateway import errors, metrics
from gateway.auth import Access
from gateway.channel import Session, SessionContext, peer_text
from gateway.config import ServiceConfig
from gateway.git_session import make_git_session
from gateway.limits import count_request, gone_outcome, limits_for
from gateway.logs import SafeLogger, loggable_name
from gateway.policy import authorizer_for
from gateway.tls import tls_handshake
from protocols import pktline
from protocols.errors import HgwireError, ProtocolError
from protocols.git_request import (
    SPEAKS_GIT_PROTOCOL,
    DaemonRequest,
    Service,
    is_http_request,
    parse_daemon_request,
)
from protocols.pktline import Signal

log = SafeLogger()

PROTO = "git-daemon"
SERVICE_ACCESS = {Service.UPLOAD_PACK: Access.READ, Service.RECEIVE_PACK: Access.WRITE}


LINGER_SECONDS = 2.0
"""How long a connection refused with an error (``ERR``, a failed session) keeps reading after its
answer: the client may still be sending what it wrote before reading it (``git archive`` writes
its arguments straight after the request line).  Closed at once, the socket would answer those
bytes with a reset, which can cost the client the answer (or kill it with SIGPIPE)."""


def linger(transport: Any, clock: Any) -> None:
    """Send what is written and end our side (FIN), keep reading (and dropping) what comes, and
    close once the client has closed too, or after ``LINGER_SECONDS``."""
    try:
        transport.loseWriteConnection()
    except (AttributeError, NotImplementedError):  # a transport that cannot half-close
        transport.loseConnection()
        return
    resume = getattr(transport, "resumeProducing", None)
    if resume is not None:  # (a session that paused its input: what comes is dropped, not left unread)
        resume()
    clock.callLater(LINGER_SECONDS, transport.loseConnection)


class DaemonChannel:
    """A TCP transport as a session Channel: no stderr, no exit status."""

    def __init__(self, transport: Any, clock: Any = None) -> None:
        self._transport = transport
        self._clock = clock
        self.finished = False
        """Whether the session ended: what the client still sends is dropped."""
        self.bytes_out = 0
        """What the session wrote (its request line's ``bytes_out``, as SSH's and HTTP's)."""

    def write(self, data: bytes) -> None:
        self.bytes_out += len(data)
        self._transport.write(data)

    def registerProducer(self, producer: IPushProducer, streaming: bool) -> None:
        self._transport.registerProducer(producer, streaming)

    def unregisterProducer(self) -> None:
        self._transport.unregisterProducer()

    def write_stderr(self, data: bytes) -> None:
        """git:// has no side channel for text; errors travel as ERR / band 3."""

    def pause_input(self) -> None:
        self._transport.pauseProducing()

    def resume_input(self) -> None:
        self._transport.resumeProducing()

    def finish(self, exit_status: int) -> None:
        self.finished = True
        if exit_status != 0 and self._clock is not None:  # refused: the client may still be sending
            linger(self._transport, self._clock)
        else:
            self._transport.loseConnection()


@implementer(IHalfCloseableProtocol)
class GitDaemonProtocol(protocol.Protocol):
    """Read the request line (bounded, with a timeout), then hand the stream to a session.

    Half-closeable: a client that shuts down its sending side still gets its
    answer (the session sees EOF, e.g. a truncated push gets ``unpack`` errors).
    """

    def __init__(self, config: ServiceConfig, clock: Any) -> None:
        self._config = config
        self._clock = clock
        self._decoder = pktline.PktLineDecoder(max_buffer=pktline.MAX_PKT)
        self._session: Session | None = None
        self._request: DaemonRequest | None = None
        self._in_progress: Callable[[], None] | None = None
        """Ends this request's count among those under way (``/.metrics``, systemd's status)."""
        self._timeout: IDelayedCall | None = None
        self._started = time.monotonic()
        self._outcome = "no request"
        self._channel: DaemonChannel | None = None
        self._refused = False
        self._head: bytes | None = b""
        """The connection's first bytes until there are four: an HTTP request line is told where HTTP is."""
        self._bytes_in = 0
        self._bytes_refused = 0
        """What the client sent (a push's pack), and an ``ERR`` line written outside a session."""

    def connectionMade(self) -> None:
        self._timeout = self._clock.callLater(limits_for(self._config).request_timeout, self._timed_out)

    def dataReceived(self, data: bytes) -> None:
        self._bytes_in += len(data)
        if self._refused or (self._channel is not None and self._channel.finished):
            return  # answered: lingering until the client closes (``linger``)
        if self._session is not None:
            self._session.data_received(data)
            return
        try:
            if self._head is not None:  # the first four bytes, which may come in pieces
                if not self._head and tls_handshake(data):
                    raise ProtocolError(NOT_TLS)
                self._head += data[:4]
                if len(self._head) >= 4:
                    if is_http_request(self._head):
                        self._refuse_http()
                        return
                    self._head = None
            self._decoder.receive_data(data)
            packet = self._decoder.next_packet()
            if isinstance(packet, Signal):
                return
            self._start(packet)
        except HgwireError as exc:
            self._refuse(exc)

    def _start(self, packet: bytes | pktline.Special) -> None:
        self._cancel_timeout()
        if not isinstance(packet, bytes):
            raise ProtocolError("the git:// request must be a pkt-line, not a special packet")
        request = parse_daemon_request(packet)
        self._request = request
        self._in_progress = metrics.started("git", request.service.value)
        authorizer = authorizer_for(self._config)
        authorizer.check(None, request.repo_name, PROTO, SERVICE_ACCESS.get(request.service, Access.READ))
        count_request(self._config, None, str(getattr(self.transport.getPeer(), "host", "?")))  # type: ignore[union-attr]
        ctx = SessionContext(
            backend=self._config.backend,
            repo_name=request.repo_name,
            transport=PROTO,
            peer=_peer(self.transport),
            read_only=self._config.read_only,
            create_on_push=self._config.create_on_push,
            protocol_version=request.protocol_version,
            extra={"host": request.host or "", **({"clone_base": f"git://{request.host}"} if request.host else {})},
            authorizer=authorizer,
        )
        self._channel = DaemonChannel(self.transport, self._clock)
        self._session = make_git_session(request.service.value, ctx, self._channel)
        rest = self._decoder.take_raw()
        if rest:
            self._session.data_received(rest)

    def _refuse(self, exc: HgwireError) -> None:
        self._cancel_timeout()
        self._outcome = errors.git_outcome(exc)
        self._refused = True
        refusal = errors.git_err_line(exc)
        self._bytes_refused += len(refusal)
        self.transport.write(refusal)  # type: ignore[union-attr]
        linger(self.transport, self._clock)

    def _refuse_http(self) -> None:
        """An HTTP request (a browser, curl, an ``http://`` URL) at the git:// port: answered in
        HTTP, whose text git shows as ``remote:`` and curl as the body, where an ``ERR`` pkt-line
        was refused by both as "HTTP/0.9"."""
        self._cancel_timeout()
        self._outcome = "error: an HTTP request on the git:// port: " + SPEAKS_GIT_PROTOCOL
        self._refused = True
        self._bytes_refused += len(HTTP_REFUSAL)
        self.transport.write(HTTP_REFUSAL)  # type: ignore[union-attr]
        linger(self.transport, self._clock)

    def _timed_out(self) -> None:
        self._timeout = None
        self._outcome = "error: request timeout"
        self.transport.abortConnection()  # type: ignore[union-attr]

    def _cancel_timeout(self) -> None:
        if self._timeout is not None and self._timeout.active():
            self._timeout.cancel()
        self._timeout = None

    def readConnectionLost(self) -> None:
        if self._session is not None and not (self._channel is not None and self._channel.finished):
            self._session.eof_received()
        else:
            self.transport.loseConnection()  # type: ignore[union-attr]

    def writeConnectionLost(self) -> None:
        """The peer stopped reading; the session ends when its writes fail or it finishes."""

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        self._cancel_timeout()
        if self._session is not None:
            self._session.connection_lost()
            self._outcome = gone_outcome(str(getattr(self._session, "outcome", "done")), self.transport)
        request = self._request
        log.info(
            # a connection that never sent a request has no service or repository to name
            "{proto} {service} {repo} from {peer}: {outcome} in {elapsed_ms} ms" if request
            else "{proto} (no request) from {peer}: {outcome} in {elapsed_ms} ms",
            proto=PROTO,
            service=request.service.value if request else None,
            repo=loggable_name(request.repo_name) if request else None,
            peer=_peer(self.transport),
            outcome=self._outcome,
            bytes_in=self._bytes_in,
            bytes_out=self._bytes_refused + (self._channel.bytes_out if self._channel is not None else 0),
            elapsed_ms=round((time.monotonic() - self._started) * 1000),
        )
        metrics.count_request("git", request.service.value if request else "none", self._outcome)
        if self._in_progress is not None:
            self._in_progress()


NOT_TLS = ("this port speaks git://, not TLS (a client used an https:// URL for it); "
           "use git://HOST:PORT/NAME.git here, or the server's HTTPS port for https://")
"""The refusal of a TLS handshake on a git:// port (its log line; a TLS client shows its own error)."""


_HTTP_REFUSAL_TEXT = SPEAKS_GIT_PROTOCOL.encode() + b"\n"
HTTP_REFUSAL = (b"HTTP/1.0 400 " + SPEAKS_GIT_PROTOCOL.encode() + b"\r\nContent-Type: text/plain; charset=utf-8\r\n"
                b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(_HTTP_REFUSAL_TEXT) + _HTTP_REFUSAL_TEXT)
"""The git:// port's whole answer to an HTTP request (HTTP/1.0: any client reads it, and closes).  The
sentence is its reason phrase too, which is all hg shows of a 400 (it said "HTTP Error 400: Bad
Request"); git shows the body as ``remote:``."""


def _peer(transport: ITransport | None) -> str:
    if transport is None:
        return "?"
    address = transport.getPeer()
    return peer_text(address) if getattr(address, "host", None) is not None else str(address)


class GitDaemonFactory(protocol.ServerFactory):
    """The git:// listener: ``strports.service(endpoint, GitDaemonFactory(config))``."""

    def __init__(self, config: ServiceConfig, clock: Any = None) -> None:
        self.config = config
        if clock is None:
            from twisted.internet import reactor

            clock = reactor
        self.clock = clock

    def buildProtocol(self, addr: Any) -> GitDaemonProtocol:
        proto = GitDaemonProtocol(self.config, self.clock)
        proto.factory = self
        return proto
