"""Shared fixtures: the real service on 127.0.0.1 ephemeral ports, and isolated clients.

The service runs in-process on a real reactor in a background thread, so a
test can drive the real ``git``/``hg``/``ssh`` clients with plain
``subprocess.run`` and still reach into the backend (e.g. to create a repo in
the memory backend).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from twisted.logger import globalLogPublisher

from backends import load_backend
from backends.interfaces import Backend
from tests import hg_chg, hg_command_server

# Property tests check results, not speed: a shared 2-core CI machine must not turn a
# slow example into a failure (hypothesis' default deadline is 200 ms per example).
settings.register_profile("hgwire", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("hgwire")

BACKENDS = ["memory", "fs"]
LOOPBACK = "tcp:0:interface=127.0.0.1"
VENV_BIN = str(Path(__file__).resolve().parent.parent / ".venv" / "bin")

# git packs with one delta-search thread per core, and which bases the threads pick depends on how
# they are scheduled: the same history repacked (or pushed) gives other deltas on a loaded host,
# and tests that build a delta structure and check what the server makes of it failed by chance
# (a CI run: a shallow pack's trees composed once where twice were wanted).  Every git the tests
# run, theirs and the server's, searches with one thread (git's documented GIT_CONFIG_COUNT).
# And no ``git maintenance run --auto`` after each commit and fetch (a process of its own each time,
# some 3 ms, tens of thousands in a run): hgwire's repacks are its own, started by name.
if "GIT_CONFIG_COUNT" not in os.environ:
    os.environ.update({"GIT_CONFIG_COUNT": "2", "GIT_CONFIG_KEY_0": "pack.threads", "GIT_CONFIG_VALUE_0": "1",
                       "GIT_CONFIG_KEY_1": "maintenance.auto", "GIT_CONFIG_VALUE_1": "false"})


@pytest.fixture(scope="session")
def reactor() -> Iterator[Any]:
    """The global Twisted reactor, running in a daemon thread for the whole session."""
    from twisted.internet import reactor as the_reactor

    thread = threading.Thread(target=the_reactor.run, kwargs={"installSignalHandlers": False},
                              name="reactor", daemon=True)
    thread.start()
    yield the_reactor
    the_reactor.callFromThread(the_reactor.stop)
    thread.join(10)


@dataclass
class RunningServer:
    """A started service and the ways to reach it."""

    service: Any
    backend: Backend
    root: Path
    backend_name: str

    def url(self, kind: str, name: str) -> str:
        return str(self.service.listener(kind).url(name))

    def git_url(self, name: str) -> str:
        return self.url("git", name)

    def port(self, kind: str) -> int:
        return int(self.service.listener(kind).port.getHost().port)

    def repo_path(self, name: str) -> Path:
        """Where the fs backend keeps ``name`` (only meaningful for the fs backend)."""
        return self.root / name

    def settled(self, kinds: tuple[str, ...] = ("git", "ssh"), seconds: float = 30) -> None:
        """Wait until the server has seen every connection of its ``kinds`` listeners close.

        A git:// request's line and an SSH session's line (and their ``/.metrics`` counts) are
        logged when the server sees the connection or the channel close, which on a loaded host
        comes after the client has exited: a test reading them waits here first.  The count is
        read on the reactor's thread, between its events, so a close is either not seen yet or
        logged already.  (HTTP clients may keep a connection open: not waited for by default.)"""
        import time

        from twisted.internet import reactor as the_reactor
        from twisted.internet.threads import blockingCallFromThread

        reactor: Any = the_reactor

        def still_open() -> int:
            return sum(len(guard.protocols) for guard in self.service.config.guards if guard.kind in kinds)

        deadline = time.monotonic() + seconds
        while (left := blockingCallFromThread(reactor, still_open)) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not left, f"{left} connections to the server were still open after {seconds} s"


def start_server(reactor: Any, backend_name: str, root: Path, **settings: Any) -> RunningServer:
    from twisted.internet.threads import blockingCallFromThread

    from gateway.config import ServiceConfig
    from gateway.service import build_service

    listeners = {kind: settings.pop(kind, []) for kind in ("git", "ssh", "http")}
    if not any(listeners.values()):
        listeners["git"] = [LOOPBACK]
    root.mkdir(parents=True, exist_ok=True)
    settings.setdefault("shutdown_grace", 0)  # a test's stop cuts what it left open (test_graceful_stop waits)
    backend = load_backend(backend_name, str(root))
    config = ServiceConfig(backend=backend, root=str(root), **listeners, **settings)
    service = build_service(config)

    def start() -> Any:
        service.startService()
        return service.listening()

    blockingCallFromThread(reactor, start)
    return RunningServer(service, backend, root, backend_name)


def stop_server(reactor: Any, server: RunningServer) -> None:
    from twisted.internet.threads import blockingCallFromThread

    blockingCallFromThread(reactor, server.service.stopService)


@pytest.fixture
def make_server(reactor: Any, tmp_path: Path) -> Iterator[Callable[..., RunningServer]]:
    """``make_server("fs", git=[LOOPBACK], read_only=True)`` -> a running server, stopped after the test."""
    started: list[RunningServer] = []

    def make(backend_name: str, **settings: Any) -> RunningServer:
        root = tmp_path / f"root-{backend_name}-{len(started)}"
        server = start_server(reactor, backend_name, root, **settings)
        started.append(server)
        return server

    yield make
    for server in started:
        stop_server(reactor, server)


def hg_history_served(make_server: Callable[..., RunningServer], client: Client, name: str,
                      history: Callable[[Client, Path], None]) -> tuple[RunningServer, Path]:
    """An fs server over HTTP whose repository ``name`` ``history(client, path)`` made: the
    server and the repository's path (for the tests that compare pages with ``hg serve``'s)."""
    server = make_server("fs", http=[LOOPBACK])
    repo = server.root / name
    history(client, repo)
    return server, repo


@pytest.fixture(params=BACKENDS)
def server(request: pytest.FixtureRequest, make_server: Callable[..., RunningServer]) -> RunningServer:
    """A git:// server, once per backend."""
    return make_server(request.param, git=[LOOPBACK])


