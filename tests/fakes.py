"""Stand-ins the gateway unit tests share: a worker pool run by hand and a byte consumer."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from twisted.internet import defer
from twisted.internet.interfaces import IPushProducer


class ManualPool:
    """``run_blocking`` by hand: each step waits until ``run_next``/``run_all``.

    A step that raises fails its Deferred, as the real pool does.
    """

    def __init__(self) -> None:
        self.steps: list[tuple[Callable[..., Any], tuple[Any, ...], defer.Deferred[Any]]] = []

    def __call__(self, f: Callable[..., Any], *args: Any) -> defer.Deferred[Any]:
        d: defer.Deferred[Any] = defer.Deferred()
        self.steps.append((f, args, d))
        return d

    def run_next(self) -> str:
        """Run the oldest step; its function's name."""
        f, args, d = self.steps.pop(0)
        try:
            result = f(*args)
        except Exception as exc:  # noqa: BLE001 - handed to the Deferred, as the pool does
            d.errback(exc)
        else:
            d.callback(result)
        return getattr(f, "__name__", repr(f))

    def run_all(self, limit: int = 10_000) -> list[str]:
        """Run steps (and the steps they add) until none is left; their names."""
        done: list[str] = []
        for _ in range(limit):
            if not self.steps:
                return done
            done.append(self.run_next())
        raise AssertionError("the pool never ran dry")


def manual_pool(monkeypatch: pytest.MonkeyPatch, *modules: ModuleType) -> ManualPool:
    """A ``ManualPool`` that stands for ``run_blocking`` in each of ``modules`` (where it was imported)."""
    pool = ManualPool()
    for module in modules:
        monkeypatch.setattr(module, "run_blocking", pool)
    return pool


class Consumer:
    """An ``IConsumer`` that keeps what it is written and who produces for it."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.producer: IPushProducer | None = None

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)

    def write(self, data: bytes) -> None:
        self.chunks.append(data)

    def registerProducer(self, producer: IPushProducer, streaming: bool) -> None:
        self.producer = producer

    def unregisterProducer(self) -> None:
        self.producer = None


class RecordingChannel:
    """A session's ``Channel`` that keeps what it is written and how the session ended."""

    def __init__(self) -> None:
        self.out = b""
        self.finished: int | None = None

    def write(self, data: bytes) -> None:
        self.out += data

    def write_stderr(self, data: bytes) -> None:
        pass

    def registerProducer(self, producer: object, streaming: bool) -> None:
        pass

    def unregisterProducer(self) -> None:
        pass

    def pause_input(self) -> None:
        pass

    def resume_input(self) -> None:
        pass

    def finish(self, exit_status: int) -> None:
        self.finished = exit_status
