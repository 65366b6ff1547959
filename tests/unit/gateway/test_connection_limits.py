"""Connection limits (gateway.limits): counting, refusals in each protocol, idle drops."""

from __future__ import annotations

import re
import socket
import struct
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import globalLogPublisher
from twisted.protocols.policies import WrappingFactory

from backends.memory import MemoryBackend
from gateway.config import ServiceConfig
from gateway.limits import (
    DEFAULT_LIMITS,
    REFUSAL_GRACE,
    ConnectionLimits,
    GuardedFactory,
    limits_for,
    tcp_socket,
)
from gateway.policy import authorizer_for
from protocols.forwarded import Trusted, parse_network


class Echo(Protocol):
    def dataReceived(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)


class EchoFactory(Factory):
    protocol = Echo


def connect(factory: GuardedFactory, host: str = "10.0.0.1", port: int = 5000) -> tuple[Any, StringTransport]:
    proto = factory.buildProtocol(IPv4Address("TCP", host, port))
    transport = StringTransport(peerAddress=IPv4Address("TCP", host, port))
    proto.makeConnection(transport)
    return proto, transport


def make(kind: str = "git", clock: Clock | None = None, **limits: Any) -> GuardedFactory:
    bounds = ConnectionLimits(**limits)
    return GuardedFactory(kind, EchoFactory(), lambda: bounds, clock or Clock())


def test_connections_under_the_limits_reach_the_listener_protocol() -> None:
    factory = make(max_connections_per_address=2)
    proto, transport = connect(factory)
    proto.dataReceived(b"ping")
    assert transport.value() == b"ping"
    assert factory.per_address["10.0.0.1"] == 1


def test_one_connection_too_many_from_an_address_gets_a_git_err_and_is_closed() -> None:
    factory = make("git", max_connections_per_address=2)
    connect(factory)
    connect(factory, port=5001)
    proto, transport = connect(factory, port=5002)
    data = transport.value()
    assert data[4:8] == b"ERR " and int(data[:4], 16) == len(data)
    assert b"connections from your address" in data
    assert not transport.disconnecting, "the client may still be sending its request"
    proto.dataReceived(b"0032git-upload-pack /x\x00")  # the listener's protocol never sees it
    assert transport.value() == data
    factory.clock.advance(0.2)
    assert transport.disconnecting, "closed once its request is read"
    other, other_transport = connect(factory, host="10.0.0.2")
    other.dataReceived(b"hi")
    assert other_transport.value() == b"hi", "another address is not limited"


def test_a_refusal_says_the_limit_not_the_count_refused_connections_inflate() -> None:
    """Refused connections are counted while they are told so: the fourth, fifth... refusal said
    "4 connections", "5 connections" for a limit of 2, in the log too."""
    for kind, limits, host in (("ssh", {"max_connections_per_address": 2}, "10.0.0.1"),
                               ("git", {"max_connections": 2}, None)):
        factory = make(kind, **limits)
        seen: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(seen.append)
        try:
            said = [connect(factory, host=host or f"10.0.0.{port}", port=5000 + port)[1].value()
                    for port in range(6)]
        finally:
            globalLogPublisher.removeObserver(seen.append)
        assert said[:2] == [b"", b""]
        logged = [str(e["reason"]) for e in seen if "refused" in str(e.get("log_format", ""))]
        assert len(logged) == 4
        for text in [*(refusal.decode("latin-1") for refusal in said[2:]), *logged]:
            assert re.search(r"\b2 (open )?connections", text) and not re.search(r"\b[3-6]\b", text), text


def test_the_total_limit_refuses_http_with_503_and_ssh_with_a_line_before_the_banner() -> None:
    http = make("http", max_connections=1)
    connect(http, host="10.0.0.1")
    _, transport = connect(http, host="10.0.0.9")
    head, _, body = transport.value().partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503 ")
    assert b"Retry-After: 10" in head
    assert f"Content-Length: {len(body)}".encode() in head
    assert b"open connections" in body

    ssh = make("ssh", max_connections=1)
    connect(ssh)
    _, transport = connect(ssh, host="10.0.0.9")
    line = transport.value()
    first, version, packet = line.split(b"\r\n", 2)
    assert first.startswith(b"hgwire: the server has") and version == b"SSH-2.0-hgwire"
    length, padding = struct.unpack(">LB", packet[:5])  # an SSH packet in the clear: SSH_MSG_DISCONNECT, the reason
    assert length == len(packet) - 4 and len(packet) % 8 == 0 and padding >= 4 and packet[5] == 1
    assert packet[10:14] == struct.pack(">L", len(first) - 8) and packet[14:14 + len(first) - 8] == first[8:]
    ssh.clock.advance(REFUSAL_GRACE)
    assert transport.disconnecting, "a silent refused client is closed after the grace"


