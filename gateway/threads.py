"""The one way off the reactor: a bounded worker pool and a streaming producer.

Backend calls block (disk, CPU); they run only through ``run_blocking``.  Packs
and bundles are iterators whose ``next()`` runs in the pool, one batch of
chunks in flight per connection, so memory stays bounded and the reactor never
waits.
"""

from __future__ import annotations

import ctypes
import os
import sys
import sysconfig
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import ParamSpec, Protocol, TypeVar

from twisted.internet import defer, task
from twisted.internet.interfaces import IDelayedCall, IPushProducer, IReactorThreads, IReactorTime
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from gateway.logs import SafeLogger

log = SafeLogger()

P = ParamSpec("P")
T = TypeVar("T")

DEFAULT_POOL_SIZE = 8
MAX_POOL_SIZE = 256
MALLOC_ARENAS = 2
"""glibc heaps for all threads (``MALLOC_ARENA_MAX``): each worker that allocates gets one of its own
otherwise, and 8 concurrent clones held about 15 MiB more in freed but unreturned arena pages."""

TRIM_DELAY = 2.0
"""Seconds the workers stay idle after some work before freed heap pages go back to the system."""

_pool: ThreadPool | None = None
_trimmer: HeapTrimmer | None = None
_watch: PoolWatch | None = None


def _glibc_function(name: str) -> Callable[..., int] | None:
    """A function of the C library this process runs on, if it is glibc on Linux; else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function: Callable[..., int] = getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):  # not glibc
        return None
    return function


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas before the workers start, unless ``MALLOC_ARENA_MAX`` is set; whether it did."""
    mallopt = None if "MALLOC_ARENA_MAX" in os.environ else _glibc_function("mallopt")
    if mallopt is None:
        return False
    m_arena_max = -8  # <malloc.h>
    return bool(mallopt(ctypes.c_int(m_arena_max), ctypes.c_int(arenas)))


MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 64 << 20
"""glibc's malloc thresholds from the start (``settle_malloc_thresholds``): where glibc's own moving
thresholds end once a 32 MiB buffer has been freed (its largest ``mmap`` threshold, the trim threshold
twice that).  Below them, a freed buffer of a few MiB at a heap's top went back to the system at
once and the next one faulted its pages in again: about 5,000 page faults an archive of the bench
corpus's tag, a seventh of its server CPU.  Freed pages still go back when the workers go idle
(``HeapTrimmer``)."""
_MALLOC_TUNABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_")


def settle_malloc_thresholds(mmap_threshold: int = MMAP_THRESHOLD, trim_threshold: int = TRIM_THRESHOLD) -> bool:
    """Set glibc's ``mmap`` and trim thresholds (``MMAP_THRESHOLD``), unless the environment sets
    one of them (``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_TOP_PAD_``,
    ``MALLOC_MMAP_MAX_``, a ``glibc.malloc`` threshold in ``GLIBC_TUNABLES``); whether it did."""
    if any(name in os.environ for name in _MALLOC_TUNABLES) or any(
            f"glibc.malloc.{name}" in os.environ.get("GLIBC_TUNABLES", "")
            for name in ("mmap_threshold", "trim_threshold", "top_pad", "mmap_max")):
        return False
    mallopt = _glibc_function("mallopt")
    if mallopt is None:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    return bool(mallopt(ctypes.c_int(m_mmap_threshold), ctypes.c_int(mmap_threshold))) and \
        bool(mallopt(ctypes.c_int(m_trim_threshold), ctypes.c_int(trim_threshold)))


def malloc_trim() -> Callable[[], object] | None:
    """glibc's ``malloc_trim(0)`` (every arena's free pages back to the system), or None without glibc."""
    trim = _glibc_function("malloc_trim")
    return None if trim is None else lambda: trim(0)


