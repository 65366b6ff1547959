"""The SSH session channel's output queue: window-sized sends, producer pauses, exit after the last byte."""

from __future__ import annotations

from typing import Any

from gateway.ssh import ExecChannel


class FakeConnection:
    def __init__(self) -> None:
        self.packets: list[bytes] = []
        self.events: list[str] = []

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
        pass


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
