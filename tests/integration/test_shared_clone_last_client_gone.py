"""Full git clones that share one pack (``[clone_cache]``'s running generation) and all leave
while it is counted (a CI run cancelled): the counting ran to its end for nobody, where one
client alone stopped within ``ABANDON_CHECK`` commits.  It now stops the same way when the last
sharer leaves, nothing is kept, and the next clone computes a whole pack; a sharer that stays
still gets the whole pack when another leaves."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from backends import git_fastpack, git_reach
from gateway import git_session
from gateway.shared_streams import SHARED
from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_pack_client_gone import _history

WAIT = 30  # seconds: a bound for a broken run only


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


class HeldCount:
    """The first pack's counting waits (in the pool) for ``release``; its outcome, the commits it walked."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.counting = threading.Event()
        self.release = threading.Event()
        self.ended = threading.Event()
        self.walked = 0
        self.outcome: BaseException | None = None
        self.gone = 0
        plan_pack = git_fastpack.plan_pack
        expand = git_reach.Walker._expand
        lost = git_session._GitSession.connection_lost

        def held_plan(*args: Any, **kwargs: Any) -> Any:
            if self.counting.is_set():
                return plan_pack(*args, **kwargs)
            self.counting.set()
            self.release.wait(WAIT)
            self.walked = 0
            try:
                return plan_pack(*args, **kwargs)
            except BaseException as exc:
                self.outcome = exc
                raise
            finally:
                self.ended.set()

        def counted_expand(walker: Any, *args: Any) -> Any:
            self.walked += 1
            return expand(walker, *args)

        def noticed(session: Any) -> None:
            lost(session)
            self.gone += 1

        monkeypatch.setattr(git_fastpack, "plan_pack", held_plan)
        monkeypatch.setattr(git_reach.Walker, "_expand", counted_expand)
        monkeypatch.setattr(git_session._GitSession, "connection_lost", noticed)


@pytest.fixture
def served(make_server: Callable[..., RunningServer], tmp_path: Path) -> Iterator[tuple[RunningServer, str]]:
    policy = tmp_path / "policy.toml"
    policy.write_text("[clone_cache]\nmax_bytes = 67108864\nmax_age = 600\n")
    server = make_server("fs", git=[LOOPBACK], config_file=str(policy))
    _history(server.root / "big.git")
    # git:// notices a killed client when a write fails: a keepalive each second while the pack is held
    subprocess.run(["git", "-C", str(server.root / "big.git"), "config", "uploadpack.keepAlive", "1"], check=True)
    SHARED.forget_kept()
    yield server, server.git_url("big.git")
    SHARED.forget_kept()


def _clone(client: Client, url: str, dest: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["git", "clone", "-q", "--bare", url, str(dest)], env=client.env,
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _two_sharing(client: Client, url: str, tmp_path: Path,
                 held: HeldCount) -> tuple[subprocess.Popen[bytes], subprocess.Popen[bytes]]:
    joined = SHARED.joined
    first = _clone(client, url, tmp_path / "first.git")
    assert held.counting.wait(WAIT), "the pack was never counted"
    second = _clone(client, url, tmp_path / "second.git")
    _until(lambda: SHARED.joined > joined, "the second clone never joined the first's pack")
    return first, second


def test_the_count_stops_when_every_sharer_leaves(served: tuple[RunningServer, str], client: Client,
                                                  tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, url = served
    held = HeldCount(monkeypatch)
    first, second = _two_sharing(client, url, tmp_path, held)
    try:
        _kill(first)
        _kill(second)
        _until(lambda: held.gone >= 2, "the server never saw both clients go")
        # the last reader's leaving ends the generation at once (it waited for the held count before)
        _until(lambda: SHARED.running() == 0, "the shared generation still runs for nobody")
    finally:
        held.release.set()
        _kill(first)
        _kill(second)
    assert held.ended.wait(WAIT), "the counting never ended"
    assert isinstance(held.outcome, git_reach.WalkAbandoned), held.outcome
    assert held.walked <= 2 * git_reach.ABANDON_CHECK, held.walked  # was all 3,000 commits
    assert SHARED.kept() == 0  # nothing half-made is kept

    later = tmp_path / "later.git"  # the next clone computes its own, whole pack
    client.git("clone", "-q", "--bare", url, str(later))
    client.git("fsck", "--full", "--strict", cwd=later)
    assert client.git("rev-list", "--count", "main", cwd=later).stdout.strip() == "3000"
    assert SHARED.kept() == 1


def test_a_sharer_that_stays_gets_the_whole_pack(served: tuple[RunningServer, str], client: Client,
                                                 tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, url = served
    held = HeldCount(monkeypatch)
    first, second = _two_sharing(client, url, tmp_path, held)
    try:
        _kill(first)
        _until(lambda: held.gone >= 1, "the server never saw the first client go")
    finally:
        held.release.set()
        _kill(first)
    try:
        assert second.wait(WAIT) == 0
    finally:
        _kill(second)
    assert held.outcome is None and held.walked >= 3000
    client.git("fsck", "--full", "--strict", cwd=tmp_path / "second.git")
    assert client.git("rev-list", "--count", "main", cwd=tmp_path / "second.git").stdout.strip() == "3000"
    _until(lambda: SHARED.kept() == 1, "the whole pack was not kept")
