"""``SharedStreams``: identical concurrent clones read one generation of their bundle.

The worker pool is a queue the test runs by hand (as in ``test_receive_session``),
so each step of the generation and of each reader happens exactly when the
test says, and the readers go through the real ``IteratorProducer``.
"""

from __future__ import annotations

import errno
import inspect
import os
from collections.abc import Generator
from typing import IO

import pytest
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from gateway import shared_streams, threads
from gateway.shared_streams import KEEP_NOTHING, KeepBounds, SharedStreams
from gateway.threads import IteratorProducer
from protocols.errors import ClientGone
from tests.fakes import Consumer, ManualPool, manual_pool


class Source:
    """A stream of chunks that records how far it was read and whether it was closed."""

    def __init__(self, chunks: list[bytes], fail_after: int | None = None) -> None:
        self.chunks = chunks
        self.fail_after = fail_after
        self.taken = 0
        self.closed = False
        self.stream = self._run()

    def _run(self) -> Generator[bytes, None, None]:
        try:
            for chunk in self.chunks:
                if self.fail_after is not None and self.taken == self.fail_after:
                    raise OSError("the disk went away")
                self.taken += 1
                yield chunk
        finally:
            self.closed = True


class Spools(SharedStreams):
    """``SharedStreams`` that keeps its spool files, to see them closed; one chunk per step unless told."""

    def __init__(self, lead: int = shared_streams.LEAD, write_step: int = 1, clock: Clock | None = None) -> None:
        super().__init__(call_from_thread=lambda f: f(), lead=lead, write_step=write_step, clock=clock or Clock())
        self.files: list[IO[bytes]] = []

    def new_spool(self) -> IO[bytes]:
        spool = super().new_spool()
        self.files.append(spool)
        return spool


@pytest.fixture
def pool(monkeypatch: pytest.MonkeyPatch) -> ManualPool:
    return manual_pool(monkeypatch, shared_streams, threads)


CHUNKS = [b"HG20", b"\x00" * 10, b"part-one" * 100, b"", b"part-two" * 50, b"end"]
WHOLE = b"".join(CHUNKS)


def _read(shared: SharedStreams, key: object, source: Source,
          keep: KeepBounds = KEEP_NOTHING) -> tuple[Consumer, list[object], str]:
    stream, how = shared.open(key, source.stream, keep)
    consumer = Consumer()
    outcome: list[object] = []
    IteratorProducer(stream, consumer).start().addBoth(outcome.append)
    return consumer, outcome, how


def test_one_request_gets_the_whole_stream_and_the_spool_is_released(pool: ManualPool) -> None:
    shared = Spools()
    source = Source(CHUNKS)
    consumer, outcome, how = _read(shared, b"k", source)
    pool.run_all()
    assert how == "started"
    assert consumer.data == WHOLE
    assert outcome == [None]
    assert source.taken == len(CHUNKS)
    assert shared.running() == 0
    assert [f.closed for f in shared.files] == [True]


def test_a_request_during_the_generation_joins_it_and_never_starts_its_own(pool: ManualPool) -> None:
    shared = Spools()
    first = Source(CHUNKS)
    a, a_outcome, a_how = _read(shared, b"k", first)
    pool.run_next()  # one chunk written (or read) before the second request comes
    pool.run_next()
    second = Source([b"never read"])
    b, b_outcome, b_how = _read(shared, b"k", second)
    pool.run_all()
    assert (a_how, b_how) == ("started", "joined")
    assert a.data == b.data == WHOLE
    assert a_outcome == b_outcome == [None]
    assert second.taken == 0  # its own stream was closed unread
    assert inspect.getgeneratorstate(second.stream) == inspect.GEN_CLOSED
    assert (shared.started, shared.joined) == (1, 1)
    assert len(shared.files) == 1 and shared.files[0].closed


def test_another_key_or_a_finished_generation_starts_anew(pool: ManualPool) -> None:
    shared = Spools()
    first, other = Source(CHUNKS), Source([b"other"])
    a, _, _ = _read(shared, b"k", first)
    b, _, how_other = _read(shared, b"k2", other)
    pool.run_all()
    later = Source(CHUNKS)
    c, _, how_later = _read(shared, b"k", later)  # the first generation is over: no stale answer
    pool.run_all()
    assert (how_other, how_later) == ("started", "started")
    assert (a.data, b.data, c.data) == (WHOLE, b"other", WHOLE)
    assert later.taken == len(CHUNKS)
    assert shared.started == 3 and shared.joined == 0


