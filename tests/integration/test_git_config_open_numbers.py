"""The numbers dulwich's open of a repository reads with ``int()`` besides ``core.bigFileThreshold`` and
``core.deltaBaseCacheLimit``: ``pack.windowMemory = 256m``, ``core.packedGitLimit = 512m`` or
``pack.deltaCacheSize = 256m`` (sizes as operators write them, and git reads them) had the repository
served to nobody, every client told "internal error", ``ls-remote`` too; so had a value git never
reads (``pack.bigFileThreshold``, ``core.maxTreeDepth`` in git 2.39) that is not a plain number.
Each is now read as git reads it, and one git would not read refuses what git refuses, checked
beside git's own (``file://``)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LOOPBACK, Client, RunningServer, client_environment, start_server, stop_server
from tests.integration.test_git_daemon import commit

SETTINGS = [("core.packedGitLimit", "512m"), ("pack.windowMemory", "256m"), ("pack.deltaCacheSize", "256m"),
            ("core.compression", "9"), ("core.looseCompression", "1"), ("pack.depth", "50"), ("pack.threads", "1"),
            ("pack.indexVersion", "2"), ("core.packCompression", "1k"), ("pack.deltaWindowSize", "1k"),
            ("pack.bigFileThreshold", "1m"), ("core.maxTreeDepth", "2k")]


@pytest.fixture(scope="module")
def served(reactor: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, Client, Path]]:
    """One server for the module, and the work tree each test's repositories are cloned from."""
    tmp_path = tmp_path_factory.mktemp("open-numbers")
    server = start_server(reactor, "fs", tmp_path / "root", git=[LOOPBACK])
    try:
        client = Client(client_environment(tmp_path), tmp_path)
        work = tmp_path / "work"
        client.git("init", "-q", "-b", "main", str(work))
        commit(client, work, "f", "f\n", "first")
        yield server, client, work
    finally:
        stop_server(reactor, server)


@pytest.mark.parametrize("value", ["written", "lots"])
@pytest.mark.parametrize(("key", "written"), SETTINGS)
def test_a_number_dulwich_s_open_reads_is_read_as_git_reads_it(served: tuple[RunningServer, Client, Path],
                                                                key: str, written: str, value: str) -> None:
    server, client, work = served
    value = written if value == "written" else value
    name = f"{key.replace('.', '-')}-{value}"
    bare, twin = server.root / f"{name}.git", client.cwd / f"{name}-twin.git"
    client.git("clone", "-q", "--bare", str(work), str(bare))
    client.git("config", "pack.threads", "1", cwd=bare)
    client.git("config", key, value, cwd=bare)
    shutil.copytree(bare, twin, symlinks=True)
    outcomes = {}
    for tag, url in (("git", f"file://{twin}"), ("ours", server.git_url(name))):
        outcomes[tag] = (client.git("ls-remote", url, check=False),
                         client.git("clone", "-q", url, str(client.cwd / f"{name}-{tag}"), check=False),
                         client.git("push", url, f"main:refs/heads/{tag}", cwd=work, check=False))
    for what, theirs, ours in zip(("ls-remote", "clone", "push"), outcomes["git"], outcomes["ours"], strict=True):
        assert (ours.returncode == 0) == (theirs.returncode == 0), (what, ours.stderr, theirs.stderr)
        if ours.returncode:
            assert f"bad numeric config value '{value}' for '{key.lower()}'" in ours.stderr, (what, ours.stderr)