def test_a_closed_connection_frees_its_slot() -> None:
    factory = make(max_connections_per_address=1)
    proto, _ = connect(factory)
    proto.connectionLost(None)
    assert "10.0.0.1" not in factory.per_address and not factory.protocols
    again, transport = connect(factory)
    again.dataReceived(b"x")
    assert transport.value() == b"x"


def test_refused_connections_are_not_left_counted() -> None:
    factory = make(max_connections_per_address=1)
    first, _ = connect(factory)
    refused, _ = connect(factory, port=5001)
    refused.connectionLost(None)
    first.connectionLost(None)
    assert not factory.per_address and not factory.protocols


def test_an_idle_connection_is_dropped_and_traffic_keeps_it_open() -> None:
    clock = Clock()
    factory = make(clock=clock, idle_timeout=10.0)
    proto, transport = connect(factory)
    clock.advance(6)
    proto.dataReceived(b"a")  # the client speaks: the clock starts again
    clock.advance(6)
    assert not transport.disconnecting
    proto.write(b"b")  # so does the server
    clock.advance(9)
    assert not transport.disconnecting
    clock.advance(1.5)
    assert transport.disconnecting or transport.disconnected


def test_a_busy_connection_is_closed_at_the_connection_timeout_and_only_if_one_is_set() -> None:
    clock = Clock()
    bounded = make(clock=clock, idle_timeout=10.0, connection_timeout=25.0)
    unbounded = make(clock=clock, idle_timeout=10.0)
    (proto, transport), (other, other_transport) = connect(bounded), connect(unbounded)
    for _ in range(4):  # a byte every 6 s: never idle
        clock.advance(6)
        proto.dataReceived(b"a")
        other.dataReceived(b"a")
    assert not transport.disconnecting
    clock.advance(1.5)
    assert transport.disconnecting or transport.disconnected
    assert not other_transport.disconnecting
    proto.connectionLost(None)
    other.connectionLost(None)
    assert clock.getDelayedCalls() == []


def test_the_idle_timer_stops_with_the_connection() -> None:
    clock = Clock()
    factory = make(clock=clock, idle_timeout=10.0)
    proto, _ = connect(factory)
    proto.connectionLost(None)
    assert clock.getDelayedCalls() == []


def test_limits_come_from_the_policy_file_over_the_defaults(tmp_path: Path) -> None:
    bare = ServiceConfig(backend=MemoryBackend(), root=str(tmp_path))
    assert limits_for(bare) == DEFAULT_LIMITS
    policy = tmp_path / "policy.toml"
    policy.write_text("[limits]\nmax_connections_per_address = 3\nidle_timeout = 2.5\n")
    config = ServiceConfig(backend=MemoryBackend(), root=str(tmp_path), config_file=str(policy))
    authorizer_for(config)
    limits = limits_for(config)
    assert limits.max_connections_per_address == 3
    assert limits.idle_timeout == 2.5
    assert limits.max_connections == DEFAULT_LIMITS.max_connections


@pytest.mark.parametrize("text", ["[limits]\nidle_timeout = -1\n", "[limits]\nmax_connections = 0\n",
                                  "[limits]\nmax_connectionz = 3\n"])
def test_a_bad_limit_is_a_policy_error(tmp_path: Path, text: str) -> None:
    from gateway.policy import PolicyError, parse_policy

    with pytest.raises(PolicyError):
        parse_policy(text, "policy.toml")


def test_every_limit_of_the_file_takes_effect_somewhere() -> None:
    from dataclasses import fields

    from gateway.limits import CONFIGURABLE
    from gateway.policy import Limits

    assert {f.name for f in fields(Limits)} <= CONFIGURABLE


