"""Stopping the real ``twistd hgwire`` (SIGTERM) while clients are served.

As git daemon's and sshd's sessions outlive their listener, a clone or push in
progress completes: the listeners close at once (a new connection is refused),
and the open connections get ``--shutdown-grace`` seconds to finish.  A
connection between requests (an HTTP keep-alive connection, an SSH connection
with no session) is closed once quiet, and whatever is still open when the
grace ends is closed then.  Each push here waits in a hook of the repository
when the signal comes, so the timing does not depend on the machine's speed.
"""

from __future__ import annotations

import contextlib
import http.client
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bench.crash import LOOPBACK, PASSWORD, USER, Server, client_env
from tests import hg_command_server
from tests.conftest import VENV_BIN
from tests.integration.test_hg_push_spool import kept_bundles

STOPPED = (0, -signal.SIGTERM)
"""twistd's exit status once stopped by SIGTERM (Twisted ends with the signal that stopped it)."""
HG = f"{VENV_BIN}/hg"


class StoppingServer(Server):
    """The crash tests' server, with ``--shutdown-grace`` and URLs straight to its ports."""

    def __init__(self, work: Path, root: Path, grace: float) -> None:
        super().__init__(work, root)
        self.grace = grace

    def argv(self) -> list[str]:
        return [*super().argv(), "--shutdown-grace", str(self.grace)]

    def direct(self, transport: str, name: str) -> str:
        host = f"{LOOPBACK}:{self.ports[transport]}"
        return {"git": f"git://{host}/{name}", "ssh": f"ssh://{USER}@{host}/{name}",
                "http": f"http://{USER}:{PASSWORD}@{host}/{name}"}[transport]

    def terminate_and_wait(self, timeout: float) -> tuple[int, float, str]:
        """SIGTERM; the exit status, the seconds it took and the log."""
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        status = self.proc.wait(timeout)
        took = time.monotonic() - started
        self.proc = None
        return status, took, (self.work / f"server-{self.starts}.log").read_text(errors="replace")


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Callable[[float], StoppingServer]]:
    servers: list[StoppingServer] = []

    def start(grace: float) -> StoppingServer:
        server = StoppingServer(tmp_path / f"server{len(servers)}", tmp_path / f"root{len(servers)}", grace)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        if server.proc is not None:
            server.proc.kill()
            server.proc.wait()
        for relay in server.relays.values():
            relay.close()


def _env(tmp_path: Path, server: StoppingServer) -> dict[str, str]:
    return {**client_env(tmp_path / "home"), "GIT_SSH_COMMAND": server.ssh_command(), "GIT_SSH_VARIANT": "ssh"}


def _run(args: list[str], env: dict[str, str], cwd: Path | None = None, check: bool = True
         ) -> subprocess.CompletedProcess[str]:
    if args[0] == HG:  # local hg commands in the tests' command server (any other as its own process)
        done = hg_command_server.subprocess_run(args, cwd=cwd or Path.cwd(), env=env, text=True, timeout=120)
    else:
        done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    if check:
        assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done


