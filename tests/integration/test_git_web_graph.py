"""A git repository's graph and log search, for a browser: the graph lists the commits from a
ref down with each commit before its parents, and its drawing has a node per commit and an edge
from each commit to each parent shown; the search finds a commit by a ref or its id, else the
commits whose author, committer or message hold every word, in git log's order."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from protocols.errors import ProtocolError
from tests.conftest import Client, RunningServer
from tests.integration.test_git_blame import served_history
from tests.integration.test_hg_http import raw


def test_graph_and_search(make_server: Callable[..., RunningServer], client: Client) -> None:
    server, work, repo, pages = served_history(make_server, client, "g.git")
    data = pages.graph("main", 60)["changesets"]
    expected = client.git("rev-list", "main", cwd=work).stdout.split()
    assert sorted(c["node"] for c in data) == sorted(expected)
    row_of = {c["node"]: c["row"] for c in data}
    for commit in data:  # each commit before its parents; an edge from its column per parent
        assert all(row_of[p] > commit["row"] for p in commit["parents"])
        own = [e for e in commit["edges"] if e["col"] == commit["col"]]
        assert len(own) >= len(commit["parents"])
    assert any(len(c["parents"]) == 2 for c in data) and max(c["col"] for c in data) >= 1
    merges = [c for c in data if len(c["parents"]) == 2]
    assert pages.graph("main", 5)["changesets"][0]["node"] == expected[0]

    found = pages.search(b"merge", 10)["entries"]
    assert [e["node"] for e in found] == client.git("log", "--format=%H", "--grep=merge", "-i", "-n", "10", "main",
                                                     cwd=work).stdout.split()
    assert len(found) == len(merges)
    twins = [e["node"] for e in pages.search(b"TWIN on", 100)["entries"]]  # every word, case folded
    assert twins == client.git("log", "--format=%H", "--grep=twin on", "-i", "main", cwd=work).stdout.split()
    assert len(twins) == 2
    side = client.git("rev-parse", "side", cwd=work).stdout.strip()
    assert [e["node"] for e in pages.search(b"side", 10)["entries"]] == [side]  # a branch: its commit
    assert pages.search(b"no such words", 10)["entries"] == []
    assert pages.resolve(expected[3][:7]) == expected[3].encode()  # an abbreviated id, as git prints them
    with pytest.raises(ProtocolError):
        pages.resolve(expected[3][:6])  # too short to be taken
    ambiguous = next(digit for digit in "0123456789abcdef" if sum(c.startswith(digit) for c in expected) > 1)
    with pytest.raises(ProtocolError, match="ambiguous"):
        pages._by_prefix(ambiguous.encode(), ambiguous)
    repo.dulwich_repo.close()  # type: ignore[attr-defined]

    port = server.port("http")
    page = raw(port, "GET", "/g.git/graph", {"Accept": "text/html"})
    assert page.status == 200
    body = page.body.decode()
    assert body.count("<circle ") == len(expected) and "/g.git/rev/" + expected[0] in body
    assert raw(port, "GET", f"/g.git/rev/{expected[1][:10]}", {"Accept": "text/html"}).status == 200
    found_page = raw(port, "GET", "/g.git/log?rev=merge", {"Accept": "text/html"}).body.decode()
    assert len(re.findall(r"/g\.git/rev/[0-9a-f]{40}", found_page)) == len(merges)
    shortlog = raw(port, "GET", "/g.git/shortlog", {"Accept": "text/html"}).body.decode()
    assert f'action="http://127.0.0.1:{port}/g.git/log"' in shortlog
