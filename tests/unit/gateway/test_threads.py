"""``IteratorProducer``: backpressure, completion, and a stop that races a chunk in the pool."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from twisted.internet.interfaces import IPushProducer
from twisted.internet.threads import blockingCallFromThread
from twisted.logger import globalLogPublisher

from gateway.threads import IteratorProducer


class Consumer:
    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.producer: IPushProducer | None = None

    def write(self, data: bytes) -> None:
        self.chunks.append(data)

    def registerProducer(self, producer: IPushProducer, streaming: bool) -> None:
        self.producer = producer

    def unregisterProducer(self) -> None:
        self.producer = None


def test_streams_every_chunk_then_fires_done(reactor: Any) -> None:
    consumer = Consumer()

    def start() -> Any:
        return IteratorProducer(iter([b"a", b"", b"b", b"c"]), consumer).start()

    blockingCallFromThread(reactor, start)
    assert consumer.chunks == [b"a", b"b", b"c"]
    assert consumer.producer is None


def test_stop_while_a_chunk_is_in_flight_closes_after_it(reactor: Any) -> None:
    entered, release, closed = threading.Event(), threading.Event(), threading.Event()
    errors: list[dict[str, Any]] = []

    def chunks() -> Iterator[bytes]:
        try:
            entered.set()
            release.wait(10)
            yield b"late"
        finally:
            closed.set()

    def observe(event: dict[str, Any]) -> None:
        if event.get("log_failure") is not None:
            errors.append(event)

    globalLogPublisher.addObserver(observe)
    try:
        consumer = Consumer()
        producer = IteratorProducer(chunks(), consumer)
        done = blockingCallFromThread(reactor, lambda: [producer.start()])[0]
        outcome: list[Any] = []
        done.addBoth(outcome.append)
        assert entered.wait(10)
        blockingCallFromThread(reactor, producer.stopProducing)  # next() is still running in the pool
        assert not closed.is_set()
        release.set()
        assert closed.wait(10)
        blockingCallFromThread(reactor, lambda: None)  # let the reactor run the callbacks
        assert consumer.chunks == []
        assert outcome and "went away" in str(outcome[0].value)
        assert errors == []
    finally:
        globalLogPublisher.removeObserver(observe)


def test_malloc_arenas_are_capped_on_glibc_unless_the_operator_chose(monkeypatch: pytest.MonkeyPatch) -> None:
    import ctypes
    import sys

    from gateway import threads

    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert threads.limit_malloc_arenas() is False, "MALLOC_ARENA_MAX set by the operator wins"
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    try:
        glibc = sys.platform.startswith("linux") and bool(ctypes.CDLL(None).gnu_get_libc_version())
    except AttributeError:
        glibc = False
    assert threads.limit_malloc_arenas() is glibc
