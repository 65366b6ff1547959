"""Every worker held by steps that do not end (a backend call that hangs) while requests wait:
the log says so, where the oldest step is, and what to do, at most once a minute."""

from __future__ import annotations

import threading
import time
from typing import Any, cast

from twisted.internet import task
from twisted.internet.threads import blockingCallFromThread
from twisted.logger import ILogObserver, LogEvent, formatEvent, globalLogPublisher

from gateway import threads
from gateway.threads import PoolWatch


def _warnings(events: list[LogEvent]) -> list[str]:
    return [formatEvent(e) for e in events if "worker threads are busy" in (e.get("log_format") or "")]


def test_a_held_pool_with_requests_waiting_is_warned_of_once_a_minute() -> None:
    clock = task.Clock()
    waiting = [0]
    seen: list[LogEvent] = []
    observer = cast(ILogObserver, seen.append)
    globalLogPublisher.addObserver(observer)
    try:
        watch = PoolWatch(clock, 2, lambda: waiting[0], where=lambda thread: f"backend.py:57 in open (thread {thread})")
        watch.started("a", 11)
        clock.advance(1)
        watch.started("b", 12)
        watch.queued()  # nothing waits: nothing to watch
        clock.advance(30)
        assert _warnings(seen) == []
        waiting[0] = 3
        watch.queued()
        clock.advance(9)
        assert _warnings(seen) == []
        clock.advance(1)
        assert _warnings(seen) == [
            ("all 2 worker threads are busy and 3 requests wait for one, every repository's alike: a step has run "
             "41 s, now at backend.py:57 in open (thread 11); find what it waits for (a backend call, a disk), "
             "or raise --workers")]
        clock.advance(40)
        assert len(_warnings(seen)) == 1  # once a minute
        clock.advance(20)
        assert len(_warnings(seen)) == 2
        watch.finished("a")
        watch.finished("b")
        waiting[0] = 0
        clock.advance(60)
        assert len(_warnings(seen)) == 2 and not clock.getDelayedCalls()  # nothing waits: the watch rests
    finally:
        globalLogPublisher.removeObserver(observer)


def test_short_steps_are_not_a_stall() -> None:
    clock = task.Clock()
    seen: list[LogEvent] = []
    observer = cast(ILogObserver, seen.append)
    globalLogPublisher.addObserver(observer)
    try:
        watch = PoolWatch(clock, 1, lambda: 1)
        for n in range(10):
            watch.started(n, 1)
            watch.queued()
            clock.advance(5)
            watch.finished(n)
        assert _warnings(seen) == []
    finally:
        globalLogPublisher.removeObserver(observer)


def test_the_pool_names_where_its_oldest_step_is(reactor: Any) -> None:
    """Through ``run_blocking``: the warning names the file and line where the held worker waits."""
    release = threading.Event()
    seen: list[LogEvent] = []
    observer = cast(ILogObserver, seen.append)

    def hang() -> None:
        release.wait(10)  # the line the warning names

    def start() -> None:
        threads._stop_pool()
        threads.start_pool(reactor, 1)
        assert threads._watch is not None
        threads._watch._stall = 0.2
        threads.run_blocking(hang)
        threads.run_blocking(lambda: None)

    globalLogPublisher.addObserver(observer)
    try:
        blockingCallFromThread(reactor, start)
        deadline = time.monotonic() + 5
        while not _warnings(seen) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        release.set()
        globalLogPublisher.removeObserver(observer)
        blockingCallFromThread(reactor, threads._stop_pool)
    warned = _warnings(seen)
    assert warned and "all 1 worker threads are busy and 1 requests wait" in warned[0], warned
    assert "test_pool_stall.py:" in warned[0] and " in hang;" in warned[0], warned
