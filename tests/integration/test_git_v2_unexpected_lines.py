"""A protocol v2 command with an argument line it does not know is refused in git's upload-pack's
words (``unexpected line: 'bogus'``, ``object-info: unexpected line: 'bogus'``), the words
``git-upload-pack`` says over ssh and file://, compared with the real one on the same repository."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from protocols import pktline
from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_bad_input import exchange, request, seed


def _body(command: str, line: bytes) -> bytes:
    return (pktline.encode(f"command={command}\n".encode()) + pktline.encode(b"agent=git/2.39.5\n")
            + pktline.DELIM + pktline.encode(line + b"\n") + pktline.FLUSH)


def _gits_words(repo: Path, body: bytes) -> str:
    """What git's own upload-pack says to ``body``: its ERR packet, or its fatal error."""
    ran = subprocess.run(["git-upload-pack", "--stateless-rpc", str(repo)], input=body, capture_output=True,
                         env={**os.environ, "GIT_PROTOCOL": "version=2"}, check=False)
    found = re.match(rb"[0-9a-f]{4}ERR (.*?)(?:0000)?$", ran.stdout) or re.search(rb"fatal: (.*)\n", ran.stderr)
    assert found, (ran.stdout, ran.stderr)
    return found.group(1).decode()


@pytest.mark.parametrize("command", ["fetch", "ls-refs", "object-info"])
def test_an_unknown_v2_argument_is_refused_in_gits_words(make_server: object, client: Client, command: str) -> None:
    server: RunningServer = make_server("fs", git=[LOOPBACK])  # type: ignore[operator]
    seed(server, client)
    body = _body(command, b"bogus")
    reply = exchange(server, request("git-upload-pack", "/good.git", b"\0version=2\0"), body, read_between=True)
    said = reply.split(b"object-info\n0000", 1)[1]
    assert said[4:8] == b"ERR ", reply
    ours = said[8:int(said[:4], 16)].decode()
    repo = next(p for p in (server.root / "good.git", server.root / "good") if p.is_dir())
    assert ours == _gits_words(repo, body)
