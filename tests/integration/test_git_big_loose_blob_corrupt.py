"""A corrupt loose blob over ``core.bigFileThreshold`` (cut short, or inflating to less than its
header says), streamed a piece at a time into a clone's pack, an archive or a ``raw-file`` page:
the client is told the repository holds an object the server cannot read (a page is cut short),
and the server's log has one error line naming the repository, the object and its file and saying
what to do (it was a critical traceback each time).  git 2.39 over ``file://``: "fatal: unable to
read <oid>"."""

from __future__ import annotations

import http.client
import random
import subprocess
import urllib.request
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from twisted.logger import LogLevel, formatEvent

from tests.conftest import LOOPBACK, Client, RunningServer, log_events


def _corrupt_repository(make_server: Callable[..., RunningServer], client: Client,
                        damage: str) -> tuple[RunningServer, str, Path]:
    """A server whose ``s.git`` holds one loose blob of 40 KiB over its ``core.bigFileThreshold``
    (1k), damaged as ``damage`` says; the blob's id and its file."""
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
    client.git("config", "daemon.uploadarch", "true", cwd=bare)
    oid = client.git("rev-parse", "HEAD:big", cwd=work).stdout.strip()
    loose = bare / "objects" / oid[:2] / oid[2:]
    loose.chmod(0o644)
    if damage == "cut":
        loose.write_bytes(loose.read_bytes()[: (20 << 10)])
    else:
        loose.write_bytes(zlib.compress(b"blob %d\0" % len(data) + data[: 30 << 10]))
    return server, oid, loose


def _one_error_line(seen: list[dict[str, Any]], oid: str, loose: Path) -> str:
    assert not [event for event in seen if event.get("log_failure") is not None], "a traceback was logged"
    lines = [event for event in seen if event.get("log_level") == LogLevel.error]
    assert len(lines) == 1, lines
    said = formatEvent(lines[0])
    assert lines[0]["repo"] in ("s", "s.git") and lines[0]["object"] == oid, said  # (as the URL names it)
    assert f"loose object {oid} " in said, said
    assert f"({loose}), so what held it was cut short; restore the file from a backup" in said, said
    return said


@pytest.mark.parametrize("damage", ["cut", "lying"])
@pytest.mark.parametrize("transport", ["git", "http"])
def test_a_corrupt_streamed_loose_blob_is_logged_as_one_line(make_server: Callable[..., RunningServer],
                                                             client: Client, damage: str, transport: str) -> None:
    server, oid, loose = _corrupt_repository(make_server, client, damage)
    url = server.git_url("s") if transport == "git" else server.url("http", "s.git")
    with log_events() as seen:
        cloned = client.git("clone", "-q", url, str(client.cwd / "ours"), check=False)
        server.settled()
    assert cloned.returncode != 0
    assert f"the repository holds an object the server cannot read (loose object {oid} " in cloned.stderr, \
        cloned.stderr
    assert _one_error_line(seen, oid, loose).startswith("git session on s")


def test_a_corrupt_streamed_loose_blob_in_an_archive_or_a_page_is_logged_as_one_line(
        make_server: Callable[..., RunningServer], client: Client) -> None:
    server, oid, loose = _corrupt_repository(make_server, client, "cut")
    with log_events() as seen:
        archived = subprocess.run(["git", "archive", f"--remote={server.git_url('s.git')}", "--format=tar", "main"],
                                  env=client.env, cwd=client.cwd, capture_output=True, timeout=60, check=False)
        server.settled()
    assert archived.returncode != 0
    assert f"the server cannot read (loose object {oid} " in archived.stderr.decode(), archived.stderr
    _one_error_line(seen, oid, loose)
    with log_events() as seen:
        with pytest.raises(http.client.IncompleteRead), \
                urllib.request.urlopen(server.url("http", "s.git/raw-file/main/big"), timeout=60) as answer:
            answer.read()
        server.settled()
    _one_error_line(seen, oid, loose)
