"""A git repository's log pages, followed by their "older…" links to the end, show every commit
``git log`` shows, once each and in its order, also when two branches' commits interleave by date
before a merge (a later page continues the same walk: it does not start again from one commit,
whose ancestors alone would leave the other branch's older commits out)."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from pathlib import Path

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_hg_http import raw

BROWSER = {"Accept": "text/html"}
STAMP = 1_700_000_000


def _interleaved(client: Client, bare: Path, per_branch: int = 70) -> None:
    """A root, two branches of ``per_branch`` commits each whose dates alternate, and their merge
    (``2 * per_branch + 2`` commits), made by ``git fast-import`` with those dates."""
    script: list[str] = []

    def commit(mark: int, when: int, message: str, parents: list[int]) -> None:
        data = message.encode()
        script.extend([f"commit refs/heads/{'main' if mark % 2 or not parents else 'side'}", f"mark :{mark}",
                       f"author A <a@example.com> {when} +0000", f"committer A <a@example.com> {when} +0000",
                       f"data {len(data)}", message])
        script.extend(f"{'from' if n == 0 else 'merge'} :{p}" for n, p in enumerate(parents))
        script.append(f"M 644 inline f{mark}.txt\ndata 2\n{mark % 10}\n")

    commit(1, STAMP, "root", [])
    last = {1: 1, 0: 1}  # the tip of main (odd marks) and side (even marks)
    for n in range(2, 2 * per_branch + 2):
        commit(n, STAMP + 60 * n, f"commit {n}", [last[n % 2]])
        last[n % 2] = n
    script.extend(["commit refs/heads/main", f"mark :{2 * per_branch + 2}",
                   f"author A <a@example.com> {STAMP + 60 * (2 * per_branch + 2)} +0000",
                   f"committer A <a@example.com> {STAMP + 60 * (2 * per_branch + 2)} +0000",
                   "data 5", "merge", f"from :{last[1]}", f"merge :{last[0]}", ""])
    client.git("init", "-q", "--bare", "-b", "main", str(bare))
    client.git("--git-dir", str(bare), "fast-import", "--quiet", input=("\n".join(script) + "\n").encode())


def _follow(port: int, start: str) -> list[str]:
    """The commits the log pages list, from ``start`` through each page's "older…" link."""
    shown: list[str] = []
    target: str | None = start
    pages = 0
    while target is not None and pages < 20:
        page = raw(port, "GET", target, BROWSER)
        assert page.status == 200, (target, page.body[:200])
        body = page.body.decode()
        shown += re.findall(r'<td><a href="[^"]*/rev/([0-9a-f]{40})"', body)
        older = re.search(r'<a href="http://127\.0\.0\.1:\d+(/[^"]*)">older…</a>', body)
        target = html.unescape(older.group(1)) if older else None
        pages += 1
    return shown


def test_following_older_shows_every_commit_once(make_server: Callable[..., RunningServer], client: Client) -> None:
    server = make_server("fs", http=[LOOPBACK])
    bare = server.root / "woven.git"
    _interleaved(client, bare)
    expected = client.git("--git-dir", str(bare), "log", "--format=%H", "main").stdout.split()
    assert len(expected) == 142
    port = server.port("http")
    for start in ("/woven.git/shortlog", "/woven.git/log", "/woven.git/shortlog/main", "/woven.git/log/main/"):
        assert _follow(port, start) == expected, start
    assert _follow(port, "/woven.git/shortlog?revcount=50") == expected
    assert len(re.findall(r"/rev/[0-9a-f]{40}\"", raw(port, "GET", "/woven.git/shortlog?revcount=50",
                                                          BROWSER).body.decode())) == 50
    side = client.git("--git-dir", str(bare), "log", "--format=%H", "side").stdout.split()
    assert _follow(port, "/woven.git/shortlog/side") == side
