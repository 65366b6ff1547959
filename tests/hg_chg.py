"""Mercurial's forking command server (``hg serve --cmdserver chgunix``, what Mercurial's ``chg`` client
talks to) for the hg the tests run as a *reference*: hg's own client against ``hg serve --stdio``.

A test that compares hgwire with ``hg serve`` pays, per reference push or clone, for two hg processes
that start with hg-evolve loaded (the client, and ``hg serve --stdio`` behind a fake ssh): about a
third of a second of CPU each before they do anything, some fifty of them in a test.  Here one server
process imports hg and the extensions once, and each command runs in a process forked from it, with
the caller's standard input, output and error passed over the socket (``attachio``), its directory
and its environment: the same hg code, dispatched as the command line dispatches it, without the
start-up.  The hg-evolve modules' clients of hgwire run here too (``ForkedClient`` of
test_hg_evolve_topics), over the real ssh and HTTP, in the tests whose point is what hgwire serves
or accepts; each module's docstring says which of its tests keep a client process of their own.

``python -S hg_chg.py SOCKET 'hg ARGS...'`` runs one command line with this process's stdio (a fake
ssh's ``hg -R PATH serve --stdio``).
"""

from __future__ import annotations

import array
import atexit
import os
import shlex
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

_CONFIG_KEYS = ("chgserver.idletimeout=86400", "chgserver.skiphash=true")


class ChgServer:
    """One ``hg serve --cmdserver chgunix`` process whose commands all load ``extensions`` (the server
    imports them once; a command that loaded others would find these wrapped in already)."""

    def __init__(self, hg: str, env: dict[str, str], extensions: tuple[str, ...]) -> None:
        self.extensions = extensions
        self._home = tempfile.mkdtemp(prefix="hg-chg-")
        self.address = os.path.join(self._home, "server")
        config = [arg for key in (*_CONFIG_KEYS, *(f"extensions.{name}=" for name in extensions))
                  for arg in ("--config", key)]
        self._process = subprocess.Popen(
            [hg, *config, "serve", "--cmdserver", "chgunix", "--address", self.address,
             "--daemon-postexec", "chdir:/"],
            cwd=self._home, env={**env, "HOME": self._home, "TMPDIR": self._home}, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not os.path.exists(self.address):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"hg's chg server did not start (exit status {self._process.returncode})")
            time.sleep(0.01)

    def config_args(self) -> list[str]:
        """The ``--config`` a command must give to load the server's extensions."""
        return [arg for name in self.extensions for arg in ("--config", f"extensions.{name}=")]

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()  # (it waits for its workers: their CPU is counted as the test's)
            try:
                self._process.wait(30)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._process.wait()
        shutil.rmtree(self._home, ignore_errors=True)

    def run(self, args: list[str], cwd: str, env: dict[str, str], timeout: float = 120,
            ) -> subprocess.CompletedProcess[str]:
        """``hg ARGS`` (the server's ``--config`` first) as ``subprocess.run(..., capture_output=True,
        text=True)`` gives it."""
        full = [*self.config_args(), *args]
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
                open(os.devnull, "rb") as nothing:
            code = run(self.address, full, cwd, env, (nothing.fileno(), out.fileno(), err.fileno()), timeout)
            out.seek(0)
            err.seek(0)
            return subprocess.CompletedProcess(["hg", *full], code, out.read().decode("utf-8", "replace"),
                                               err.read().decode("utf-8", "replace"))


def _read_exact(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise RuntimeError("hg's chg server closed the connection")
        data += chunk
    return data


def _read_message(sock: socket.socket) -> tuple[bytes, bytes]:
    channel, length = struct.unpack(">cI", _read_exact(sock, 5))
    if channel.isupper() and channel != b"S":
        return channel, b""  # (a request: the length is what it asks for)
    return channel, _read_exact(sock, length)


def _send(sock: socket.socket, command: bytes, data: bytes) -> None:
    sock.sendall(command + b"\n" + struct.pack(">I", len(data)) + data)


def run(address: str, args: list[str], cwd: str, env: dict[str, str], fds: tuple[int, int, int],
        timeout: float) -> int:
    """Run ``hg ARGS`` in a process the server forks, on ``fds`` as its stdin, stdout and stderr: its
    exit status."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(address)
        channel, hello = _read_message(sock)
        if channel != b"o" or b"attachio" not in hello:
            raise RuntimeError(f"hg's chg server said {channel!r} {hello!r}")
        sock.sendall(b"attachio\n")
        if _read_message(sock)[0] != b"I":
            raise RuntimeError("hg's chg server did not ask for the client's stdio")
        sock.sendmsg([b"\0"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
        channel, count = _read_message(sock)
        if channel != b"r" or struct.unpack(">i", count)[0] != 3:
            raise RuntimeError(f"hg's chg server attached {channel!r} {count!r}")
        _send(sock, b"chdir", os.fsencode(cwd))
        _send(sock, b"setenv", b"\0".join(os.fsencode(f"{name}={value}") for name, value in env.items()))
        _send(sock, b"runcommand", b"\0".join(os.fsencode(arg) for arg in args))
        while True:
            channel, payload = _read_message(sock)
            if channel == b"r":
                return int(struct.unpack(">i", payload)[0])
            if channel == b"S":  # ui.system (a shell hook, an editor): run here, as chg does
                kind, command, where, *variables = payload.split(b"\0")
                if kind != b"system":
                    raise RuntimeError(f"hg's chg server asks for {kind!r}")
                code = subprocess.call(command, shell=True, cwd=where,
                                       env=dict(v.split(b"=", 1) for v in variables if b"=" in v))
                sock.sendall(struct.pack(">Ii", 4, code))
            elif channel.isupper():
                raise RuntimeError(f"hg's chg server asks on an unknown channel {channel!r}")


_SERVERS: dict[tuple[object, ...], ChgServer] = {}
_LOCK = threading.Lock()


def server(hg: str, env: dict[str, str], extensions: tuple[str, ...]) -> ChgServer:
    """The server for this hg, environment and set of extensions, started on first use."""
    relevant = tuple(sorted((name, value) for name, value in env.items() if name not in ("HOME", "TMPDIR")))
    key = (hg, relevant, extensions)
    with _LOCK:
        found = _SERVERS.get(key)
        if found is None or found._process.poll() is not None:
            found = _SERVERS[key] = ChgServer(hg, env, extensions)
        return found


def forked(hg: str, words: list[str], cwd: str, env: dict[str, str], extensions: tuple[str, ...] = (),
           check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``hg WORDS`` forked from the server loading ``extensions`` (started on first use), as a test
    client's ``hg`` gives it: with ``check``, ``AssertionError`` when it fails."""
    result = server(hg, env, extensions).run(words, cwd, env, timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"hg {' '.join(words)} failed with {result.returncode}:\n"
                             f"stdout: {result.stdout}\nstderr: {result.stderr}")
    return result


@atexit.register
def stop_all() -> None:
    with _LOCK:
        for each in _SERVERS.values():
            each.close()
        _SERVERS.clear()


def main(argv: list[str]) -> int:
    """``hg_chg.py SOCKET 'hg ARGS...'`` (an ssh's command line): run it with this process's stdio."""
    words = shlex.split(argv[2]) if len(argv) == 3 else []
    if not words or os.path.basename(words[0]) != "hg":
        sys.exit(f"usage: {argv[0]} SOCKET 'hg ARGS...'")
    return run(argv[1], words[1:], os.getcwd(), dict(os.environ), (0, 1, 2), 600)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