@pytest.fixture
def client_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """An environment for real clients that ignores the machine's and user's config
    (``client_environment``), their temporary files in a directory of the test's own, removed after
    it: an hg push over HTTP writes its whole bundle to $TMPDIR/hg-bundle-*.hg first, and a client a
    test kills mid-push left it in the host's /tmp (one 36 MB file a run, from
    test_an_interrupted_push_leaves_no_snapshot_behind).  A short path beside the host's, not under
    tmp_path: git-lfs puts its SSH connection's control socket there, whose path a socket address
    bounds to 107 bytes (under tmp_path git-lfs fell back to git-lfs-authenticate)."""
    scratch = Path(tempfile.mkdtemp(prefix="hgw-client-"))
    try:
        yield client_environment(tmp_path, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def client_environment(tmp_path: Path, scratch: Path | None = None) -> dict[str, str]:
    """``client_env``'s environment (its home in ``tmp_path``), for a module's set-up too; its
    clients' temporary files in ``scratch`` (``tmp_path/tmp`` by default)."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    if scratch is None:
        scratch = tmp_path / "tmp"
        scratch.mkdir(exist_ok=True)
    env = {
        "PATH": VENV_BIN + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "TMPDIR": str(scratch),
        "LANG": "C.UTF-8",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_AUTHOR_NAME": "Test Author",
        "GIT_AUTHOR_EMAIL": "author@example.com",
        "GIT_COMMITTER_NAME": "Test Committer",
        "GIT_COMMITTER_EMAIL": "committer@example.com",
        "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
        "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
        "HGRCPATH": "",
        "HGPLAIN": "1",
        "HGUSER": "Test <test@example.com>",
        "HGENCODING": "utf-8",
    }
    gitconfig = home / ".gitconfig"
    if gitconfig.exists():  # (a second environment in the same home: what a test added to it kept)
        for key, value in _GLOBAL_GIT_CONFIG:
            subprocess.run(["git", "config", "--global", key, value], env=env, check=True)
    else:  # (as `git config --global` writes it, without a git process for each setting)
        gitconfig.write_text("".join(f"[{key.partition('.')[0]}]\n\t{key.partition('.')[2]} = {value}\n"
                                     for key, value in _GLOBAL_GIT_CONFIG))
    return env


_GLOBAL_GIT_CONFIG = (("init.defaultBranch", "main"), ("pack.threads", "1"), ("maintenance.auto", "false"))
"""Every client environment's ``~/.gitconfig`` (see ``GIT_CONFIG_COUNT`` above)."""


@dataclass
class Client:
    """Runs a real command-line client in an isolated environment."""

    env: dict[str, str]
    cwd: Path

    def run(self, *args: str | Path, cwd: Path | None = None, check: bool = True,
            input: bytes | None = None, timeout: float = 120, env: dict[str, str] | None = None,
            ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([str(a) for a in args], cwd=cwd or self.cwd, env={**self.env, **(env or {})},
                                input=input.decode() if input is not None else None, capture_output=True,
                                text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(map(str, args))} failed with {result.returncode}:\n"
                                 f"stdout: {result.stdout}\nstderr: {result.stderr}")
        return result

    def git(self, *args: str | Path, **kw: Any) -> subprocess.CompletedProcess[str]:
        return self.run("git", *args, **kw)

    def hg(self, *args: str | Path, **kw: Any) -> subprocess.CompletedProcess[str]:
        hg = os.path.join(VENV_BIN, "hg")
        if not kw.keys() - {"cwd", "check", "timeout"}:  # no input, no environment of its own
            cwd = Path(kw.get("cwd") or self.cwd)
            result = hg_command_server.run(hg, [str(a) for a in args], cwd, self.env, kw.get("timeout", 120))
            if result is not None:
                if kw.get("check", True) and result.returncode != 0:
                    raise AssertionError(f"hg {' '.join(map(str, args))} failed with {result.returncode}:\n"
                                         f"stdout: {result.stdout}\nstderr: {result.stderr}")
                return result
        return self.run(hg, *args, **kw)


@pytest.fixture
def client(client_env: dict[str, str], tmp_path: Path) -> Client:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return Client(client_env, work)


def pytest_sessionstart(session: pytest.Session) -> None:
    """A missing client is a failed set-up, not a skip: ``make test`` installs them."""
    missing = [tool for tool in ("git", "ssh", "ssh-keygen") if shutil.which(tool) is None]
    if not os.path.exists(os.path.join(VENV_BIN, "hg")):
        missing.append("hg (the test extra)")
    if missing:
        raise pytest.UsageError(f"the test suite needs {', '.join(missing)}; run `make test` to install them")


def pytest_sessionfinish(session: pytest.Session) -> None:
    hg_command_server.stop_all()
    hg_chg.stop_all()


@dataclass
class SshKeys:
    """A user key, its authorized_keys file and a host key path for an SSH listener."""

    key: Path
    authorized_keys: Path
    host_key: Path

    def command(self, port: int) -> str:
        """The ``ssh`` command line a client uses (``GIT_SSH_COMMAND``, hg's ``ui.ssh``)."""
        return (f"/usr/bin/ssh -F /dev/null -p {port} -i {self.key} -o IdentitiesOnly=yes -o BatchMode=yes "
                "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR")


@pytest.fixture(scope="session")
def ssh_keys(tmp_path_factory: pytest.TempPathFactory) -> SshKeys:
    base = tmp_path_factory.mktemp("ssh-keys")
    key = base / "alice_key"
    subprocess.run(["/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "alice", "-f", str(key)],
                   check=True)
    authorized = base / "authorized_keys"
    authorized.write_text((base / "alice_key.pub").read_text())
    return SshKeys(key, authorized, base / "host_key")


def ssh_server_settings(keys: SshKeys) -> dict[str, Any]:
    """``make_server`` settings for an SSH listener that lets ``keys.key`` in."""
    return {"ssh": [LOOPBACK], "host_key": str(keys.host_key), "authorized_keys": str(keys.authorized_keys)}


@contextmanager
def log_events() -> Iterator[list[dict[str, Any]]]:
    """Every log event emitted while the block runs (the in-process server's included)."""
    seen: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(seen.append)  # type: ignore[arg-type]
    try:
        yield seen
    finally:
        globalLogPublisher.removeObserver(seen.append)  # type: ignore[arg-type]


@pytest.fixture
def live_pid() -> Iterator[int]:
    """A live process of this host, not this one: what a real ``hg`` holding a lock looks like."""
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        yield sleeper.pid
    finally:
        sleeper.kill()
        sleeper.wait()
