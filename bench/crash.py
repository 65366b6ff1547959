"""SIGKILL the real server in the middle of pushes: each repository stays old or new, a retry works.

Issue 8 item 4.  One ``twistd -n hgwire --backend fs`` process serves git://,
SSH and HTTP on 127.0.0.1.  Real ``git push`` / ``hg push`` clients push a few
MB of random (incompressible) blobs, and the server gets SIGKILL at one of
three points, chosen with a seeded random generator:

``upload``        while the client is still sending: a relay between client and
                  server passes a random 10-90 % of the payload's upload,
                  holds the rest, and the server is killed;
``after-upload``  0-20 ms after the upload has ended;
``commit``        a random delay within the server's work after the upload
                  (git: pack indexing, connectivity check, ref update; hg: the
                  end of the changegroup and the transaction commit).

Where the upload ends (in bytes) and how long the work after it takes (in
seconds) come from the last complete push over the same transport: the retry
of an earlier kill, or a push made to measure them.

Clients reach the server through ``Relay``s (one TCP relay per listener) that
count the bytes sent to the server: ``/proc/PID/io`` cannot (``recv`` is not
in ``rchar``), and a relay can stop the upload at an exact byte.

The server is then restarted on the same root and ports, the repository is
read once through it (hgwire rolls an interrupted hg transaction back when it
opens the repository), and:

- ``git fsck --full --strict`` / ``hg verify`` must pass on the server's copy;
- every git ref is its old or its new value (a multi-ref push without
  ``--atomic`` may move some refs and not others: "mixed"); the hg changesets
  and bookmarks, written by one transaction, are all old or all new;
- a push the client saw succeed before the kill must be there, and one the
  server had not received whole must not;
- the same push, retried, must succeed and leave the new state, verified.

``python -m bench.crash --vcs both --kills 50 --size-mb 20`` prints one line
per kill and a summary; ``tests/integration/test_server_crash.py`` runs a few
kills of each kind with the same code.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import hashlib
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import bcrypt

PROJECT_DIR = Path(__file__).resolve().parent.parent
VENV_BIN = PROJECT_DIR / ".venv" / "bin"
TWISTD = str(VENV_BIN / "twistd")
HG = str(VENV_BIN / "hg")
GIT = shutil.which("git") or "git"
SSH = shutil.which("ssh") or "/usr/bin/ssh"
LOOPBACK = "127.0.0.1"
USER = "alice"
PASSWORD = "crash-pw-8"

PHASES = ("upload", "after-upload", "commit")
TRANSPORTS: dict[str, tuple[str, ...]] = {"git": ("git", "ssh", "http"), "hg": ("ssh", "http")}
UPLOAD_FRACTION = (0.1, 0.9)
AFTER_UPLOAD_MAX_DELAY = 0.02
TRAILING_BYTES = 16 * 1024
"""What a client may still send after its upload (closing SSH, a last HTTP request), at most."""
UPLOADS_PER_PUSH = {("hg", "http"): 2}
"""Before a push was measured: hg over HTTP sends its bundle twice, as the first ``unbundle``
has no password (reads are anonymous, so no request asked for one before) and gets 401."""
FILES_PER_COMMIT = 2
"""Random blobs in each of the two commits of a push."""

START_TIMEOUT = 30.0
CLIENT_TIMEOUT = 600.0
POLL_INTERVAL = 0.002
READY_LINE = "hgwire serves repositories under"
SERVES_LINE = re.compile(r"hgwire serves (\w+) at \w+://[^/]*:(\d+)/")

State = dict[str, str]
"""What a push may change, by unit of atomicity: git refs one by one, hg the whole repository."""


def client_env(home: Path) -> dict[str, str]:
    """Real clients that ignore the machine's and the user's configuration."""
    home.mkdir(parents=True, exist_ok=True)
    return {
        "PATH": str(VENV_BIN) + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_AUTHOR_NAME": "Crash Test",
        "GIT_AUTHOR_EMAIL": "crash@example.com",
        "GIT_COMMITTER_NAME": "Crash Test",
        "GIT_COMMITTER_EMAIL": "crash@example.com",
        "HGRCPATH": "",
        "HGPLAIN": "1",
        "HGUSER": "Crash Test <crash@example.com>",
        "HGENCODING": "utf-8",
    }


class HgCommandServer:
    """One ``hg serve --cmdserver pipe`` process that runs ``hg`` commands one after the other.

    The protocol is Mercurial's command server (``mercurial/commandserver.py``,
    what chg speaks): the server greets on channel ``o``; the client sends
    ``runcommand`` and a newline, then the NUL-joined arguments after their
    4-byte big-endian length; the server answers on channels ``o``/``e`` and
    ends with ``r`` and the exit code.  ``I``/``L`` ask for input, which gets
    an empty answer (EOF), so a prompt fails instead of hanging.
    """

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([HG, "serve", "--cmdserver", "pipe", "--config", "ui.interactive=false"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd="/")
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in, self._out = self.proc.stdin, self.proc.stdout
        channel, hello = self._read()
        if channel != b"o" or b"runcommand" not in hello:
            raise RuntimeError(f"not an hg command server: {channel!r} {hello!r}")

    def _read(self) -> tuple[bytes, bytes]:
        header = self._out.read(5)
        if len(header) != 5:
            raise RuntimeError("the hg command server exited")
        channel, length = header[:1], struct.unpack(">I", header[1:])[0]
        if channel in (b"I", b"L"):  # an input request: the length is the size wanted, no data follows
            return channel, b""
        return channel, self._out.read(length)

    def _send(self, data: bytes) -> None:
        self._in.write(data)
        self._in.flush()

    def run(self, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        data = "\0".join(args).encode()
        self._send(b"runcommand\n" + struct.pack(">I", len(data)) + data)
        out, err = bytearray(), bytearray()
        while True:
            channel, payload = self._read()
            if channel == b"r":
                code = struct.unpack(">i", payload)[0]
                return subprocess.CompletedProcess(["hg", *args], code, out.decode(errors="replace"),
                                                   err.decode(errors="replace"))
            if channel in (b"I", b"L"):
                self._send(struct.pack(">I", 0))
            elif channel.isupper():
                raise RuntimeError(f"the hg command server asked for {channel!r}")
            (out if channel == b"o" else err).extend(payload)

    def close(self) -> None:
        self._in.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass
class Client:
    """Runs ``git``/``hg`` in an isolated environment; failures are results, not exceptions.

    ``hg()`` runs local commands (commit, log, verify) in an ``HgCommandServer``:
    starting ``hg`` costs 0.2-1 s on a loaded machine, ten times the command.
    Pushes and reads through hgwire are ``hg`` processes of their own (``run``).
    """

    env: dict[str, str]
    hg_server: HgCommandServer | None = None

    def run(self, argv: Sequence[str | Path],
            timeout: float = CLIENT_TIMEOUT) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(a) for a in argv], env=self.env, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=timeout)

    def check(self, argv: Sequence[str | Path]) -> str:
        """Run a set-up command that must work; its stdout."""
        return _checked(self.run(argv))

    def hg(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        if self.hg_server is None:
            self.hg_server = HgCommandServer(self.env)
        return self.hg_server.run([str(a) for a in args])

    def check_hg(self, *args: str | Path) -> str:
        return _checked(self.hg(*args))

    def close(self) -> None:
        server, self.hg_server = self.hg_server, None
        if server is not None:
            server.close()


def _checked(result: subprocess.CompletedProcess[str]) -> str:
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, result.args))} failed ({result.returncode}): "
                           f"{result.stdout}{result.stderr}")
    return result.stdout


# --------------------------------------------------------------------- the server
class Relay:
    """A TCP relay on 127.0.0.1 to one server port: counts what clients send and can hold it.

    ``hold(at)`` stops forwarding client bytes once ``sent`` reaches ``at``,
    until ``release()``; after a kill the held connections fail against the
    dead server, as the client's would have.
    The relay outlives server restarts: each connection dials the port anew.
    """

    def __init__(self, target: Callable[[], int]) -> None:
        self.target = target
        self.listener = socket.create_server((LOOPBACK, 0))
        self.port: int = self.listener.getsockname()[1]
        self.sent = 0
        self._hold_at: int | None = None
        self._released = threading.Event()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True, name=f"relay-{self.port}").start()

    def hold(self, at: int) -> None:
        with self._lock:
            self._hold_at = at
            self._released.clear()

    def release(self) -> None:
        with self._lock:
            self._hold_at = None
            self._released.set()

    def close(self) -> None:
        self.release()
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection((LOOPBACK, self.target()))
            except OSError:
                client.close()
                continue
            done = threading.Semaphore(0)
            for src, dst, upstream in ((client, server, True), (server, client, False)):
                threading.Thread(target=self._pump, args=(src, dst, upstream, done), daemon=True).start()
            threading.Thread(target=self._close_when_done, args=(client, server, done), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, upstream: bool,
              done: threading.Semaphore) -> None:
        try:
            while data := src.recv(65536):
                if upstream:
                    data = self._forward_until_held(data, dst)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)
            done.release()

    def _forward_until_held(self, data: bytes, dst: socket.socket) -> bytes:
        """Count ``data``; forward what fits before the hold point and wait there; what is left to send."""
        with self._lock:
            room = len(data) if self._hold_at is None else max(0, min(len(data), self._hold_at - self.sent))
            self.sent += room
        if room == len(data):
            return data
        dst.sendall(data[:room])
        self._released.wait()
        with self._lock:
            self.sent += len(data) - room
        return data[room:]

    @staticmethod
    def _close_when_done(client: socket.socket, server: socket.socket, done: threading.Semaphore) -> None:
        done.acquire()
        done.acquire()
        client.close()
        server.close()


class Server:
    """``twistd -n hgwire --backend fs`` with git://, SSH and HTTP on 127.0.0.1, killed and restarted.

    The first start binds port 0 and reads the ports back from the "hgwire serves"
    log lines; every restart binds the same ports.  Clients use the relays' ports.
    """

    def __init__(self, work: Path, root: Path) -> None:
        self.work = work
        self.root = root
        self.key = work / "client_key"
        self.ports: dict[str, int] = {}
        self.relays: dict[str, Relay] = {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        work.mkdir(parents=True, exist_ok=True)
        root.mkdir(parents=True, exist_ok=True)
        self._credentials()

    def _credentials(self) -> None:
        if not self.key.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", USER, "-f", str(self.key)],
                           check=True, stdin=subprocess.DEVNULL)
        (self.work / "authorized_keys").write_text(Path(f"{self.key}.pub").read_text())
        hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
        (self.work / "htpasswd").write_text(f"{USER}:{hashed}\n")

    def argv(self) -> list[str]:
        listeners = []
        for kind in ("git", "ssh", "http"):
            listeners += [f"--{kind}", f"tcp:{self.ports.get(kind, 0)}:interface={LOOPBACK}"]
        return [TWISTD, "-n", "--pidfile=", "hgwire", "--root", str(self.root), "--backend", "fs", *listeners,
                "--host-key", str(self.work / "host_key"),
                "--authorized-keys", str(self.work / "authorized_keys"),
                "--htpasswd", str(self.work / "htpasswd"), "--allow-push-over-http"]

    def start(self) -> None:
        self.starts += 1
        log = self.work / f"server-{self.starts}.log"
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(self.argv(), stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=self.work, start_new_session=True)
        try:
            text = self._wait_ready(self.proc, log)
        except RuntimeError as exc:
            if not self.ports or "Address already in use" not in str(exc):
                raise
            # A port of the last start was taken meanwhile (another process's outgoing connection
            # got it as its own): bind new ones; clients reach the server through the relays, which
            # follow self.ports.
            self.ports.clear()
            self.start()
            return
        self.ports.update({kind: int(port) for kind, port in SERVES_LINE.findall(text)})
        for kind in self.ports.keys() - self.relays.keys():
            self.relays[kind] = Relay(functools.partial(self.ports.__getitem__, kind))

    @staticmethod
    def _wait_ready(proc: subprocess.Popen[bytes], log: Path) -> str:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            text = log.read_text(errors="replace")
            if READY_LINE in text:
                return text
            if proc.poll() is not None:
                raise RuntimeError(f"twistd hgwire exited with {proc.returncode}:\n{text[-2000:]}")
            time.sleep(0.02)
        proc.kill()
        proc.wait()
        raise RuntimeError(f"twistd hgwire was not ready within {START_TIMEOUT:.0f}s; see {log}")

    def kill(self) -> None:
        """SIGKILL, and reap: a zombie's pid would still look alive to a stale-lock check."""
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.kill()
            proc.wait()

    def stop(self) -> None:
        for relay in self.relays.values():
            relay.close()
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def url(self, transport: str, name: str) -> str:
        host = f"{LOOPBACK}:{self.relays[transport].port}"
        if transport == "git":
            return f"git://{host}/{name}"
        if transport == "ssh":
            return f"ssh://{USER}@{host}/{name}"
        return f"http://{USER}:{PASSWORD}@{host}/{name}"

    def ssh_command(self) -> str:
        return (f"{SSH} -F /dev/null -i {self.key} -o IdentitiesOnly=yes -o BatchMode=yes "
                "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR")


