"""A protocol v2 connection keeps its repository between commands.  With a ``packed-refs`` too big
for the kept parses (over a quarter of ``[limits] git_kept_refs_bytes``), each connection idle after
``ls-refs`` held its own parse of the file until it closed (tens of MB for a mirror of 100,000
tags, as many times as anonymous clients opened connections); it now lets go of it once a
command's refs are read, and the next command on the connection parses the file again."""

from __future__ import annotations

import gc
import os
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from backends import git as git_backend
from protocols import pktline
from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_kept_refs_budget_reload import TAGS, packed_tags_repository

MARK = b"refs/tags/idle-00000"


@pytest.fixture(autouse=True)
def _budget_restored() -> Iterator[None]:
    budget = git_backend._PACKED_REFS.budget
    yield
    git_backend._PACKED_REFS.resize(budget)


def _parses_alive() -> int:
    """The parses of this test's ``packed-refs`` that some object still holds."""
    gc.collect()
    return sum(1 for obj in gc.get_objects() if isinstance(obj, git_backend.PackedRefs) and MARK in obj.refs)


class _Reader:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _take(self, size: int) -> bytes:
        while len(self.buffer) < size:
            data = self.sock.recv(65536)
            assert data, "the server closed the connection"
            self.buffer += data
        taken, self.buffer = self.buffer[:size], self.buffer[size:]
        return taken

    def packets(self) -> list[bytes]:
        """Packets up to the next flush."""
        found: list[bytes] = []
        while True:
            size = int(self._take(4), 16)
            if size == 0:
                return found
            if size == 1:  # a delimiter
                continue
            found.append(self._take(size - 4))


def test_an_idle_v2_connection_holds_no_parse_of_a_packed_refs_too_big_to_keep(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('[[repo]]\npattern = "*"\n[limits]\ngit_kept_refs_bytes = 2000000\n')  # a quarter: 2,000 refs
    server = make_server("fs", git=[LOOPBACK], config_file=str(policy))
    repo = server.root / "m.git"
    head = packed_tags_repository(client, repo, "idle-")

    with socket.create_connection(("127.0.0.1", server.port("git")), timeout=30) as sock:
        reader = _Reader(sock)
        sock.sendall(pktline.encode(b"git-upload-pack /m.git\0host=x\0\0version=2\0"))
        assert reader.packets()[0] == b"version 2\n"  # the capability advertisement
        sock.sendall(pktline.encode(b"command=ls-refs\n") + pktline.DELIM + pktline.FLUSH)
        listed = reader.packets()
        assert len(listed) == TAGS + 2 and f"{head} refs/heads/main\n".encode() in listed
        assert git_backend._PACKED_REFS.get(os.path.join(os.fsencode(repo), b"packed-refs")) is None, "too big to keep"
        assert _parses_alive() == 0, "an idle connection after ls-refs holds no parse"

        sock.sendall(pktline.encode(b"command=fetch\n") + pktline.DELIM
                     + pktline.encode(f"want {head}\n".encode()) + pktline.encode(b"done\n") + pktline.FLUSH)
        answer = reader.packets()
        assert answer[0] == b"packfile\n"
        pack = b"".join(line[1:] for line in answer[1:] if line[:1] == b"\x01")
        assert _parses_alive() == 0, "nor after a fetch"
        sock.sendall(pktline.FLUSH)

    fetched = client.cwd / "fetched.git"
    client.git("init", "-q", "--bare", str(fetched))
    subprocess.run(["git", "index-pack", "--stdin"], input=pack, cwd=fetched, env=client.env, check=True,
                   capture_output=True, timeout=60)
    assert client.git("cat-file", "-t", head, cwd=fetched).stdout == "commit\n"
