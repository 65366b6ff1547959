"""hg-evolve's range hashes after ``hg strip`` on the server and the changesets unbundled again in
another order: the kept ranges were reused when the last changeset was back where it was, and
numbered the changesets as before the strip (a merge's parents swapped), so the hashes hgwire
answered were not hg-evolve's and a client's discovery missed the markers that differ.  The kept
ranges now go when the changelog was anything but appended to.

hgwire is asked over raw HTTP here: no hg client of it runs."""

# ruff: noqa: F811  (the htpasswd fixture, imported from test_hg_http, is the test's parameter)
from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Client, RunningServer, SshKeys
from tests.integration.test_hg_evolve_obsdiscovery import EVOLVE, HGRC
from tests.integration.test_hg_evolve_topics import (
    HG_EVOLVE,
    _setup,
    client,  # noqa: F401 - a fixture (evolve-loaded command server)
)
from tests.integration.test_hg_http import (
    htpasswd,  # noqa: F401 - a fixture
    raw,
)

pytestmark = pytest.mark.skipif(HG_EVOLVE is None, reason="hg-evolve is not installed where hg runs "
                                "(pip install hg-evolve, as the test extra does)")


def _hashes(port: int, nodes: list[str]) -> list[str]:
    arg = urllib.parse.urlencode({"ranges": " ".join(n + "00000000" for n in nodes)})
    answer = raw(port, "POST", "/team?cmd=evoext_obshashrange_v1", {"X-HgArgs-Post": str(len(arg))}, arg.encode())
    assert answer.status == 200, answer
    return answer.body.decode().split(" ")


def _theirs(client: Client, repo: Path, nodes: list[str]) -> list[str]:
    """hg-evolve's own hash of each ``(node, 0)``, on the server's repository."""
    revs = [a for n in nodes for a in ("--rev", n)]
    for cache in (repo / ".hg" / "cache").glob("evoext*"):  # (hg-evolve's own, stale after a strip)
        cache.unlink()
    table = client.hg(*EVOLVE, "debugobshashrange", *revs, "-R", str(repo)).stdout.splitlines()[1:]
    found = {}
    for line in table:
        rev, _short, index, _size, _depth, short_hash = line.split()
        if index == "0":
            found[int(rev)] = short_hash
    at = {n: int(client.hg(*EVOLVE, "log", "-R", str(repo), "-r", n, "-T", "{rev}").stdout) for n in nodes}
    return [found[at[n]] for n in nodes]


def test_range_hashes_after_a_strip_and_an_unbundle_in_another_order_are_hg_evolves(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, htpasswd: Path,
        tmp_path: Path) -> None:
    peer, _url, repo = _setup("http", make_server, client, ssh_keys, htpasswd, HGRC)
    port = peer.server.port("http")
    r = str(repo)

    def commit(name: str) -> str:
        (repo / name).write_text(name + "\n")
        client.hg(*EVOLVE, "commit", "-q", "-A", "-R", r, "-m", name)
        return client.hg(*EVOLVE, "log", "-R", r, "-r", ".", "-T", "{node}").stdout

    base = commit("base")
    a = commit("a")
    client.hg(*EVOLVE, "update", "-q", "-R", r, base)
    b = commit("b")
    client.hg(*EVOLVE, "merge", "-q", "-R", r, a)
    c = commit("c")
    above = [commit(f"d{i}") for i in range(5)]
    marked = (a, b, c, above[1], above[4])

    def mark() -> None:
        for i, node in enumerate(marked):
            client.hg(*EVOLVE, "debugobsolete", "-q", "-R", r, "-d", f"{i} 0", f"{i + 1:x}" * 40, node)

    mark()
    nodes = [base, a, b, c, *above]
    assert len(set(_theirs(client, repo, nodes))) > 3
    assert [h[:12] for h in _hashes(port, nodes)] == _theirs(client, repo, nodes)

    # behind hgwire's back: a (and c) stripped, then unbundled after b: a and b trade numbers
    bundle = tmp_path / "ac.hg"
    client.hg(*EVOLVE, "bundle", "-q", "-R", r, "--base", b, "-r", above[-1], str(bundle))
    client.hg(*EVOLVE, "--config", "extensions.strip=", "strip", "-q", "--no-backup", "-R", r, "-r", a)
    client.hg(*EVOLVE, "unbundle", "-q", "-R", r, str(bundle))
    mark()  # (the markers, whatever the strip did with them)
    assert client.hg(*EVOLVE, "log", "-R", r, "-r", "1", "-T", "{node}").stdout == b
    assert client.hg(*EVOLVE, "log", "-R", r, "-r", "tip", "-T", "{node}").stdout == above[-1]
    assert [h[:12] for h in _hashes(port, nodes)] == _theirs(client, repo, nodes)
