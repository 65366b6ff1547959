"""Connection limits every listener shares: how many, from where, how idle, how slow to ask.

``guard(kind, factory, config)`` wraps a listener's protocol factory.  The
wrapper counts open connections in total and per client address and refuses
one over either bound with a short message in the listener's own protocol
(git ``ERR``, HTTP 503, a text line before the SSH banner), and it drops a
connection that neither sends nor receives a byte for ``idle_timeout``
seconds (a stalled or abandoned client holds no slot for ever); SSH counts
only its sessions' and logins' messages, not keepalives (``own_activity``).

Slow requests (slow-loris) are bounded where the request is read:
``request_timeout`` for the git:// request line (``gateway.git_daemon``) and
for each HTTP request's headers (``gateway.http``); SSH has its login grace
(``gateway.ssh``).

A listener behind a proxy (``haproxy:`` before its endpoint) reads the PROXY
protocol header first (``ProxiedProtocol``): its connections are counted by
the client's address that the header names, not by the proxy's.

The bounds come from ``[limits]`` of the ``--config`` file, read when a
connection opens (a reloaded file applies to new connections); a key the file
leaves out keeps the default below.
"""

from __future__ import annotations

import ipaddress
import math
import socket
import struct
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.interfaces import (
    IAddress,
    IDelayedCall,
    IHalfCloseableProtocol,
    IProtocolNegotiationFactory,
    ISSLTransport,
)
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.python.failure import Failure
from zope.interface import implementer

from backends.hg import annotate as hg_annotate
from backends.interfaces import LockWait
from gateway.config import ServiceConfig
from gateway.logs import SafeLogger
from protocols import pktline
from protocols.bundle2 import DEFAULT_LIMITS as BUNDLE2_DEFAULTS
from protocols.bundle2 import Bundle2Limits
from protocols.changegroup import ChangegroupLimits
from protocols.errors import ProtocolError
from protocols.forwarded import UNIX_PEER, Trusted
from protocols.git_receive import ReceiveBounds
from protocols.git_upload import RequestBounds
from protocols.http_head import reason_phrase
from protocols.proxy_header import ProxyHeaderError, ProxyHeaderReader

log = SafeLogger()


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """The connection bounds in force (defaults, or ``[limits]`` of the policy file over them)."""

    max_connections: int = 1000
    """Open connections of one listener (git daemon's ``--max-connections`` is 32 by default)."""
    max_connections_per_address: int = 64
    """Open connections of one listener from one client address."""
    idle_timeout: float = 600.0
    """Seconds without a byte in either direction before a connection is dropped."""
    request_timeout: float = 30.0
    """Seconds a client may take to send its git:// request line or an HTTP request's headers."""
    connection_timeout: float | None = None
    """Seconds a connection may stay open however busy (a client reading a byte now and then
    under ``idle_timeout`` holds its slot for ever otherwise).  Off by default, as in git daemon
    and sshd: a large clone over a slow link may take hours."""
    max_sessions_per_user: int = 64
    """Git and hg operations one logged-in user has under way at once, over every listener (SSH
    sessions, HTTP requests): a user's CI fleet on many addresses is bounded as one client is by
    ``max_connections_per_address``.  Anonymous clients are bounded per address."""
    requests_per_minute: int | None = None
    """Git and hg operations (SSH sessions, HTTP requests, git:// connections) one logged-in user, or
    one address of anonymous clients, may start in a minute, over every listener; a quiet client may
    start a minute's worth at once.  Off by default, as in git daemon, hg serve and sshd."""
    max_auth_attempts: int = 6
    """Failed SSH authentications before the connection is dropped (OpenSSH's MaxAuthTries)."""
    max_request_body: int = 2 * 1024**3
    """Bytes of one HTTP request body (413 beyond)."""
    max_decompressed: int = 2 * 1024**3
    """Bytes of a gzip-encoded HTTP request body once inflated (zip bombs; 413 beyond)."""


DEFAULT_LIMITS = ConnectionLimits()

REQUEST_BOUND_KEYS = {"max_wants": "wants", "max_haves": "haves", "max_ref_prefixes": "ref_prefixes",
                      "max_pkt_line": "pkt_line"}
"""``[limits]`` keys → ``protocols.git_upload.RequestBounds`` fields."""

RECEIVE_KEYS = {"max_refs": "commands", "max_fulltext": "object_size", "max_delta_result": "delta_result",
                "max_pkt_line": "pkt_line"}
"""``[limits]`` keys → ``protocols.git_receive.ReceiveBounds`` fields (a git push)."""

BUNDLE2_KEYS = {"max_bundle2_part": "max_small_payload", "max_bundle2_chunk": "max_payload_chunk"}
"""``[limits]`` keys → ``protocols.bundle2.Bundle2Limits`` fields (a pushed hg bundle)."""

CHANGEGROUP_KEYS = {"max_fulltext": "max_chunk", "max_delta_result": "max_text"}
"""``[limits]`` keys → ``protocols.changegroup.ChangegroupLimits`` fields (a pushed hg changegroup)."""

