"""Mercurial's own command server (``hg serve --cmdserver pipe``) for the tests' local hg commands.

Starting ``hg`` costs about half a second of CPU before it does anything (it imports and reads its
configuration items); the suite runs over a thousand local commands (``init``, ``commit``, ``log``,
``verify``...) to build the repositories it pushes and to inspect what the server wrote. Those run
here, in a long-lived hg process per test process, through the protocol Mercurial offers scripts for
exactly this cost (``hg help scripting``: "Calling out to a command server"). Each command is
dispatched as the CLI dispatches it, with a fresh ui and repository.

Everything a client observes over the network (any URL, and a clone, push, pull, incoming, outgoing or
identify of a path the command line does not name: a repository's ``default`` may be a URL) still runs
as its own ``hg`` process: ``Client.hg`` sends here only the commands of ``LOCAL_COMMANDS``, and those of
``PEER_COMMANDS`` whose other repositories are named and on this host (hg's own push into a local
reference, a clone of a local history), without a custom environment, input, extension or hook (in any
of the repositories they open) that could act on the process.
"""

from __future__ import annotations

import atexit
import os
import select
import shutil
import struct
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

LOCAL_COMMANDS = frozenset({
    "add", "addremove", "bookmark", "bookmarks", "branch", "branches", "cat", "commit", "ci", "copy",
    "files", "heads", "init", "log", "manifest", "merge", "parents", "phase", "remove", "rm", "rename",
    "mv", "status", "st", "tag", "tags", "tip", "update", "up", "checkout", "verify", "debugindex",
    "debugdata", "debugrevlog", "debugrequirements", "debugbuilddag", "debugupdatecaches", "forget",
    "revert", "summary", "debugformat", "debugdeltachain", "debugupgraderepo", "debugstrip", "archive",
    "graft", "rollback", "root", "diff", "export",
})
"""Commands that touch only local paths; anything else runs as its own process."""

PEER_COMMANDS = frozenset({"push", "pull", "clone", "incoming", "in", "outgoing", "out", "identify", "id"})
"""Commands that open another repository: run here only when each one they open is named on the command
line and is a repository (or, to read, a bundle) on this host (``_peers``)."""

_VALUED = frozenset({
    "-R", "--repository", "--config", "--encoding", "--encodingmode", "--color", "--pager", "-r", "--rev", "-B",
    "--bookmark", "-b", "--branch", "--pushvars", "-e", "--ssh", "--remotecmd", "-u", "--updaterev", "--bundle",
    "-l", "--limit", "--style", "-T", "--template", "-I", "--include", "-X", "--exclude",
})
"""The options of ``PEER_COMMANDS`` (and hg's global ones) followed by a value, not by a path to open
(``-u`` and ``-B`` are flags of some of them: taken as a value there, a path after them is not seen,
and the command runs as a process)."""

READ_ONLY = frozenset({
    "cat", "files", "heads", "log", "manifest", "parents", "status", "st", "tags", "tip", "verify", "summary",
    "branches", "debugindex", "debugdata", "debugrevlog", "debugrequirements", "debugformat", "debugdeltachain",
})
"""Local commands that run no hook but ``pre-``/``post-``/``fail-<command>``."""


class Unsuitable(Exception):
    """The command must run as its own process."""


def _repository_of(args: list[str], cwd: Path) -> Path | None:
    """The repository a command would open: ``-R``'s or the one around ``cwd``."""
    where: Path | None = None
    for i, arg in enumerate(args):
        if arg in ("-R", "--repository") and i + 1 < len(args):
            where = cwd / args[i + 1]
        elif arg.startswith("--repository="):
            where = cwd / arg.split("=", 1)[1]
        elif arg.startswith("-R") and len(arg) > 2:
            where = cwd / arg[2:]
    if where is not None:
        return where
    for candidate in (cwd, *cwd.parents):
        if (candidate / ".hg").is_dir():
            return candidate
    return None


def check(args: list[str], cwd: Path) -> None:
    """Raise ``Unsuitable`` unless ``args`` are a local command this server may run."""
    for i, arg in enumerate(args):  # hooks may kill their hg (the server) or stay loaded in it
        if arg == "--config" and (i + 1 == len(args) or args[i + 1].startswith(("extensions.", "hooks."))):
            raise Unsuitable("an extension or a hook")
        if arg.startswith(("--config=", "--config-file")) or arg == "--debugger":
            raise Unsuitable("an option this check does not read")
    rest = list(args)
    while rest and rest[0] in ("--config", "-R", "--repository", "--cwd"):  # (hg's global options: anywhere)
        rest = rest[2:]
    while rest and rest[0].startswith(("--repository=", "-R")):
        rest = rest[1:]
    if not rest or rest[0] not in LOCAL_COMMANDS | PEER_COMMANDS:
        raise Unsuitable("not a local command")
    if any("://" in arg for arg in args):
        raise Unsuitable("a URL")
    if any(arg == "--cwd" or arg.startswith("--cwd=") for arg in args):
        raise Unsuitable("its own --cwd")
    repos = [_repository_of(args, cwd)]  # (args: a -R before the command is no longer in rest)
    if rest[0] in PEER_COMMANDS:
        if repos[0] is not None and (repos[0] / ".hgsub").exists():
            raise Unsuitable("subrepositories, whose paths may be URLs")
        repos += _peers(rest, cwd)
    read_only = rest[0] in READ_ONLY or (rest[0] in ("bookmarks", "bookmark") and _lists_bookmarks(rest))
    for repo in repos:
        if repo is not None:
            _check_hgrc(repo, read_only)


