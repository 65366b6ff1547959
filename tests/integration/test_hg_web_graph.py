"""hgweb's graph (``json-graph[/REV]``) side by side with the real ``hg serve``: a seeded DAG of 90
changesets (forks from far back, merges of old and new heads, new roots, named branches, secret
heads that pulls cannot see) laid out byte for byte from many revisions and window sizes, with
and without the hgrc's ``[graph]`` styles; and its page for browsers."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_hg_archive import _hg_serve
from tests.integration.test_hg_http import raw


def _dag(rng: random.Random, size: int) -> str:
    parts = ["+2"]
    made = 2
    while made < size:
        roll = rng.random()
        back = rng.randint(1, made)
        if roll < 0.25:
            parts.append(f"*{back}")
        elif roll < 0.45 and made > 2:
            parts.append(f"*{back}/{rng.randint(1, made)}" if rng.random() < 0.5 else f"/{back}")
        elif roll < 0.5:
            parts.append("$ .")
        elif roll < 0.6:
            parts.append(f"@b{rng.randint(1, 3)} .")
        else:
            parts.append(f"+{rng.randint(1, 3)}")
        made = sum(int(p[1:]) if p.startswith("+") else 1 for p in parts)
    return " ".join(parts)


@pytest.fixture
def served(make_server: Callable[..., RunningServer], client: Client) -> tuple[RunningServer, Path]:
    server = make_server("fs", http=[LOOPBACK])
    repo = server.root / "dag"
    client.hg("init", str(repo))
    text = _dag(random.Random(31), 90)
    client.hg("debugbuilddag", "-q", "-R", str(repo), text)
    heads = client.hg("log", "-R", str(repo), "-r", "heads(all())", "-T", "{rev}\n").stdout.split()
    client.hg("phase", "-q", "-R", str(repo), "--secret", "--force", "-r", heads[0])
    return server, repo


def test_the_graph_is_laid_out_as_hg_serve_lays_it(served: tuple[RunningServer, Path], client: Client) -> None:
    server, repo = served
    revs = client.hg("log", "-R", str(repo), "-r", "not secret()", "-T", "{rev}\n").stdout.split()
    assert len(revs) > 80
    merges = client.hg("log", "-R", str(repo), "-r", "merge()", "-T", "{rev}\n").stdout.split()
    assert len(merges) > 5
    pages = ["json-graph", "json-graph?revcount=500", "json-graph?revcount=1"]
    pages += [f"json-graph/{rev}?revcount={count}" for rev in revs[::7] for count in (3, 12, 40)]
    for styles in ("", "[graph]\ndefault.width = 3\nb1.color = FF0000\nb2.width = x\nb3.color = no-no\nplain = 1\n"):
        (repo / ".hg" / "hgrc").write_text(styles)
        with _hg_serve(client, repo) as port:
            for page in pages:
                ours, theirs = raw(server.port("http"), "GET", f"/dag/{page}"), raw(port, "GET", f"/{page}")
                assert (ours.status, ours.body) == (theirs.status, theirs.body), (styles, page)
    body = raw(server.port("http"), "GET", "/dag/json-graph?revcount=500").body
    assert b'"width": 3' in body and b'"bcolor": "FF0000"' in body and b'"col": 3' in body


def test_an_empty_repository_has_an_empty_graph(make_server: Callable[..., RunningServer], client: Client) -> None:
    server = make_server("fs", http=[LOOPBACK])
    repo = server.root / "empty"
    client.hg("init", str(repo))
    with _hg_serve(client, repo) as port:
        assert raw(server.port("http"), "GET", "/empty/json-graph").body == raw(port, "GET", "/json-graph").body


def test_the_graph_page_draws_what_json_graph_says(served: tuple[RunningServer, Path]) -> None:
    server, _repo = served
    port = server.port("http")
    page = raw(port, "GET", "/dag/graph?revcount=20", {"Accept": "text/html"})
    assert page.status == 200 and page.headers["content-security-policy"].startswith("default-src 'none'")
    body = page.body.decode()
    data = raw(port, "GET", "/dag/graph?revcount=20&style=json").body
    assert data == raw(port, "GET", "/dag/json-graph?revcount=20").body
    changesets = json.loads(data)["changesets"]
    assert body.count("<circle ") == len(changesets) == 20
    assert body.count("<line ") == sum(len(c["edges"]) for c in changesets)
    for entry in changesets:
        assert f'/dag/rev/{entry["node"]}' in body
    assert f'href="http://127.0.0.1:{port}/dag/graph?revcount=40"' in body  # a longer one
    assert raw(port, "GET", "/dag/graph/5", {"Accept": "text/html"}).status == 200
    assert raw(port, "GET", "/dag/graph/nosuch", {"Accept": "text/html"}).status == 404