LOCK_WAIT_KEYS = {"hg_lock_timeout": "timeout"}
"""``[limits]`` keys → ``backends.interfaces.LockWait`` fields (an hg push waiting for a locked repository)."""

CONFIGURABLE = (frozenset(ConnectionLimits.__dataclass_fields__) | frozenset(REQUEST_BOUND_KEYS)
                | frozenset(RECEIVE_KEYS) | frozenset(BUNDLE2_KEYS) | frozenset(CHANGEGROUP_KEYS)
                | frozenset(LOCK_WAIT_KEYS) | {"hg_kept_repositories_bytes", "git_kept_refs_bytes", "annotate_max_revisions"})
"""The ``[limits]`` keys that take effect; the file may name others, which are logged as fixed."""

NO_PROXIES = Trusted()

REFUSAL_GRACE = 2.0
"""Seconds a refused connection stays open for its client to send its request and read the refusal."""

TLS_CLOSE_GRACE = 2.0
"""Seconds a TLS connection closed for a timeout or a refusal keeps its TCP connection for its
client's close_notify; then TCP closes it, as a plain connection is closed (``close_sent``)."""


DEFAULT_BOUNDS = RequestBounds()
DEFAULT_RECEIVE_BOUNDS = ReceiveBounds()
CHANGEGROUP_DEFAULTS = ChangegroupLimits()

CONNECTION_KEYS = {name: name for name in ConnectionLimits.__dataclass_fields__}

_T = TypeVar("_T", ConnectionLimits, RequestBounds, ReceiveBounds, Bundle2Limits, ChangegroupLimits, LockWait)


def _configured(authorizer: object, keys: Mapping[str, str], defaults: _T) -> _T:
    """``defaults`` with the ``[limits]`` values (``keys``: file key → field) of the policy in force."""
    policy_file = getattr(authorizer, "policy", None)
    if policy_file is None:
        return defaults
    configured = policy_file.current.limits
    changes = {field: value for key, field in keys.items()
               if (value := getattr(configured, key, None)) is not None}
    return replace(defaults, **changes) if changes else defaults


def limits_for(config: ServiceConfig) -> ConnectionLimits:
    """The connection bounds in force now: the policy file's ``[limits]`` (if any) over the defaults."""
    return _configured(config.authorizer, CONNECTION_KEYS, DEFAULT_LIMITS)


def trusted_proxies(config: ServiceConfig) -> Trusted:
    """The reverse proxies whose forwarding headers are believed now (``[http] trusted_proxies``)."""
    policy_file = getattr(config.authorizer, "policy", None)
    return policy_file.current.trusted_proxies if policy_file is not None else NO_PROXIES


def request_bounds(authorizer: object) -> RequestBounds:
    """The git upload-pack request bounds in force: ``max_wants``, ``max_haves``, ``max_ref_prefixes``."""
    return _configured(authorizer, REQUEST_BOUND_KEYS, DEFAULT_BOUNDS)


def receive_bounds(authorizer: object) -> ReceiveBounds:
    """The git push bounds in force: ``max_refs``, ``max_fulltext``, ``max_delta_result``, ``max_pkt_line``."""
    return _configured(authorizer, RECEIVE_KEYS, DEFAULT_RECEIVE_BOUNDS)


def bundle2_limits(authorizer: object) -> Bundle2Limits:
    """The bounds of a pushed bundle2 in force: ``max_bundle2_part``, ``max_bundle2_chunk``."""
    return _configured(authorizer, BUNDLE2_KEYS, BUNDLE2_DEFAULTS)


def lock_wait(authorizer: object) -> LockWait:
    """How an hg push waits for its repository's lock: ``hg_lock_timeout`` (else the backend's default)."""
    return _configured(authorizer, LOCK_WAIT_KEYS, LockWait())


def hg_kept_repositories_bytes(authorizer: object) -> int | None:
    """``hg_kept_repositories_bytes``: what the hg engine keeps parsed between requests may hold in
    all, the repositories kept for the next read-only requests among it (``backends.hg.kept.KEPT``);
    None: the backend's default (``backends.hg.READ_REUSE_BUDGET``)."""
    policy_file = getattr(authorizer, "policy", None)
    return None if policy_file is None else policy_file.current.limits.hg_kept_repositories_bytes


def apply_hg_kept_budget(authorizer: object) -> None:
    """Give the hg engine's kept parsed data the budget the policy says now (the default without
    one): as the service is built and each time a reload puts new rules in force
    (``gateway.service.build_service``), so that a lowered budget lets go at once, not at the next
    hg request (a server serving git alone never made one)."""
    from backends import hg as hg_backend

    configured = hg_kept_repositories_bytes(authorizer)
    hg_backend.READ_REUSE.budget = configured if configured is not None else hg_backend.READ_REUSE_BUDGET


def apply_git_kept_budget(authorizer: object) -> None:
    """Bound the git ``packed-refs`` parses kept between requests (``backends.git._PACKED_REFS``)
    to ``git_kept_refs_bytes`` as the policy says now (``backends.git.KEPT_REFS_BYTES`` without
    it), when ``apply_hg_kept_budget`` is: a lowered bound lets go at once."""
    from backends import git as git_backend

    policy_file = getattr(authorizer, "policy", None)
    configured = None if policy_file is None else policy_file.current.limits.git_kept_refs_bytes
    git_backend.keep_packed_refs_within(configured if configured is not None else git_backend.KEPT_REFS_BYTES)