def test_push_bounds_come_from_the_policy_file(tmp_path: Path) -> None:
    from gateway.limits import changegroup_limits, receive_bounds
    from protocols.changegroup import ChangegroupLimits
    from protocols.git_receive import ReceiveBounds

    assert receive_bounds(None) == ReceiveBounds() and changegroup_limits(None) == ChangegroupLimits()
    policy = tmp_path / "policy.toml"
    policy.write_text("[limits]\nmax_refs = 7\nmax_fulltext = 1000\nmax_delta_result = 2000\nmax_pkt_line = 300\n")
    config = ServiceConfig(backend=MemoryBackend(), root=str(tmp_path), config_file=str(policy))
    authorizer = authorizer_for(config)
    assert receive_bounds(authorizer) == ReceiveBounds(commands=7, object_size=1000, delta_result=2000, pkt_line=300)
    assert (changegroup_limits(authorizer).max_chunk, changegroup_limits(authorizer).max_text) == (1000, 2000)


def test_a_pkt_line_limit_above_git_s_own_is_a_policy_error() -> None:
    from gateway.policy import PolicyError, parse_policy

    with pytest.raises(PolicyError, match="at most 65520"):
        parse_policy("[limits]\nmax_pkt_line = 70000\n", "policy.toml")


def test_request_bounds_come_from_the_policy_file(tmp_path: Path) -> None:
    from gateway.limits import DEFAULT_BOUNDS, request_bounds

    assert request_bounds(None) == DEFAULT_BOUNDS
    policy = tmp_path / "policy.toml"
    policy.write_text("[limits]\nmax_wants = 100\nmax_ref_prefixes = 10\n")
    config = ServiceConfig(backend=MemoryBackend(), root=str(tmp_path), config_file=str(policy))
    bounds = request_bounds(authorizer_for(config))
    assert (bounds.wants, bounds.haves, bounds.ref_prefixes) == (100, DEFAULT_BOUNDS.haves, 10)


class RecordingSocket(socket.socket):
    """A real TCP socket that remembers the options set on it."""

    def __init__(self) -> None:
        super().__init__(socket.AF_INET, socket.SOCK_STREAM)
        self.options: list[tuple[int, int, int]] = []

    def setsockopt(self, level: int, option: int, value: Any, *rest: Any) -> None:  # type: ignore[override]
        self.options.append((level, option, value))
        super().setsockopt(level, option, value, *rest)


class SocketTransport(StringTransport):
    def __init__(self, sock: socket.socket) -> None:
        super().__init__(peerAddress=IPv4Address("TCP", "10.0.0.1", 5000))
        self.sock = sock

    def getHandle(self) -> socket.socket:
        return self.sock


class TLSLayer(StringTransport):
    """What a TLS layer looks like from above: its handle is no socket; the TCP transport is under it."""

    def __init__(self, under: Any) -> None:
        super().__init__()
        self.transport = under

    def getHandle(self) -> object:
        return object()


def test_tcp_connections_send_small_replies_at_once_and_acknowledge_requests_at_once() -> None:
    """Nagle's algorithm on our side, or a delayed ACK of a client's first small write, stalls
    each request/reply turn of a handshake by the peer's 40 ms delayed-ACK timer."""
    with RecordingSocket() as sock:
        proto, _ = connect_with(make(), SocketTransport(sock))
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        sock.options.clear()
        proto.dataReceived(b"0014command=ls-refs\n")
        if hasattr(socket, "TCP_QUICKACK"):
            assert sock.options == [(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)]
        else:
            assert sock.options == []


def test_the_tcp_socket_is_found_under_tls_and_nothing_is_set_on_other_sockets() -> None:
    with RecordingSocket() as sock:
        assert tcp_socket(TLSLayer(SocketTransport(sock))) is sock
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as unix:
        assert tcp_socket(SocketTransport(unix)) is None
    assert tcp_socket(StringTransport()) is None
    proto, transport = connect(make())  # a transport with no socket at all still works
    proto.dataReceived(b"ping")
    assert transport.value() == b"ping"


def test_a_socket_closed_under_the_connection_is_not_an_error() -> None:
    sock = RecordingSocket()
    proto, _ = connect_with(make(), SocketTransport(sock))
    sock.close()
    proto.dataReceived(b"ping")  # setting the option fails with EBADF, quietly


