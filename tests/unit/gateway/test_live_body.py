"""``gateway.live_body.LiveBody``: a request body read while it arrives, with the connection
paused while too much waits unread."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.defer import Deferred

from gateway.live_body import HIGH_WATER, LOW_WATER, BodyAborted, LiveBody


class Producer:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def pauseProducing(self) -> None:
        self.calls.append("pause")

    def resumeProducing(self) -> None:
        self.calls.append("resume")

    def stopProducing(self) -> None:
        self.calls.append("stop")


def result(d: Deferred[Any]) -> Any:
    box: list[Any] = []
    d.addBoth(box.append)
    assert box, "the Deferred has not fired"
    return box[0]


def test_a_read_waits_for_the_next_chunk_then_the_end() -> None:
    body = LiveBody(Producer())
    first = body.read_later(10)
    assert not first.called
    body.write(b"hello")
    assert result(first) == b"hello"
    end = body.read_later(10)
    assert not end.called
    body.complete()
    assert result(end) == b""
    assert result(body.read_later(10)) == b""


def test_chunks_are_joined_and_split_to_the_size_asked() -> None:
    body = LiveBody(None)
    for piece in (b"ab", b"cde", b"fghij"):
        body.write(piece)
    assert result(body.read_later(4)) == b"abcd"
    assert result(body.read_later(100)) == b"efghij"
    body.complete()
    assert result(body.read_later(1)) == b""
    assert body.tell() == 10 and body.seek(0) == 0


def test_a_waiting_reader_is_told_when_the_body_will_not_come_whole() -> None:
    body = LiveBody(None)
    waiting = body.read_later(10)
    body.close()  # the connection went
    assert result(waiting).check(BodyAborted)
    assert result(body.read_later(10)).check(BodyAborted)
    body.write(b"late")  # twisted.web may still hand over what it had
    assert body.tell() == 0


def test_the_connection_is_paused_past_the_high_water_and_resumed_under_the_low() -> None:
    producer = Producer()
    body = LiveBody(producer)
    chunk = b"x" * 65536
    while body.tell() <= HIGH_WATER:
        body.write(chunk)
    assert producer.calls == ["pause"]
    body.write(chunk)  # what was already read off the socket still comes: no second pause
    assert producer.calls == ["pause"]
    taken = 0
    queued = body.tell()
    while queued - taken >= LOW_WATER:
        taken += len(result(body.read_later(65536)))
        assert producer.calls == ["pause"] or queued - taken < LOW_WATER
    assert producer.calls == ["pause", "resume"]


def test_the_end_leaves_the_connection_to_twisted_web() -> None:
    """Once the body is in, the channel resumes the connection when the request is done."""
    producer = Producer()
    body = LiveBody(producer)
    body.write(b"x" * (HIGH_WATER + 1))
    body.complete()
    assert len(result(body.read_later(HIGH_WATER + 1))) == HIGH_WATER + 1
    assert producer.calls == ["pause"]


def test_discard_drops_what_waits_and_what_comes_and_resumes() -> None:
    producer = Producer()
    body = LiveBody(producer)
    body.write(b"x" * (HIGH_WATER + 1))
    body.discard()
    assert producer.calls == ["pause", "resume"]
    body.write(b"y" * (HIGH_WATER + 1))
    assert producer.calls == ["pause", "resume"]  # dropped, never queued
    assert body.tell() == 2 * (HIGH_WATER + 1)


def test_one_read_at_a_time_and_no_synchronous_read() -> None:
    body = LiveBody(None)
    body.read_later(1)
    with pytest.raises(RuntimeError):
        body.read_later(1)
    with pytest.raises(TypeError):
        body.read()


@pytest.mark.parametrize(("method", "path", "encoding", "streamed"), [
    (b"POST", b"/r.git/git-receive-pack", None, True),
    (b"POST", b"/r.git/git-receive-pack", b"gzip", False),  # decoded whole first
    (b"POST", b"/r.git/git-upload-pack", None, False),
    (b"PUT", b"/r.git/info/lfs/objects/" + b"a" * 64, None, True),
    (b"POST", b"/r.git/info/lfs/objects/batch", None, False),
    (b"POST", b"/h?cmd=unbundle", None, True),
    (b"POST", b"/h?cmd=putlfile&sha=" + b"a" * 40, None, True),
    (b"POST", b"/h?cmd=getbundle", None, False),  # POST arguments: read whole
    (b"POST", b"/h?cmd=batch", None, False),
    (b"GET", b"/h?cmd=unbundle", None, False),
])
def test_which_bodies_are_read_as_they_arrive(method: bytes, path: bytes, encoding: bytes | None,
                                              streamed: bool) -> None:
    from twisted.web.http_headers import Headers

    from gateway.http import streams_body

    headers = Headers({b"content-encoding": [encoding]} if encoding else {})
    assert streams_body(method, path, headers) is streamed


def test_the_hg_commands_read_as_they_arrive_are_those_that_take_a_payload() -> None:
    from gateway.http import HG_STREAMED_COMMANDS
    from protocols.hg_commands import COMMANDS

    assert HG_STREAMED_COMMANDS == {name.decode() for name, command in COMMANDS.items() if command.takes_payload}


def test_the_first_read_says_the_body_is_wanted_once() -> None:
    """``on_first_read``: where a held ``100 Continue`` goes out (``gateway.http.BoundedRequest``)."""
    asked: list[int] = []
    body = LiveBody(None, lambda: asked.append(body.received))
    assert asked == []
    first = body.read_later(10)
    assert asked == [0]  # before any byte came: the client waits for its 100
    body.write(b"data")
    assert result(first) == b"data"
    body.read_later(10)
    assert asked == [0]