# ----------------------------------------------------------- repositories and checks
def classify(old: State, new: State, now: State) -> str:
    """``new``, ``old``, ``mixed`` (every unit old or new, not all alike) or ``partial``."""
    if now == new:
        return "new"
    if now == old:
        return "old"
    units = old.keys() | new.keys() | now.keys()
    if all(now.get(unit) in (old.get(unit), new.get(unit)) for unit in units):
        return "mixed"
    return "partial"


def differences(old: State, new: State, now: State) -> str:
    """The units of ``now`` that are neither old nor new (all of a one-unit state), for a report."""
    units = sorted(old.keys() | new.keys() | now.keys())
    return "; ".join(f"{unit}: {now.get(unit)} (old {old.get(unit)}, new {new.get(unit)})" for unit in units
                     if now.get(unit) not in (old.get(unit), new.get(unit)) or len(units) == 1)


def git_state(client: Client, git_dir: Path) -> State:
    """Every ref of a repository, by name (each ref is its own unit: git moves them one by one)."""
    out = client.check([GIT, "--git-dir", git_dir, "for-each-ref", "--format=%(refname) %(objectname)"])
    return dict(line.split(" ", 1) for line in out.splitlines())


def git_problems(client: Client, git_dir: Path) -> str | None:
    """What ``git fsck`` finds wrong with a repository (the dangling objects of a killed push are fine)."""
    result = client.run([GIT, "--git-dir", git_dir, "fsck", "--full", "--strict", "--no-dangling",
                         "--no-progress"])
    if result.returncode != 0 or result.stdout.strip() or result.stderr.strip():
        return f"git fsck ({result.returncode}): {(result.stdout + result.stderr).strip()[:2000]}"
    return None


