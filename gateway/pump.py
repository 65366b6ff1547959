"""The pump every service session shares: feed a sans-IO core, handle its events, never block.

A session subclass names its core's "wait" signals (``WAITING``) and gives
``_core_receive``, ``_core_next``, ``_handle`` and ``_fail``.  While a step runs in
the worker pool (``_run``) the session is busy: the peer's input is paused and
no event is taken from the core, so the reactor never waits and the core never
runs ahead of the backend.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from gateway.channel import Channel, SessionContext
from gateway.threads import IteratorProducer, run_blocking


class PumpedSession:
    """The shared machinery of ``gateway.git_session`` and ``gateway.hg_session`` sessions."""

    WAITING: ClassVar[tuple[object, ...]] = ()
    """The core's "need more data"/"a reply is owed" results: the pump stops on them."""

    def __init__(self, ctx: SessionContext, channel: Channel) -> None:
        self.ctx = ctx
        self.channel = channel
        self.outcome = "started"
        self._busy = True
        self._closed = False
        self._producer: IteratorProducer | None = None

    # -- Session -------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if not self._closed and data:
            self._guard(self._receive, data)

    def eof_received(self) -> None:
        if not self._closed:
            self._guard(self._receive, b"")

    def connection_lost(self) -> None:
        self._closed = True
        if self.outcome == "started":
            self.outcome = "client gone"
        if self._producer is not None:
            self._producer.stopProducing()

    # -- the pump ------------------------------------------------------------------------

    def _receive(self, data: bytes) -> None:
        self._core_receive(data)
        self._pump()

    def _pump(self) -> None:
        while not self._busy and not self._closed:
            event = self._core_next()
            if any(event is signal for signal in self.WAITING):
                return
            self._handle(event)

    def _guard(self, f: Callable[..., None], *args: Any) -> None:
        try:
            f(*args)
        except Exception as exc:  # noqa: BLE001 - every error ends the session through _fail
            self._fail(exc)

    def _run(self, then: Callable[[Any], None], f: Callable[..., Any], *args: Any,
             runner: Callable[..., Deferred[Any]] | None = None, pause: bool = True) -> Deferred[None]:
        """Run a blocking step in the pool (or with ``runner``) with the peer paused (unless not
        ``pause``: the session then bounds what it takes meanwhile itself), then ``then(result)``
        on the reactor.

        The Deferred fires (with None) once the step and ``then`` are done, whatever their outcome.
        """
        self._busy = True
        if pause:
            self.channel.pause_input()
        d = (runner or run_blocking)(f, *args)
        d.addCallback(lambda result: self._guard(then, result))
        d.addErrback(self._fail)
        return d

    def _resume(self) -> None:
        if self._closed:
            return
        self._busy = False
        self.channel.resume_input()
        self._guard(self._pump)

    def _write(self, data: bytes) -> None:
        if data and not self._closed:
            self.channel.write(data)

    def _finish(self, outcome: str, status: int = 0) -> None:
        if self._closed:
            return
        self.outcome = outcome
        self._closed = True
        self.channel.finish(status)

    # -- per session ---------------------------------------------------------------------

    def _core_receive(self, data: bytes) -> None:
        raise NotImplementedError

    def _core_next(self) -> object:
        raise NotImplementedError

    def _handle(self, event: Any) -> None:
        raise NotImplementedError

    def _fail(self, error: Failure | BaseException) -> None:
        raise NotImplementedError
