"""A number setting given a value outside the type git reads it in (``git_config_int``: a C ``int``;
``git_config_int64``; ``git_config_ulong``: no ``-`` anywhere): git 2.39 dies as the program that
reads it starts, so its fetches or its pushes are refused ("bad numeric config value '-5' for
'core.bigfilethreshold': invalid unit", "…: out of range").  hgwire read any integer: a negative
``core.bigFileThreshold`` took every object for a large one (a clone told "the repository holds an
object the server cannot read"), a negative ``core.deltaBaseCacheLimit`` failed each push with
"internal error", and ``receive.keepAlive``, ``uploadpack.keepAlive``, ``receive.certNonceSlop``,
``uploadpackfilter.tree.maxDepth`` and ``core.filesRefLockTimeout`` out of range were served.  A
negative ``receive.maxInputSize`` (an int64) is read, and git's unpack-objects and index-pack then
refuse every pack ("pack exceeds maximum allowed size"): hgwire took it as no bound.  And the
numbers dulwich's open reads with ``int()`` (``core.packedGitLimit = 512m``, ``pack.windowMemory =
100m``, ``core.compression``...) had such a repository served to nobody ("internal error"); they are
read as git reads them, refused where git refuses them (``core.compression`` from -1 to 9).  Each
case is checked beside git's own (``file://``)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LOOPBACK, Client, RunningServer, client_environment, start_server, stop_server
from tests.integration.test_git_daemon import commit


@dataclass
class Served:
    server: RunningServer
    client: Client
    seed: Path
    work: Path


@pytest.fixture(scope="module")
def served(reactor: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    base = tmp_path_factory.mktemp("number-ranges")
    client = Client(client_environment(base), base)
    work, seed = base / "work", base / "seed.git"
    client.git("init", "-q", "-b", "main", str(work))
    commit(client, work, "f", "f\n", "first")
    client.git("clone", "-q", "--bare", str(work), str(seed))
    commit(client, work, "g", "g\n", "second")
    server = start_server(reactor, "fs", base / "root", git=[LOOPBACK])
    try:
        yield Served(server, client, seed, work)
    finally:
        stop_server(reactor, server)


CASES = [  # section, subsection, name, value, (fetch refused, push refused), what hgwire says
    ("core", None, "bigFileThreshold", "-5", (True, True), "bad numeric config value '-5'"),
    ("core", None, "deltaBaseCacheLimit", "20000000000000000000", (True, True), "bad numeric config value"),
    ("receive", None, "maxInputSize", "-1", (False, True), "pack exceeds maximum allowed size"),
    ("receive", None, "maxInputSize", "99999999999999999999", (False, True), "bad numeric config value"),
    ("receive", None, "keepAlive", "3000000000", (False, True), "bad numeric config value"),
    ("uploadpack", None, "keepAlive", "3000000000", (True, False), "bad numeric config value"),
    ("receive", None, "certNonceSlop", "-1", (False, True), "bad numeric config value '-1'"),
    ("uploadpackfilter", "tree", "maxDepth", "-1", (True, False), "bad numeric config value '-1'"),
    ("core", None, "filesRefLockTimeout", "-3000000000", (False, True), "bad numeric config value"),
    ("receive", None, "keepAlive", "-1", (False, False), ""),  # (signed: read, as by git)
    ("core", None, "bigFileThreshold", "4294967296", (False, False), ""),  # (64-bit)
    # numbers dulwich's open reads with int(): a unit or a word failed it, "internal error" for everything
    ("core", None, "packedGitLimit", "512m", (False, False), ""),
    ("pack", None, "windowMemory", "100m", (False, False), ""),
    ("pack", None, "windowMemory", "lots", (True, False), "bad numeric config value 'lots' for 'pack.windowmemory'"),
    ("core", None, "compression", "10", (True, True), "bad numeric config value '10' for 'core.compression'"),
    ("core", None, "packCompression", "lots", (False, False), ""),  # (dulwich's name alone: git reads none)
]


@pytest.mark.parametrize(("section", "subsection", "name", "value", "refused", "says"), CASES)
def test_a_number_out_of_its_setting_s_range_is_refused_where_git_refuses_it(
        served: Served, section: str, subsection: str | None, name: str, value: str,
        refused: tuple[bool, bool], says: str) -> None:
    client, tag = served.client, f"{section}-{subsection}-{name}-{value}"
    header = f'[{section} "{subsection}"]' if subsection else f"[{section}]"
    repos = {"git": served.client.cwd / f"{tag}.git", "ours": served.server.root / f"{tag}.git"}
    for repo in repos.values():
        shutil.copytree(served.seed, repo, symlinks=True)
        with (repo / "config").open("a") as config:
            config.write(f"{header}\n\t{name} = {value}\n")
    for who, url in (("git", f"file://{repos['git']}"), ("ours", served.server.git_url(f"{tag}.git"))):
        fetched = client.git("clone", "-q", "--bare", url, str(client.cwd / f"clone-{who}-{tag}"), check=False)
        pushed = client.git("push", url, "main:refs/heads/new", cwd=served.work, check=False)
        for what, run, expected in (("fetch", fetched, refused[0]), ("push", pushed, refused[1])):
            assert (run.returncode != 0) == expected, (who, what, run.stderr)
            if who == "ours" and expected:
                assert says in run.stderr, (what, run.stderr)
    if not refused[1]:
        client.git("fsck", "--full", cwd=repos["ours"])
