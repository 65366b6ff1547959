"""A Mercurial repository's pages for browsers (``gateway.hg_web``): every page a link leads to
answers, history is escaped wherever it is shown, nothing secret is shown, the repository is the
longest name before a page's name, and ``/NAME`` is the summary for a browser only."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_hg_archive import _commit
from tests.integration.test_hg_http import raw
from tests.integration.test_hg_web_json import served  # noqa: F401 (the shared history, served as "web")

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
HOSTILE = '<script>alert("x")</script>'


def _get(server: RunningServer, path: str) -> tuple[int, str, dict[str, str]]:
    answer = raw(server.port("http"), "GET", path, BROWSER)
    return answer.status, answer.body.decode("utf-8", "replace"), answer.headers


def _crawl(server: RunningServer, start: str, limit: int = 400) -> dict[str, str]:
    """Every page reached from ``start`` by the links that stay in the repository (not raw files,
    patches or archives, which are not HTML)."""
    base = f"http://127.0.0.1:{server.port('http')}"
    prefix = base + start
    seen: dict[str, str] = {}
    todo = [prefix]
    while todo and len(seen) < limit:
        url = todo.pop()
        if url in seen:
            continue
        status, body, headers = _get(server, url[len(base):])
        assert status == 200, (url, status, body[:200])
        assert headers["content-type"] == "text/html; charset=UTF-8"
        assert "script-src" not in headers["content-security-policy"]
        assert headers["content-security-policy"].startswith("default-src 'none'")
        seen[url] = body
        for link in re.findall(r'href="([^"]+)"', body):
            link = link.replace("&amp;", "&")
            if link.startswith(prefix) and not re.search(r"/(raw-rev|raw-file|archive)/", link):
                todo.append(link)
    return seen


def test_every_link_leads_to_a_page(served: tuple[RunningServer, Path], client: Client) -> None:  # noqa: F811
    server, repo = served
    pages = _crawl(server, "/web")
    kinds = {re.sub(r"^/web/?", "", url.split(str(server.port("http")), 1)[1]).split("/")[0] for url in pages}
    assert {"", "shortlog", "rev", "file", "log", "tags", "branches", "bookmarks"} <= kinds, kinds
    assert len(pages) > 40
    summary = pages[f"http://127.0.0.1:{server.port('http')}/web"]
    assert f"hg clone http://127.0.0.1:{server.port('http')}/web" in summary
    assert "merge side" in summary and "v1" in summary and "book@elsewhere" in summary
    secret = client.hg("log", "-R", str(repo), "-r", "secret()", "-T", "{node}").stdout
    for url, body in pages.items():
        assert secret not in body and "hidden-work" not in body and "secret.txt" not in body, url
    changeset = next(body for url, body in pages.items() if "/rev/" in url and "copy" in body and "copied.txt" in body)
    assert 'class="add"' in changeset
    listing = pages[f"http://127.0.0.1:{server.port('http')}/web/file/tip"]
    assert "deep/" in listing and "only/one/" not in listing  # removed at the tip
    assert _get(server, "/web/rev/nosuch")[0] == 404
    assert _get(server, f"/web/rev/{secret}")[0] == 404


def test_history_is_escaped_wherever_it_is_shown(make_server: Callable[..., RunningServer], client: Client) -> None:
    server = make_server("fs", http=[LOOPBACK])
    repo = server.root / "odd"
    client.hg("init", str(repo))
    name = 'x"><img src=y onerror=alert(1)>&.txt'
    _commit(client, repo, "start", {"a.txt": b"<b>bold</b> & more\n"}, 1_700_000_000)
    (repo / name).write_bytes(HOSTILE.encode() + b"\n")
    client.hg("commit", "-q", "-A", "-R", str(repo), "-u", f"{HOSTILE} <e@x>", "-d", "1700000100 0", "-m",
              f"{HOSTILE}\n\n<i>body</i>")
    client.hg("bookmark", "-q", "-R", str(repo), '"><script>')
    client.hg("branch", "-q", "-R", str(repo), "<br>")
    _commit(client, repo, "on <br>", {"b.txt": b"b\n"}, 1_700_000_200)
    client.hg("tag", "-q", "-R", str(repo), "-u", "t", "-d", "1700000300 0", "-r", "1", "<t>")
    pages = _crawl(server, "/odd")
    assert len(pages) > 10
    for url, body in pages.items():
        assert "<script" not in body and "<img" not in body and "<i>" not in body and "<br>\"" not in body, url
        assert "<b>" not in body and '<t>' not in body, url
    everything = "".join(pages.values())
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in everything
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; more" in everything
    assert "x%22%3E%3Cimg%20src%3Dy%20onerror%3Dalert%281%29%3E%26.txt" in everything  # in a link, encoded


def test_the_longest_repository_before_a_page_name_is_the_one(make_server: Callable[..., RunningServer],
                                                              client: Client) -> None:
    server = make_server("fs", http=[LOOPBACK])
    outer = server.root / "tools"
    client.hg("init", str(outer))
    _commit(client, outer, "the outer repository", {"o.txt": b"o\n"}, 1_700_000_000)
    repo = outer / "log"
    client.hg("init", str(repo))
    _commit(client, repo, "logging library", {"log.py": b"print()\n"}, 1_700_000_000)
    status, body, _ = _get(server, "/tools/log")
    assert status == 200 and "logging library" in body and "hg clone" in body
    status, body, _ = _get(server, "/tools/log/rev/0")
    assert status == 200 and "logging library" in body and "outer" not in body
    status, body, _ = _get(server, "/tools/log/log/0/log.py")
    assert status == 200 and "logging library" in body
    plain = raw(server.port("http"), "GET", "/tools/log")  # no browser: the short text page
    assert plain.status == 200 and plain.headers["content-type"].startswith("text/plain")
    assert b"tools/log is a Mercurial repository" in plain.body
    status, body, _ = _get(server, "/tools/rev/0")
    assert status == 200 and "the outer repository" in body
    assert _get(server, "/nothing/rev/0")[0] == 404


def test_a_reader_the_hgrc_refuses_gets_no_page(served: tuple[RunningServer, Path]) -> None:  # noqa: F811
    server, repo = served
    (repo / ".hg" / "hgrc").write_text("[web]\ndeny_read = *\n")
    for page in ("/web", "/web/shortlog", "/web/rev/0", "/web/file/tip/a.txt", "/web/tags"):
        status, body, _ = _get(server, page)
        assert status in (401, 403) and "merge side" not in body, page
