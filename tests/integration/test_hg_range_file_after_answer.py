"""hg-evolve's range hashes are answered before hgwire writes them to disk: the first
``evoext_obshashrange_v1`` after a start wrote ``.hg/cache/hgwire-obshashrange-v1`` (1.4 s of CPU
for 200,000 changesets) before its answer, and the client waited for it.  The write is held here
by the test until the answer has arrived, over HTTP and over SSH; then the file is written."""

from __future__ import annotations

import http.client
import shlex
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from backends.hg.repository import HgRepo
from tests.conftest import LOOPBACK, Client, RunningServer, SshKeys, ssh_server_settings

SERVER_HGRC = "[extensions]\nevolve =\n[experimental]\nevolution = all\n[phases]\npublish = False\n"
WAIT = 60
"""Seconds a step may take before the test gives up on it (a held answer never comes)."""


def _repository(client: Client, root: Path) -> tuple[Path, str]:
    """A repository of 40 changesets with markers, served with hg-evolve's discovery: its path and tip."""
    repo = root / "team"
    root.mkdir(parents=True, exist_ok=True)
    client.hg("init", str(repo))
    evolution = ("--config", "experimental.evolution=all")
    client.hg(*evolution, "debugbuilddag", "-q", "-R", str(repo), "+20:fork +20 <fork +5")
    nodes = client.hg("log", "-R", str(repo), "-r", "all()", "-T", "{node}\n").stdout.split()
    for prec, succ in ((3, 30), (12, 13)):
        client.hg(*evolution, "debugobsolete", "-q", "-R", str(repo), nodes[prec], nodes[succ])
    (repo / ".hg" / "hgrc").write_text(SERVER_HGRC)
    tip = client.hg("log", "-R", str(repo), "-r", "max(heads(all()))", "-T", "{node}").stdout
    return repo, tip


def _held_write(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, threading.Event]:
    """The range file's write, held until the first event is set (or for twice ``WAIT``, longer
    than a client waits); the second tells it is done."""
    release, written = threading.Event(), threading.Event()
    write: Callable[[Any, bytes], None] = HgRepo._write_range_hashes

    def held(self: HgRepo, data: bytes) -> None:
        release.wait(2 * WAIT)
        write(self, data)
        written.set()

    monkeypatch.setattr(HgRepo, "_write_range_hashes", held)
    return release, written


def _ask_http(port: int, ranges: str) -> str:
    """One ``evoext_obshashrange_v1`` as hg sends it over HTTP (``X-HgArg-1``): the answer."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
    try:
        conn.request("GET", "/team?cmd=evoext_obshashrange_v1", headers={"X-HgArg-1": f"ranges={ranges}"})
        response = conn.getresponse()
        assert response.status == 200
        return response.read().decode()
    finally:
        conn.close()


def _ask_ssh(command: str, ranges: str) -> str:
    """The same over SSH, as ``hg serve --stdio`` reads it (``NAME\nARG LEN\nVALUE``): the answer."""
    line = f"evoext_obshashrange_v1\nranges {len(ranges)}\n{ranges}"
    done = subprocess.run([*shlex.split(command), "alice@127.0.0.1", "hg -R team serve --stdio"], input=line,
                          capture_output=True, text=True, timeout=WAIT, check=True)
    length, _, answer = done.stdout.partition("\n")
    assert int(length) == len(answer), done.stderr
    return answer


@pytest.mark.parametrize("transport", ["http", "ssh"])
def test_the_range_hashes_are_answered_before_their_file_is_written(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, transport: str) -> None:
    settings = ssh_server_settings(ssh_keys) if transport == "ssh" else {"http": [LOOPBACK]}
    server = make_server("fs", **settings)
    repo, tip = _repository(client, server.root)
    release, written = _held_write(monkeypatch)
    ranges = f"{tip}00000000"  # the tip's whole range
    try:
        if transport == "ssh":
            answer = _ask_ssh(ssh_keys.command(server.port("ssh")), ranges)
        else:
            answer = _ask_http(server.port("http"), ranges)
        answered_while_held = not written.is_set()
    except (TimeoutError, subprocess.TimeoutExpired):  # (before: the answer waited for the write, held)
        answer, answered_while_held = "", False
    finally:
        release.set()
    assert answered_while_held, "no answer while the range file's write was held"
    assert len(answer) == 40 and answer.strip("f") != ""  # (one hash, hex: known, not all-ff)
    assert written.wait(WAIT), "the range hashes were not written after the answer"
    assert (repo / ".hg" / "cache" / "hgwire-obshashrange-v1").is_file()
    client.hg("verify", "-q", "-R", str(repo))