def apply_kept_budgets(authorizer: object) -> None:
    """What the policy says the engines may keep parsed between requests, applied now (hg, git)."""
    apply_hg_kept_budget(authorizer)
    apply_git_kept_budget(authorizer)


def annotate_max_revisions(authorizer: object) -> int:
    """``annotate_max_revisions``: the most revisions of a file an hg annotate page reads (else the
    backend's default, ``backends.hg.annotate.MAX_FILE_REVISIONS``)."""
    policy_file = getattr(authorizer, "policy", None)
    configured = None if policy_file is None else policy_file.current.limits.annotate_max_revisions
    return configured if configured is not None else hg_annotate.MAX_FILE_REVISIONS


def changegroup_limits(authorizer: object) -> ChangegroupLimits:
    """The bounds of a pushed changegroup in force: ``max_fulltext`` (its largest chunk),
    ``max_delta_result`` (the largest text one of its deltas may rebuild)."""
    return _configured(authorizer, CHANGEGROUP_KEYS, CHANGEGROUP_DEFAULTS)


# --- refusals, in each listener's protocol ----------------------------------------------------


class UserSessions:
    """The operations each logged-in user has under way, over all listeners (``max_sessions_per_user``)."""

    def __init__(self) -> None:
        self.open: Counter[str] = Counter()

    def enter(self, user: str | None, bound: int) -> Callable[[], None]:
        """Count one more operation of ``user``; the function that ends it (call it once).

        ``ProtocolError`` (HTTP 429) when ``user`` already has ``bound`` under way.  An anonymous
        client is not counted here (the per-address bound holds it)."""
        if user is None:
            return _nothing
        if self.open[user] >= bound:
            log.warn("{user} has {count} operations under way, the max_sessions_per_user bound: one more refused",  # noqa: G010
                     user=user, count=self.open[user])
            raise ProtocolError(f"{user} has {self.open[user]} operations under way, the most one user may have "
                                "at once; wait for some to finish and retry", http_status=429)
        self.open[user] += 1
        ended = False

        def leave() -> None:
            nonlocal ended
            if ended:
                return
            ended = True
            self.open[user] -= 1
            if self.open[user] <= 0:
                del self.open[user]

        return leave


def _nothing() -> None:
    return None


