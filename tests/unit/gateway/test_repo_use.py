"""A git repository opened for one read-only request is closed when its last user lets go."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from backends.interfaces import Kind
from gateway.git_session import PackStream
from gateway.repo_use import RepoUse, close_git, closing_git


class Repo:
    def __init__(self, kind: Kind = Kind.GIT) -> None:
        self.kind = kind
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


def test_the_last_user_closes_the_repository_once() -> None:
    repo = Repo()
    use = RepoUse(repo)
    session, stream = use.join(), use.join()
    session()
    session()  # letting go twice counts once
    assert repo.closed == 0, "the stream still reads it"
    stream()
    assert repo.closed == 1
    stream()
    assert repo.closed == 1


def test_a_mercurial_repository_is_left_open() -> None:
    repo = Repo(Kind.HG)
    close_git(repo)
    with closing_git(repo):
        pass
    assert repo.closed == 0


def test_one_step_closes_at_its_end() -> None:
    repo = Repo()
    with pytest.raises(RuntimeError), closing_git(repo):
        raise RuntimeError("refused")
    assert repo.closed == 1


def _chunks(fail: bool = False) -> Iterator[bytes]:
    yield b"one"
    if fail:
        raise OSError("disk")
    yield b"two"


@pytest.mark.parametrize("how", ["exhausted", "failed", "closed", "closed-unread"])
def test_a_pack_stream_lets_go_once_when_it_ends(how: str) -> None:
    ended: list[Any] = []
    stream = PackStream(_chunks(fail=how == "failed"), on_end=lambda: ended.append(1))
    if how == "closed-unread":
        stream.close()
    else:
        assert next(stream) == b"one"
        if how == "closed":
            stream.close()
        else:
            with pytest.raises(OSError if how == "failed" else StopIteration):
                next(stream)
                next(stream)
    stream.close()
    assert ended == [1]


def test_a_close_on_the_reactor_thread_runs_in_the_pool(reactor: Any) -> None:
    """A backend's ``close`` may wait (a custom one flushing to the network): let go of on the
    reactor's thread, as a session's end does, it runs in the worker pool, not on the reactor."""
    import threading
    import time

    from twisted.internet.threads import blockingCallFromThread

    ran_on: list[str] = []
    reactor_thread: list[str] = []

    class Slow(Repo):
        def close(self) -> None:
            ran_on.append(threading.current_thread().name)
            super().close()

    repo = Slow()
    use = RepoUse(repo)
    leave = use.join()

    def on_reactor() -> None:
        reactor_thread.append(threading.current_thread().name)
        leave()

    blockingCallFromThread(reactor, on_reactor)
    deadline = time.monotonic() + 10
    while not repo.closed and time.monotonic() < deadline:
        time.sleep(0.01)
    assert repo.closed == 1
    assert ran_on and ran_on != reactor_thread and "hgwire-worker" in ran_on[0], (ran_on, reactor_thread)
    with closing_git(Slow()) as off_reactor:  # off the reactor (a step in the pool): closed there and then
        pass
    assert off_reactor.closed == 1
