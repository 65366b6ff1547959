"""hgweb's history of a block of lines (``log/REV/PATH?linerange=FROM:TO``, ``&descend``: what
"follow lines" in a browser asks for; ``json-filelog`` for scripts): the changesets that changed
those lines, through edits above and below them, merges and a rename, byte for byte as ``hg
serve`` answers, and its refusals of a bad range."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tests.conftest import Client, RunningServer, hg_history_served
from tests.integration.test_hg_archive import _commit, _hg_serve
from tests.integration.test_hg_http import raw


def _history(client: Client, repo: Path) -> None:
    """A file edited at random in 12 changesets (lines added above and below others, changed,
    removed), on two branches merged twice, then renamed and edited again."""
    rng = random.Random(11)
    hg = ("-R", str(repo))
    client.hg("init", str(repo))
    lines = [b"line %d\n" % n for n in range(1, 21)]
    fresh = 100

    def edit() -> bytes:
        nonlocal fresh
        for _ in range(rng.randint(1, 3)):
            at, roll = rng.randint(0, len(lines)), rng.random()
            fresh += 1
            if roll < 0.4:
                lines.insert(at, b"new %d\n" % fresh)
            elif roll < 0.7 and len(lines) > 5:
                del lines[min(at, len(lines) - 1)]
            else:
                lines[min(at, len(lines) - 1)] = b"changed %d\n" % fresh
        return b"".join(lines)

    stamp = 1_700_000_000
    _commit(client, repo, "start", {"f.txt": b"".join(lines)}, stamp)
    for n in range(4):
        stamp += 100
        _commit(client, repo, f"edit {n}", {"f.txt": edit()}, stamp)
    client.hg("update", "-q", *hg, "-r", "2")
    side = (repo / "f.txt").read_bytes().splitlines(True)
    side[0:0] = [b"side top\n"]
    side.append(b"side end\n")
    stamp += 100
    _commit(client, repo, "side", {"f.txt": b"".join(side)}, stamp)
    client.hg("update", "-q", *hg, "-r", "4")
    client.hg("merge", "-q", *hg, "-r", "5", "--tool", "internal:merge", check=False)
    merged = (repo / "f.txt").read_bytes()
    if b"<<<<<<<" in merged:  # a conflict: keep ours
        client.hg("resolve", "-q", *hg, "--tool", "internal:local", "--all")
    client.hg("commit", "-q", *hg, "-u", "t", "-d", f"{stamp + 50} 0", "-m", "merge side")
    lines[:] = (repo / "f.txt").read_bytes().splitlines(True)
    for n in range(3):
        stamp += 100
        _commit(client, repo, f"after {n}", {"f.txt": edit()}, stamp)
    client.hg("mv", "-q", *hg, str(repo / "f.txt"), str(repo / "g.txt"))
    stamp += 100
    _commit(client, repo, "renamed", {"g.txt": edit()}, stamp)
    for n in range(2):
        stamp += 100
        _commit(client, repo, f"renamed, edited {n}", {"g.txt": edit()}, stamp)


def test_a_line_range_s_history_is_hg_serve_s(make_server: Callable[..., RunningServer], client: Client) -> None:
    server, repo = hg_history_served(make_server, client, "web", _history)
    port = server.port("http")
    heads = client.hg("log", "-R", str(repo), "-T", "{rev}\n").stdout.split()
    pages = []
    for rev in heads:
        for name in ("f.txt", "g.txt"):
            data = client.hg("cat", "-R", str(repo), "-r", rev, str(repo / name), check=False)
            if data.returncode != 0:
                continue
            count = len(data.stdout.splitlines())
            for first, last in {(1, 1), (1, 3), (count // 2, count // 2 + 2), (count, count), (1, count),
                                (count // 3, count // 3)}:
                if 1 <= first <= last:
                    pages.append(f"json-filelog/{rev}/{name}?linerange={first}:{last}")
                    pages.append(f"json-filelog/{rev}/{name}?linerange={first}:{last}&descend")
            pages.append(f"json-filelog/{rev}/{name}?linerange=2:{count + 1}")  # past the end
            pages.append(f"json-log/{rev}/{name}?linerange=1:2&revcount=2")
    pages += ["json-filelog/tip/g.txt?linerange=0:2", "json-filelog/tip/g.txt?linerange=3:2",
              "json-filelog/tip/g.txt?linerange=x", "json-filelog/tip/g.txt?linerange=1:2&linerange=2:3",
              "json-filelog/tip/g.txt?linerange=2", "log/tip/g.txt?linerange=2:4&style=json"]
    assert len(pages) > 150
    changed = 0
    with _hg_serve(client, repo) as reference:
        for page in pages:
            ours = raw(port, "GET", f"/web/{page}")
            theirs = raw(reference, "GET", f"/{page}")
            assert (ours.status, ours.body) == (theirs.status, theirs.body), page
            changed += theirs.body.count(b'"node"')
    assert changed > 300  # the ranges' histories are not empty

    # the revsets followlines() (the same walk) and follow(FILE) (a file's history through the rename)
    queries = ["followlines(g.txt, 3:5, startrev=tip)", "followlines(g.txt, 1, startrev=tip)",
               "followlines(f.txt, 2:4, startrev=5, descend=True)", "followlines('glob:g.*', 4:9, startrev=tip)",
               "followlines(f.txt, 1:3, startrev=7) and not merge()", "followlines(f.txt, 3:1, startrev=7)",
               "followlines(g.txt, :3, startrev=tip)", "followlines(g.txt, 2:6)",  # the last from "."
               "follow(g.txt)", "follow(g.txt, 9)", "follow('glob:*.txt', tip)", "follow(f.txt, 6) - merge()"]
    with _hg_serve(client, repo) as reference:
        for query in queries:
            search = f"json-changelog?revcount=100&rev={quote(query, safe='')}"
            ours, theirs = raw(port, "GET", f"/web/{search}"), raw(reference, "GET", f"/{search}")
            assert (ours.status, ours.body) == (theirs.status, theirs.body), query
        # a range past the file's end: hg serve fails with 500, hgwire searches for the words
        past = raw(port, "GET", "/web/log?style=raw&rev=" + quote("followlines(g.txt, 1:900, startrev=tip)", safe=""))
        assert past.status == 200 and b"keyword search" in past.body

    # the page a browser gets lists those changesets, and only those
    listed = json.loads(raw(port, "GET", "/web/json-filelog/tip/g.txt?linerange=1:2").body)["entries"]
    everything = json.loads(raw(port, "GET", "/web/json-filelog/tip/g.txt?revcount=100").body)["entries"]
    page = raw(port, "GET", "/web/log/tip/g.txt?linerange=1:2", {"Accept": "text/html"}).body.decode()
    assert listed and all(entry["node"][:12] in page for entry in listed) and "History of lines 1:2 of g.txt" in page
    assert any(entry["node"][:12] not in page for entry in everything if entry not in listed)
    refused = raw(port, "GET", "/web/log/tip/g.txt?linerange=0:2", {"Accept": "text/html"})
    assert refused.status == 400 and b"fromline must be strictly positive" in refused.body


def test_a_line_range_s_history_past_its_time_is_refused_saying_so(
        make_server: Callable[..., RunningServer], client: Client, monkeypatch: Any) -> None:
    """The walk diffs every revision it passes: one that takes longer than a page is given is
    refused (404 with the reason), the page threads free for the others."""
    from backends.hg import web

    server, _ = hg_history_served(make_server, client, "slow", _history)
    port = server.port("http")
    assert raw(port, "GET", "/slow/json-filelog/tip/g.txt?linerange=1:3").status == 200
    monkeypatch.setattr(web, "LINE_RANGE_SECONDS", -1.0)
    refused = raw(port, "GET", "/slow/json-filelog/tip/g.txt?linerange=1:3")
    assert refused.status == 404 and b"this line range's history takes more than" in refused.body, refused.body
    assert raw(port, "GET", "/slow/json-shortlog").status == 200
