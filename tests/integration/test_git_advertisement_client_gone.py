"""A ``git ls-remote`` (or the first step of a fetch) whose client leaves while the server reads
its refs (a mirror's 100,000 tags: 0.8 s of a worker, packed-refs parsed, each ref peeled): the
snapshot ran to its end for nobody.  It now stops at its next look, every ``CHECK_EVERY`` refs, with ``ClientGone``: the
v0 advertisement and v2 ``ls-refs`` over SSH, the ``info/refs`` GET and the ``ls-refs`` POST over
HTTP.  (git:// reads nothing while a step runs: its client's leaving is seen at the next write.)"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from backends import git as git_backend
from backends import git_pack
from protocols import client_gone
from protocols.errors import ClientGone
from tests.conftest import LOOPBACK, Client, RunningServer, SshKeys, ssh_server_settings

REFS = 1000
WAIT = 20  # seconds: a bound for a broken run only


def _many_refs(repo: Path) -> None:
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "fast-import", "--quiet"], check=True, input=(
        b"commit refs/heads/main\ncommitter T <t@x> 1700000000 +0000\ndata 2\n1\nM 100644 inline f\ndata 2\n1\n\n"
        + b"".join(b"reset refs/tags/t%04d\nfrom refs/heads/main\n\n" % i for i in range(REFS))))
    subprocess.run(["git", "-C", str(repo), "pack-refs", "--all"], check=True)


class Watch:
    """The next ref snapshot of a watched worker is held until the client is gone (its flag says so)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.armed = False
        self.started = threading.Event()
        self.killed = threading.Event()
        self.ended = threading.Event()
        self.outcome: BaseException | None = None
        self.looks = 0
        snapshot_refs = git_pack.snapshot_refs
        check = client_gone.check

        def held(repo: Any) -> Any:
            if not self.armed:
                return snapshot_refs(repo)
            self.armed = False
            self.started.set()
            self.killed.wait(WAIT)
            gone = getattr(client_gone._local, "gone", None)
            deadline = time.monotonic() + (WAIT if gone is not None else 2)  # (unwatched: a while to notice)
            while time.monotonic() < deadline and not (gone is not None and gone()):
                time.sleep(0.01)
            try:
                return snapshot_refs(repo)
            except BaseException as exc:
                self.outcome = exc
                raise
            finally:
                self.ended.set()

        def counted(*args: Any) -> None:
            self.looks += 1
            check(*args)

        monkeypatch.setattr(git_pack, "snapshot_refs", held)
        # (its looks, where it looks: the parse of packed-refs, then the peeling of each ref)
        monkeypatch.setattr(git_pack, "check", counted, raising=False)
        monkeypatch.setattr(git_backend, "check", counted, raising=False)

    def list_then_leave(self, client: Client, url: str, version: str, env: dict[str, str] | None = None) -> None:
        self.armed = True
        proc = subprocess.Popen(["git", "-c", f"protocol.version={version}", "ls-remote", url],
                                env={**client.env, **(env or {})}, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            assert self.started.wait(WAIT), "the refs were never read"
            os.killpg(proc.pid, signal.SIGKILL)  # git and its ssh or curl helper
            proc.wait()
            self.killed.set()
            assert self.ended.wait(WAIT), "the snapshot never ended"
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        assert isinstance(self.outcome, ClientGone), self.outcome  # (was: every ref read, for nobody)
        assert self.looks == 1, self.looks


@pytest.mark.parametrize("version", ["0", "2"])
def test_ssh(make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys,
             monkeypatch: pytest.MonkeyPatch, version: str) -> None:
    server = make_server("fs", **ssh_server_settings(ssh_keys))
    _many_refs(server.root / "big.git")
    env = {"GIT_SSH_COMMAND": ssh_keys.command(server.port("ssh"))}
    Watch(monkeypatch).list_then_leave(client, f"ssh://alice@127.0.0.1:{server.port('ssh')}/big.git", version, env)


@pytest.mark.parametrize("version", ["0", "2"])
def test_http(make_server: Callable[..., RunningServer], client: Client, monkeypatch: pytest.MonkeyPatch,
              version: str) -> None:
    server = make_server("fs", http=[LOOPBACK])
    _many_refs(server.root / "big.git")
    Watch(monkeypatch).list_then_leave(client, server.url("http", "big.git"), version)


def test_a_listing_nobody_left_is_whole(make_server: Callable[..., RunningServer], client: Client) -> None:
    server = make_server("fs", http=[LOOPBACK])
    _many_refs(server.root / "big.git")
    listed = client.git("ls-remote", server.url("http", "big.git")).stdout.splitlines()
    assert len(listed) == REFS + 2  # HEAD, main and the tags