class RateLimited(ProtocolError):
    """A client started more operations in a minute than ``requests_per_minute`` allows (HTTP 429)."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, http_status=429)
        self.retry_after = retry_after
        """Whole seconds until one more operation is allowed (HTTP's ``Retry-After``)."""


class RequestRates:
    """How many operations each user (or anonymous address) may still start: a token bucket each.

    A bucket holds at most ``per_minute`` tokens and gains ``per_minute`` a minute; an operation
    takes one.  Full buckets are forgotten (a new one starts full), so the table holds only the
    clients of the last minute or so."""

    PRUNE_AT = 4096
    """Buckets kept before the full ones are swept out."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # who → (tokens, when counted)

    def take(self, who: str, per_minute: int | None, label: str) -> None:
        """Count one operation of ``who``; ``RateLimited`` when its bucket is empty.  ``label``
        names the client in the refusal and the log ("alice", "anonymous clients of 192.0.2.1")."""
        if per_minute is None:
            return
        now = self._clock()
        tokens, then = self._buckets.get(who, (float(per_minute), now))
        tokens = min(float(per_minute), tokens + (now - then) * per_minute / 60.0)
        if tokens < 1.0:
            wait = max(1, math.ceil((1.0 - tokens) * 60.0 / per_minute))
            self._buckets[who] = (tokens, now)
            log.warn("{who} went over requests_per_minute ({per_minute}): refused for {wait} s",  # noqa: G010
                     who=label, per_minute=per_minute, wait=wait)
            raise RateLimited(f"{label} started more than {per_minute} git/hg operations in a minute, the most "
                              f"this server allows; retry in {wait} seconds", wait)
        self._buckets[who] = (tokens - 1.0, now)
        if len(self._buckets) > self.PRUNE_AT:
            self._prune(now, per_minute)

    def _prune(self, now: float, per_minute: int) -> None:
        self._buckets = {who: (tokens, then) for who, (tokens, then) in self._buckets.items()
                         if tokens + (now - then) * per_minute / 60.0 < per_minute}


def request_rates(config: ServiceConfig) -> RequestRates:
    """The one table of the service: every listener's operations of a client add up."""
    if config.request_rates is None:
        config.request_rates = RequestRates()
    rates: RequestRates = config.request_rates
    return rates


def count_request(config: ServiceConfig, user: str | None, address: str) -> None:
    """Count an operation against ``requests_per_minute``: a logged-in user's over every address,
    an anonymous client's per address.  ``RateLimited`` over it."""
    per_minute = limits_for(config).requests_per_minute
    if per_minute is None:
        return
    if user is not None:
        request_rates(config).take("user:" + user, per_minute, user)
    else:
        request_rates(config).take("address:" + address, per_minute, f"anonymous clients of {address}")


def user_sessions(config: ServiceConfig) -> UserSessions:
    """The one count of the service: every listener's sessions of a user add up."""
    if config.user_sessions is None:
        config.user_sessions = UserSessions()
    sessions: UserSessions = config.user_sessions
    return sessions


def _git_refusal(message: str) -> bytes:
    return pktline.encode(b"ERR " + message.encode("utf-8"))


def _http_refusal(message: str) -> bytes:
    """A 503 whose reason phrase is the message: hg prints only that ("abort: HTTP Error 503: …"),
    git only the body (``remote: …``)."""
    body = (message + "\n").encode("utf-8")
    head = (
        f"HTTP/1.1 503 {reason_phrase(message).decode('ascii')}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Retry-After: 10\r\n"
        "Connection: close\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


def _ssh_refusal(message: str) -> bytes:
    """A line before the version string (RFC 4253 4.2; ``ssh -v`` shows it), then the version and
    a disconnect message (sent in the clear: no key exchange yet), which OpenSSH prints as it is
    ("Received disconnect from HOST port PORT:11: MESSAGE"): a user without ``-v`` saw only
    "Connection closed by remote host"."""
    text = message.encode("utf-8")
    payload = (struct.pack(">BL", SSH_MSG_DISCONNECT, SSH_DISCONNECT_BY_APPLICATION) + struct.pack(">L", len(text))
               + text + struct.pack(">L", 0))
    padding = 8 - (len(payload) + 5) % 8
    padding += 8 if padding < 4 else 0  # at least 4 bytes, the packet a multiple of 8
    packet = struct.pack(">LB", len(payload) + padding + 1, padding) + payload + b"\0" * padding
    return b"hgwire: " + text + b"\r\n" + SSH_REFUSAL_VERSION + b"\r\n" + packet


SSH_MSG_DISCONNECT, SSH_DISCONNECT_BY_APPLICATION = 1, 11
SSH_REFUSAL_VERSION = b"SSH-2.0-hgwire"


REFUSALS: dict[str, Callable[[str], bytes]] = {
    "git": _git_refusal,
    "http": _http_refusal,
    "ssh": _ssh_refusal,
}
"""Listener kind → the bytes that tell its client why the connection is refused."""


# --- the wrapper ------------------------------------------------------------------------------


CUT_AT_SHUTDOWN = "cut at shutdown after the grace"
"""The outcome of a connection the stop closed once ``--shutdown-grace`` was over (it was logged
"client gone", as if its client had left)."""


def gone_outcome(outcome: str, transport: Any) -> str:
    """``outcome``, or what really ended a "client gone" whose connection (``transport``, or one it
    lies on) the service closed: ``CUT_AT_SHUTDOWN`` for the stop's cut (``GuardedFactory.close_all``),
    ``timed out: …`` for the idle limit's (``GuardedProtocol._check_idle``: a client that stopped
    sending in the middle of its body, or stopped reading, had not gone; its line said "client gone"
    and counted ``client_gone`` where nginx logs a timeout, 408)."""
    if not outcome.startswith("client gone"):
        return outcome
    for _ in range(6):  # the application's, TLS's, the guard's wrapper, the PROXY reader, TCP's
        if transport is None:
            break
        if getattr(transport, "cut_at_shutdown", False):
            return CUT_AT_SHUTDOWN
        idle = getattr(transport, "idle_cut", None)
        if idle is not None:
            return f"timed out: the connection was idle for {idle} s (idle_timeout)" + outcome[11:]
        transport = getattr(transport, "transport", None)
    return outcome


def drop(transport: Any) -> None:
    """Close now, unsent data and all: a peer that does not read must not keep a connection open."""
    abort = getattr(transport, "abortConnection", None)
    if abort is not None:
        abort()
    elif transport is not None:
        transport.loseConnection()


def tcp_under_tls(transport: Any) -> Any:
    """The TCP transport under ``transport`` when a TLS layer lies on the way down to it; else None."""
    tls = False
    for _ in range(4):  # TLS, the guard's wrapper and the PROXY reader over TCP
        tls = tls or ISSLTransport.providedBy(transport)
        below = getattr(transport, "transport", None)
        if below is None:
            return transport if tls else None
        transport = below
    return None


def close_sent(transport: Any, call_later: Callable[..., Any], grace: float = 0.0) -> None:
    """Close ``transport`` once what was written to it is sent, TLS or not.

    TLS's close (Twisted's) sends close_notify, then keeps the connection until
    the client's close_notify comes back; a client idle between requests (git's
    curl, hg, a browser keeping the connection for its next request) answers only
    when it reads again, so the connection stayed open, and counted, until the
    client left.  Under TLS the TCP connection below is closed too, ``grace``
    seconds later (at once for 0), once what was written to it (close_notify
    last) is sent: the side that closes need not wait for the answer (RFC 8446
    6.1, RFC 5246 7.2.1)."""
    transport.loseConnection()
    bottom = tcp_under_tls(transport)
    if bottom is None:
        return
    if grace > 0:
        call_later(grace, bottom.loseConnection)
    else:
        bottom.loseConnection()


def plain_address(address: IAddress | None) -> Any:
    """``address`` with an IPv4 client of a dual-stack listener (``tcp:…:interface=\\:\\:``) named
    as the IPv4 address it is: its socket reports ``::ffff:10.0.0.7``, which the logs, the audit log,
    hooks' ``REMOTE_ADDR`` and the per-address limits then showed, as sshd never does (it names
    ``10.0.0.7``).  Any other address is returned as it is."""
    if isinstance(address, IPv6Address) and address.host.lower().startswith("::ffff:"):
        try:
            mapped = ipaddress.IPv6Address(address.host).ipv4_mapped
        except ValueError:
            mapped = None
        if mapped is not None:
            return IPv4Address(address.type, str(mapped), address.port)
    return address


def address_key(address: IAddress | None) -> str:
    """A peer as the limits count it and ``[http] trusted_proxies`` names it: its IP address,
    ``unix`` on a ``unix:`` listener."""
    if isinstance(address, UNIXAddress):
        return UNIX_PEER  # (``[http] trusted_proxies = ["unix"]`` names it so)
    host = getattr(address, "host", None)
    return str(host) if host is not None else type(address).__name__


_TCP_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)
"""Linux's one-shot "acknowledge now": absent elsewhere, where nothing is set."""


def tcp_socket(transport: Any) -> socket.socket | None:
    """The TCP socket under a transport, through a TLS layer; None for anything else."""
    for _ in range(4):  # TCP, TLS over TCP, and wrappers of those
        if transport is None:
            return None
        get_handle = getattr(transport, "getHandle", None)
        handle = get_handle() if callable(get_handle) else None
        if (isinstance(handle, socket.socket) and handle.type == socket.SOCK_STREAM
                and handle.family in (socket.AF_INET, socket.AF_INET6)):
            return handle
        transport = getattr(transport, "transport", None)
    return None


def _set_tcp_option(sock: socket.socket, option: int) -> None:
    try:
        sock.setsockopt(socket.IPPROTO_TCP, option, 1)
    except OSError:  # closed under us: the transport reports that on its own
        pass


def _own_method(protocol: Any, name: str) -> Any:
    """``protocol``'s own method ``name``, looking through Twisted ``ProtocolWrapper``s (TLS) to the
    protocol they wrap; None if there is none.  Never a wrapper's ``__getattr__``, which hands the
    lookup up to its transport: this wrapper, and so back here for ever."""
    for _ in range(4):
        if callable(getattr(type(protocol), name, None)):
            return getattr(protocol, name)
        if not isinstance(protocol, ProtocolWrapper):
            return None
        protocol = protocol.wrappedProtocol
    return None


def _half_closeable(protocol: Any) -> Any:
    """``protocol`` if its own class handles half-closes, else None.

    A Twisted ``ProtocolWrapper`` (TLS over a proxied connection) copies the
    interfaces of its transport, this wrapper, so it claims
    ``IHalfCloseableProtocol`` while its ``readConnectionLost`` is only the
    transport's own, found through ``__getattr__``: calling it would come back
    here for ever.
    """
    half = IHalfCloseableProtocol(protocol, None)
    if half is None or not callable(getattr(type(half), "readConnectionLost", None)):
        return None
    return half


@implementer(IHalfCloseableProtocol)
class GuardedProtocol(ProtocolWrapper):
    """A connection of a guarded listener: counted, and dropped when idle too long.

    With ``refusal`` set it is a refused connection: the bytes are written and
    the connection closed; the wrapped protocol (a bare ``Protocol``) never
    sees a byte.
    """

    def __init__(self, factory: Any, wrapped: Protocol, address_key: str, idle: float,
                 refusal: bytes | None = None, lifetime: float | None = None) -> None:
        super().__init__(factory, wrapped)
        self.guard: GuardedFactory = factory
        self.address_key = address_key
        self._idle = idle
        self._refusal = refusal
        self._lifetime = lifetime
        self._last = 0.0
        self._bytes_are_activity = True
        """Whether every byte keeps the connection from being idle (see ``own_activity``)."""
        self._timer: IDelayedCall | None = None
        self._closing: IDelayedCall | None = None
        self._deadline: IDelayedCall | None = None
        self._socket: socket.socket | None = None
        self.idle_cut: int | None = None
        """Seconds the connection was quiet when the idle limit closed it (``gone_outcome``)."""

    def getPeer(self) -> IAddress:
        return plain_address(super().getPeer())  # type: ignore[no-any-return]

    def getHost(self) -> IAddress:
        return plain_address(super().getHost())  # type: ignore[no-any-return]

    def makeConnection(self, transport: Any) -> None:
        clock = self.guard.clock
        self._last = clock.seconds()
        self._timer = clock.callLater(self._idle, self._check_idle)
        self._arm_deadline(self._lifetime)
        self._socket = tcp_socket(transport)
        if self._socket is not None:
            _set_tcp_option(self._socket, socket.TCP_NODELAY)
        super().makeConnection(transport)
        if self._refusal is not None:
            self._refuse_now(self._refusal)

    def _arm_deadline(self, lifetime: float | None) -> None:
        """Close the connection ``lifetime`` seconds from now (None: never); replaces any deadline set."""
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._lifetime = lifetime
        self._deadline = self.guard.clock.callLater(lifetime, self._too_long) if lifetime is not None else None

    def _refuse_now(self, refusal: bytes) -> None:
        """Write why the connection is refused, then close once the client's first bytes are read
        (closing with unread input would reset the connection before the client reads why), or
        after ``REFUSAL_GRACE``."""
        self._refusal = refusal
        if self.transport is None:
            return
        self.transport.write(refusal)
        clock = self.guard.clock
        self._closing = clock.callLater(REFUSAL_GRACE, close_sent, self.transport, clock.callLater, TLS_CLOSE_GRACE)

    def own_activity(self) -> Callable[[], None]:
        """For a protocol that tells its work from its keepalives (SSH): bytes no longer keep the
        connection from being idle, only calls of the function returned do."""
        self._bytes_are_activity = False
        return self._active

    def _active(self) -> None:
        self._last = self.guard.clock.seconds()

    def dataReceived(self, data: bytes) -> None:
        self.guard.bytes_in += len(data)
        if self._bytes_are_activity:
            self._last = self.guard.clock.seconds()
        if self._socket is not None and _TCP_QUICKACK is not None:
            _set_tcp_option(self._socket, _TCP_QUICKACK)
        if self._refusal is None:
            super().dataReceived(data)
        elif self._closing is not None and self._closing.active():
            self._closing.reset(0.1)

    def write(self, data: bytes) -> None:
        self.guard.bytes_out += len(data)
        if self._bytes_are_activity:
            self._last = self.guard.clock.seconds()
        super().write(data)

    def writeSequence(self, data: Any) -> None:
        data = list(data)
        self.guard.bytes_out += sum(map(len, data))
        if self._bytes_are_activity:
            self._last = self.guard.clock.seconds()
        super().writeSequence(data)

    def readConnectionLost(self) -> None:
        """The peer shut down its sending side: a half-closeable listener still answers."""
        half = _half_closeable(self.wrappedProtocol)
        if half is not None and self._refusal is None:
            half.readConnectionLost()
        elif self.transport is not None:
            self.transport.loseConnection()

    def writeConnectionLost(self) -> None:
        half = _half_closeable(self.wrappedProtocol)
        if half is not None:
            half.writeConnectionLost()

    def quiet_for(self) -> float:
        """Seconds since the last byte in either direction (the last activity, for ``own_activity``)."""
        return float(self.guard.clock.seconds() - self._last)

    def between_requests(self) -> bool:
        """Whether the connection may be closed without cutting work short: a refused one, or one
        whose protocol says it is between requests (an HTTP keep-alive connection waiting for the
        next request, an SSH connection with no session open).  A git:// connection carries one
        request from its first byte to its close, so it never is."""
        if self._refusal is not None:
            return True
        idle = _own_method(self.wrappedProtocol, "between_requests")
        return bool(idle()) if idle is not None else False

    def _check_idle(self) -> None:
        self._timer = None
        clock = self.guard.clock
        quiet = clock.seconds() - self._last
        if quiet < self._idle:
            self._timer = clock.callLater(self._idle - quiet, self._check_idle)
            return
        log.info("{kind} connection from {peer} idle for {seconds} s: closed", kind=self.guard.kind,
                 peer=self.address_key, seconds=round(quiet))
        self.idle_cut = round(quiet)  # its request's line says it timed out, not that its client went
        self.end(f"the connection was idle for {round(quiet)} s (the server's idle_timeout); connect again")

    def _too_long(self) -> None:
        self._deadline = None
        log.info("{kind} connection from {peer} open for {seconds} s, the connection_timeout: closed",
                 kind=self.guard.kind, peer=self.address_key, seconds=self._lifetime)
        self.end(f"the connection was open {self._lifetime} s (the server's connection_timeout); connect again")

    def end(self, why: str, orderly: bool = False) -> None:
        """Close the connection the limits end: a protocol that can say why (SSH's disconnect message)
        says it and is closed once that is written, or dropped after ``REFUSAL_GRACE`` if its peer
        does not read; any other is dropped now, unsent data and all — or, ``orderly``, closed once
        what was written to it is sent (the service stopping: an HTTP response handed over whole,
        its last bytes still on their way to a slow client, must arrive; the grace's end drops it)."""
        goodbye = _own_method(self.wrappedProtocol, "goodbye")
        if goodbye is None or self.transport is None:
            if orderly and self.transport is not None:
                close_sent(self.transport, self.guard.clock.callLater)
            else:
                drop(self.transport)
            return
        goodbye(why)
        self._closing = self.guard.clock.callLater(REFUSAL_GRACE, drop, self.transport)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        for call in (self._timer, self._closing, self._deadline):
            if call is not None and call.active():
                call.cancel()
        self._timer = self._closing = self._deadline = None
        super().connectionLost(reason)


PROXY_PENDING = "(PROXY header not read yet)"
"""The per-address key of a proxied connection before its header names the client: not bounded."""

NOT_FROM_A_PROXY = ("this port serves clients through a proxy that sends the PROXY protocol; "
                    "connect through that proxy, or to a port without haproxy: in its listener")


class ProxiedProtocol(GuardedProtocol):
    """A connection from a proxy that sends the PROXY protocol header first (HAProxy's
    ``send-proxy``, nginx's ``proxy_protocol on``).

    The listener's own protocol is built only once the header is read, for the
    client's address: it is counted and bounded per address as a direct
    connection would be, ``getPeer()`` is the client (logs, the audit log,
    hooks' ``REMOTE_ADDR``, per-address limits) and ``getHost()`` the address
    the client connected to.  The header must arrive within ``request_timeout``;
    a connection that does not begin with a valid one is refused in the
    listener's own protocol.  A header without a client address (``LOCAL``: the
    proxy's own health check; ``UNKNOWN``) leaves the connection's own addresses.
    """

    def __init__(self, factory: GuardedFactory, header_timeout: float) -> None:
        super().__init__(factory, Protocol(), PROXY_PENDING, header_timeout, lifetime=header_timeout)
        self._reader: ProxyHeaderReader | None = ProxyHeaderReader()
        self._peer: IAddress | None = None
        self._host: IAddress | None = None

    def dataReceived(self, data: bytes) -> None:
        if self._reader is None or self._refusal is not None:
            super().dataReceived(data)
            return
        self._last = self.guard.clock.seconds()
        try:
            read = self._reader.feed(data)
        except ProxyHeaderError as exc:
            self._reader = None
            proxy = address_key(self.transport.getPeer() if self.transport is not None else None)
            log.warn("{kind} connection from {peer} refused: {error}",  # noqa: G010 - twisted.logger
                     kind=self.guard.kind, peer=proxy, error=str(exc))
            self._refuse_now(self.guard.refusal(NOT_FROM_A_PROXY))
            return
        if read is None:
            return
        self._reader = None
        header, rest = read
        if header.source is not None and header.destination is not None:
            self._peer = tcp_address(header.source.host, header.source.port)
            self._host = tcp_address(header.destination.host, header.destination.port)
        self._start(rest)

    def _start(self, rest: bytes) -> None:
        """The header is read: count the client, then hand the connection to the listener's protocol."""
        guard = self.guard
        limits = guard.limits()
        peer = self.getPeer()
        key = address_key(peer)
        reason = guard.per_address_refusal(key, limits)
        guard.rekey(self, key)
        if reason is not None:
            guard.refused += 1
            log.warn("{kind} connection from {peer} refused: {reason}",  # noqa: G010 - twisted.logger
                     kind=guard.kind, peer=key, reason=reason)
            self._refuse_now(guard.refusal(reason))
            return
        wrapped = guard.wrappedFactory.buildProtocol(peer)
        if wrapped is None:  # the listener's own factory refused: close at once
            drop(self.transport)
            return
        self._idle = limits.idle_timeout
        self._arm_deadline(limits.connection_timeout)  # in place of the header's own deadline
        self.wrappedProtocol = wrapped
        wrapped.makeConnection(self)
        if rest:
            super().dataReceived(rest)

    def _too_long(self) -> None:
        if self._reader is None:
            super()._too_long()
            return
        self._deadline = None
        log.info("{kind} connection from {peer} sent no PROXY header in {seconds} s: closed",
                 kind=self.guard.kind, peer=address_key(super().getPeer()), seconds=self._lifetime)
        drop(self.transport)

    def readConnectionLost(self) -> None:
        if self._reader is not None and self.transport is not None:  # gone before its header
            self.transport.loseConnection()
            return
        super().readConnectionLost()

    def between_requests(self) -> bool:
        return self._reader is not None or super().between_requests()

    def getPeer(self) -> IAddress:
        return self._peer if self._peer is not None else super().getPeer()

    def getHost(self) -> IAddress:
        return self._host if self._host is not None else super().getHost()


def tcp_address(host: str, port: int) -> IPv4Address | IPv6Address:
    """Twisted's address of a TCP peer at ``host`` (an IP address in text) and ``port``."""
    return plain_address(IPv6Address("TCP", host, port)) if ":" in host else IPv4Address("TCP", host, port)


@implementer(IProtocolNegotiationFactory)
class GuardedFactory(WrappingFactory):
    """Wrap a listener's factory: bound the open connections and drop idle ones."""

    protocol = GuardedProtocol

    def __init__(self, kind: str, wrapped: Factory, limits: Callable[[], ConnectionLimits],
                 clock: Any = None, proxy_header: bool = False,
                 trusted: Callable[[], Trusted] | None = None) -> None:
        super().__init__(wrapped)
        if clock is None:
            from twisted.internet import reactor

            clock = reactor
        self.kind = kind
        self.clock = clock
        self.limits = limits
        self.per_address: Counter[str] = Counter()
        self._refuse = REFUSALS.get(kind, _ssh_refusal)
        self.proxy_header = proxy_header
        """Whether each connection begins with a PROXY protocol header (the listener is behind a proxy)."""
        self.trusted = trusted
        """The reverse proxies in force (HTTP): their connections carry many clients' requests, so
        they are bounded by ``max_connections`` only, not per address."""
        self.accepted = 0
        """Connections accepted (``/.metrics``; those then refused for a limit too)."""
        self.refused = 0
        """Connections refused for a connection limit (``/.metrics``)."""
        self.bytes_in = 0
        """Bytes received on this listener's connections (inside TLS, ``/.metrics``)."""
        self.bytes_out = 0
        """Bytes sent on them."""

    def acceptableProtocols(self) -> list[bytes]:
        """The protocols TLS names over ALPN on this listener: its wrapped factory's (HTTP/1.1 for
        HTTP).  The ALPN choice of an ``ssl:`` listener (``gateway.tls``) answers a client that
        offers one of these with it, so the guard passes them on: hiding the HTTP factory's made
        every ``git``, ``curl`` and browser connection to an ``ssl:`` listener fail ("internal
        error" alert), while clients that offer no ALPN (``hg``) were served.  A client that offers
        none of them gets no protocol and proceeds over HTTP/1.x."""
        negotiation = IProtocolNegotiationFactory(self.wrappedFactory, None)
        return list(negotiation.acceptableProtocols()) if negotiation is not None else []

    def refusal(self, reason: str) -> bytes:
        """The bytes that tell this listener's client why it is refused."""
        return self._refuse(reason)

    def buildProtocol(self, addr: IAddress | None) -> ProtocolWrapper:
        addr = plain_address(addr)
        limits = self.limits()
        key = address_key(addr)
        reason = None
        if len(self.protocols) >= limits.max_connections:
            # (the limit, not len(self.protocols): refused connections count while they are told so)
            reason = f"the server has {limits.max_connections} open connections, its limit; try again later"
        elif not self.proxy_header and not (self.trusted is not None and key in self.trusted()):
            reason = self.per_address_refusal(key, limits)
        if reason is not None:
            self.refused += 1
            log.warn("{kind} connection from {peer} refused: {reason}",  # noqa: G010 - twisted.logger
                     kind=self.kind, peer=key, reason=reason)
            return GuardedProtocol(self, Protocol(), key, limits.request_timeout, self._refuse(reason))
        if self.proxy_header:  # who the client is comes with the header: counted per address then
            return ProxiedProtocol(self, limits.request_timeout)
        wrapped = self.wrappedFactory.buildProtocol(addr)
        if wrapped is None:  # the listener's own factory refused: close at once
            return GuardedProtocol(self, Protocol(), key, limits.request_timeout, b"")
        return GuardedProtocol(self, wrapped, key, limits.idle_timeout, lifetime=limits.connection_timeout)

    def per_address_refusal(self, key: str, limits: ConnectionLimits) -> str | None:
        """Why one more connection from ``key`` is refused; None when it is not."""
        if self.per_address[key] >= limits.max_connections_per_address:
            return (f"{limits.max_connections_per_address} connections from your address are open, the limit; "
                    "close some or try again later")
        return None

    def rekey(self, p: Any, key: str) -> None:
        """Count ``p`` under ``key`` from now on (a proxied connection, once its client is known)."""
        self._uncount(p.address_key)
        p.address_key = key
        self.per_address[key] += 1

    def registerProtocol(self, p: Any) -> None:
        super().registerProtocol(p)
        self.accepted += 1
        self.per_address[p.address_key] += 1

    def unregisterProtocol(self, p: Any) -> None:
        super().unregisterProtocol(p)
        self._uncount(p.address_key)

    def _uncount(self, key: str) -> None:
        self.per_address[key] -= 1
        if self.per_address[key] <= 0:
            del self.per_address[key]

    def logPrefix(self) -> str:
        return str(self.wrappedFactory.logPrefix())

    def close_quiet(self, quiet: float) -> int:
        """While the service stops: close each connection that is between requests and has been
        quiet for ``quiet`` seconds (a client in the middle of a sequence of requests on one
        connection gets to finish it); the number of connections still open."""
        for p in list(self.protocols):
            if p.between_requests() and p.quiet_for() >= quiet and p.transport is not None:
                p.end("the server is stopping; connect again in a moment", orderly=True)
        return len(self.protocols)

    def close_all(self) -> None:
        """The stop's grace is over: close every connection, each logged as cut (``gone_outcome``)."""
        for p in list(self.protocols):
            if p.transport is not None:
                p.cut_at_shutdown = True
                drop(p.transport)


def guard(kind: str, factory: Factory, config: ServiceConfig, clock: Any = None,
          proxy_header: bool = False) -> GuardedFactory:
    """``factory`` with the connection limits of ``config`` (read at each connection); with
    ``proxy_header``, each connection first reads the PROXY protocol header a proxy sends.  An HTTP
    listener does not bound the connections of ``[http] trusted_proxies`` per address."""
    trusted = (lambda: trusted_proxies(config)) if kind == "http" else None
    return GuardedFactory(kind, factory, lambda: limits_for(config), clock, proxy_header, trusted)