def connect_with(factory: GuardedFactory, transport: StringTransport) -> tuple[Any, StringTransport]:
    proto = factory.buildProtocol(IPv4Address("TCP", "10.0.0.1", 5000))
    proto.makeConnection(transport)
    return proto, transport


def test_a_user_s_operations_are_counted_until_each_ends_once() -> None:
    from gateway.limits import UserSessions
    from protocols.errors import ProtocolError

    sessions = UserSessions()
    first = sessions.enter("alice", 2)
    second = sessions.enter("alice", 2)
    with pytest.raises(ProtocolError) as refused:
        sessions.enter("alice", 2)
    assert refused.value.http_status == 429 and "alice has 2 operations under way" in str(refused.value)
    assert sessions.enter("bob", 2) and sessions.enter(None, 0)  # others, and anonymous clients, are not hers
    first()
    first()  # ending twice ends once
    assert sessions.open["alice"] == 1
    third = sessions.enter("alice", 2)
    second()
    third()
    assert "alice" not in sessions.open


def test_a_client_may_start_a_minute_s_worth_at_once_then_one_each_sixtieth_of_a_minute() -> None:
    from gateway.limits import RateLimited, RequestRates

    now = [0.0]
    rates = RequestRates(clock=lambda: now[0])
    for _ in range(6):
        rates.take("user:alice", 6, "alice")
    with pytest.raises(RateLimited) as refused:
        rates.take("user:alice", 6, "alice")
    assert refused.value.http_status == 429 and refused.value.retry_after == 10
    assert str(refused.value) == ("alice started more than 6 git/hg operations in a minute, the most this server "
                                  "allows; retry in 10 seconds")
    rates.take("user:bob", 6, "bob")  # each client has its own allowance
    now[0] = 7.5  # three quarters of a token back: still refused, and told the rest
    with pytest.raises(RateLimited) as refused:
        rates.take("user:alice", 6, "alice")
    assert refused.value.retry_after == 3
    now[0] = 10.0
    rates.take("user:alice", 6, "alice")
    with pytest.raises(RateLimited):
        rates.take("user:alice", 6, "alice")
    now[0] = 1000.0  # a long pause refills the allowance, no further than a minute's worth
    for _ in range(6):
        rates.take("user:alice", 6, "alice")
    with pytest.raises(RateLimited):
        rates.take("user:alice", 6, "alice")
    rates.take("user:alice", None, "alice")  # off: nothing counted, nothing refused


def test_the_table_of_allowances_forgets_clients_whose_allowance_is_whole_again() -> None:
    from gateway.limits import RequestRates

    now = [0.0]
    rates = RequestRates(clock=lambda: now[0])
    rates.PRUNE_AT = 10
    for i in range(10):
        rates.take(f"address:192.0.2.{i}", 60, "x")
    now[0] = 0.5  # half a token back each: not whole yet
    rates.take("address:192.0.2.100", 60, "x")
    assert len(rates._buckets) == 11
    now[0] = 2.0
    rates.take("address:192.0.2.101", 60, "x")
    assert set(rates._buckets) == {"address:192.0.2.101"}


# --- listeners behind a proxy that sends the PROXY protocol header ------------------------------

class Recorder(Protocol):
    """The listener's protocol: what it was told about its connection, and what it read."""

    def __init__(self) -> None:
        self.peer: Any = None
        self.host: Any = None
        self.received = b""

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.peer = self.transport.getPeer()
        self.host = self.transport.getHost()
        self.transport.write(b"banner\r\n")

    def dataReceived(self, data: bytes) -> None:
        self.received += data


class RecorderFactory(Factory):
    def __init__(self) -> None:
        self.built: list[tuple[Any, Recorder]] = []

    def buildProtocol(self, addr: Any) -> Recorder:
        proto = Recorder()
        self.built.append((addr, proto))
        return proto


def proxied(kind: str = "ssh", clock: Clock | None = None, **limits: Any) -> tuple[GuardedFactory, RecorderFactory]:
    bounds = ConnectionLimits(**limits)
    inner = RecorderFactory()
    return GuardedFactory(kind, inner, lambda: bounds, clock or Clock(), proxy_header=True), inner


def from_proxy(factory: GuardedFactory) -> tuple[Any, StringTransport]:
    """A connection from the proxy at 10.9.9.9, before it has sent anything."""
    return connect(factory, host="10.9.9.9", port=40000)


