"""The one way off the reactor: a bounded worker pool and a streaming producer.

Backend calls block (disk, CPU); they run only through ``run_blocking``.  Packs
and bundles are iterators whose ``next()`` runs in the pool, one chunk in
flight per connection, so memory stays bounded and the reactor never waits.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable, Iterator
from typing import ParamSpec, Protocol, TypeVar

from twisted.internet import defer
from twisted.internet.interfaces import IPushProducer, IReactorThreads
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

log = Logger()

P = ParamSpec("P")
T = TypeVar("T")

DEFAULT_POOL_SIZE = 8
MAX_POOL_SIZE = 256
MALLOC_ARENAS = 2
"""glibc heaps for all threads (``MALLOC_ARENA_MAX``): each worker that allocates gets one of its own
otherwise, and 8 concurrent clones held about 15 MiB more in freed but unreturned arena pages."""

_pool: ThreadPool | None = None


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas before the workers start, unless ``MALLOC_ARENA_MAX`` is set; whether it did."""
    if "MALLOC_ARENA_MAX" in os.environ or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    m_arena_max = -8  # <malloc.h>
    return bool(mallopt(ctypes.c_int(m_arena_max), ctypes.c_int(arenas)))


def start_pool(reactor: IReactorThreads, size: int = DEFAULT_POOL_SIZE) -> ThreadPool:
    """Create and start the worker pool of ``size`` threads; stopped with the reactor."""
    global _pool
    if _pool is None:
        limit_malloc_arenas()
        _pool = ThreadPool(minthreads=0, maxthreads=size, name="hgwire-worker")
        _pool.start()
        reactor.addSystemEventTrigger("during", "shutdown", _stop_pool)  # type: ignore[attr-defined]
    return _pool


def _stop_pool() -> None:
    global _pool
    if _pool is not None:
        _pool.stop()
        _pool = None


def run_blocking(f: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> defer.Deferred[T]:
    """Run ``f`` in the worker pool and fire the Deferred on the reactor thread."""
    from twisted.internet import reactor

    pool = start_pool(reactor)  # type: ignore[arg-type]
    return deferToThreadPool(reactor, pool, f, *args, **kwargs)  # type: ignore[arg-type]


_DONE = object()


class ByteConsumer(Protocol):
    """What a stream is written into: a Twisted ``IConsumer`` or a ``gateway.channel.Channel``."""

    def write(self, data: bytes) -> None: ...

    def registerProducer(self, producer: IPushProducer, streaming: bool) -> None: ...

    def unregisterProducer(self) -> None: ...


def _next_chunk(iterator: Iterator[bytes]) -> object:
    return next(iterator, _DONE)


@implementer(IPushProducer)
class IteratorProducer:
    """Stream an iterator of byte chunks into a consumer with backpressure.

    Each ``next()`` runs in the pool; at most one chunk is in flight.  When the
    consumer pauses us we stop asking for chunks; ``stopProducing`` closes the
    iterator so that a generator releases its locks (``GeneratorExit``).
    ``done`` fires with None when the iterator is exhausted, or errbacks.
    """

    def __init__(self, iterator: Iterator[bytes], consumer: ByteConsumer) -> None:
        self._iterator = iterator
        self._consumer = consumer
        self._paused = False
        self._in_flight = False
        self._stopped = False
        self.done: defer.Deferred[None] = defer.Deferred()

    def start(self) -> defer.Deferred[None]:
        """Register with the consumer and begin streaming."""
        self._consumer.registerProducer(self, True)
        self._pump()
        return self.done

    def _pump(self) -> None:
        if self._paused or self._in_flight or self._stopped:
            return
        self._in_flight = True
        d = run_blocking(_next_chunk, self._iterator)
        d.addCallbacks(self._got_chunk, self._failed)

    def _got_chunk(self, chunk: object) -> None:
        self._in_flight = False
        if self._stopped:
            self._close_iterator()
            return
        if chunk is _DONE:
            self._finish()
            return
        assert isinstance(chunk, bytes)
        if chunk:
            self._consumer.write(chunk)
        self._pump()

    def _finish(self) -> None:
        self._stopped = True
        self._consumer.unregisterProducer()
        self.done.callback(None)

    def _failed(self, failure: Failure) -> None:
        self._in_flight = False
        if self._stopped:
            self._close_iterator()
            return
        self._stopped = True
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
        self._pump()

    def stopProducing(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if not self._in_flight:
            self._close_iterator()
        if not self.done.called:
            self.done.errback(Failure(defer.CancelledError("the client went away")))