class HeapTrimmer:
    """Once the workers have been idle for ``delay`` seconds after some work, return freed heap pages.

    glibc gives back memory freed in the middle of its heaps only on
    ``malloc_trim``: after eight concurrent hg clones the process held about
    28 MiB it no longer used (119 MiB resident instead of 91) until the next
    burst reused it.  The trim takes 10-40 ms on a heap of that size, so
    ``run`` hands it to a worker thread, and it runs once per quiet spell,
    never between the chunks of a stream (a gap that short never lasts
    ``delay``).  ``job_started``/``job_finished`` are called on the reactor
    thread around every ``run_blocking`` call.
    """

    def __init__(self, clock: IReactorTime, run: Callable[[Callable[[], object]], object],
                 trim: Callable[[], object], delay: float = TRIM_DELAY) -> None:
        self._clock = clock
        self._run = run
        self._trim = trim
        self._delay = delay
        self._busy = 0
        self._worked = False
        self._idle_since = 0.0
        self._call: IDelayedCall | None = None

    def job_started(self) -> None:
        self._busy += 1
        self._worked = True

    def job_finished(self) -> None:
        self._busy -= 1
        if self._busy == 0:
            self._idle_since = self._clock.seconds()
            if self._call is None:
                self._call = self._clock.callLater(self._delay, self._check)

    def _check(self) -> None:
        self._call = None
        if self._busy or not self._worked:
            return  # the running job's end schedules the next check
        wait = self._idle_since + self._delay - self._clock.seconds()
        if wait > 0:
            self._call = self._clock.callLater(wait, self._check)
            return
        self._worked = False
        self._run(self._trim)

    def stop(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None


STALL_SECONDS = 10.0
"""Seconds every worker may stay busy on one step while requests wait before the log says so."""
STALL_WARNING_INTERVAL = 60.0
"""At most one such warning in this many seconds."""


class PoolWatch:
    """Tells the operator when every worker is held and requests queue behind them.

    The pool serves every repository: a backend call that hangs (a mount that stopped answering, a
    custom backend waiting on the network) holds a worker per request that reaches it, and once it
    holds them all every other repository's clones and pushes wait too, which nothing said.  While
    work waits (``waiting()``), every ``stall`` seconds: if the oldest running step has run that
    long, one warning (at most one a minute) naming how many workers, how many waiting, and where
    that step is (its thread's innermost frame: the backend's file and line).  ``started`` and
    ``finished`` are called on the worker thread around each step, ``queued`` on the reactor's.
    """

    def __init__(self, clock: IReactorTime, size: int, waiting: Callable[[], int],
                 where: Callable[[int], str | None] | None = None, stall: float = STALL_SECONDS) -> None:
        self._clock = clock
        self._size = size
        self._waiting = waiting
        self._where = where or _innermost_frame
        self._stall = stall
        self._running: dict[object, tuple[float, int]] = {}
        self._call: IDelayedCall | None = None
        self._warned: float | None = None

    def started(self, job: object, thread: int) -> None:
        self._running[job] = (self._clock.seconds(), thread)

    def finished(self, job: object) -> None:
        self._running.pop(job, None)

    def queued(self) -> None:
        if self._call is None and self._waiting():
            self._call = self._clock.callLater(self._stall, self._check)

    def _check(self) -> None:
        self._call = None
        waiting = self._waiting()
        if not waiting:
            return
        running = sorted(self._running.values())
        now = self._clock.seconds()
        if running and now - running[0][0] >= self._stall and (
                self._warned is None or now - self._warned >= STALL_WARNING_INTERVAL):
            self._warned = now
            where = self._where(running[0][1])
            log.warn("all {workers} worker threads are busy and {waiting} requests wait for one, every repository's "  # noqa: G010
                     "alike: a step has run {seconds:.0f} s{where}; find what it waits for (a backend call, a disk), "
                     "or raise --workers", workers=self._size, waiting=waiting, seconds=now - running[0][0],
                     where=f", now at {where}" if where else "")
        self._call = self._clock.callLater(self._stall, self._check)

    def stop(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None


_STDLIB = sysconfig.get_paths()["stdlib"] + os.sep


def _innermost_frame(thread: int) -> str | None:
    """``FILE:LINE in FUNCTION`` where ``thread`` is now, past Python's own library (a wait in
    ``threading`` or ``socket`` is named by its caller), or None when the thread is gone."""
    frame = sys._current_frames().get(thread)
    if frame is None:
        return None
    found: FrameType | None = frame
    while found is not None and (found.f_code.co_filename.startswith(_STDLIB)
                                 or found.f_code.co_filename.startswith("<")):
        found = found.f_back
    at = found or frame
    return f"{at.f_code.co_filename}:{at.f_lineno} in {at.f_code.co_name}"


def _watched(watch: PoolWatch, f: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """In the pool: ``f`` with its start and end told to ``watch``."""
    job = object()
    watch.started(job, threading.get_ident())
    try:
        return f(*args, **kwargs)
    finally:
        watch.finished(job)


def start_pool(reactor: IReactorThreads, size: int = DEFAULT_POOL_SIZE) -> ThreadPool:
    """Create and start the worker pool of ``size`` threads; stopped with the reactor."""
    global _pool, _trimmer, _watch
    if _pool is None:
        limit_malloc_arenas()
        settle_malloc_thresholds()
        _pool = ThreadPool(minthreads=0, maxthreads=size, name="hgwire-worker")
        _pool.start()
        _watch = PoolWatch(reactor, size, _pool.q.qsize)  # type: ignore[arg-type]
        trim = malloc_trim()
        if trim is not None:
            _trimmer = HeapTrimmer(reactor, _pool.callInThread, trim)  # type: ignore[arg-type]
        reactor.addSystemEventTrigger("during", "shutdown", _stop_pool)  # type: ignore[attr-defined]
    return _pool


def pool_load() -> tuple[int, int, int]:
    """The worker pool's threads running a step, its size and the steps waiting for a thread
    (``--workers``: what ``/.health`` shows); zeros before the pool starts."""
    if _pool is None:
        return (0, 0, 0)
    return (len(_pool.working), _pool.max, _pool.q.qsize())


def hook_threads_busy() -> int:
    """Pushes running their repository's hooks, waiting for an hg lock, or storing an LFS upload."""
    return 0 if _hook_pool is None else len(_hook_pool.working)


def _stop_pool() -> None:
    global _pool, _trimmer, _watch
    if _watch is not None:
        _watch.stop()
        _watch = None
    if _trimmer is not None:
        _trimmer.stop()
        _trimmer = None
    if _pool is not None:
        _pool.stop()
        _pool = None


HOOK_POOL_SIZE = 32
"""Threads for pushes that wait on repository hooks (``run_for_hooks``)."""
_hook_pool: ThreadPool | None = None


def run_for_hooks(f: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> defer.Deferred[T]:
    """Run ``f`` on the hooks' own threads: a push waiting for a slow hook holds none of the
    workers that serve everyone else (at most ``HOOK_POOL_SIZE`` such pushes run at once)."""
    from twisted.internet import reactor

    global _hook_pool
    if _hook_pool is None:
        _hook_pool = ThreadPool(minthreads=0, maxthreads=HOOK_POOL_SIZE, name="hgwire-hooks")
        _hook_pool.start()
        reactor.addSystemEventTrigger("during", "shutdown", _stop_hook_pool)
    return deferToThreadPool(reactor, _hook_pool, f, *args, **kwargs)  # type: ignore[arg-type]


def _stop_hook_pool() -> None:
    global _hook_pool
    if _hook_pool is not None:
        _hook_pool.stop()
        _hook_pool = None


def reactor_time(clock: IReactorTime | None = None) -> IReactorTime:
    """``clock`` if given (the tests), else the reactor: imported only when first needed, as objects
    built at import time (``SHARED``, class attributes) must not install one before twistd picks it."""
    if clock is not None:
        return clock
    from twisted.internet import reactor

    return reactor


def run_blocking(f: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> defer.Deferred[T]:
    """Run ``f`` in the worker pool and fire the Deferred on the reactor thread."""
    from twisted.internet import reactor

    pool = start_pool(reactor)  # type: ignore[arg-type]
    trimmer, watch = _trimmer, _watch
    if watch is None:
        d = deferToThreadPool(reactor, pool, f, *args, **kwargs)  # type: ignore[arg-type]
    else:
        d = deferToThreadPool(reactor, pool, _watched, watch, f, *args, **kwargs)  # type: ignore[arg-type]
        watch.queued()
    if trimmer is None:
        return d
    trimmer.job_started()
    return d.addBoth(_job_finished, trimmer)


def _job_finished(result: T, trimmer: HeapTrimmer) -> T:
    trimmer.job_finished()
    return result


_DONE = object()


class Wait:
    """What a stream's iterator yields when its next bytes are not there yet (``gateway.shared_streams``).

    ``ready`` is called on the reactor thread and gives a Deferred that fires
    when asking again is worth it; no worker thread waits meanwhile.
    """

    __slots__ = ("ready",)

    def __init__(self, ready: Callable[[], defer.Deferred[None]]) -> None:
        self.ready = ready


Chunks = Iterator[bytes] | Iterator[bytes | Wait]
"""What ``IteratorProducer`` streams: byte chunks, and for a shared stream ``Wait``s between them."""


class ByteConsumer(Protocol):
    """What a stream is written into: a Twisted ``IConsumer`` or a ``gateway.channel.Channel``."""

    def write(self, data: bytes) -> None: ...

    def registerProducer(self, producer: IPushProducer, streaming: bool) -> None: ...

    def unregisterProducer(self) -> None: ...


BATCH_BYTES = 512 * 1024
"""Bytes one pool step of ``IteratorProducer`` may gather: a pool round trip costs more CPU than
producing a 64 or 128 KiB chunk."""
BATCH_SECONDS = 0.02
"""...nor for longer than this, so that a slow stream's first bytes and progress are not held back."""


class _Raised:
    """The exception that ended a batch after some chunks: delivered after them."""

    __slots__ = ("failure",)

    def __init__(self, failure: Failure) -> None:
        self.failure = failure


def _next_chunks(iterator: Chunks, limit: int) -> list[object]:
    """In the pool: chunks until ``limit`` bytes or ``BATCH_SECONDS``; a ``Wait`` or the end closes a batch."""
    batch: list[object] = []
    size = 0
    deadline = time.monotonic() + BATCH_SECONDS
    while True:
        try:
            item = next(iterator, _DONE)
        except Exception:
            if not batch:
                raise
            batch.append(_Raised(Failure()))
            return batch
        batch.append(item)
        if not isinstance(item, bytes):
            return batch
        size += len(item)
        if size >= limit or time.monotonic() >= deadline:
            return batch


@implementer(IPushProducer)
class IteratorProducer:
    """Stream an iterator of byte chunks into a consumer with backpressure.

    ``next()`` runs in the pool, a few times per step: up to ``batch`` bytes
    (``BATCH_BYTES``) or ``BATCH_SECONDS``; at most one step is in flight.  An
    iterator may yield a ``Wait`` instead of bytes: the producer asks again
    when its Deferred fires.  When the consumer pauses us, one more batch is
    taken and held, and written the moment the consumer resumes: a transport
    pauses its producer past 64 KiB of buffer and resumes it only once that is
    drained, so without a batch at hand the client would wait for a pool step
    at every resume (about 0.1 s over a stream clone of the bench corpus).
    A pause in the middle of a batch holds the rest of it instead: the
    transport is never handed more than one chunk past its pause, so what a
    connection holds (its transport's buffer, the batch held, the step in the
    pool) does not grow with how slowly its client reads.
    Then we stop asking; ``stopProducing`` closes the iterator so that a
    generator releases its locks (``GeneratorExit``).
    ``done`` fires with None when the iterator is exhausted, or errbacks.
    """

    def __init__(self, iterator: Chunks, consumer: ByteConsumer, batch: int = BATCH_BYTES,
                 keepalive: tuple[bytes, float] | None = None) -> None:
        """``keepalive``: a packet the consumer gets whenever nothing was written for that many
        seconds (git's upload-pack keepalive while a pack is counted); None, an empty packet or 0
        seconds: none."""
        self._iterator = iterator
        self._consumer = consumer
        self.batch = batch
        self._keepalive = keepalive if keepalive is not None and keepalive[0] and keepalive[1] > 0 else None
        self._ticker: task.LoopingCall | None = None
        self._wrote = False
        """Whether something was written since the last keepalive tick."""
        self._paused = False
        self._in_flight = False
        self._stopped = False
        self._ready: list[object] | None = None
        """A batch taken while the consumer was paused, written as soon as it resumes."""
        self.done: defer.Deferred[None] = defer.Deferred()

    def start(self) -> defer.Deferred[None]:
        """Register with the consumer and begin streaming."""
        self._consumer.registerProducer(self, True)
        if self._keepalive is not None:
            self._ticker = task.LoopingCall(self._tick)
            self._ticker.start(self._keepalive[1], now=False)
        self._pump()
        return self.done

    def _tick(self) -> None:
        if self._stopped:
            self._stop_ticker()
            return
        if not self._wrote and not self._paused and self._keepalive is not None:
            self._consumer.write(self._keepalive[0])
        self._wrote = False

    def _stop_ticker(self) -> None:
        ticker, self._ticker = self._ticker, None
        if ticker is not None and ticker.running:
            ticker.stop()

    def _pump(self) -> None:
        if self._in_flight or self._stopped or self._ready is not None:
            return
        self._in_flight = True
        d = run_blocking(_next_chunks, self._iterator, self.batch)
        d.addCallbacks(self._got_chunks, self._failed)

    def _got_chunks(self, batch: list[object]) -> None:
        self._in_flight = False
        if self._stopped:
            self._close_iterator()
            return
        if self._paused:
            self._ready = batch
            return
        self._deliver(batch)

    def _deliver(self, batch: list[object]) -> None:
        for at, item in enumerate(batch):
            if isinstance(item, bytes):
                if self._paused and not self._stopped:  # the transport holds enough: the rest waits here
                    self._ready = batch[at:]
                    return
                if item:
                    self._consumer.write(item)
                    self._wrote = True
            elif item is _DONE:
                self._finish()
                return
            elif isinstance(item, Wait):
                self._in_flight = True  # a stop meanwhile must not close the iterator under the next step
                item.ready().addCallbacks(self._waited, self._failed)
                return
            else:
                assert isinstance(item, _Raised)
                self._failed(item.failure)
                return
            if self._stopped:  # the consumer stopped us while we wrote: the iterator is being closed
                return
        self._pump()

    def _waited(self, _: object) -> None:
        self._in_flight = False
        if self._stopped:
            self._close_iterator()
            return
        self._pump()

    def _finish(self) -> None:
        self._stopped = True
        self._stop_ticker()
        self._consumer.unregisterProducer()
        self.done.callback(None)

    def _failed(self, failure: Failure) -> None:
        self._in_flight = False
        if self._stopped:
            self._close_iterator()
            return
        self._stopped = True
        self._stop_ticker()
        self._consumer.unregisterProducer()
        self.done.errback(failure)

    def _close_iterator(self) -> None:
        """Close the iterator in the pool, never while a ``next()`` on it still runs there.

        Closing a generator that another thread is executing raises
        ``ValueError: generator already executing``, so a stop that arrives with
        a chunk in flight waits for that chunk.
        """
        close = getattr(self._iterator, "close", None)
        if close is not None:
            run_blocking(close).addErrback(lambda f: log.failure("closing a stream", f))

    def pauseProducing(self) -> None:
        self._paused = True

    def resumeProducing(self) -> None:
        self._paused = False
        ready, self._ready = self._ready, None
        if ready is not None and not self._stopped:
            self._deliver(ready)
        else:
            self._pump()

    def stopProducing(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._stop_ticker()
        if not self._in_flight:
            self._close_iterator()
        else:  # the step in the pool may be long (a pack being counted): tell it nobody waits
            abandon = getattr(self._iterator, "abandon", None)
            if abandon is not None:
                abandon()
        if not self.done.called:
            self.done.errback(Failure(defer.CancelledError("the client went away")))