def _lists_bookmarks(rest: list[str]) -> bool:
    """Whether ``hg bookmarks`` only lists them (no name, no option that changes one): no
    transaction, so no hook but ``pre-``/``post-bookmarks``."""
    listing = {"-q", "--quiet", "-v", "--verbose", "-l", "--list", "--active", "-T", "--template", "-R", "--repository"}
    valued = ("-T", "--template", "-R", "--repository")
    return all(arg in listing or rest[i - 1] in valued for i, arg in enumerate(rest[1:], 1))


def _check_hgrc(repo: Path, read_only: bool) -> None:
    """Raise ``Unsuitable`` when ``repo``'s hgrc loads code or has hooks the command may run."""
    try:
        hgrc = (repo / ".hg" / "hgrc").read_text(errors="replace")
    except OSError:
        return
    # Extensions and Python hooks would stay loaded in the long-lived process; a shell hook may
    # kill its hg (``$PPID``).
    if "extensions" in hgrc or "python:" in hgrc or "%include" in hgrc:
        raise Unsuitable("the repository loads code")
    if "hooks" in hgrc and (not read_only or any(word in hgrc for word in ("pre-", "post-", "fail-"))):
        raise Unsuitable("the repository has hooks this command may run")


def _peers(rest: list[str], cwd: Path) -> list[Path | None]:
    """The other repositories a ``PEER_COMMANDS`` command opens (``None`` for a bundle file); raise
    ``Unsuitable`` unless each is named and on this host (a clone's destination is made, not opened;
    ``identify`` without one reads only its own)."""
    named: list[str] = []
    after_value = False
    for arg in rest[1:]:
        if after_value:
            after_value = False
        elif arg in _VALUED:
            after_value = True
        elif not arg.startswith("-"):
            named.append(arg)
        elif arg == "--":
            raise Unsuitable("an argument this check does not read")
    command = rest[0]
    opened = named[:1] if command == "clone" else named
    if not opened and command not in ("identify", "id"):
        raise Unsuitable("another repository the command line does not name (a default path)")
    peers: list[Path | None] = []
    for name in opened:
        path = cwd / name
        if (path / ".hg").is_dir() and not (path / ".hgsub").exists():
            peers.append(path)
        elif path.is_file() and command in ("pull", "incoming", "in", "clone", "identify", "id"):
            peers.append(None)  # (a bundle)
        else:
            raise Unsuitable("not a repository of this host (a path alias), or one with subrepositories")
    return peers