def _wait_for(path: Path, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def _hook(path: Path, marker: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\ncat > /dev/null\ntouch {marker}\nsleep 2\n")
    path.chmod(0o755)


@pytest.mark.parametrize("transport", ["git", "ssh", "http"])
def test_a_git_push_in_progress_completes_after_sigterm(make: Callable[[float], StoppingServer], tmp_path: Path, transport: str) -> None:
    server: StoppingServer = make(30)
    env = _env(tmp_path, server)
    bare = server.root / "proj.git"
    _run(["git", "init", "-q", "--bare", str(bare)], env)
    work = tmp_path / "work"
    _run(["git", "init", "-q", "-b", "main", str(work)], env)
    (work / "a.txt").write_text("a\n")
    _run(["git", "add", "a.txt"], env, work)
    _run(["git", "commit", "-q", "-m", "a"], env, work)
    tip = _run(["git", "rev-parse", "HEAD"], env, work).stdout.strip()
    marker = tmp_path / "in-hook"
    _hook(bare / "hooks" / "pre-receive", marker)

    push = subprocess.Popen(["git", "push", "-q", server.direct(transport, "proj"), "HEAD:main"], cwd=work,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(marker, push)
    server.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
    time.sleep(0.3)
    late = _run(["git", "ls-remote", server.direct(transport, "proj")], env, check=False)
    assert late.returncode != 0  # the listener is closed: nothing new starts
    _, err = push.communicate(timeout=60)
    assert push.returncode == 0, err  # the push in progress went through
    assert server.proc.wait(30) in STOPPED  # type: ignore[union-attr]
    log = (server.work / f"server-{server.starts}.log").read_text()
    assert "1 open connections get up to 30.0 s to finish" in log and "every connection finished" in log
    server.proc = None
    assert _run(["git", "--git-dir", str(bare), "rev-parse", "refs/heads/main"], env).stdout.strip() == tip
    _run(["git", "--git-dir", str(bare), "fsck", "--full", "--strict"], env)


def test_hg_clone_and_push_in_progress_complete_after_sigterm(make: Callable[[float], StoppingServer], tmp_path: Path) -> None:
    """An hg clone over HTTP (several requests on keep-alive connections) and a push over SSH."""
    server: StoppingServer = make(30)
    env = {**_env(tmp_path, server), "HGRCPATH": "/dev/null"}
    repo = server.root / "r"
    _run([HG, "init", str(repo)], env)
    (repo / "a").write_text("a\n")
    _run([HG, "commit", "-R", str(repo), "-q", "-A", "-m", "a", "-u", "t"], env)
    cloning, pushing = tmp_path / "cloning", tmp_path / "pushing"
    (repo / ".hg" / "hgrc").write_text(f"[phases]\npublish = true\n[hooks]\n"
                                       f"preoutgoing = touch {cloning}; sleep 2\n"
                                       f"pretxnchangegroup = touch {pushing}; sleep 2\n")
    ssh = ["--config", f"ui.ssh={server.ssh_command()}"]
    clone = subprocess.Popen([HG, "clone", "-q", server.direct("http", "r"), str(tmp_path / "c")], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(cloning, clone)
    first = server.proc
    assert first is not None
    first.send_signal(signal.SIGTERM)
    _, err = clone.communicate(timeout=60)
    assert clone.returncode == 0, err
    assert first.wait(30) in STOPPED
    server.proc = None
    assert (tmp_path / "c" / "a").read_text() == "a\n"

    server.start()  # the same root and ports
    work = tmp_path / "c"
    (work / "b").write_text("b\n")
    _run([HG, "commit", "-R", str(work), "-q", "-A", "-m", "b", "-u", "t"], env)
    push = subprocess.Popen([HG, "push", "-q", *ssh, "-R", str(work), server.direct("ssh", "r")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(pushing, push)
    status, _, log = server.terminate_and_wait(30)
    _, err = push.communicate(timeout=60)
    assert push.returncode == 0, err
    assert status in STOPPED and "every connection finished" in log
    _run([HG, "verify", "-R", str(repo), "-q"], env)
    assert _run([HG, "log", "-R", str(repo), "-r", "tip", "-T", "{desc}"], env).stdout == "b"


def test_idle_connections_are_closed_and_the_grace_ends_the_rest(make: Callable[[float], StoppingServer], tmp_path: Path) -> None:
    """An HTTP keep-alive connection between requests does not hold the stop; an SSH session that
    never ends is closed when the grace runs out."""
    server: StoppingServer = make(30)
    env = _env(tmp_path, server)
    _run(["git", "init", "-q", "--bare", str(server.root / "proj.git")], env)
    keep_alive = http.client.HTTPConnection(LOOPBACK, server.ports["http"], timeout=30)
    keep_alive.request("GET", "/proj.git/info/refs?service=git-upload-pack")
    answer = keep_alive.getresponse()
    answer.read()
    assert answer.status == 200 and not answer.will_close
    status, took, log = server.terminate_and_wait(20)
    assert status in STOPPED and took < 10, log  # not the 30 s grace: the idle connection was closed
    keep_alive.close()

    short = make(1.5)
    env = _env(tmp_path, short)
    _run(["git", "init", "-q", "--bare", str(short.root / "proj.git")], env)
    # a real ssh session that waits for the client's wants for ever
    ssh = subprocess.Popen([*short.ssh_command().split(), "-p", str(short.ports["ssh"]), f"{USER}@{LOOPBACK}",
                            "git-upload-pack 'proj.git'"], env=env, stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert ssh.stdout is not None
    assert ssh.stdout.read(4)  # the advertisement began: the session is open
    status, took, log = short.terminate_and_wait(30)
    assert status in STOPPED and 1.5 <= took < 15, log
    assert "1 connections still open after the 1.5 s shutdown grace; closing them" in log
    ssh.kill()
    ssh.communicate()


@pytest.mark.parametrize("transport", ["ssh", "http"])
def test_an_hg_push_whose_client_stalls_past_the_grace_ends_and_the_server_stops(
        make: Callable[[float], StoppingServer], tmp_path: Path, transport: str) -> None:
    """A push's thread waits on its client for the rest of the bundle (over SSH, and over HTTP where
    the bundle is read as it arrives), which it keeps in the repository's ``.hg`` until it is whole.  A client that stalls past the grace: its connection is
    closed, which lets the thread go, before the threads are joined (the server hung there before:
    the threads were joined in the reactor turn that closed the connections, whose loss comes a
    turn later).  Nothing of the push is kept."""
    import base64
    import socket

    server: StoppingServer = make(1.5)
    env = {**_env(tmp_path, server), "HGRCPATH": "/dev/null"}
    repo = server.root / "r"
    _run([HG, "init", str(repo)], env)
    work = tmp_path / "w"
    _run([HG, "init", str(work)], env)
    for n in range(20):
        (work / f"f{n}").write_bytes(bytes([n]) * 200_000)
    _run([HG, "commit", "-R", str(work), "-q", "-A", "-m", "big", "-u", "t"], env)
    bundle_path = tmp_path / "b.hg"
    _run([HG, "bundle", "-R", str(work), "-q", "-t", "none-v2", "-a", str(bundle_path)], env)
    bundle = bundle_path.read_bytes()
    half = bundle[:len(bundle) // 2]
    stalled: socket.socket | subprocess.Popen[bytes]
    if transport == "http":
        stalled = socket.create_connection((LOOPBACK, server.ports["http"]), timeout=30)
        auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        stalled.sendall((f"POST /r?cmd=unbundle HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\n"
                         "X-HgArg-1: heads=666f726365\r\nContent-Type: application/mercurial-0.1\r\n"
                         f"Content-Length: {len(bundle)}\r\nConnection: close\r\n\r\n").encode() + half)
    else:
        stalled = subprocess.Popen([*server.ssh_command().split(), "-p", str(server.ports["ssh"]),
                                    f"{USER}@{LOOPBACK}", "hg -R r serve --stdio"], env=env,
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert stalled.stdin is not None and stalled.stdout is not None
        stalled.stdin.write(b"unbundle\nheads 10\n666f726365" + b"%d\n" % len(half) + half)
        stalled.stdin.flush()
    deadline = time.monotonic() + 30
    assert server.proc is not None
    while not kept_bundles(repo, server.proc.pid):  # the bundle is being received
        assert time.monotonic() < deadline, "the push never started"
        time.sleep(0.05)
    status, took, log = server.terminate_and_wait(30)
    assert status in STOPPED and took < 15, (took, log)
    assert "closing them" in log
    if isinstance(stalled, socket.socket):
        stalled.close()
    else:
        stalled.kill()
        stalled.communicate()
    _run([HG, "verify", "-R", str(repo), "-q"], env)
    assert _run([HG, "log", "-R", str(repo), "-T", "{desc}"], env).stdout == ""


def _slow_relay(target: int, rate: int) -> tuple[int, Callable[[], None]]:
    """A relay to ``target`` on a port of its own that passes what the server sends ``rate`` bytes a
    second (what a slow client's link does); its port and how to close it."""
    import socket
    import threading

    listener = socket.create_server((LOOPBACK, 0))
    closing: list[socket.socket] = [listener]

    def pump(source: socket.socket, sink: socket.socket, limit: int | None) -> None:
        try:
            while data := source.recv(16384):
                sink.sendall(data)
                if limit:
                    time.sleep(len(data) / limit)
        except OSError:
            pass
        finally:
            for end in (sink, source):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def serve() -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection((LOOPBACK, target))
            closing.extend([client, upstream])
            threading.Thread(target=pump, args=(client, upstream, None), daemon=True).start()
            threading.Thread(target=pump, args=(upstream, client, rate), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()

    def close() -> None:
        for sock in closing:
            with contextlib.suppress(OSError):
                sock.close()

    return listener.getsockname()[1], close


def test_a_slow_http_clone_in_progress_completes_after_sigterm(
        make: Callable[[float], StoppingServer], tmp_path: Path) -> None:
    """The response is handed over whole while a slow client's link still carries it: the
    connection is then between requests, and the stop closes it once those bytes are sent (it was
    dropped with them: "fetch-pack: unexpected disconnect while reading sideband packet")."""
    import os

    server: StoppingServer = make(30)
    env = _env(tmp_path, server)
    work = tmp_path / "big-src"
    _run(["git", "init", "-q", "-b", "main", str(work)], env)
    (work / "big.bin").write_bytes(os.urandom(8 << 20))
    _run(["git", "add", "big.bin"], env, cwd=work)
    _run(["git", "commit", "-qm", "big"], env, cwd=work)
    _run(["git", "clone", "-q", "--bare", str(work), str(server.root / "proj.git")], env)
    port, close = _slow_relay(server.ports["http"], 2 << 20)
    try:
        clone = subprocess.Popen(["git", "clone", "-q", f"http://{LOOPBACK}:{port}/proj.git", str(tmp_path / "c")],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(2)  # the pack is made and handed over; the relay passes it at 2 MiB/s
        status, _took, log = server.terminate_and_wait(40)
        _out, err = clone.communicate(timeout=60)
    finally:
        close()
    assert clone.returncode == 0, err
    assert status in STOPPED, log
    _run(["git", "fsck", "--full"], env, cwd=tmp_path / "c")


@pytest.mark.parametrize("vcs", ["git", "hg"])
def test_a_hook_that_outlives_the_grace_is_stopped_and_the_push_refused(
        make: Callable[[float], StoppingServer], tmp_path: Path, vcs: str) -> None:
    """A push whose hook runs on past the grace: its connection is closed at the grace's end, and
    the process waited for the hook (up to its 300 s limit) saying nothing.  Now the hook is stopped
    at the grace's end, the push is refused with nothing written, and the next start takes pushes."""
    server: StoppingServer = make(2)
    env = _env(tmp_path, server)
    marker = tmp_path / "in-hook"
    hook = f"#!/bin/sh\ncat > /dev/null\necho $$ > {marker}\nsleep 60\n"
    work = tmp_path / "work"
    if vcs == "git":
        repo = server.root / "proj.git"
        _run(["git", "init", "-q", "--bare", str(repo)], env)
        (repo / "hooks" / "pre-receive").write_text(hook)
        (repo / "hooks" / "pre-receive").chmod(0o755)
        _run(["git", "init", "-q", "-b", "main", str(work)], env)
        (work / "a.txt").write_text("a\n")
        _run(["git", "add", "a.txt"], env, work)
        _run(["git", "commit", "-q", "-m", "a"], env, work)
        push_argv = ["git", "push", "-q", server.direct("git", "proj"), "HEAD:main"]
    else:
        repo = server.root / "proj"
        _run([HG, "init", str(repo)], env)
        script = tmp_path / "hook.sh"
        script.write_text(hook.replace("cat > /dev/null\n", ""))
        script.chmod(0o755)
        (repo / ".hg" / "hgrc").write_text(f"[hooks]\npretxnchangegroup.slow = {script}\n")
        _run([HG, "init", str(work)], env)
        (work / "a.txt").write_text("a\n")
        _run([HG, "commit", "-R", str(work), "-q", "-A", "-m", "a", "-u", "t"], env)
        push_argv = [HG, "-R", str(work), "push", server.direct("ssh", "proj"),
                     "--ssh", server.ssh_command() + f" -p {server.ports['ssh']}"]
    push = subprocess.Popen(push_argv, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(marker, push)
    time.sleep(0.2)  # (the pid written)
    hook_pid = int(marker.read_text())
    status, took, log = server.terminate_and_wait(20)
    assert status in STOPPED and took < 15, log  # 2 s of grace, the hook's SIGTERM, not its 60 s
    assert "hgwire: stopping the hook" in log and "at the end of the 2.0 s shutdown grace" in log, log
    push.communicate(timeout=30)
    assert push.returncode != 0
    assert _gone(hook_pid), Path(f"/proc/{hook_pid}/status").read_text()
    if vcs == "git":
        assert _run(["git", "--git-dir", str(repo), "for-each-ref"], env).stdout == ""
        _run(["git", "--git-dir", str(repo), "fsck", "--full", "--strict"], env)
        (repo / "hooks" / "pre-receive").unlink()
    else:
        assert _run([HG, "log", "-R", str(repo), "-T", "{node}\\n"], env).stdout == ""
        _run([HG, "verify", "-R", str(repo), "-q"], env)
        (repo / ".hg" / "hgrc").write_text("")
    server.start()
    _run(push_argv, env, work)


def _gone(pid: int) -> bool:
    """Whether ``pid`` has ended (a zombie left to an init that does not reap counts as ended)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z":
            return True
        time.sleep(0.1)
    return False


def test_connections_cut_at_the_grace_s_end_are_logged_as_cut(make: Callable[[float], StoppingServer],
                                                                tmp_path: Path) -> None:
    """Each connection the stop closed once the grace was over was logged ``client gone``, as if its
    client had left: an operator reading the log after a restart could not tell.  Over git://, SSH
    (git and hg) and HTTP its line now says ``cut at shutdown after the grace``."""
    import base64
    import os
    import socket

    server: StoppingServer = make(1.5)
    env = _env(tmp_path, server)
    work = tmp_path / "w"
    _run(["git", "init", "-q", str(work)], env)
    (work / "big").write_bytes(os.urandom(20_000_000))  # more than the sockets hold: the clone is under way
    _run(["git", "-C", str(work), "add", "big"], env)
    _run(["git", "-C", str(work), "commit", "-qm", "big"], env)
    _run(["git", "clone", "-q", "--bare", str(work), str(server.root / "big.git")], env)
    _run([HG, "init", str(server.root / "r")], env)
    head = _run(["git", "-C", str(work), "rev-parse", "HEAD"], env).stdout.strip()
    ssh = [*server.ssh_command().split(), "-p", str(server.ports["ssh"]), f"{USER}@{LOOPBACK}"]
    git_ssh = subprocess.Popen([*ssh, "git-upload-pack 'big.git'"], env=env, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    hg_ssh = subprocess.Popen([*ssh, "hg -R r serve --stdio"], env=env, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert git_ssh.stdout is not None and hg_ssh.stdin is not None and hg_ssh.stdout is not None
    hg_ssh.stdin.write(b"hello\n")
    hg_ssh.stdin.flush()
    git = socket.create_connection((LOOPBACK, server.ports["git"]), timeout=30)
    request = b"git-upload-pack /big.git\0host=x\0"
    git.sendall(b"%04x" % (len(request) + 4) + request)
    http = socket.create_connection((LOOPBACK, server.ports["http"]), timeout=30)
    http.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    body = f"0032want {head}\n00000009done\n".encode()
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    http.sendall((f"POST /big.git/git-upload-pack HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\n"
                  "Content-Type: application/x-git-upload-pack-request\r\n"
                  f"Content-Length: {len(body)}\r\n\r\n").encode() + body)
    # every session has begun answering (advertisements, hello, the clone's pack), and no client reads on
    assert git_ssh.stdout.read(4) and hg_ssh.stdout.read(2) and git.recv(4) and http.recv(100)
    status, _took, log = server.terminate_and_wait(60)
    assert status in STOPPED, log
    assert "4 connections still open after the 1.5 s shutdown grace; closing them" in log, log
    lines = [line for line in log.splitlines() if " in " in line and ("big.git" in line or " r " in line)]
    for said in ("git-daemon git-upload-pack big.git", "git-ssh git-upload-pack big.git", "hg-ssh hg-serve r",
                 "git-http git-upload-pack big.git"):
        assert any(said in line and ": cut at shutdown after the grace in " in line for line in lines), (said, log)
    assert "client gone" not in log, log
    for client in (git_ssh, hg_ssh):
        client.kill()
        client.communicate()
    git.close()
    http.close()


def test_hg_streams_cut_at_the_grace_s_end_are_logged_as_cut(make: Callable[[float], StoppingServer],
                                                               tmp_path: Path) -> None:
    """A file of an hg repository downloaded over HTTP (``raw-file``, an archive) when the grace
    ended was logged "the client went away during …", and a Git LFS download not at all: each now
    says cut (an hg pull over SSH in mid-stream was, and is)."""
    import base64
    import hashlib
    import os
    import socket

    server: StoppingServer = make(1.5)
    env = _env(tmp_path, server)
    repo = server.root / "r"
    _run([HG, "init", str(repo)], env)
    (repo / "big").write_bytes(os.urandom(30_000_000))  # more than the sockets and SSH's window hold
    _run([HG, "add", "-R", str(repo), "-q", str(repo / "big")], env)
    _run([HG, "commit", "-R", str(repo), "-qm", "big", "-u", "t"], env)
    head = _run([HG, "log", "-R", str(repo), "-r", "tip", "-T", "{node}"], env).stdout
    ssh = [*server.ssh_command().split(), "-p", str(server.ports["ssh"]), f"{USER}@{LOOPBACK}"]
    hg_ssh = subprocess.Popen([*ssh, "hg -R r serve --stdio"], env=env, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert hg_ssh.stdin is not None and hg_ssh.stdout is not None
    # hg's SSH protocol: the command, then its arguments ("*": how many, then each with its length)
    zero = "0" * 40
    hg_ssh.stdin.write(f"getbundle\n* 2\nheads {len(head)}\n{head}common 40\n{zero}".encode())
    hg_ssh.stdin.flush()
    http = socket.create_connection((LOOPBACK, server.ports["http"]), timeout=30)
    http.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    http.sendall(b"GET /r/raw-file/tip/big HTTP/1.1\r\nHost: x\r\n\r\n")
    data = os.urandom(30_000_000)
    oid = hashlib.sha256(data).hexdigest()
    _run(["git", "init", "-q", "--bare", str(server.root / "media.git")], env)
    stored = server.root / "media.git" / "lfs" / "objects" / oid[:2] / oid[2:4] / oid
    stored.parent.mkdir(parents=True)
    stored.write_bytes(data)
    lfs = socket.create_connection((LOOPBACK, server.ports["http"]), timeout=30)
    lfs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    lfs.sendall(f"GET /media.git/info/lfs/objects/{oid} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\n"
                "Accept: application/octet-stream\r\n\r\n".encode())
    # each has begun answering, and no client reads on
    assert hg_ssh.stdout.read(4) and http.recv(100)
    assert lfs.recv(100).startswith(b"HTTP/1.1 200")
    status, _took, log = server.terminate_and_wait(60)
    assert status in STOPPED, log
    assert "3 connections still open after the 1.5 s shutdown grace; closing them" in log, log
    for said in ("hg-ssh hg-serve r", "hg-raw-file r", "git-lfs media"):
        assert any(said in line and ": cut at shutdown after the grace" in line for line in log.splitlines()), (
            said, log)
    assert "client gone" not in log and "went away" not in log, log
    hg_ssh.kill()
    hg_ssh.communicate()
    http.close()
    lfs.close()
