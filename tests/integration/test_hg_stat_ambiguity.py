"""A long-running ``hg serve`` on a repository hgwire also serves sees each bookmark and phase hgwire
writes.

hg's repository cache (hg.py ``cachedlocalrepo``, what hgweb and ``hg serve`` keep between requests)
reloads only when the size or the whole-second mtime of ``00changelog.i``, ``phaseroots``, ``obsstore``
or ``bookmarks`` changes.  A bookmark moved, or a draft root made public, rewrites its file at the same
size; two such writes within a second looked like none to it, and it answered the old values until the
next write.  The moves here come a few per second, so before the fix most reads were stale.
"""

from __future__ import annotations

import http.client
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import VENV_BIN, Client, RunningServer
from tests.integration.test_hg_http import HgHttp, _settings, htpasswd  # noqa: F401

MOVES = 12


@pytest.fixture
def served(make_server: Callable[..., RunningServer], client: Client, htpasswd: Path  # noqa: F811
           ) -> tuple[HgHttp, Path, list[str]]:
    """hgwire over HTTP serving ``shared``: ``MOVES + 1`` draft changesets (a non-publishing
    repository), the bookmark ``mark`` on the first; the repository's path and the nodes."""
    web = HgHttp(make_server("fs", **_settings(htpasswd)), client)
    repo = web.server.root / "shared"
    client.hg("init", str(repo))
    (repo / ".hg" / "hgrc").write_text("[phases]\npublish = False\n")
    for n in range(MOVES + 1):
        (repo / "f.txt").write_text(f"{n}\n")
        client.hg("commit", "-q", "-A", "-m", f"c{n}", cwd=repo)
    nodes = client.hg("log", "-r", "all()", "-T", "{node}\n", cwd=repo).stdout.split()
    client.hg("bookmark", "-q", "-r", nodes[0], "mark", cwd=repo)
    return web, repo, nodes


@pytest.fixture
def hg_serve(served: tuple[HgHttp, Path, list[str]], client: Client) -> Iterator[Callable[[str], dict[str, str]]]:
    """Mercurial's own ``hg serve`` of the same repository, running through the test: its
    ``listkeys`` answer for a namespace."""
    _, repo, _ = served
    process = subprocess.Popen([os.path.join(VENV_BIN, "hg"), "serve", "-R", str(repo), "-a", "127.0.0.1",
                                "-p", "0"], env=client.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True)
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline().rsplit(":", 1)[1].rstrip(")\n"))  # "... (bound to H:P)"

        def listkeys(namespace: str) -> dict[str, str]:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
            try:
                conn.request("GET", f"/?cmd=listkeys&namespace={namespace}")
                body = conn.getresponse().read().decode()
            finally:
                conn.close()
            return dict(line.split("\t", 1) for line in body.splitlines())

        yield listkeys
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_hg_serve_sees_every_bookmark_move_hgwire_writes(
        served: tuple[HgHttp, Path, list[str]], hg_serve: Callable[[str], dict[str, str]], client: Client) -> None:
    web, repo, nodes = served
    url = web.push_url("shared")
    assert hg_serve("bookmarks") == {"mark": nodes[0]}
    stale = []
    at = nodes[0]
    for move in range(MOVES):
        to = nodes[1] if at == nodes[0] else nodes[0]  # the same size each time
        assert client.hg("debugpushkey", url, "bookmarks", "mark", at, to).stdout.strip() == "True"
        at = to
        if hg_serve("bookmarks") != {"mark": at}:
            stale.append(move)
    assert stale == [], f"hg serve answered the old bookmark after moves {stale} of {MOVES}"
    client.hg("verify", "-q", cwd=repo)


def test_hg_serve_sees_every_phase_move_hgwire_writes(
        served: tuple[HgHttp, Path, list[str]], hg_serve: Callable[[str], dict[str, str]], client: Client) -> None:
    web, repo, nodes = served
    url = web.push_url("shared")
    assert hg_serve("phases") == {nodes[0]: "1"}
    stale = []
    for move in range(MOVES):
        published = client.hg("debugpushkey", url, "phases", nodes[move], "1", "0")  # the root moves one on
        assert published.stdout.strip() == "True"
        if hg_serve("phases") != {nodes[move + 1]: "1"}:
            stale.append(move)
    assert stale == [], f"hg serve answered the old phases after moves {stale} of {MOVES}"
    client.hg("verify", "-q", cwd=repo)