def hg_changesets(client: Client, repo: Path) -> set[str]:
    """``NODE BOOKMARK...`` of every changeset of a repository."""
    out = client.check_hg("log", "-R", repo, "-r", "all()", "-T", "{node} {join(bookmarks, ' ')}\n")
    return {line.strip() for line in out.splitlines()}


def hg_state(changesets: set[str]) -> State:
    """The changesets and bookmarks of a repository as one unit: one transaction writes them all."""
    entries = sorted(changesets)
    marks = sum(len(line.split()) - 1 for line in entries)
    digest = hashlib.sha1("\n".join(entries).encode()).hexdigest()[:12]
    return {"repository": f"{len(entries)} changesets, {marks} bookmarks, digest {digest}"}


def hg_problems(client: Client, repo: Path) -> str | None:
    """What ``hg verify`` finds wrong with a repository.

    An interrupted transaction that nobody rolled back (``.hg/store/journal``)
    is only a warning to ``hg verify`` ("abandoned transaction found", exit 0):
    any output counts.
    """
    result = client.hg("verify", "-q", "-R", repo)
    if result.returncode != 0 or result.stdout.strip() or result.stderr.strip():
        return f"hg verify ({result.returncode}): {(result.stdout + result.stderr).strip()[:2000]}"
    return None


