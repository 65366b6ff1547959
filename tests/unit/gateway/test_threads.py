"""``IteratorProducer``: backpressure, completion, batches of chunks, and a stop that races a step in the pool."""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from twisted.internet import defer
from twisted.internet.threads import blockingCallFromThread
from twisted.logger import globalLogPublisher
from twisted.python.failure import Failure

from gateway import threads
from gateway.threads import IteratorProducer
from tests.fakes import Consumer, ManualPool, manual_pool


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


def _on_glibc() -> bool:
    """Found independently of the code under test: glibc answers its own version call."""
    import ctypes
    import sys

    try:
        return sys.platform.startswith("linux") and bool(ctypes.CDLL(None).gnu_get_libc_version())
    except AttributeError:
        return False


def test_malloc_arenas_are_capped_on_glibc_unless_the_operator_chose(monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway import threads

    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert threads.limit_malloc_arenas() is False, "MALLOC_ARENA_MAX set by the operator wins"
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    assert threads.limit_malloc_arenas() is _on_glibc()


# -- HeapTrimmer ----------------------------------------------------------------------


def _trimmer(delay: float = 2.0) -> tuple[Any, Any, list[str]]:
    from twisted.internet.task import Clock

    from gateway.threads import HeapTrimmer

    clock = Clock()
    calls: list[str] = []
    def run(f: Callable[[], object]) -> None:  # records the hand-off to a worker, then runs the trim
        calls.append("run")
        f()

    trimmer = HeapTrimmer(clock, run, lambda: calls.append("trim"), delay)
    return clock, trimmer, calls


def test_trims_once_after_the_workers_stay_idle_for_the_delay() -> None:
    clock, trimmer, calls = _trimmer()
    trimmer.job_started()
    clock.advance(5)
    assert calls == [], "never while a job runs"
    trimmer.job_finished()
    clock.advance(1.9)
    assert calls == []
    clock.advance(0.2)
    assert calls == ["run", "trim"]
    clock.advance(60)
    assert calls == ["run", "trim"], "once per quiet spell"


def test_no_trim_without_work() -> None:
    clock, _, calls = _trimmer()
    clock.advance(60)
    assert calls == [] and not clock.getDelayedCalls()


def test_a_job_in_the_quiet_spell_postpones_the_trim() -> None:
    clock, trimmer, calls = _trimmer()
    for _ in range(20):  # a stream: one chunk at a time, short gaps between them
        trimmer.job_started()
        clock.advance(0.3)
        trimmer.job_finished()
        clock.advance(0.5)
    assert calls == []
    trimmer.job_started()
    clock.advance(3)  # a long job: the check that fires during it waits for its end
    assert calls == []
    trimmer.job_finished()
    clock.advance(1.5)
    assert calls == []
    clock.advance(0.6)
    assert calls == ["run", "trim"]
    assert len(clock.getDelayedCalls()) == 0


def test_concurrent_jobs_count_as_busy_until_the_last_ends() -> None:
    clock, trimmer, calls = _trimmer()
    trimmer.job_started()
    trimmer.job_started()
    trimmer.job_finished()
    clock.advance(10)
    assert calls == []
    trimmer.job_finished()
    clock.advance(2)
    assert calls == ["run", "trim"]


def test_stop_cancels_a_pending_trim() -> None:
    clock, trimmer, calls = _trimmer()
    trimmer.job_started()
    trimmer.job_finished()
    trimmer.stop()
    clock.advance(10)
    assert calls == [] and not clock.getDelayedCalls()


def test_malloc_trim_is_found_on_glibc() -> None:
    from gateway.threads import malloc_trim

    trim = malloc_trim()
    assert (trim is not None) is _on_glibc()
    if trim is not None:
        assert trim() in (0, 1)  # 1: memory was released, 0: there was none to release


def test_run_blocking_reports_every_job_to_the_trimmer(reactor: Any, monkeypatch: Any) -> None:
    from gateway import threads

    events: list[str] = []

    class Recorder:
        def job_started(self) -> None:
            events.append("started")

        def job_finished(self) -> None:
            events.append("finished")

    def work(fail: bool) -> str:
        if fail:
            raise ValueError("boom")
        return "ok"

    blockingCallFromThread(reactor, lambda: threads.start_pool(reactor))
    monkeypatch.setattr(threads, "_trimmer", Recorder())
    assert blockingCallFromThread(reactor, lambda: threads.run_blocking(work, False)) == "ok"
    try:
        blockingCallFromThread(reactor, lambda: threads.run_blocking(work, True))
    except ValueError:
        pass
    else:
        raise AssertionError("the failure must reach the caller")
    assert events == ["started", "finished", "started", "finished"]


# ---------------------------------------------------------------- batches of chunks per pool step

class Counted:
    """Chunks of 100 bytes, counting how many were taken; raises after ``fail_after`` if set."""

    def __init__(self, count: int, fail_after: int | None = None) -> None:
        self.taken = 0
        self._count = count
        self._fail_after = fail_after

    def __iter__(self) -> Iterator[bytes]:
        for i in range(self._count):
            if self._fail_after is not None and i == self._fail_after:
                raise OSError("disk gone")
            self.taken += 1
            yield bytes([i]) * 100


@pytest.fixture
def pool(monkeypatch: pytest.MonkeyPatch) -> ManualPool:
    return manual_pool(monkeypatch, threads)


def test_one_pool_step_gathers_chunks_until_the_batch_is_full(pool: ManualPool) -> None:
    source, consumer = Counted(10), Consumer()
    done = IteratorProducer(iter(source), consumer, batch=250).start()
    pool.run_next()
    assert source.taken == 3 and len(consumer.chunks) == 3  # 300 bytes: the third passed 250
    assert len(pool.steps) == 1  # and the next step is asked for
    pool.run_all()
    assert consumer.data == b"".join(bytes([i]) * 100 for i in range(10))
    assert done.called and consumer.producer is None


def test_an_error_after_some_chunks_of_a_batch_comes_after_them(pool: ManualPool) -> None:
    consumer = Consumer()
    outcome: list[Any] = []
    IteratorProducer(iter(Counted(10, fail_after=2)), consumer).start().addBoth(outcome.append)
    pool.run_all()
    assert consumer.data == b"\x00" * 100 + b"\x01" * 100
    assert len(outcome) == 1 and isinstance(outcome[0], Failure) and isinstance(outcome[0].value, OSError)
    assert consumer.producer is None


class PausingConsumer(Consumer):
    def write(self, data: bytes) -> None:
        super().write(data)
        assert self.producer is not None
        self.producer.pauseProducing()


def test_a_stop_while_a_batch_is_held_writes_nothing_more_and_closes_the_iterator(pool: ManualPool) -> None:
    source, consumer = Counted(10), PausingConsumer()
    stream = iter(source)
    producer = IteratorProducer(stream, consumer, batch=250)
    outcome: list[Any] = []
    producer.start().addBoth(outcome.append)
    pool.run_next()  # one chunk written, the rest of the batch held
    assert pool.steps == []
    producer.stopProducing()
    producer.resumeProducing()  # a transport may still resume a stopped producer: nothing happens
    pool.run_all()
    assert len(consumer.chunks) == 1
    assert isinstance(outcome[0], Failure) and isinstance(outcome[0].value, defer.CancelledError)
    assert inspect.getgeneratorstate(stream) == inspect.GEN_CLOSED


def test_a_pause_during_a_batch_holds_its_rest_and_a_pause_after_it_takes_one_batch_ahead(pool: ManualPool) -> None:
    source, consumer = Counted(10), PausingConsumer()
    producer = IteratorProducer(iter(source), consumer, batch=250)
    producer.start()
    pool.run_next()
    assert len(consumer.chunks) == 1 and source.taken == 3  # the transport paused: the rest is held...
    assert pool.steps == []  # ...and nothing more is asked for while paused
    producer.resumeProducing()
    assert len(consumer.chunks) == 2 and pool.steps == []  # one more written at once, no pool step first
    producer.resumeProducing()
    assert len(consumer.chunks) == 3  # the batch's last chunk: the next batch is taken ahead...
    pool.run_next()
    assert len(consumer.chunks) == 3 and source.taken == 6  # ...and held, not written
    assert pool.steps == []
    producer.resumeProducing()
    assert len(consumer.chunks) == 4 and pool.steps == []


class BufferingTransport(Consumer):
    """A client that reads nothing: the buffer grows with every write and pauses the producer past
    ``buffer_size``, as Twisted's TCP transport does (``FileDescriptor.bufferSize``, 64 KiB)."""

    buffer_size = 64 * 1024

    def write(self, data: bytes) -> None:
        super().write(data)
        if len(self.data) > self.buffer_size and self.producer is not None:
            self.producer.pauseProducing()


def test_a_client_that_reads_nothing_holds_one_chunk_past_the_transport_pause_and_one_batch(
        pool: ManualPool) -> None:
    chunk = 64 * 1024
    taken = [0]

    def endless() -> Iterator[bytes]:
        while True:
            taken[0] += chunk
            yield b"p" * chunk

    consumer = BufferingTransport()
    IteratorProducer(endless(), consumer).start()
    pool.run_all()
    written = len(consumer.data)
    assert written <= consumer.buffer_size + chunk  # was a whole batch, 512 KiB, however slow the client
    assert taken[0] - written <= threads.BATCH_BYTES  # held for the resume: at most one batch
