"""Identical concurrent answers generated once: eight CI jobs cloning the same repository at once.

A fleet of build machines that clones one repository at the same moment sends
the same hg ``getbundle`` or git full-clone fetch many times over.  Each hg
answer costs the server the whole changegroup and its compression (about
1.3 s of CPU on the bench corpus, against about 0.1 s to hand the bytes to the
socket), so eight clones on two cores took CPU away from the clients
themselves; a git pack costs less (stored entries go out as they are), but
eight of them still held 140-160 MiB.

``SharedStreams.open(key, stream)`` gives a request its answer as an iterator.
The first request for a key starts a *generation*: steps in the worker pool
take the chunks of its ``stream`` one at a time and append them to an unlinked
spool file, as fast as the disk takes them, whatever the pace of any client.
Every request for the key, the first included, reads that file at its own
pace (``os.pread``, one offset per reader).  The generation stays at most
``LEAD`` bytes ahead of its furthest reader: the fastest client sets the pace,
the slower ones never hold it back, and a client that never reads costs
little.  A reader that catches up with
the generation yields a ``Wait``, which ``IteratorProducer`` turns into a
wait on the reactor until the next step lands; no thread ever blocks.

A request joins only while its generation runs, so an answer is never older
than a request that arrived during its computation could have got anyway.
The key must say everything the bytes depend on (the repository's state,
the arguments, the encoding): the callers build it.  If every reader goes
away the generation stops; its file disappears with the last reader.  A step
running then (a git pack's counting, an hg changegroup's making) is told to
stop at its next look (the stream's ``abandon``), so the work goes on for
nobody no longer than a single client's would; such a generation is never
kept, and a request that comes after starts a generation of its own.  A
generation that fails hands the same error to every reader at the point it
reached.  Memory stays bounded: one step in flight per generation (about
``WRITE_STEP``) and per reader (at most ``READ_BLOCK``); the spool is on disk (``TMPDIR``), as twisted.web spools bodies.
A spool that cannot be written (a full ``TMPDIR``) fails the clones that
share it, as a generation error; then, and whenever ``TMPDIR`` has less than
``SPOOL_MIN_FREE`` bytes free, answers are streamed to each request on its own
for ``SPOOL_FULL_PAUSE`` seconds (unshared, as without this module), so that
a full temporary directory costs sharing, not clones.

**Kept answers** (``[clone_cache]``, off by default): a generation that ends
well may be kept for a while, its spool still open, so that the same request
later (the next CI job, minutes after the last) reads it instead of computing
it again.  The key already holds everything the bytes depend on, the
repository's state included, so a kept answer is only ever served while the
repository is as it was; it goes when it is ``max_age`` old, when newer
answers push it out of ``max_bytes`` (least recently used first), or past
``MAX_KEPT`` answers.  Its disk space is freed when the last reader of it is done.
"""

from __future__ import annotations

import itertools
import os
import tempfile
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure

from gateway.errors import TMPDIR_ADVICE, damaged_repository
from gateway.logs import SafeLogger
from gateway.threads import Chunks, Wait, reactor_time, run_blocking
from protocols.errors import ClientGone

log = SafeLogger()

READ_BLOCK = 64 * 1024
"""Most bytes one read hands to the transport, as one write: the transport pauses past 64 KiB, and
a 1 MiB write sat whole in its buffer (and in its copies) however slowly the client read.  One pool
step still gathers several reads (``gateway.threads.BATCH_BYTES``)."""
WRITE_STEP = 512 * 1024
"""Bytes one generation step writes before it hands back to the reactor (several of the stream's
chunks: a pool round trip costs more CPU than writing a 64 KiB chunk to the spool)."""
LEAD = 4 << 20
"""Bytes a generation may run ahead of its furthest reader.  A client that asks and never reads
costs no more than that, in CPU and spool: about what it cost before sharing, when the answer
ran ahead into the kernel's socket buffers until the transport paused it.  Readers never wait on
it while the generation is faster than the fastest of them."""
MAX_KEPT = 256
"""Most answers kept at once (each holds an open spool file), whatever their size."""
SPOOL_MIN_FREE = 16 << 20
"""Below this much free space in the spool directory, a new answer is not shared (not spooled)."""
SPOOL_FULL_PAUSE = 60.0
"""Seconds answers go unshared after a spool could not be written (disk full, over quota)."""


