"""The SSH session channel's output queue: window-sized sends, producer pauses, exit after the last
byte, and the bound on what an OpenSSH client is sent ahead of its reads."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from twisted.conch.ssh import common
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.task import Clock

from gateway.ssh import (
    EARLY_FAILURE_CLOSE_GRACE,
    IN_FLIGHT_FLOOR,
    IN_FLIGHT_RATE,
    INBOUND_WINDOW_MAX,
    ExecChannel,
    adjust_threshold,
    in_flight_bound,
    inbound_window,
)


class FakeConnection:
    def __init__(self) -> None:
        self.packets: list[bytes] = []
        self.events: list[str] = []
        self.transport: Any = None

    def sendData(self, channel: Any, data: bytes) -> None:
        assert isinstance(data, bytes)
        self.packets.append(data)

    def sendEOF(self, channel: Any) -> None:
        self.events.append("eof")

    def sendRequest(self, channel: Any, request: bytes, data: bytes, wantReply: int = 0) -> None:
        self.events.append(request.decode())

    def sendClose(self, channel: Any) -> None:
        self.events.append("close")

    def adjustWindow(self, channel: Any, size: int) -> None:
        self.events.append(f"adjust {size}")
        channel.localWindowLeft += size


class FakeProducer:
    def __init__(self) -> None:
        self.paused = False
        self.changes = 0

    def pauseProducing(self) -> None:
        self.paused = True
        self.changes += 1

    def resumeProducing(self) -> None:
        self.paused = False
        self.changes += 1

    def stopProducing(self) -> None:
        pass


def channel(window: int, max_packet: int) -> tuple[ExecChannel, FakeConnection, FakeProducer]:
    conn = FakeConnection()
    chan = ExecChannel(remoteWindow=window, remoteMaxPacket=max_packet, conn=conn)
    producer = FakeProducer()
    chan.registerProducer(producer, True)
    return chan, conn, producer


def test_output_beyond_the_window_waits_in_order_and_pauses_the_producer() -> None:
    chan, conn, producer = channel(window=100, max_packet=32)
    first, second = bytes(range(250)), b"x" * 50
    chan.write(first)
    assert b"".join(conn.packets) == first[:100]
    assert all(len(p) <= 32 for p in conn.packets)
    assert producer.paused
    # The rest waits in the channel's queue of views, not in Twisted's own buffer, which is one
    # bytes object re-sliced (copied) on every window adjustment: quadratic for a large write.
    assert chan.buf == b""
    chan.write(second)  # a chunk that was already in flight when the pause came
    chan.addWindowBytes(120)
    assert b"".join(conn.packets) == first[:220]
    assert producer.paused  # more is still queued: the producer is not asked for more yet
    chan.addWindowBytes(1000)
    assert b"".join(conn.packets) == first + second
    assert not producer.paused
    chan.write(b"tail")
    assert conn.packets[-1] == b"tail"


def test_exit_status_and_close_wait_for_queued_output() -> None:
    chan, conn, _ = channel(window=10, max_packet=8)
    chan.write(b"0123456789abcdef")
    chan.finish(0)
    assert conn.events == []
    chan.addWindowBytes(3)
    assert conn.events == []
    chan.addWindowBytes(3)
    assert b"".join(conn.packets) == b"0123456789abcdef"
    assert conn.events == ["eof", "exit-status", "close"]


# ---------------------------------------------------------------- a command that fails at once

JSCH = b"SSH-2.0-JSCH-0.1.54"  # JGit 4.11's, as it introduced itself to hgwire


class StderrConnection(FakeConnection):
    def __init__(self, client_version: bytes) -> None:
        super().__init__()
        self.transport = SimpleNamespace(otherVersionString=client_version)

    def sendExtendedData(self, channel: Any, data_type: int, data: bytes) -> None:
        self.events.append("stderr")

    def sendClose(self, channel: Any) -> None:
        super().sendClose(channel)
        channel.localClosed = True


def failing_channel(client_version: bytes) -> tuple[ExecChannel, StderrConnection, Clock]:
    """A channel whose command fails before its client sent a byte, as ``git-upload-pack
    'nope.git'`` does: the refusal on stderr, exit status 128."""
    conn = StderrConnection(client_version)
    chan = ExecChannel(remoteWindow=1 << 20, remoteMaxPacket=32768, conn=conn)
    chan.clock = clock = Clock()
    return chan, conn, clock


def test_a_jsch_client_still_has_its_channel_when_it_looks_after_its_exec_reply() -> None:
    # JSch polls for the exec reply every 10 ms, then JGit checks the channel is open: closed
    # already, it said "connection failed" and dropped the refusal (one ls-remote in five)
    chan, conn, clock = failing_channel(JSCH)
    chan.write_stderr(b"fatal: repository nope.git not found\n")
    chan.finish(128)
    assert conn.events == ["stderr", "eof", "exit-status"]
    clock.advance(EARLY_FAILURE_CLOSE_GRACE / 2)
    assert conn.events == ["stderr", "eof", "exit-status"]
    chan.eofReceived()  # JGit has read the refusal and closes its side: the channel closes then
    assert conn.events == ["stderr", "eof", "exit-status", "close"]
    assert clock.getDelayedCalls() == []


def test_a_jsch_client_that_never_answers_is_closed_after_the_grace() -> None:
    chan, conn, clock = failing_channel(b"SSH-2.0-JSCH_0.2.20")
    chan.finish(1)
    clock.advance(EARLY_FAILURE_CLOSE_GRACE)
    assert conn.events == ["eof", "exit-status", "close"]
    chan.eofReceived()
    assert conn.events == ["eof", "exit-status", "close"]


def test_a_jsch_client_closing_first_leaves_no_timer_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    chan, _conn, clock = failing_channel(JSCH)
    monkeypatch.setattr(chan, "_log_session", lambda: None)  # (no avatar here to name the user)
    chan.finish(128)
    chan.closed()
    assert clock.getDelayedCalls() == []


@pytest.mark.parametrize(("version", "status", "read_input"), [
    (b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10", 128, False),  # waits for the close to exit: git would wait
    (b"SSH-2.0-libssh2_1.11.0", 128, False),
    (JSCH, 0, False),  # a command that succeeded
    (JSCH, 1, True),  # failed after its client spoke: the client is long past its exec reply
])
def test_other_ends_close_at_once(version: bytes, status: int, read_input: bool) -> None:
    chan, conn, clock = failing_channel(version)
    if read_input:
        chan.dataReceived(b"0000")
    chan.finish(status)
    assert conn.events == ["eof", "exit-status", "close"]
    assert clock.getDelayedCalls() == []


# ---------------------------------------------------------------- the in-flight bound

OPENSSH = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10"
WINDOW = 2 * 1024 * 1024


def test_an_openssh_client_near_by_gets_a_round_trip_of_its_window_not_all_of_it() -> None:
    assert in_flight_bound(OPENSSH, WINDOW, 32768, round_trip=0.0017) == IN_FLIGHT_FLOOR
    assert in_flight_bound(b"SSH-2.0-OpenSSH_for_Windows_8.1", WINDOW, 32768, 0.0001) == IN_FLIGHT_FLOOR
    # the bound covers eight of the client's packets: it adjusts after three
    assert in_flight_bound(OPENSSH, WINDOW, 65536, round_trip=0.0001) == 8 * 65536
    # a round trip's worth on a longer path, up to the whole window
    assert in_flight_bound(OPENSSH, WINDOW, 32768, round_trip=0.008) == int(0.008 * IN_FLIGHT_RATE)
    assert in_flight_bound(OPENSSH, WINDOW, 32768, round_trip=0.05) == WINDOW
    assert in_flight_bound(OPENSSH, 65536, 32768, round_trip=0.0001) == 65536


def test_other_clients_get_the_whole_window() -> None:
    # a client that adjusts only at half its window would wait for ever under the bound
    assert in_flight_bound(b"SSH-2.0-PuTTY_Release_0.81", WINDOW, 32768, round_trip=0.0001) == WINDOW
    assert in_flight_bound(b"SSH-2.0-Go", WINDOW, 32768, round_trip=0.0001) == WINDOW


class FakeTCP:
    def getPeer(self) -> Any:
        return IPv4Address("TCP", "127.0.0.1", 40000)


def test_a_distant_client_may_send_up_to_openssh_s_window_ahead_of_the_session() -> None:
    assert inbound_window(131072, round_trip=0.0005) == 131072  # never smaller than given
    assert inbound_window(131072, round_trip=0.005) == int(0.005 * IN_FLIGHT_RATE)
    assert inbound_window(131072, round_trip=0.05) == INBOUND_WINDOW_MAX


@pytest.mark.parametrize(
    ("version", "seconds_to_exec", "in_flight", "events"),
    [
        # the window grown past twice Twisted's 128 KiB is given at once
        (OPENSSH, 0.002, IN_FLIGHT_FLOOR, [f"adjust {inbound_window(131072, round_trip=0.002) - 131072}"]),
        # a distant client, maybe behind a TCP proxy near the server
        (OPENSSH, 0.040, WINDOW, [f"adjust {INBOUND_WINDOW_MAX - 131072}"]),
        (b"SSH-2.0-PuTTY", 0.002, WINDOW, [f"adjust {inbound_window(131072, round_trip=0.002) - 131072}"]),
        (b"SSH-2.0-PuTTY", 0.0005, WINDOW, []),  # near by: Twisted's window as it is
    ],
)
def test_the_round_trip_from_open_to_exec_sizes_both_windows(
        version: bytes, seconds_to_exec: float, in_flight: int, events: list[str]) -> None:
    chan, conn, producer = channel(window=WINDOW, max_packet=32768)
    conn.transport = SimpleNamespace(otherVersionString=version, transport=FakeTCP())
    chan.clock = Clock()  # the exec is then never started: only the bound is under test
    chan.channelOpen(b"")
    chan.clock.advance(seconds_to_exec)
    assert chan.requestReceived(b"exec", common.NS(b"git-upload-pack 'r.git'"))
    assert conn.events == events
    data = bytes(range(256)) * (3 * WINDOW // 256)
    chan.write(data)
    assert sum(map(len, conn.packets)) == in_flight
    assert producer.paused
    chan.addWindowBytes(100_000)
    assert b"".join(conn.packets) == data[:in_flight + 100_000]


class BusySession:
    """Takes each chunk and is busy with it (input paused) until told it is done."""

    def __init__(self, chan: ExecChannel) -> None:
        self.chan = chan
        self.taken: list[bytes] = []

    def data_received(self, data: bytes) -> None:
        self.taken.append(data)
        self.chan.pause_input()

    def done(self) -> None:
        self.chan.resume_input()

    def eof_received(self) -> None:
        pass

    def connection_lost(self) -> None:
        pass


def _send(chan: ExecChannel, size: int) -> None:
    """What ``HgwireConnection.ssh_CHANNEL_DATA`` does with a packet of ``size`` bytes."""
    assert size <= chan.localWindowLeft, "the client sends no more than the window"
    chan.localWindowLeft -= size
    chan.dataReceived(b"x" * size)


def test_the_inbound_window_reopens_as_the_session_takes_input_and_bounds_what_is_unread() -> None:
    """What came while the session was busy is handed over as one chunk when it is free again, and
    the client may then send a window ahead while the session works on it (not wait a round trip
    each window); what is unread (waiting, or under way) never passes one window."""
    chan, conn, _ = channel(window=WINDOW, max_packet=32768)
    session = BusySession(chan)
    chan._session = session  # type: ignore[assignment]
    size, packet = chan.localWindowSize, 32768
    assert size == 4 * packet
    for _ in range(4):  # the client fills the window
        _send(chan, packet)
    assert [len(c) for c in session.taken] == [packet] and conn.events == []  # busy with the first
    assert chan.localWindowLeft + sum(map(len, chan._pending)) <= size
    session.done()  # it takes the three that waited, as one, and works on them
    assert [len(c) for c in session.taken] == [packet, 3 * packet] and chan._input_paused
    assert conn.events == [f"adjust {size}"] and chan.localWindowLeft == size
    for _ in range(4):  # the client sent a window more meanwhile
        _send(chan, packet)
    assert chan.localWindowLeft + sum(map(len, chan._pending)) <= size
    session.done()
    assert [len(c) for c in session.taken][-1] == 4 * packet and conn.events == [f"adjust {size}"] * 2
    session.done()  # idle, nothing waits: the whole window is open
    assert chan.localWindowLeft == size and len(session.taken) == 3


class FakeTCP6:
    def getPeer(self) -> Any:
        return IPv6Address("TCP", "fd47:6::2", 40000)


def test_an_ipv6_client_s_session_names_its_address_in_brackets() -> None:
    """The session's log line and audit ``peer``: ``[fd47:6::2]:40000``, not ``fd47:6::2:40000``
    (itself an address), as the other transports name it."""
    chan, conn, _ = channel(window=WINDOW, max_packet=32768)
    conn.transport = SimpleNamespace(otherVersionString=OPENSSH, transport=FakeTCP6())
    chan.channelOpen(b"")
    assert chan._peer == "[fd47:6::2]:40000"


class EagerSession(BusySession):
    """Takes every chunk at once (a push's ingest keeping up with the network)."""

    def data_received(self, data: bytes) -> None:
        self.taken.append(data)


def test_a_distant_client_s_two_mib_window_is_reopened_every_three_packets_as_openssh_does() -> None:
    """With its window re-opened only once half of it was taken, a client 200 ms away had between
    1 and 2 MiB in flight, 1.5 on average: a 33 MB push took 11.6-12.3 s over hgwire against
    8.3-9.3 s over sshd, which adjusts after three packets (``channel_check_window``)."""
    packet = 32768
    assert adjust_threshold(INBOUND_WINDOW_MAX, packet) == 3 * packet
    assert adjust_threshold(131072, packet) == 65536, "a small window: still half of it"
    chan, conn, _ = channel(window=WINDOW, max_packet=packet)
    chan.localWindowSize = chan.localWindowLeft = INBOUND_WINDOW_MAX  # as _fit_windows sizes it, far away
    chan.localMaxPacket = packet
    chan._session = EagerSession(chan)  # type: ignore[assignment]
    least = INBOUND_WINDOW_MAX
    for _ in range(64):  # 2 MiB sent, each packet taken at once
        _send(chan, packet)
        least = min(least, chan.localWindowLeft)
    assert conn.events == [f"adjust {3 * packet}"] * 21
    assert least >= INBOUND_WINDOW_MAX - 3 * packet, "the client always had nearly its whole window"
