"""A request body its handler reads while it still arrives.

twisted.web hands a request to its resource only once the whole body is in: a
push over HTTP spooled its pack to a temporary file first, and only then did the
session start to scan it, where over git:// and SSH the scan keeps pace with the
client's upload.  For the routes that can use their body as it comes
(``gateway.http.STREAMED_ROUTES``) the request is processed as soon as its
headers are in; its ``content`` is a ``LiveBody``:

* twisted.web ``write``\\s each decoded chunk into it (the reactor);
* the handler takes them with ``read_later`` (a Deferred of the next bytes,
  ``b""`` at the end), never blocking a thread on the network;
* while more than ``HIGH_WATER`` bytes wait unread, the connection is paused (TCP
  backpressure, as the other transports give): nothing is spooled, the memory
  held is bounded;
* ``complete`` marks the end (all of the body is in), ``close`` its loss (the
  connection went, the body was refused): a reader waiting then gets
  ``BodyAborted``; ``discard`` says the reader wants no more (its answer is
  decided): the rest is read off the connection and dropped.

The response may not start before the body is in (twisted.web's channel reads
the next request only then): ``gateway.http.BoundedRequest`` holds what the
handler writes until ``complete``.  A client that sent ``Expect: 100-continue``
gets its ``100 Continue`` only at the first ``read_later`` (``on_first_read``):
a push refused before (401, 403) is answered at once, its body never sent.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IPushProducer

HIGH_WATER = 256 * 1024
"""Unread bytes past which the connection is paused: four of the session's reads (over git:// and
SSH the session pauses the connection itself whenever it is busy).  A thousand pushes whose
sessions wait for a worker hold a quarter of a GiB at most."""

LOW_WATER = 64 * 1024
"""Unread bytes under which a paused connection is resumed."""


class BodyAborted(Exception):
    """The body will not be complete: the connection went, or the request was refused while it came."""


class LiveBody:
    """The body of one request, read by its handler as it arrives (see the module's docstring)."""

    def __init__(self, producer: IPushProducer | None, on_first_read: Callable[[], None] | None = None) -> None:
        self._producer = producer
        self._on_first_read = on_first_read
        """Called when the handler first asks for the body (its checks passed): a held ``100 Continue``
        goes out then (``gateway.http.BoundedRequest``)."""
        self._chunks: deque[bytes] = deque()
        self._queued = 0
        self._paused = False
        self._waiting: Deferred[bytes] | None = None
        self._want = 0
        self.received = 0
        """Bytes of the body received so far."""
        self._complete = False
        self._closed = False
        self._discarding = False

    # -- twisted.web's side (``Request.content``) -------------------------------------------

    def write(self, data: bytes) -> None:
        """A chunk of the body (``Request.handleContentChunk``)."""
        if not data or self._closed:
            return
        self.received += len(data)
        if self._discarding:
            return
        self._chunks.append(data)
        self._queued += len(data)
        if self._waiting is not None:
            self._answer()
        if self._queued > HIGH_WATER and not self._paused and self._producer is not None:
            self._paused = True
            self._producer.pauseProducing()

    def tell(self) -> int:
        """``Request.requestReceived`` asks where the body ends."""
        return self.received

    def seek(self, offset: int, whence: int = 0) -> int:
        """``Request.requestReceived`` rewinds its body: this one is read once, from its start."""
        return 0

    def read(self, size: int = -1) -> bytes:
        raise TypeError("a LiveBody is read with read_later, as it arrives")

    def complete(self) -> None:
        """All of the body is in."""
        if self._closed:
            return
        self._complete = True
        self._paused = False  # twisted.web's channel resumes the connection once the request is done
        if self._waiting is not None:
            self._answer()

    def close(self) -> None:
        """The request is over (done, refused, or its connection gone): a reader still waiting is told."""
        if self._closed:
            return
        self._closed = True
        self._chunks.clear()
        self._queued = 0
        waiting, self._waiting = self._waiting, None
        if waiting is not None:
            waiting.errback(BodyAborted("the request's body did not arrive whole"))

    # -- the handler's side -------------------------------------------------------------------

    def read_later(self, size: int) -> Deferred[bytes]:
        """Up to ``size`` bytes of the body once there are some; ``b""`` at its end."""
        if self._waiting is not None:
            raise RuntimeError("one read of a LiveBody at a time")
        first, self._on_first_read = self._on_first_read, None
        if first is not None:
            first()
        if self._closed:
            return defer.fail(BodyAborted("the request's body did not arrive whole"))
        if self._chunks:
            return defer.succeed(self._take(size))
        if self._complete:
            return defer.succeed(b"")
        self._want = size
        self._waiting = Deferred()
        return self._waiting

    def discard(self) -> None:
        """The reader wants no more: drop what waits and what comes (the client may still send it)."""
        self._discarding = True
        self._chunks.clear()
        self._queued = 0
        self._resume()

    # -- inside -------------------------------------------------------------------------------

    def _answer(self) -> None:
        waiting, self._waiting = self._waiting, None
        assert waiting is not None
        waiting.callback(self._take(self._want) if self._chunks else b"")

    def _take(self, size: int) -> bytes:
        taken: list[bytes] = []
        room = size
        while self._chunks and room > 0:
            chunk = self._chunks.popleft()
            if len(chunk) > room:
                chunk, rest = chunk[:room], chunk[room:]
                self._chunks.appendleft(rest)
            taken.append(chunk)
            room -= len(chunk)
        data = b"".join(taken)
        self._queued -= len(data)
        if self._queued < LOW_WATER:
            self._resume()
        return data

    def _resume(self) -> None:
        if self._paused and not self._complete and self._producer is not None:
            self._paused = False
            self._producer.resumeProducing()


def announced_length(request: Any) -> int | None:
    """The ``Content-Length`` of a request whose body is read as it arrives (twisted.web checked it
    already), None for a body sent in chunks."""
    lengths = request.requestHeaders.getRawHeaders(b"content-length") or []
    return int(lengths[0]) if len(lengths) == 1 and lengths[0].strip().isdigit() else None
