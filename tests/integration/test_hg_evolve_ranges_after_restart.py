"""hg-evolve's range hashes across restarts of the real ``twistd hgwire``: the first
``evoext_obshashrange_v1`` after a start hashed every range of the history again (200,000
changesets: 2.4-2.8 s of CPU); they are read back from ``.hg/cache/hgwire-obshashrange-v1`` now.
After each start, every range answered is the one hg-evolve computes afresh on the server's
repository (its ``debugobshashrange``), the file read back where it fits (not written again when
nothing was hashed), markers appended on the server while it was stopped told, a damaged file
written again; an evolve client's pull after a restart gets the marker added meanwhile.

hgwire's hg client runs in processes forked from hg's chg server (``ForkedClient`` of
test_hg_evolve_topics: the real client code, over the real HTTP); the evolve area's tests with a client
process of its own are test_hg_evolve_topics'
``test_a_topic_names_its_newest_changeset_for_pull_and_clone``."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Client
from tests.integration.test_cli import _free_port, start_twistd, stop_twistd
from tests.integration.test_hg_evolve_obsdiscovery import EVOLVE, HGRC, _dag
from tests.integration.test_hg_evolve_ranges_after_pushes import _compare
from tests.integration.test_hg_evolve_topics import (
    HG_EVOLVE,
    ForkedClient,
    _with_evolve,
    client,  # noqa: F401 - a fixture (local commands in an evolve-loaded command server)
)

pytestmark = pytest.mark.skipif(HG_EVOLVE is None, reason="hg-evolve is not installed where hg runs "
                                "(pip install hg-evolve, as the test extra does)")


def _started(root: Path, port: int) -> subprocess.Popen[str]:
    proc, _url = start_twistd(["--root", str(root), "--http", f"tcp:{port}:interface=127.0.0.1"], root.parent)
    return proc


def _served_once(root: Path, client: Client, repo: Path,  # noqa: F811
                 first: Callable[[str], object] = lambda url: None) -> tuple[int, tuple[int, int]]:
    """Start the server, call ``first`` with the repository's URL, compare every range with
    hg-evolve's, stop it: how many were compared, and the cache file's (inode, mtime) after."""
    port = _free_port()
    proc = _started(root, port)
    try:
        first(f"http://127.0.0.1:{port}/team")
        compared = _compare(client, repo, port)
    finally:
        stop_twistd(proc)
    cache = (repo / ".hg" / "cache" / "hgwire-obshashrange-v1").stat()
    return compared, (cache.st_ino, cache.st_mtime_ns)


def test_range_hashes_after_a_restart_are_hg_evolves(client: Client, tmp_path: Path) -> None:  # noqa: F811
    _with_evolve(client)
    peer = ForkedClient(client.env, client.cwd)  # (hgwire's client: its clone and pull)
    root = tmp_path / "repos"
    root.mkdir()
    repo = root / "team"
    r = str(repo)
    client.hg("init", r)
    (repo / ".hg" / "hgrc").write_text(HGRC)
    client.hg(*EVOLVE, "debugbuilddag", "-q", "-R", r, "-n", _dag(11, 60))
    nodes = client.hg(*EVOLVE, "log", "-R", r, "-r", "all()", "-T", "{node}\n").stdout.split()
    for prec, succ in ((5, 40), (12, 13), (30, 55)):
        client.hg(*EVOLVE, "debugobsolete", "-q", "-R", r, nodes[prec], nodes[succ])
    work = tmp_path / "clone"
    first, written = _served_once(root, client, repo,
                                  lambda url: peer.hg(*EVOLVE, "clone", "-q", url, str(work)))
    assert first > 100
    again, kept = _served_once(root, client, repo)  # read back: nothing hashed, nothing written
    assert (again, kept) == (first, written)
    client.hg(*EVOLVE, "debugobsolete", "-q", "-R", r, nodes[20], nodes[21])  # while it is stopped
    # the evolve client's discovery of markers, the first ranges asked after the restart, finds the new one
    _served_once(root, client, repo, lambda url: peer.hg(*EVOLVE, "pull", "-q", "-R", str(work), url))
    theirs = client.hg(*EVOLVE, "debugobsolete", "-R", r, "-T", "{join(succnodes, ' ')} {prednode}\n").stdout
    mine = client.hg(*EVOLVE, "debugobsolete", "-R", str(work), "-T", "{join(succnodes, ' ')} {prednode}\n").stdout
    assert nodes[20] in mine
    assert sorted(mine.splitlines()) == sorted(theirs.splitlines())
    cache = repo / ".hg" / "cache" / "hgwire-obshashrange-v1"
    cache.write_bytes(cache.read_bytes()[:100])  # damaged: ignored, hashed afresh, written again
    _served_once(root, client, repo)
    assert cache.stat().st_size > 100
