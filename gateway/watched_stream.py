"""An hg answer's stream that stops being made once nobody reads it.

A stream's steps run in the worker pool, each in whichever worker is free, so
the flag its loops look at (``protocols.client_gone``) is set around each step:
``abandon`` raises it, from the reactor, when the one client that reads the
stream leaves in the middle of a step (``IteratorProducer.stopProducing``) or
when the last client of a shared one does (``gateway.shared_streams``); the
step then stops at its next look and the stream ends with ``ClientGone``,
logged here as one line.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from gateway.logs import SafeLogger
from protocols import client_gone
from protocols.errors import ClientGone

log = SafeLogger()


class WatchedStream:
    """``chunks``, each ``next()`` watched by the stream's own flag (``abandon``)."""

    def __init__(self, chunks: Iterator[bytes], proto: str, command: str, repo: str) -> None:
        self._chunks = chunks
        self._abandoned = threading.Event()
        self._names = (proto, command, repo)

    def __iter__(self) -> WatchedStream:
        return self

    def __next__(self) -> bytes:
        try:
            with client_gone.watching(self._abandoned.is_set):
                return next(self._chunks)
        except ClientGone as exc:
            proto, command, repo = self._names
            log.info("{proto} {command} {repo}: client gone: {reason}", proto=proto, command=command, repo=repo,
                     reason=exc.message)
            raise

    def abandon(self) -> None:
        """Nobody will read what the step running now makes (maybe in the pool): it stops at its next look."""
        self._abandoned.set()

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()