def test_a_proxied_connection_starts_the_listener_s_protocol_for_the_client_once_the_header_is_read() -> None:
    factory, inner = proxied()
    proto, transport = from_proxy(factory)
    assert not inner.built and transport.value() == b"", "no banner before the client is known"
    proto.dataReceived(b"PROXY TCP4 203.0.113.7 192.0.2.1 5")
    assert not inner.built
    proto.dataReceived(b"6324 2222\r\nSSH-2.0-client\r\n")
    [(addr, listener)] = inner.built
    assert (addr.host, addr.port) == ("203.0.113.7", 56324)
    assert (listener.peer.host, listener.peer.port) == ("203.0.113.7", 56324)
    assert (listener.host.host, listener.host.port) == ("192.0.2.1", 2222)
    assert listener.received == b"SSH-2.0-client\r\n"
    assert transport.value() == b"banner\r\n"
    assert factory.per_address == {"203.0.113.7": 1}, "counted under the client, not the proxy"
    proto.connectionLost(None)
    assert not factory.per_address and not factory.protocols


def test_a_proxied_connection_is_bounded_by_its_client_s_address() -> None:
    factory, inner = proxied("git", max_connections_per_address=1)
    first, _ = from_proxy(factory)
    first.dataReceived(b"PROXY TCP4 203.0.113.7 192.0.2.1 1 9418\r\n")
    other, _ = from_proxy(factory)
    other.dataReceived(b"PROXY TCP4 203.0.113.8 192.0.2.1 1 9418\r\n")
    assert len(inner.built) == 2, "the proxy's own address is not what is bounded"
    again, transport = from_proxy(factory)
    again.dataReceived(b"PROXY TCP4 203.0.113.7 192.0.2.1 2 9418\r\n0032git-upload-pack")
    data = transport.value()
    assert data[4:8] == b"ERR " and b"connections from your address" in data
    assert len(inner.built) == 2
    factory.clock.advance(REFUSAL_GRACE)
    assert transport.disconnecting
    for p in (first, other, again):
        p.connectionLost(None)
    assert not factory.per_address


def test_a_local_or_unknown_header_keeps_the_connection_s_own_address() -> None:
    factory, inner = proxied()
    proto, _ = from_proxy(factory)
    proto.dataReceived(b"\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00")  # the proxy's health check
    [(addr, listener)] = inner.built
    assert addr.host == "10.9.9.9" and listener.peer.host == "10.9.9.9"
    proto2, _ = from_proxy(factory)
    proto2.dataReceived(b"PROXY UNKNOWN\r\n")
    assert inner.built[1][0].host == "10.9.9.9"


@pytest.mark.parametrize(("kind", "first_bytes", "starts"), [
    ("git", b"0032git-upload-pack /x.git\x00host=h\x00", b"00"),
    ("http", b"GET /x.git/info/refs HTTP/1.1\r\n", b"HTTP/1.1 503 "),
    ("ssh", b"SSH-2.0-OpenSSH_9.2\r\n", b"hgwire: "),
])
def test_a_client_that_skips_the_proxy_is_refused_in_its_own_protocol(
        kind: str, first_bytes: bytes, starts: bytes) -> None:
    factory, inner = proxied(kind)
    proto, transport = from_proxy(factory)
    proto.dataReceived(first_bytes)
    assert transport.value().startswith(starts) and b"PROXY protocol" in transport.value()
    assert not inner.built
    factory.clock.advance(REFUSAL_GRACE)
    assert transport.disconnecting


def test_a_header_that_does_not_come_in_time_closes_the_connection() -> None:
    clock = Clock()
    factory, inner = proxied(clock=clock, request_timeout=5.0, idle_timeout=600.0)
    proto, transport = from_proxy(factory)
    for byte in b"PROXY UNKN":  # a byte every second keeps it from being idle, not from the deadline
        clock.advance(1)
        if transport.disconnecting:
            break
        proto.dataReceived(bytes([byte]))
    assert transport.disconnecting and clock.seconds() <= 6 and not inner.built