def test_a_reader_that_catches_up_waits_without_a_step_in_the_pool(pool: ManualPool) -> None:
    shared = Spools()
    source = Source(CHUNKS)
    stream, _ = shared.open(b"k", source.stream)
    pool.steps.clear()  # the generation's first step: held back, nothing is written
    generation = shared._running[b"k"]
    first = next(stream)
    assert isinstance(first, threads.Wait)
    ready = first.ready()
    assert not ready.called
    generation._step()  # the step that was held back, again
    pool.run_next()
    assert ready.called
    assert next(stream) == b"HG20"


def test_when_every_reader_leaves_the_generation_stops(pool: ManualPool) -> None:
    shared = Spools()
    source = Source(CHUNKS)
    stream, _ = shared.open(b"k", source.stream)
    consumer = Consumer()
    producer = IteratorProducer(stream, consumer)
    outcome: list[object] = []
    producer.start().addBoth(outcome.append)
    pool.run_next()  # the generation writes one chunk
    producer.stopProducing()  # the client goes away
    pool.run_all()
    assert isinstance(outcome[0], Failure) and isinstance(outcome[0].value, defer.CancelledError)
    assert source.closed
    assert source.taken < len(CHUNKS)
    assert shared.running() == 0
    assert all(f.closed for f in shared.files)
    joined = Source(CHUNKS)
    _, _, how = _read(shared, b"k", joined)
    assert how == "started"  # a stopped generation is never joined


def test_a_failed_generation_fails_every_reader_after_the_bytes_it_wrote(pool: ManualPool) -> None:
    shared = Spools()
    source = Source(CHUNKS, fail_after=2)
    a, a_outcome, _ = _read(shared, b"k", source)
    b, b_outcome, how = _read(shared, b"k", Source([]))
    pool.run_all()
    assert how == "joined"
    assert a.data == b.data == b"".join(CHUNKS[:2])
    for outcome in (a_outcome, b_outcome):
        assert len(outcome) == 1 and isinstance(outcome[0], Failure)
        assert isinstance(outcome[0].value, OSError)
    assert shared.running() == 0
    assert all(f.closed for f in shared.files)


def test_a_slow_reader_does_not_hold_back_the_others(pool: ManualPool) -> None:
    shared = Spools(lead=100)
    source = Source(CHUNKS)
    fast, fast_outcome, _ = _read(shared, b"k", source)
    stream, _ = shared.open(b"k", Source([]).stream)
    slow = Consumer()
    producer = IteratorProducer(stream, slow)
    producer.start()
    producer.pauseProducing()  # this client reads nothing for now
    pool.run_all()
    assert fast.data == WHOLE and fast_outcome == [None]  # the fast one set the pace, to the end
    assert source.taken == len(CHUNKS)
    assert shared.running() == 0  # over, and no longer joinable
    producer.resumeProducing()
    pool.run_all()
    assert slow.data == WHOLE
    assert all(f.closed for f in shared.files)


def test_a_client_that_never_reads_stops_the_generation_at_the_lead(pool: ManualPool) -> None:
    shared = Spools(lead=100)
    source = Source(CHUNKS)
    stream, _ = shared.open(b"k", source.stream)
    consumer = Consumer()
    producer = IteratorProducer(stream, consumer)
    producer.start()
    producer.pauseProducing()
    pool.run_all()
    assert source.taken == 3  # 4 + 10 + 800 bytes: past the lead after the third chunk, and no further
    assert not pool.steps
    producer.resumeProducing()  # reading brings the generation back
    pool.run_all()
    assert consumer.data == WHOLE
    assert source.taken == len(CHUNKS)
    assert shared.running() == 0 and all(f.closed for f in shared.files)


def test_a_generation_step_writes_chunks_until_it_has_written_a_step_s_worth(pool: ManualPool) -> None:
    shared = Spools(write_step=600)
    source = Source(CHUNKS)
    stream, _ = shared.open(b"k", source.stream)
    consumer = Consumer()
    IteratorProducer(stream, consumer).start()
    assert pool.run_next() == "_write_next"  # the generation's first step
    assert source.taken == 3  # 4 + 10 + 800 bytes: the step ends at the chunk that passes 600
    pool.run_all()
    assert consumer.data == WHOLE
    assert source.taken == len(CHUNKS)


# -- kept answers ([clone_cache]) -----------------------------------------------------------

KEEP = KeepBounds(max_bytes=10 * len(WHOLE), max_age=60.0)


