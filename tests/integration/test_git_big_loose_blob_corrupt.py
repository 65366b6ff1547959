"""A corrupt loose blob over ``core.bigFileThreshold`` (cut short, or inflating to less than its
header says), streamed a piece at a time into a clone's pack: the client is told the repository
holds an object the server cannot read, and the server's log has one error line naming the
repository and the object and saying what to do (it was a critical traceback per clone)."""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable

import pytest
from twisted.logger import LogLevel, formatEvent

from tests.conftest import LOOPBACK, Client, RunningServer, log_events


@pytest.mark.parametrize("damage", ["cut", "lying"])
@pytest.mark.parametrize("transport", ["git", "http"])
def test_a_corrupt_streamed_loose_blob_is_logged_as_one_line(make_server: Callable[..., RunningServer],
                                                             client: Client, damage: str, transport: str) -> None:
    server = make_server("fs", git=[LOOPBACK], http=[LOOPBACK])
    work, bare = client.cwd / "work", server.root / "s.git"
    client.git("init", "-q", "-b", "main", str(work))
    data = random.Random(3).randbytes(40 << 10)
    (work / "big").write_bytes(data)
    client.git("add", "big", cwd=work)
    client.git("commit", "-qm", "big", cwd=work)
    client.git("init", "-q", "--bare", "-b", "main", str(bare))
    client.git("push", "-q", str(bare), "main", cwd=work)  # (three objects: stored loose)
    client.git("config", "core.bigFileThreshold", "1k", cwd=bare)
    oid = client.git("rev-parse", "HEAD:big", cwd=work).stdout.strip()
    loose = bare / "objects" / oid[:2] / oid[2:]
    loose.chmod(0o644)
    if damage == "cut":
        loose.write_bytes(loose.read_bytes()[: (20 << 10)])
    else:
        loose.write_bytes(zlib.compress(b"blob %d\0" % len(data) + data[: 30 << 10]))
    with log_events() as seen:
        cloned = client.git("clone", "-q", server.git_url("s") if transport == "git" else server.url("http", "s.git"), str(client.cwd / "ours"), check=False)
        server.settled()
    assert cloned.returncode != 0
    assert f"the repository holds an object the server cannot read (loose object {oid} " in cloned.stderr, \
        cloned.stderr
    assert not [event for event in seen if event.get("log_failure") is not None], "a traceback was logged"
    lines = [event for event in seen if event.get("log_level") == LogLevel.error]
    assert len(lines) == 1, lines
    said = formatEvent(lines[0])
    repo = lines[0]["repo"]
    assert repo in ("s", "s.git") and lines[0]["object"] == oid, said  # (as the URL names it)
    assert said.startswith(f"git session on {repo}: loose object {oid} "), said
    assert f"({loose}), so the pack sent was cut short; restore the file from a backup" in said, said