class CommandServer:
    """One ``hg serve --cmdserver pipe`` process; commands run one at a time."""

    def __init__(self, hg: str, env: dict[str, str], key: object) -> None:
        self.key = key
        self.env = dict(env)
        self._home = tempfile.mkdtemp(prefix="hg-cmdserver-")
        self._process = subprocess.Popen([hg, "serve", "--cmdserver", "pipe"], cwd=self._home,
                                          env={**self.env, "HOME": self._home},
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._buffer = bytearray()
        channel, hello = self._read_message(time.monotonic() + 60)
        if channel != b"o" or b"runcommand" not in hello:
            raise RuntimeError(f"hg's command server said {channel!r} {hello!r}")

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        shutil.rmtree(self._home, ignore_errors=True)

    def run(self, args: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[bytes]:
        full = ["--cwd", str(cwd), *args]
        data = b"\0".join(os.fsencode(a) for a in full)
        assert self._process.stdin is not None
        self._process.stdin.write(b"runcommand\n" + struct.pack(">I", len(data)) + data)
        self._process.stdin.flush()
        deadline = time.monotonic() + timeout
        out, err = bytearray(), bytearray()
        while True:
            channel, payload = self._read_message(deadline)
            if channel == b"o":
                out += payload
            elif channel == b"e":
                err += payload
            elif channel == b"r":
                (code,) = struct.unpack(">i", payload)
                return subprocess.CompletedProcess(["hg", *args], code, bytes(out), bytes(err))
            elif channel in (b"I", b"L"):
                self._process.stdin.write(struct.pack(">I", 0))  # no input: end of file
                self._process.stdin.flush()
            elif channel.isupper():
                raise RuntimeError(f"hg's command server asks on an unknown channel {channel!r}")

    def _read_message(self, deadline: float) -> tuple[bytes, bytes]:
        header = self._read_exact(5, deadline)
        channel, length = header[:1], struct.unpack(">I", header[1:])[0]
        if channel in (b"I", b"L"):
            return channel, b""
        return channel, self._read_exact(length, deadline)

    def _read_exact(self, count: int, deadline: float) -> bytes:
        assert self._process.stdout is not None
        fd = self._process.stdout.fileno()
        while len(self._buffer) < count:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                self.close()
                raise subprocess.TimeoutExpired("hg (command server)", 0)
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                self.close()
                raise RuntimeError("hg's command server stopped")
            self._buffer += chunk
        taken = bytes(self._buffer[:count])
        del self._buffer[:count]
        return taken


_IDLE: dict[tuple[str, tuple[tuple[str, str], ...]], list[CommandServer]] = {}
_ALL: list[CommandServer] = []
_LOCK = threading.Lock()
_MOST = 3
"""Servers per environment: threads of one test (parallel builds) each get their own, up to this."""
_RELEVANT = ("PATH", "LANG", "HGRCPATH", "HGPLAIN", "HGUSER", "HGENCODING", "TZ", "PYTHONUNBUFFERED",
             "PYTHONDONTWRITEBYTECODE", "PYTHONPATH")
"""The environment a server is started with and keyed by (so it runs each command as a process
with the same values would).  ``PYTHONPATH`` is one: test_hg_evolve_topics puts hg-evolve's directory
on its clients' path, and a run with the checkout on it (``PYTHONPATH=$WORK/repo``) gives it to every
``{**os.environ, ...}`` environment; without it every local command of those ran as a process."""


def _key(hg: str, env: dict[str, str]) -> tuple[str, tuple[tuple[str, str], ...]] | None:
    """Which servers may run for this environment; ``None`` when it sets something a server cannot."""
    if any(name.startswith(("HG", "PYTHON", "CHG")) and name not in _RELEVANT for name in env):
        return None
    return hg, tuple((name, env[name]) for name in _RELEVANT if name in env)


def _take(key: tuple[str, tuple[tuple[str, str], ...]]) -> CommandServer | None:
    with _LOCK:
        idle = _IDLE.setdefault(key, [])
        while idle:
            server = idle.pop()
            if server._process.poll() is None:
                return server
            server.close()
            _ALL.remove(server)
        if sum(1 for server in _ALL if server.key == key) >= _MOST:
            return None
        server = CommandServer(key[0], dict(key[1]), key)
        _ALL.append(server)
        return server


def run_bytes(hg: str, args: list[str], cwd: Path, env: dict[str, str],
              timeout: float) -> subprocess.CompletedProcess[bytes] | None:
    """Run a local hg command in a command server; ``None`` when it must run as its own process."""
    key = _key(hg, env)
    if key is None:
        return None
    try:
        check(args, cwd)
    except Unsuitable:
        return None
    server = _take(key)
    if server is None:
        return None  # every server is busy with another thread of the test: run as a process instead
    try:
        result = server.run(args, cwd, timeout)
    except BaseException:
        server.close()
        with _LOCK:
            _ALL.remove(server)
        raise
    with _LOCK:
        _IDLE[key].append(server)
    return result


def run(hg: str, args: list[str], cwd: Path, env: dict[str, str],
        timeout: float) -> subprocess.CompletedProcess[str] | None:
    """``run_bytes`` with the output decoded, as ``subprocess.run(..., text=True)`` gives it."""
    result = run_bytes(hg, args, cwd, env, timeout)
    if result is None:
        return None
    return subprocess.CompletedProcess(result.args, result.returncode, result.stdout.decode("utf-8", "replace"),
                                       result.stderr.decode("utf-8", "replace"))


@atexit.register
def stop_all() -> None:
    """Stop every server (pytest's session end; ``atexit`` for any other use)."""
    with _LOCK:
        for server in _ALL:
            server.close()
        _ALL.clear()
        _IDLE.clear()


def subprocess_run(argv: list[str], *, cwd: Path | str, env: dict[str, str], input: bytes | None = None,
                   timeout: float | None = None, text: bool = False,
                   check: bool = False) -> subprocess.CompletedProcess[Any]:
    """``subprocess.run(argv, capture_output=True, ...)`` for an ``hg`` command line, in a command server
    when it is a local command."""
    result = None
    if input is None:
        result = (run if text else run_bytes)(argv[0], argv[1:], Path(cwd), env, timeout or 600)
    if result is None:
        return subprocess.run(argv, cwd=cwd, env=env, input=input, timeout=timeout, text=text, check=check,
                              capture_output=True)
    if check:
        result.check_returncode()
    return result