def test_a_finished_answer_is_kept_and_read_again_without_computing_it(pool: ManualPool) -> None:
    clock = Clock()
    shared = Spools(clock=clock)
    first = Source(CHUNKS)
    a, _, a_how = _read(shared, b"k", first, KEEP)
    pool.run_all()
    assert shared.kept() == 1 and shared.kept_bytes == len(WHOLE)
    assert [f.closed for f in shared.files] == [False]  # kept: the spool stays open
    clock.advance(59)
    later = Source([b"never read"])
    b, b_outcome, b_how = _read(shared, b"k", later, KEEP)
    pool.run_all()
    assert (a_how, b_how) == ("started", "kept")
    assert a.data == b.data == WHOLE and b_outcome == [None]
    assert later.taken == 0 and inspect.getgeneratorstate(later.stream) == inspect.GEN_CLOSED
    assert (shared.started, shared.joined, shared.reused) == (1, 0, 1)
    clock.advance(1)  # max_age after it was kept: gone, its file with it (closed in the pool)
    assert shared.kept() == 0 and shared.kept_bytes == 0
    pool.run_all()
    assert [f.closed for f in shared.files] == [True]
    _, _, how = _read(shared, b"k", Source(CHUNKS), KEEP)
    assert how == "started"


def test_nothing_is_kept_without_bounds_and_nothing_kept_is_served_once_they_are_off(pool: ManualPool) -> None:
    shared = Spools()
    _read(shared, b"k", Source(CHUNKS))  # KEEP_NOTHING, the default
    pool.run_all()
    assert shared.kept() == 0 and all(f.closed for f in shared.files)
    _read(shared, b"k", Source(CHUNKS), KEEP)
    pool.run_all()
    assert shared.kept() == 1
    again = Source(CHUNKS)
    c, _, how = _read(shared, b"k", again, KEEP_NOTHING)  # a reloaded file turned the cache off
    pool.run_all()
    assert how == "started" and c.data == WHOLE and again.taken == len(CHUNKS)


def test_kept_answers_stay_within_max_bytes_least_recently_used_out_first(pool: ManualPool) -> None:
    shared = Spools()
    bounds = KeepBounds(max_bytes=2 * len(WHOLE), max_age=60.0)
    for key in (b"a", b"b"):
        _read(shared, key, Source(CHUNKS), bounds)
        pool.run_all()
    _, _, how = _read(shared, b"a", Source(CHUNKS), bounds)  # a is now the most recently used
    pool.run_all()
    assert how == "kept"
    _read(shared, b"c", Source(CHUNKS), bounds)
    pool.run_all()
    assert shared.kept() == 2 and shared.kept_bytes == 2 * len(WHOLE)
    hows = [_read(shared, key, Source(CHUNKS), bounds)[2] for key in (b"a", b"c", b"b")]
    pool.run_all()
    assert hows[:2] == ["kept", "kept"] and hows[2] == "started"  # b went to make room for c