@dataclass(frozen=True, slots=True)
class KeepBounds:
    """How long and how many bytes of finished answers are kept (``[clone_cache]``); 0 bytes: none."""

    max_bytes: int = 0
    """Bytes of kept answers at most (spool files in ``TMPDIR``); 0 keeps none."""
    max_age: float = 300.0
    """Seconds an answer is kept after it was made."""

    @property
    def on(self) -> bool:
        return self.max_bytes > 0 and self.max_age > 0


KEEP_NOTHING = KeepBounds()


class _Generation:
    """One spool file being written from one stream; shared by the readers of its key.

    ``written``, ``done`` and ``error`` change in pool steps and are read by
    reader steps: ``_lock`` guards them.  Everything else is reactor-only.
    """

    def __init__(self, owner: SharedStreams, key: Hashable, stream: Iterator[bytes],
                 keep: KeepBounds = KEEP_NOTHING) -> None:
        self._owner = owner
        self.key = key
        self._stream = stream
        self.keep = keep
        self.kept_at: float | None = None
        """When the finished answer was kept (on the reactor); None while it is not kept."""
        self.expiry: IDelayedCall | None = None
        self._spool: IO[bytes] | None = None
        """Created by the first step, in the pool: even creating a file is disk work."""
        self._lock = threading.Lock()
        self.written = 0
        self.done = False
        self.error: BaseException | None = None
        self.readers = 0
        self.furthest = 0
        """The furthest offset any reader has taken (under ``_lock``)."""
        self._paused = False
        """Waiting for a reader to come within ``lead`` (under ``_lock``)."""
        self._stepping = False
        self._stopped = False
        self._abandoned = False
        """The stream was told nobody reads it (``abandon``) while a step ran: that step may fail for it."""
        self._spool_failed = False
        self._waiters: list[defer.Deferred[None]] = []

    # -- the writer (steps in the pool, driven from the reactor) ----------------------------

    def start(self) -> None:
        self._step()

    def owner_call(self, f: Callable[[], None]) -> None:
        """Run ``f`` on the reactor, from a pool thread."""
        self._owner.call_from_thread(f)

    def _step(self) -> None:
        if self._stopped:
            self._close_stream()
            self._maybe_release()
            return
        self._stepping = True
        run_blocking(self._write_next).addBoth(self._stepped)

    def _write_next(self) -> bool:
        """In the pool: append the next chunks, about ``write_step`` bytes; True once the stream is exhausted."""
        step = 0
        while step < self._owner.write_step:
            chunk = next(self._stream, None)
            if chunk is None:
                return True
            if chunk:
                try:
                    if self._spool is None:
                        self._spool = self._owner.new_spool()
                    self._spool.write(chunk)
                    self._spool.flush()
                except OSError:
                    self._spool_failed = True  # the disk's refusal, not the stream's: stop sharing a while
                    raise
                with self._lock:
                    self.written += len(chunk)
                step += len(chunk)
        return False

    def _stepped(self, result: bool | Failure) -> None:
        self._stepping = False
        if isinstance(result, Failure):
            with self._lock:
                self.error = result.value
                self.done = True
            if self.readers:  # the sessions that read the stream log it, one report each, naming the repository
                damage = damaged_repository(result.value) if result.value is not None else None
                log.debug("shared stream {key}: {reason}", key=self.key, reason=damage or repr(result.value))
            elif self._stopped and self._abandoned:  # its last client left and the step stopped early, as asked
                if not isinstance(result.value, ClientGone):  # (an hg stream's says so itself, naming the repository)
                    log.info("a shared clone answer was stopped: its last client left after {written} bytes",
                             key=self.key, written=self.written)
            else:  # every reader went away while the step ran: nobody else will tell
                log.failure("shared stream {key}: the generation failed", result, key=self.key)
            if self._spool_failed:
                self._owner._spool_full(str(result.value))
            self._end()
        elif result:
            with self._lock:
                self.done = True
            self._owner._keep(self)
            self._end()
        else:
            self._wake()
            with self._lock:
                self._paused = self.written - self.furthest > self._owner.lead
                if self._paused:
                    return
            self._step()

    def _end(self) -> None:
        self._owner._generation_ended(self)
        self._wake()
        self._maybe_release()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.callback(None)

    def release_stream(self) -> None:
        self._stream = iter(())

    def _close_stream(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            run_blocking(close).addErrback(lambda f: log.failure("closing a shared stream", f))

    # -- readers ------------------------------------------------------------------------------

    def attach(self) -> Iterator[bytes | Wait]:
        self.readers += 1
        return _Reader(self)

    def detach(self) -> None:
        """On the reactor: a reader finished or went away."""
        self.readers -= 1
        if self.readers == 0 and not self.done:
            # Nobody reads any more: stop computing.  A running step (a pack being counted, an hg
            # changegroup being made) is told to stop at its next look, if its stream can be told;
            # what it wrote is never kept, and a request for the key from now on starts afresh.
            self._stopped = True
            self._owner._generation_ended(self)
            if not self._stepping:
                self._close_stream()
            else:
                abandon = getattr(self._stream, "abandon", None)
                if abandon is not None:
                    self._abandoned = True
                    abandon()
        self._maybe_release()

    def _maybe_release(self) -> None:
        if self.readers == 0 and (self.done or self._stopped) and not self._stepping and self.kept_at is None:
            spool, self._spool = self._spool, None
            if spool is not None:
                run_blocking(spool.close)

    def read(self, offset: int) -> bytes | None:
        """In the pool: bytes at ``offset`` (b"" to wait), or None at the end; raises the generation's error."""
        with self._lock:
            available = self.written - offset
            if available <= 0:
                if self.error is not None:
                    raise self.error
                return None if self.done else b""
            spool = self._spool
            end = offset + min(available, READ_BLOCK)
            self.furthest = max(self.furthest, end)
            resume = self._paused and self.written - self.furthest <= self._owner.lead
            if resume:
                self._paused = False
        if resume:
            self.owner_call(self._step)
        assert spool is not None  # bytes were written, so the file exists (and readers keep it open)
        return os.pread(spool.fileno(), end - offset, offset)

    def ready(self, offset: int) -> defer.Deferred[None]:
        """On the reactor: fires once more than ``offset`` bytes are written, or the generation ended."""
        with self._lock:
            if self.written > offset or self.done:
                return defer.succeed(None)
        waiter: defer.Deferred[None] = defer.Deferred()
        self._waiters.append(waiter)
        return waiter


class _Reader:
    """One request's view of a generation: an iterator of chunks and ``Wait``s.

    Its steps run in the pool (``IteratorProducer``); when it ends, fails or
    is closed it detaches from the generation, on the reactor; and when its
    request's client leaves while it waits for the generation (``abandon``),
    at once: the generation's step may be long (a pack being counted), and
    the last reader to go tells it to stop.
    """

    def __init__(self, generation: _Generation) -> None:
        self._generation: _Generation | None = generation
        self._offset = 0
        self._lock = threading.Lock()
        self._waiting = False
        """A ``Wait`` was handed out and no step of ours runs (under ``_lock``)."""

    def __iter__(self) -> _Reader:
        return self

    def __next__(self) -> bytes | Wait:
        with self._lock:
            self._waiting = False
            generation = self._generation
        if generation is None:
            raise StopIteration
        try:
            data = generation.read(self._offset)
        except BaseException:
            self.close()
            raise
        if data is None:
            self.close()
            raise StopIteration
        if not data:
            offset = self._offset
            with self._lock:
                self._waiting = True
            return Wait(lambda: generation.ready(offset))
        self._offset += len(data)
        return data

    def abandon(self) -> None:
        """On the reactor: nobody reads this any more (``IteratorProducer.stopProducing`` with a step
        or a wait in flight).  A reader that waits detaches now; one whose step runs, when it ends."""
        with self._lock:
            if not self._waiting:
                return
            generation, self._generation = self._generation, None
        if generation is not None:
            generation.detach()

    def close(self) -> None:
        generation, self._generation = self._generation, None
        if generation is not None:
            generation.owner_call(generation.detach)


class SharedStreams:
    """The generations running now, by key; ``open`` is called on the reactor thread."""

    def __init__(self, spool_dir: str | None = None,
                 call_from_thread: Callable[[Callable[[], None]], object] | None = None, lead: int = LEAD,
                 write_step: int = WRITE_STEP, clock: IReactorTime | None = None) -> None:
        self._spool_dir = spool_dir
        self.lead = lead
        self.write_step = write_step
        self._call_from_thread = call_from_thread
        self._clock = clock
        self._running: dict[Hashable, _Generation] = {}
        self._kept: OrderedDict[Hashable, _Generation] = OrderedDict()
        self.kept_bytes = 0
        self.started = 0
        """Generations started (for the tests and the logs)."""
        self.joined = 0
        """Requests served by a generation that another request started."""
        self.reused = 0
        """Requests served by a kept answer."""
        self._spool_full_until = 0.0
        """Until then (the clock's seconds), new answers are not shared: a spool could not be written."""

    def open(self, key: Hashable, stream: Iterator[bytes],
             keep: KeepBounds = KEEP_NOTHING) -> tuple[Iterator[bytes | Wait], str]:
        """The answer for ``key`` and how: "joined" the running generation, "kept" (a finished one
        that ``keep`` lets us reuse), or "started" one from ``stream``, to be kept as ``keep`` says.

        A request that joins or reuses never starts its own ``stream``: it is closed, in the pool.
        """
        generation = self._running.get(key)
        how = "joined"
        if generation is None:
            generation, how = self._kept_answer(key, keep), "kept"
        if generation is not None:
            if how == "joined":
                self.joined += 1
            else:
                self.reused += 1
            close = getattr(stream, "close", None)
            if close is not None:
                run_blocking(close).addErrback(lambda f: log.failure("closing an unused stream", f))
            return generation.attach(), how
        if not self._spool_room():
            return stream, ""  # streamed to this request alone: the spool directory is (nearly) full
        generation = _Generation(self, key, stream, keep)
        self._running[key] = generation
        self.started += 1
        reader = generation.attach()
        generation.start()
        return reader, "started"

    def _spool_room(self) -> bool:
        """Whether a new generation may spool: not just after one could not, and with some room."""
        if self._now() < self._spool_full_until:
            return False
        try:
            found = os.statvfs(self._spool_dir or tempfile.gettempdir())
        except OSError:
            return False
        if found.f_bavail * found.f_frsize >= SPOOL_MIN_FREE:
            return True
        self._spool_full(f"{found.f_bavail * found.f_frsize} bytes free")
        return False

    def _spool_full(self, reason: str) -> None:
        """Stop sharing for ``SPOOL_FULL_PAUSE`` seconds (said once per pause)."""
        if self._now() >= self._spool_full_until:
            log.warn("the spool directory {directory} cannot take shared answers ({reason}): each clone is "  # noqa: G010
                     "computed for its own client for {seconds:.0f} s; " + TMPDIR_ADVICE,
                     directory=self._spool_dir or tempfile.gettempdir(), reason=reason, seconds=SPOOL_FULL_PAUSE)
        self._spool_full_until = self._now() + SPOOL_FULL_PAUSE

    def new_spool(self) -> IO[bytes]:
        """In the pool: an anonymous file (unlinked at once on POSIX) that disappears when closed."""
        return tempfile.TemporaryFile(dir=self._spool_dir)

    def call_from_thread(self, f: Callable[[], None]) -> None:
        if self._call_from_thread is not None:
            self._call_from_thread(f)
            return
        from twisted.internet import reactor

        reactor.callFromThread(f)  # type: ignore[attr-defined]

    def _generation_ended(self, generation: _Generation) -> None:
        if self._running.get(generation.key) is generation:
            del self._running[generation.key]

    # -- kept answers (on the reactor) --------------------------------------------------------

    def _now(self) -> float:
        return reactor_time(self._clock).seconds()

    def _kept_answer(self, key: Hashable, keep: KeepBounds) -> _Generation | None:
        """A kept answer for ``key`` still young enough for ``keep`` (the settings in force now)."""
        if not keep.on:
            return None
        generation = self._kept.get(key)
        if generation is None or generation.kept_at is None:
            return None
        if self._now() - generation.kept_at >= keep.max_age:
            self._drop(generation)
            return None
        self._kept.move_to_end(key)
        return generation

    def _keep(self, generation: _Generation) -> None:
        """A generation ended well: keep it if its bounds allow, pushing out the least recently used."""
        bounds = generation.keep
        if not bounds.on or not 0 < generation.written <= bounds.max_bytes:
            return
        older = self._kept.get(generation.key)
        if older is not None:
            self._drop(older)
        generation.release_stream()  # spent: what it held (a repository, its maps) need not stay
        generation.kept_at = self._now()
        generation.expiry = reactor_time(self._clock).callLater(bounds.max_age, self._drop, generation)
        self._kept[generation.key] = generation
        self.kept_bytes += generation.written
        while self.kept_bytes > bounds.max_bytes or len(self._kept) > MAX_KEPT:
            self._drop(next(iter(self._kept.values())))

    def _drop(self, generation: _Generation) -> None:
        if self._kept.get(generation.key) is generation:
            del self._kept[generation.key]
            self.kept_bytes -= generation.written
        expiry, generation.expiry = generation.expiry, None
        if expiry is not None and expiry.active():
            expiry.cancel()
        generation.kept_at = None
        generation._maybe_release()

    def kept(self) -> int:
        return len(self._kept)

    def forget_kept(self) -> None:
        """Drop every kept answer (the tests; an operator's cache turned off drops them as they age)."""
        for generation in list(self._kept.values()):
            self._drop(generation)

    def running(self) -> int:
        return len(self._running)


SHARED = SharedStreams()
"""The process's generations: every transport's clones share them."""


_BACKENDS: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
_BACKEND_NUMBERS = itertools.count(1)


def _backend_key(backend: object) -> tuple[str, int]:
    """A number for ``backend`` that no other backend of this process ever gets (``id`` is reused
    once an object is gone, and a kept answer may outlive its backend in the tests)."""
    try:
        number = _BACKENDS.get(backend)
        if number is None:
            number = _BACKENDS[backend] = next(_BACKEND_NUMBERS)
    except TypeError:  # not weakly referenceable: its answers are shared, never kept
        return "id", id(backend)
    return "backend", number


def share(backend: object, repo: str, key: Hashable | None, stream: Iterator[bytes],
          keep: KeepBounds = KEEP_NOTHING) -> tuple[Chunks, str]:
    """What a session streams for ``stream``, and how: "started"/"joined" a generation, "kept" (a
    finished one, ``keep`` being the ``[clone_cache]`` bounds in force), or "" if not keyed.

    ``key`` names the bytes within one repository (None: this answer is not
    shared); the backend and the repository name complete it.
    """
    if key is None:
        return stream, ""
    backend_key = _backend_key(backend)
    if backend_key[0] != "backend":
        keep = KEEP_NOTHING
    return SHARED.open((backend_key, repo, key), stream, keep)