def test_once_started_a_proxied_connection_has_the_ordinary_idle_timeout() -> None:
    clock = Clock()
    factory, _ = proxied(clock=clock, request_timeout=5.0, idle_timeout=100.0)
    proto, transport = from_proxy(factory)
    proto.dataReceived(b"PROXY UNKNOWN\r\n")
    clock.advance(50)
    assert not transport.disconnecting, "the header's deadline ends with the header"
    clock.advance(60)
    assert transport.disconnecting


def test_a_trusted_reverse_proxy_is_bounded_by_the_total_only() -> None:
    bounds = ConnectionLimits(max_connections_per_address=1, max_connections=3)
    trusted = Trusted((parse_network("10.9.9.9"),))
    factory = GuardedFactory("http", EchoFactory(), lambda: bounds, Clock(), trusted=lambda: trusted)
    for port in (1, 2, 3):
        proto, transport = connect(factory, host="10.9.9.9", port=port)
        proto.dataReceived(b"x")
        assert transport.value() == b"x", "the proxy carries many clients"
    _, transport = connect(factory, host="10.9.9.9", port=4)
    assert transport.value().startswith(b"HTTP/1.1 503 ") and b"open connections" in transport.value()
    factory2 = GuardedFactory("http", EchoFactory(), lambda: bounds, Clock(), trusted=lambda: trusted)
    connect(factory2, host="10.0.0.1")
    _, transport = connect(factory2, host="10.0.0.1", port=2)
    assert b"connections from your address" in transport.value(), "anyone else is bounded per address"


def test_a_half_close_under_a_wrapper_that_copies_our_interfaces_closes_instead_of_looping() -> None:
    """TLS behind the PROXY header is a ``ProtocolWrapper`` whose transport is this guard: it copies
    the guard's ``IHalfCloseableProtocol`` without handling half-closes itself."""
    bounds = ConnectionLimits()
    factory = GuardedFactory("http", WrappingFactory(EchoFactory()), lambda: bounds, Clock(), proxy_header=True)
    proto, transport = from_proxy(factory)
    proto.dataReceived(b"PROXY UNKNOWN\r\nhello")
    assert transport.value() == b"hello"
    assert proto.between_requests() is False, "asked through the wrapper, not back up to the guard"
    proto.readConnectionLost()  # the peer shut down its sending side
    assert transport.disconnecting
    proto.writeConnectionLost()


def test_an_ipv4_client_of_a_dual_stack_listener_is_named_by_its_ipv4_address() -> None:
    """A listener on ``interface=\\:\\:`` takes IPv4 clients too; their socket reports ``::ffff:…``.
    The listener's protocol (logs, hooks, the audit log) and the limits see the IPv4 address, as
    sshd names it; a real IPv6 client keeps its own."""
    bounds = ConnectionLimits(max_connections_per_address=1)
    inner = RecorderFactory()
    factory = GuardedFactory("git", inner, lambda: bounds, Clock())
    mapped = IPv6Address("TCP", "::ffff:10.47.6.2", 40000)
    proto = factory.buildProtocol(mapped)
    proto.makeConnection(StringTransport(peerAddress=mapped, hostAddress=IPv6Address("TCP", "::ffff:10.47.6.1", 9418)))
    [(addr, listener)] = inner.built
    assert isinstance(addr, IPv4Address) and (addr.host, addr.port) == ("10.47.6.2", 40000)
    assert isinstance(listener.peer, IPv4Address) and (listener.peer.host, listener.peer.port) == ("10.47.6.2", 40000)
    assert (listener.host.host, listener.host.port) == ("10.47.6.1", 9418)
    assert factory.per_address == {"10.47.6.2": 1}
    v6 = IPv6Address("TCP", "fd47:6::2", 40001)
    other = factory.buildProtocol(v6)
    other.makeConnection(StringTransport(peerAddress=v6))
    assert inner.built[1][1].peer.host == "fd47:6::2"
    assert factory.per_address == {"10.47.6.2": 1, "fd47:6::2": 1}


def test_a_proxy_header_naming_a_mapped_address_names_the_ipv4_client() -> None:
    factory, inner = proxied()
    proto, _ = from_proxy(factory)
    proto.dataReceived(b"PROXY TCP6 ::ffff:203.0.113.7 ::ffff:192.0.2.1 56324 2222\r\n")
    [(addr, listener)] = inner.built
    assert addr.host == "203.0.113.7" and listener.peer.host == "203.0.113.7"
    assert factory.per_address == {"203.0.113.7": 1}
