"""A git fetch whose client goes away while the server counts its pack (Ctrl-C, a CI job
cancelled, a network cut): the counting ran in a worker to its end for nobody, however large the
pack.  It now stops at its next look (every ``ABANDON_CHECK`` commits or trees), over git://, SSH
and HTTP, protocol v0 and v2; it only reads, so nothing is left half done."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from backends import git_fastpack, git_reach
from gateway import git_session
from tests.conftest import LOOPBACK, Client, RunningServer, SshKeys, ssh_server_settings

COMMITS = 3000
WAIT = 20  # seconds: a bound for a broken run only; every wait below ends on an event


def _history(repo: Path) -> None:
    """``COMMITS`` commits on main, each changing a file of 50; ``old`` at the tenth."""
    stream = []
    for i in range(1, COMMITS + 1):
        data = b"line %d\n" % i
        msg = b"commit %d\n" % i
        stream.append(b"blob\nmark :%d\ndata %d\n%s\n" % (2 * i, len(data), data))
        stream.append(b"commit refs/heads/main\nmark :%d\ncommitter T <t@x> %d +0000\ndata %d\n%s"
                      % (2 * i + 1, 1_700_000_000 + 60 * i, len(msg), msg))
        if i > 1:
            stream.append(b"from :%d\n" % (2 * i - 1))
        stream.append(b"M 100644 :%d f%d.txt\n\n" % (2 * i, i % 50))
    stream.append(b"reset refs/heads/old\nfrom :21\n\n")
    subprocess.run(["git", "init", "-q", "--bare", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "fast-import", "--quiet"], input=b"".join(stream), check=True)
    # git:// notices a killed client when a write fails: its keepalives, every 5 s by default, took two
    # (10 s), which a loaded host stretched past WAIT; one a second keeps it within a few seconds
    subprocess.run(["git", "-C", str(repo), "config", "uploadpack.keepAlive", "1"], check=True)
    # no shortcut may answer the count: no repack for a bitmap after the first clone (9,000 objects
    # are under the default bitmap_min_objects, but a lower setting or more commits would count the
    # fetch from main's bitmap without a walk)
    subprocess.run(["git", "-C", str(repo), "config", "gc.auto", "0"], check=True)


class Watch:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.counting = threading.Event()
        self.gone = threading.Event()
        self.ended = threading.Event()
        self.walked = 0
        self.outcome: BaseException | None = None
        self.armed = False
        """Whether the next pack is the one watched (not the first clone's)."""
        self.sessions: list[object] = []
        """The watched fetch's sessions (made once armed): only their clients' going is waited for."""
        plan_pack = git_fastpack.plan_pack
        expand = git_reach.Walker._expand
        lost = git_session._GitSession.connection_lost
        init = git_session._GitSession.__init__

        def held_plan(*args: Any, **kwargs: Any) -> Any:
            if not self.armed:
                return plan_pack(*args, **kwargs)
            self.walked = 0
            self.counting.set()
            self.gone.wait(WAIT)  # the client leaves as the counting starts
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

        def made(session: Any, *args: Any) -> None:
            init(session, *args)
            if self.armed:
                self.sessions.append(session)

        def noticed(session: Any) -> None:
            lost(session)
            # not the first clone's: a v2 client says it is done as it exits, and a loaded host's
            # reactor saw that connection end after the watched fetch began (the counting was let
            # go before that fetch's client left, and ran to its end: failed twice in CI)
            if any(session is watched for watched in self.sessions):
                self.gone.set()

        monkeypatch.setattr(git_fastpack, "plan_pack", held_plan)
        monkeypatch.setattr(git_reach.Walker, "_expand", counted_expand)
        monkeypatch.setattr(git_session._GitSession, "__init__", made)
        monkeypatch.setattr(git_session._GitSession, "connection_lost", noticed)

    def fetch_then_leave(self, client: Client, url: str, version: str, work: Path,
                         env: dict[str, str] | None = None) -> None:
        client.git("clone", "-q", "--bare", "--single-branch", "-b", "old", url, str(work), env=env)
        self.armed = True
        proc = subprocess.Popen(["git", "-C", str(work), "-c", f"protocol.version={version}", "fetch", "-q", url,
                                 "main:main"], env={**client.env, **(env or {})}, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            assert self.counting.wait(WAIT), "the pack was never counted"
            os.killpg(proc.pid, signal.SIGKILL)  # git and its ssh or curl helper
            proc.wait()
            assert self.gone.wait(WAIT), "the server never saw the client go"
            assert self.ended.wait(WAIT), "the counting never ended"
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        assert isinstance(self.outcome, git_reach.WalkAbandoned), self.outcome
        assert self.walked <= 2 * git_reach.ABANDON_CHECK, self.walked  # was all 3,000 commits


class PreparedWatch(Watch):
    """A v2 fetch whose client leaves while the server reads its haves (the step before the pack):
    that step is held until the server has seen the client go."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        super().__init__(monkeypatch)
        self.preparing = threading.Event()
        self.prepared = threading.Event()
        self.packs = 0
        """Packs the watched fetch's sessions started."""
        prepare = git_session._prepare_v2_fetch
        fetch_prepared = git_session.UploadPackV2Session._fetch_prepared
        pack_stream = git_session.pack_stream

        def held_prepare(*args: Any) -> Any:
            if self.armed:
                self.preparing.set()
                self.gone.wait(WAIT)
            return prepare(*args)

        def after_prepared(session: Any, *args: Any) -> None:
            try:
                fetch_prepared(session, *args)
            finally:
                if any(session is watched for watched in self.sessions):
                    self.prepared.set()

        def counted_stream(*args: Any) -> Any:
            if self.armed:
                self.packs += 1
            return pack_stream(*args)

        monkeypatch.setattr(git_session, "_prepare_v2_fetch", held_prepare)
        monkeypatch.setattr(git_session.UploadPackV2Session, "_fetch_prepared", after_prepared)
        monkeypatch.setattr(git_session, "pack_stream", counted_stream)

    def leave_while_prepared(self, client: Client, url: str, work: Path, env: dict[str, str] | None = None) -> None:
        client.git("clone", "-q", "--bare", "--single-branch", "-b", "old", url, str(work), env=env)
        self.armed = True
        proc = subprocess.Popen(["git", "-C", str(work), "-c", "protocol.version=2", "fetch", "-q", url,
                                 "main:main"], env={**client.env, **(env or {})}, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            assert self.preparing.wait(WAIT), "the fetch was never prepared"
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            assert self.gone.wait(WAIT), "the server never saw the client go"
            assert self.prepared.wait(WAIT), "the prepared fetch was never answered"
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if self.packs:  # (was: the pack's counting ran to its end, every commit walked, for nobody)
            self.ended.wait(WAIT)
        assert not self.packs, f"a pack was started for a client that had gone: {self.outcome!r}, {self.walked} walked"


@pytest.mark.parametrize("version", ["0", "2"])
def test_git_daemon_fetch(make_server: Callable[..., RunningServer], client: Client, tmp_path: Path,
                          monkeypatch: pytest.MonkeyPatch, version: str) -> None:
    server = make_server("fs", git=[LOOPBACK])
    _history(server.root / "big.git")
    watch = Watch(monkeypatch)
    watch.fetch_then_leave(client, server.git_url("big.git"), version, tmp_path / "work.git")


@pytest.mark.parametrize("version", ["0", "2"])
def test_http_fetch(make_server: Callable[..., RunningServer], client: Client, tmp_path: Path,
                    monkeypatch: pytest.MonkeyPatch, version: str) -> None:
    server = make_server("fs", http=[LOOPBACK])
    _history(server.root / "big.git")
    watch = Watch(monkeypatch)
    watch.fetch_then_leave(client, server.url("http", "big.git"), version, tmp_path / "work.git")


def test_ssh_fetch(make_server: Callable[..., RunningServer], client: Client, tmp_path: Path, ssh_keys: SshKeys,
                   monkeypatch: pytest.MonkeyPatch) -> None:
    server = make_server("fs", **ssh_server_settings(ssh_keys))
    _history(server.root / "big.git")
    watch = Watch(monkeypatch)
    url = f"ssh://alice@127.0.0.1:{server.port('ssh')}/big.git"
    env = {"GIT_SSH_COMMAND": ssh_keys.command(server.port("ssh"))}
    watch.fetch_then_leave(client, url, "2", tmp_path / "work.git", env=env)


# git:// is not among them: while a step runs the session reads nothing, so a client that leaves
# then is seen at the first write, which is the pack's (and its counting stops, as above)
def test_http_fetch_gone_before_counting(make_server: Callable[..., RunningServer], client: Client,
                                         tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = make_server("fs", http=[LOOPBACK])
    _history(server.root / "big.git")
    watch = PreparedWatch(monkeypatch)
    watch.leave_while_prepared(client, server.url("http", "big.git"), tmp_path / "work.git")


def test_ssh_fetch_gone_before_counting(make_server: Callable[..., RunningServer], client: Client,
                                        tmp_path: Path, ssh_keys: SshKeys, monkeypatch: pytest.MonkeyPatch) -> None:
    server = make_server("fs", **ssh_server_settings(ssh_keys))
    _history(server.root / "big.git")
    watch = PreparedWatch(monkeypatch)
    url = f"ssh://alice@127.0.0.1:{server.port('ssh')}/big.git"
    env = {"GIT_SSH_COMMAND": ssh_keys.command(server.port("ssh"))}
    watch.leave_while_prepared(client, url, tmp_path / "work.git", env=env)