def write_blobs(directory: Path, prefix: str, size: int, rng: random.Random) -> int:
    """``FILES_PER_COMMIT`` random files of ``size`` bytes in all; the bytes written."""
    each = size // FILES_PER_COMMIT
    for i in range(FILES_PER_COMMIT):
        (directory / f"{prefix}-{i}.bin").write_bytes(rng.randbytes(each))
    return each * FILES_PER_COMMIT


class Case(Protocol):
    """One server repository and its client repository: make a push, run it, read and check the server."""

    vcs: str
    path: Path

    def create(self) -> State: ...
    def prepare(self, size: int, rng: random.Random, old: State) -> tuple[int, State]: ...
    def push_argv(self, transport: str) -> list[str]: ...
    def touch(self, transport: str) -> str | None: ...
    def state(self) -> State: ...
    def problems(self) -> str | None: ...
    def pushed(self, result: subprocess.CompletedProcess[str]) -> bool: ...
    def leftovers(self) -> set[str]: ...


class GitCase:
    """A bare repository on the server; each push moves ``main`` by two commits and adds a branch."""

    vcs = "git"

    def __init__(self, server: Server, client: Client, work: Path, name: str) -> None:
        self.server = server
        self.client = client
        self.name = f"{name}.git"
        self.path = server.root / self.name
        self.checkout = work / name
        self.pushes = 0

    def create(self) -> State:
        self.client.check([GIT, "init", "-q", "--bare", "-b", "main", self.path])
        self.client.check([GIT, "init", "-q", "-b", "main", self.checkout])
        (self.checkout / "README").write_text("crash test\n")
        self._commit("initial")
        self.client.check(self._git("push", "-q", self.server.url("git", self.name), "main"))
        return self.state()

    def _git(self, *args: str | Path) -> list[str | Path]:
        return [GIT, "-C", self.checkout, *args]

    def _commit(self, message: str) -> str:
        self.client.check(self._git("add", "-A"))
        self.client.check(self._git("commit", "-q", "-m", message))
        return self.client.check(self._git("rev-parse", "HEAD")).strip()

    def prepare(self, size: int, rng: random.Random, old: State) -> tuple[int, State]:
        self.pushes += 1
        branch = f"b{self.pushes}"
        new = dict(old)
        payload = write_blobs(self.checkout, f"push{self.pushes}a", size // 2, rng)
        new[f"refs/heads/{branch}"] = self._commit(f"push {self.pushes} a")
        self.client.check(self._git("branch", branch))
        payload += write_blobs(self.checkout, f"push{self.pushes}b", size - size // 2, rng)
        new["refs/heads/main"] = self._commit(f"push {self.pushes} b")
        return payload, new

    def push_argv(self, transport: str) -> list[str]:
        url = self.server.url(transport, self.name)
        return [GIT, "-C", str(self.checkout), "push", "-q", url, "main", f"b{self.pushes}"]

    def touch(self, transport: str) -> str | None:
        result = self.client.run([GIT, "ls-remote", self.server.url(transport, self.name)])
        return None if result.returncode == 0 else f"git ls-remote after the restart: {result.stderr.strip()}"

    def state(self) -> State:
        return git_state(self.client, self.path)

    def problems(self) -> str | None:
        return git_problems(self.client, self.path)

    def pushed(self, result: subprocess.CompletedProcess[str]) -> bool:
        return result.returncode == 0

    def leftovers(self) -> set[str]:
        """Lock files, temporary packs and packs without an index in the repository."""
        patterns = ("refs/**/*.lock", "HEAD.lock", "packed-refs.lock", "objects/tmp_*", "objects/pack/*.lock")
        found = {p for pattern in patterns for p in self.path.glob(pattern)}
        found.update(p for p in self.path.glob("objects/pack/*.pack") if not p.with_suffix(".idx").exists())
        return {str(p.relative_to(self.path)) for p in found}


class HgCase:
    """A repository on the server; each push adds two changesets and a bookmark."""

    vcs = "hg"

    def __init__(self, server: Server, client: Client, work: Path, name: str) -> None:
        self.server = server
        self.client = client
        self.name = name
        self.path = server.root / name
        self.checkout = work / name
        self.pushes = 0
        self.changesets: set[str] = set()
        """What the client has, so what a push makes of the server (``hg_changesets`` lines)."""

    def create(self) -> State:
        self.client.check_hg("init", self.path)
        self.client.check_hg("init", self.checkout)
        (self.checkout / "README").write_text("crash test\n")
        self._commit("initial")
        self.client.check([HG, "-R", self.checkout, "push", "-q", *self._remote("ssh")])
        self.changesets = hg_changesets(self.client, self.checkout)
        return self.state()

    def _remote(self, transport: str) -> list[str]:
        url = self.server.url(transport, self.name)
        return ["--ssh", self.server.ssh_command(), url] if transport == "ssh" else [url]

    def _commit(self, message: str) -> str:
        """Commit everything; the new node (``--debug`` prints it, which saves an ``hg log``)."""
        out = self.client.check_hg("-R", self.checkout, "commit", "--debug", "-A", "-m", message)
        nodes: list[str] = re.findall(r"^committed changeset \d+:([0-9a-f]{40})$", out, re.MULTILINE)
        return nodes[-1]

    def prepare(self, size: int, rng: random.Random, old: State) -> tuple[int, State]:
        self.pushes += 1
        mark = f"mark{self.pushes}"
        payload = write_blobs(self.checkout, f"push{self.pushes}a", size // 2, rng)
        self.changesets.add(self._commit(f"push {self.pushes} a"))
        payload += write_blobs(self.checkout, f"push{self.pushes}b", size - size // 2, rng)
        self.changesets.add(f"{self._commit(f'push {self.pushes} b')} {mark}")
        self.client.check_hg("-R", self.checkout, "bookmark", "-q", "-r", ".", "--inactive", mark)
        return payload, hg_state(self.changesets)

    def push_argv(self, transport: str) -> list[str]:
        return [HG, "-R", str(self.checkout), "push", "-B", f"mark{self.pushes}", *self._remote(transport)]

    def touch(self, transport: str) -> str | None:
        """Read through the server: opening the repository rolls back a killed writer's transaction."""
        result = self.client.run([HG, "identify", *self._remote(transport)])
        return None if result.returncode == 0 else f"hg identify after the restart: {result.stderr.strip()}"

    def state(self) -> State:
        return hg_state(hg_changesets(self.client, self.path))

    def problems(self) -> str | None:
        return hg_problems(self.client, self.path)

    def pushed(self, result: subprocess.CompletedProcess[str]) -> bool:
        """``hg push`` exits 1 when there is nothing left to push (the killed push had landed)."""
        return result.returncode == 0 or (result.returncode == 1 and "no changes found" in result.stdout)

    def leftovers(self) -> set[str]:
        """An interrupted transaction's journal and the locks of a dead writer."""
        return {name for name in ("store/journal", "store/lock", "store/lock.break", "wlock")
                if os.path.lexists(self.path / ".hg" / name)}


CASES: dict[str, type[GitCase] | type[HgCase]] = {"git": GitCase, "hg": HgCase}

LEFTOVERS = [  # (path suffix or name prefix, label); the first that matches
    (".idx.lock", "idx-lock"),
    (".lock", "ref-lock"),
    (".pack", "pack-no-idx"),
    ("objects/tmp_objdir-incoming-", "quarantine"),
    ("objects/tmp_", "tmp-pack"),
    ("store/journal", "journal"),
    ("store/lock", "lock"),
    ("wlock", "wlock"),
]


def leftover_label(path: str) -> str:
    return next(label for key, label in LEFTOVERS if path.endswith(key) or path.startswith(key))


# ------------------------------------------------------------------- kill and check
@dataclass(frozen=True)
class KillPoint:
    """Kill once ``threshold`` bytes of this push have gone to the server, ``delay`` seconds later.

    With ``hold`` the relay passes exactly ``threshold`` bytes and no more.
    """

    phase: str
    threshold: int
    delay: float
    label: str
    hold: bool = False


@dataclass(frozen=True)
class Watched:
    """A push the server was watched through: the client's result and the bytes it sent, over time."""

    result: subprocess.CompletedProcess[str]
    samples: list[tuple[float, int]]
    """(seconds since the start, bytes sent to the server since the start), every poll."""
    elapsed: float
    """Seconds from the start until the kill, or until the client exited."""
    sent: int
    """Bytes sent to the server in all, once the client had exited."""
    sent_at_kill: int | None
    """Bytes sent to the server when it was killed (None: it was not)."""

    def crossed(self, threshold: int) -> float | None:
        """When the bytes sent reached ``threshold`` (None: they never did)."""
        return next((t for t, sent in self.samples if sent >= threshold), None)


def watch_push(server: Server, relay: Relay, client: Client, argv: list[str],
               point: KillPoint | None) -> Watched:
    """Run a push; SIGKILL the server at ``point`` (never if None) unless the client exits first."""
    base = relay.sent
    if point is not None and point.hold:
        relay.hold(base + point.threshold)
    samples: list[tuple[float, int]] = []
    crossed = sent_at_kill = None
    try:
        with tempfile.TemporaryFile() as out:
            start = time.monotonic()
            proc = subprocess.Popen(argv, env=client.env, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
            while proc.poll() is None and time.monotonic() - start < CLIENT_TIMEOUT:
                samples.append((time.monotonic() - start, relay.sent - base))
                if point is not None and crossed is None and samples[-1][1] >= point.threshold:
                    crossed = samples[-1][0]
                if point is not None and crossed is not None and samples[-1][0] - crossed >= point.delay:
                    sent_at_kill = relay.sent - base
                    server.kill()
                    break
                time.sleep(POLL_INTERVAL)
            elapsed = time.monotonic() - start
            relay.release()
            try:
                returncode = proc.wait(CLIENT_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                returncode = proc.wait()
            out.seek(0)
            output = out.read().decode(errors="replace")
    finally:
        relay.release()
    result = subprocess.CompletedProcess(argv, returncode, output, "")
    return Watched(result, samples, elapsed, relay.sent - base, sent_at_kill)


@dataclass(frozen=True)
class Upload:
    """What a complete push over one transport looks like from the relay."""

    end: int
    """Bytes sent to the server when the payload's upload ends (hg over HTTP sends it twice: the
    first ``unbundle`` is refused with 401, then repeated with the password)."""
    work: float
    """Seconds from the end of the upload to the client's success: the server's work, the answer."""


@dataclass
class KillResult:
    """One kill: where, what the client saw, what the killed writer left, what the restart had, the retry."""

    vcs: str
    transport: str
    point: KillPoint
    payload: int
    watched: Watched
    left: list[str] = field(default_factory=list)
    """What the killed server left in the repository: ``LEFTOVERS`` labels."""
    state: str = ""
    problems: list[str] = field(default_factory=list)
    retry_ok: bool = False
    seconds: float = 0.0

    @property
    def client_acked(self) -> bool:
        return self.watched.result.returncode == 0

    @property
    def killed_mid_push(self) -> bool:
        return self.watched.sent_at_kill is not None and not self.client_acked

    @property
    def corrupt(self) -> bool:
        return any(p.startswith(("git fsck", "hg verify")) for p in self.problems)

    @property
    def ok(self) -> bool:
        return not self.problems and self.retry_ok

    def line(self) -> str:
        client = "acked" if self.client_acked else "failed" if self.killed_mid_push else "?"
        return (f"{self.vcs:3} {self.transport:4} {self.point.phase:12} {self.point.label:18} "
                f"client={client:6} left={','.join(sorted(set(self.left))) or '-':22} state={self.state:7} "
                f"retry={'ok' if self.retry_ok else 'FAILED':6} {self.seconds:5.1f}s"
                + "".join(f"\n    ! {p}" for p in self.problems))


class CrashRun:
    """Kills of one server during pushes of one VCS; a fresh repository every ``rotate`` kills (0: never)."""

    def __init__(self, server: Server, vcs: str, work: Path, size: int, seed: int, rotate: int = 0) -> None:
        self.server = server
        self.vcs = vcs
        self.work = work
        self.size = size
        self.rng = random.Random(f"{seed}-{vcs}")
        self.rotate = rotate
        self.client = Client({**client_env(work / "home"), "GIT_SSH_COMMAND": server.ssh_command(),
                              "GIT_SSH_VARIANT": "ssh"})
        self.repos = 0
        self.kills_on_case = 0
        self.case, self.known = self._new_case()
        self.uploads: dict[str, Upload] = {}
        """Per transport, measured on the last complete push (a retry, else a push made to measure)."""
        self.pending: list[str] = []
        """Problems seen between kills (a measuring push that failed), reported with the next kill."""

    def close(self) -> None:
        self.client.close()

    def _new_case(self) -> tuple[Case, State]:
        self.repos += 1
        case = CASES[self.vcs](self.server, self.client, self.work, f"{self.vcs}-crash-{self.repos}")
        return case, case.create()

    def measure(self, transport: str) -> None:
        """Push once to see how a push over ``transport`` goes, unless a complete one was seen."""
        if transport in self.uploads:
            return
        payload, new = self.case.prepare(self.size, self.rng, self.known)
        watched = self._measured_push(transport, self.case.push_argv(transport), payload)
        if not self.case.pushed(watched.result):
            self.pending.append(f"uncrashed push over {transport}: {watched.result.stdout.strip()}")
            new = self.case.state()
        self.known = new

    def _measured_push(self, transport: str, argv: list[str], payload: int) -> Watched:
        """A push the server survives; a complete one (not a no-op retry) updates ``uploads``."""
        watched = watch_push(self.server, self.server.relays[transport], self.client, argv, None)
        end = watched.sent - TRAILING_BYTES
        crossed = watched.crossed(end)
        if watched.result.returncode == 0 and watched.sent > payload and crossed is not None:
            self.uploads[transport] = Upload(end, max(watched.elapsed - crossed, 0.001))
        return watched

    def kill_point(self, phase: str, transport: str, payload: int) -> KillPoint:
        guess = Upload(payload * UPLOADS_PER_PUSH.get((self.vcs, transport), 1), AFTER_UPLOAD_MAX_DELAY)
        upload = self.uploads.get(transport, guess)
        if phase == "upload":
            fraction = self.rng.uniform(*UPLOAD_FRACTION)
            threshold = upload.end - payload + int(payload * fraction)
            return KillPoint(phase, threshold, 0.0, f"at {fraction:.0%} of upload", hold=True)
        limit = AFTER_UPLOAD_MAX_DELAY if phase == "after-upload" else upload.work
        delay = self.rng.uniform(0.0, limit)
        return KillPoint(phase, upload.end, delay, f"end+{delay * 1000:.0f}ms of {limit * 1000:.0f}")

    def kill(self, transport: str, phase: str) -> KillResult:
        """Push, SIGKILL the server during ``phase``, restart it, check the repository, retry the push."""
        if self.rotate and self.kills_on_case >= self.rotate:
            self.case, self.known = self._new_case()
            self.uploads.clear()
            self.kills_on_case = 0
        self.kills_on_case += 1
        if phase != "upload":
            self.measure(transport)
        start = time.monotonic()
        old = self.known
        payload, new = self.case.prepare(self.size, self.rng, old)
        point = self.kill_point(phase, transport, payload)
        argv = self.case.push_argv(transport)
        before = self.case.leftovers()
        watched = watch_push(self.server, self.server.relays[transport], self.client, argv, point)
        self.server.kill()
        left = sorted(leftover_label(path) for path in self.case.leftovers() - before)
        self.server.start()
        result = KillResult(self.vcs, transport, point, payload, watched, left, problems=self.pending)
        self.pending = []
        self._check_restarted(result, transport, old, new)
        self._retry(result, transport, argv, payload, new)
        result.seconds = time.monotonic() - start
        return result

    def _check_restarted(self, result: KillResult, transport: str, old: State, new: State) -> None:
        """The server reads the repository first (hg recovers on open), then the checks run on disk."""
        result.problems.extend(p for p in (self.case.touch(transport), self.case.problems()) if p)
        now = self.case.state()
        result.state = classify(old, new, now)
        if result.state == "partial" or (result.state == "mixed" and self.vcs != "git"):
            result.problems.append(f"{result.state} state: {differences(old, new, now)}")
        if result.client_acked and result.state != "new":
            result.problems.append(f"the client saw its push succeed but the server has the {result.state} "
                                   f"state: {differences(old, new, now)}")
        sent = result.watched.sent_at_kill
        if sent is not None and sent < result.payload and result.state != "old":
            result.problems.append(f"the server was sent {sent} of the {result.payload} bytes pushed, "
                                   f"yet it has the {result.state} state: {differences(old, new, now)}")

    def _retry(self, result: KillResult, transport: str, argv: list[str], payload: int, new: State) -> None:
        retried = self._measured_push(transport, argv, payload).result
        problem = self.case.problems()
        self.known = self.case.state()
        result.retry_ok = self.case.pushed(retried) and self.known == new and problem is None
        if not result.retry_ok:
            output = (retried.stdout + retried.stderr).strip()
            result.problems.append(f"retry (exit {retried.returncode}): {output}; {problem or 'verified'}; "
                                   f"{differences(new, new, self.known) or 'new state'}")


# ----------------------------------------------------------------------- the command
def schedule(vcs: str, kills: int) -> list[tuple[str, str]]:
    """(transport, phase) of each kill: the phases in turn, then the next transport."""
    transports = TRANSPORTS[vcs]
    return [(transports[i // len(PHASES) % len(transports)], PHASES[i % len(PHASES)]) for i in range(kills)]


@dataclass(frozen=True)
class Summary:
    results: list[KillResult]
    seconds: float

    def lines(self) -> list[str]:
        out = [self._line(vcs, [r for r in self.results if r.vcs == vcs])
               for vcs in sorted({r.vcs for r in self.results})]
        return [*out, self._line("total", self.results) + f"; time {self.seconds:.0f}s"]

    @staticmethod
    def _line(label: str, results: list[KillResult]) -> str:
        def count(predicate: Callable[[KillResult], bool]) -> int:
            return sum(1 for r in results if predicate(r))

        states = ", ".join(f"{s} {count(lambda r: r.state == s)}" for s in ("old", "new", "mixed", "partial"))
        left = collections.Counter(label for r in results for label in set(r.left))
        return (f"{label}: kills {len(results)} (client interrupted {count(lambda r: r.killed_mid_push)}, "
                f"client had succeeded {count(lambda r: r.client_acked)}); states: {states}; "
                f"corrupt repos {count(lambda r: r.corrupt)}; "
                f"failed retries {count(lambda r: not r.retry_ok)}; "
                f"kills with any problem {count(lambda r: not r.ok)}; the killed server left: "
                + (", ".join(f"{name} {n}" for name, n in sorted(left.items())) or "nothing"))


def run(vcs_list: Sequence[str], kills: int, size: int, seed: int, work: Path, rotate: int) -> Summary:
    """Every kill of the schedule for each VCS against one server; a line per kill on stdout."""
    start = time.monotonic()
    server = Server(work / "server", work / "root")
    results: list[KillResult] = []
    server.start()
    try:
        for vcs in vcs_list:
            crash = CrashRun(server, vcs, work / "clients", size, seed, rotate)
            try:
                for transport, phase in schedule(vcs, kills):
                    results.append(crash.kill(transport, phase))
                    print(results[-1].line(), flush=True)
            finally:
                crash.close()
    finally:
        server.stop()
    return Summary(results, time.monotonic() - start)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.crash", description=__doc__.split("\n\n")[0])
    parser.add_argument("--vcs", choices=("git", "hg", "both"), default="both")
    parser.add_argument("--kills", type=int, default=50, help="kills per VCS (default 50)")
    parser.add_argument("--size-mb", type=float, default=20, help="random payload of each push (default 20)")
    parser.add_argument("--seed", type=int, default=8, help="seed of kill points and payloads (default 8)")
    parser.add_argument("--rotate", type=int, default=10, help="a fresh repository every N kills (0: never)")
    parser.add_argument("--work", type=Path, help="keep repositories and server logs here (default: temp)")
    args = parser.parse_args(argv)
    vcs_list = ["git", "hg"] if args.vcs == "both" else [args.vcs]
    size = int(args.size_mb * 1024 * 1024)
    print(f"SIGKILL during pushes of {args.size_mb:g} MB, {args.kills} kills per VCS "
          f"({', '.join(vcs_list)}), seed {args.seed}", flush=True)
    if args.work:
        summary = run(vcs_list, args.kills, size, args.seed, args.work, args.rotate)
    else:
        with tempfile.TemporaryDirectory(prefix="hgwire-crash-") as tmp:
            summary = run(vcs_list, args.kills, size, args.seed, Path(tmp), args.rotate)
    print("\n".join(summary.lines()))
    return 0 if all(r.ok for r in summary.results) else 1


if __name__ == "__main__":
    sys.exit(main())