def test_too_large_failed_or_abandoned_answers_are_not_kept(pool: ManualPool, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = Spools()
    _read(shared, b"big", Source(CHUNKS), KeepBounds(max_bytes=len(WHOLE) - 1))
    _read(shared, b"failed", Source(CHUNKS, fail_after=2), KEEP)
    stream, _ = shared.open(b"left", Source(CHUNKS).stream, KEEP)
    producer = IteratorProducer(stream, Consumer())
    producer.start().addErrback(lambda _: None)
    pool.run_next()
    producer.stopProducing()
    pool.run_all()
    assert shared.kept() == 0 and all(f.closed for f in shared.files)
    monkeypatch.setattr(shared_streams, "MAX_KEPT", 2)
    for key in (b"x", b"y", b"z"):
        _read(shared, key, Source([key]), KEEP)
        pool.run_all()
    assert shared.kept() == 2


def test_an_answer_that_ages_out_while_read_is_freed_when_its_reader_is_done(pool: ManualPool) -> None:
    clock = Clock()
    shared = Spools(lead=100, clock=clock)
    _read(shared, b"k", Source(CHUNKS), KEEP)
    pool.run_all()
    stream, how = shared.open(b"k", Source([]).stream, KEEP)
    consumer = Consumer()
    producer = IteratorProducer(stream, consumer)
    producer.start()
    producer.pauseProducing()
    clock.advance(KEEP.max_age)
    assert how == "kept" and shared.kept() == 0
    assert [f.closed for f in shared.files] == [False]  # its reader still reads it
    producer.resumeProducing()
    pool.run_all()
    assert consumer.data == WHOLE
    assert [f.closed for f in shared.files] == [True]


class FullSpools(Spools):
    """Spools on a full disk: the file opens, the first write fails."""

    full = True

    def new_spool(self) -> IO[bytes]:
        spool = super().new_spool()
        if self.full:
            spool.write = _no_space  # type: ignore[method-assign]
        return spool


def _no_space(data: bytes) -> int:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_after_a_spool_the_disk_refused_answers_go_unshared_for_a_while(pool: ManualPool) -> None:
    """A spool that cannot be written fails the clones sharing it (they had nothing better); the
    clones that follow are each computed for their own client until ``SPOOL_FULL_PAUSE`` has gone
    by, so a full TMPDIR costs sharing, not every clone; a failing *stream* does not pause sharing."""
    clock = Clock()
    shared = FullSpools(clock=clock)
    _, first_outcome, how = _read(shared, b"k", Source(CHUNKS))
    pool.run_all()
    assert how == "started" and isinstance(first_outcome[0], Failure)
    assert isinstance(first_outcome[0].value, OSError)
    second, second_outcome, how = _read(shared, b"k", Source(CHUNKS))
    third, _, third_how = _read(shared, b"k", Source(CHUNKS))
    pool.run_all()
    assert how == third_how == "" and second.data == third.data == WHOLE and second_outcome == [None]
    assert shared.started == 1 and shared.running() == 0
    shared.full = False
    clock.advance(shared_streams.SPOOL_FULL_PAUSE)
    _, _, how = _read(shared, b"k", Source(CHUNKS))
    _, _, joined = _read(shared, b"k", Source(CHUNKS))
    pool.run_all()
    assert (how, joined) == ("started", "joined")
    # The stream's own failure is not the disk's: sharing goes on.
    _read(shared, b"other", Source(CHUNKS, fail_after=1))
    pool.run_all()
    assert _read(shared, b"other", Source(CHUNKS))[2] == "started"


def test_a_nearly_full_spool_directory_is_not_used(pool: ManualPool, monkeypatch: pytest.MonkeyPatch) -> None:
    class Nearly:
        f_bavail, f_frsize = 10, 4096

    monkeypatch.setattr(shared_streams.os, "statvfs", lambda path: Nearly())
    shared = Spools()
    consumer, outcome, how = _read(shared, b"k", Source(CHUNKS))
    pool.run_all()
    assert how == "" and consumer.data == WHOLE and outcome == [None] and shared.files == []


class Abandonable:
    """A stream whose step can be told nobody reads it (as a pack's counting, an hg changegroup)."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.source = Source(chunks)
        self.abandoned = False

    def __iter__(self) -> Abandonable:
        return self

    def __next__(self) -> bytes:
        if self.abandoned:
            raise ClientGone("the client closed the connection; making the answer was stopped")
        return next(self.source.stream)

    def abandon(self) -> None:
        self.abandoned = True

    def close(self) -> None:
        self.source.stream.close()


def test_the_last_reader_leaving_while_it_waits_for_a_step_stops_that_step(pool: ManualPool) -> None:
    shared = Spools()
    stream = Abandonable(CHUNKS)
    reader, _ = shared.open(b"k", stream, KeepBounds(max_bytes=1 << 20, max_age=60))
    producer = IteratorProducer(reader, Consumer())
    outcome: list[object] = []
    producer.start().addBoth(outcome.append)
    step = pool.steps.pop(0)  # the generation's first step, long (a count): it has not ended
    pool.run_next()  # the reader finds nothing written: it waits
    producer.stopProducing()  # its client goes away while it waits
    assert stream.abandoned  # the step is told at once (it ran to its end for nobody)
    assert shared.running() == 0
    pool.steps.insert(0, step)
    pool.run_all()
    assert isinstance(outcome[0], Failure) and isinstance(outcome[0].value, defer.CancelledError)
    assert stream.source.taken == 0
    assert shared.kept() == 0  # nothing half made is kept
    assert all(f.closed for f in shared.files)


def test_a_reader_hands_the_transport_at_most_a_chunk_s_worth_per_write(pool: ManualPool) -> None:
    whole = bytes(range(256)) * (12 << 10)  # 3 MiB in one chunk of the stream
    shared = Spools(write_step=4 << 20)
    consumer, outcome, _ = _read(shared, b"k", Source([whole]))
    pool.run_all()
    assert consumer.data == whole and outcome == [None]
    assert max(len(c) for c in consumer.chunks) <= 64 * 1024  # was 1 MiB, buffered whole by the transport
