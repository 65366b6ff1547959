"""hgweb's JSON pages of changesets, directories and files (``json-rev``, ``json-shortlog``,
``json-changelog``, ``json-manifest``, ``json-file``, ``json-filelog``, ``json-summary``), side by side with the real ``hg serve`` on
one history: every page of every revision byte for byte, statuses equal where a page is refused.

The history holds what changes these pages: a copy (its source is a file's parent), a merge, the
same file revision made on two branches (its linkrev names the other branch, so the changeset hgweb
names is found through the ancestors), a binary file, a file without a last newline, nested
directories (``emptydirs``), an executable and a link (flags), tags (a local one, ``tip``),
bookmarks (a divergent one, one on a secret changeset), a named branch, time zones, and a secret
changeset that no page may show (its number and id are 404, no page lists it as a child)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import LOOPBACK, Client, RunningServer, hg_history_served
from tests.integration.test_hg_archive import _commit, _hg_serve
from tests.integration.test_hg_http import raw


def _history(client: Client, repo: Path) -> None:
    hg = ("-R", str(repo))
    client.hg("init", str(repo))
    numbered = b"".join(b"line %d\n" % n for n in range(1, 31))
    _commit(client, repo, "start", {"a.txt": b"a\nb\n", "deep/er/down/f.txt": b"f\n", "deep/g.txt": b"g\n",
                                    "only/one/x.txt": b"x\n", "long.txt": numbered}, 1_700_000_000)
    (repo / "run.sh").write_bytes(b"#!/bin/sh\n")
    (repo / "run.sh").chmod(0o755)
    (repo / "link").symlink_to("a.txt")
    client.hg("commit", "-q", "-A", *hg, "-u", "Ann <ann@example.com>", "-d", "1700000100 -3600",
              "-m", "exec, link\n\nand a body <b>")
    client.hg("copy", "-q", *hg, str(repo / "a.txt"), str(repo / "copied.txt"))
    _commit(client, repo, "copy", {"a.txt": b"a\nB\n"}, 1_700_000_200)
    client.hg("tag", "-q", *hg, "-u", "t", "-d", "1700000300 0", "v1")
    client.hg("branch", "-q", *hg, "side")
    _commit(client, repo, "same file on side", {"twice.txt": b"same\n", "bin.dat": b"\0\1\2"}, 1_700_000_400)
    client.hg("update", "-q", *hg, "default")
    _commit(client, repo, "same file on default", {"twice.txt": b"same\n", "noeol.txt": b"no end"}, 1_700_000_500)
    client.hg("merge", "-q", *hg, "side")
    client.hg("commit", "-q", *hg, "-u", "t", "-d", "1700000600 19800", "-m", "merge side")
    (repo / "only" / "one" / "x.txt").unlink()  # removed: its log at a later revision starts where it was
    changed = numbered.replace(b"line 5\n", b"line five\n").replace(b"line 14\n", b"line fourteen\n")
    _commit(client, repo, "after", {"noeol.txt": b"no end\nnow one\n", "deep/g.txt": b"g2\n", "long.txt": changed},
            1_700_000_700)
    client.hg("tag", "-q", *hg, "--local", "-r", "1", "mine")
    client.hg("bookmark", "-q", *hg, "-r", "2", "book")
    client.hg("bookmark", "-q", *hg, "-r", "2", "book@elsewhere")
    _commit(client, repo, "secret", {"secret.txt": b"s\n"}, 1_700_000_800)
    client.hg("phase", "-q", *hg, "--secret", "--force", "-r", "tip")
    client.hg("bookmark", "-q", *hg, "-r", "tip", "hidden-work")


@pytest.fixture
def served(make_server: Callable[..., RunningServer], client: Client) -> tuple[RunningServer, Path]:
    return hg_history_served(make_server, client, "web", _history)


def _pages(client: Client, repo: Path) -> list[str]:
    revs = client.hg("log", "-R", str(repo), "--hidden", "-T", "{rev} {node}\n").stdout.split("\n")
    pages = ["json-rev", "json-shortlog", "json-changelog", "json-log", "json-manifest", "json-summary",
             "json-shortlog?revcount=2",
             "json-changelog?revcount=0", "json-changelog?revcount=many", "json-log/3?revcount=2", "json-graph",
             "json-graph?revcount=2", "json-graph/4?revcount=3", "json-graph/2?revcount=1"]
    for line in filter(None, revs):
        rev, node = line.split()
        files = client.hg("files", "-R", str(repo), "-r", rev, "-T", "{path}\\n").stdout.split()
        pages += [f"json-rev/{rev}", f"json-changeset/{node[:12]}", f"json-graph/{rev}", f"json-shortlog/{rev}", f"json-changelog/{node}",
                  f"json-manifest/{rev}", f"json-manifest/{rev}/deep", f"json-manifest/{rev}/deep/er/",
                  f"json-file/{rev}/deep", *(f"json-file/{rev}/{f}" for f in files),
                  *(f"json-filelog/{rev}/{f}" for f in files), f"json-log/{rev}/a.txt?revcount=2",
                  *(f"json-diff/{rev}/{f}" for f in files), f"json-diff/{rev}/only/one/x.txt",
                  *(f"json-comparison/{rev}/{f}" for f in files), f"json-comparison/{rev}/only/one/x.txt",
                  f"json-comparison/{rev}/a.txt?context=0", f"json-comparison/{rev}/noeol.txt?context=full",
                  f"json-comparison/{rev}/long.txt?context=2", f"json-comparison/{rev}/long.txt?context=full",
                  f"json-filelog/{rev}/noeol.txt", f"json-filelog/{rev}/twice.txt",
                  *(f"json-annotate/{rev}/{f}" for f in files), f"json-annotate/{rev}/deep"]
    return pages + ["json-rev/nosuch", "json-rev/null", "json-rev/" + "0" * 40, "json-manifest/null", "json-file/tip/no/such",
                    "json-manifest/tip/nosuch", "json-rev/v1", "json-rev/book", "json-rev/side", "json-file/v1/a.txt",
                    "json-filelog/tip/no/such", "json-filelog/0/noeol.txt", "json-filelog/tip/secret.txt",
                    "json-filelog/tip/copied.txt?revcount=1", "json-filelog/tip/only/one/x.txt",
                    "json-log/tip/only/one/x.txt", "json-rev/tip", "json-annotate/tip/no/such",
                    "json-annotate/null/a.txt"]


def test_every_page_is_what_hg_serve_writes(served: tuple[RunningServer, Path], client: Client) -> None:
    server, repo = served
    pages = _pages(client, repo)
    assert len(pages) > 100
    compared: dict[str, int] = {}
    errors = 0
    with _hg_serve(client, repo) as port:
        for page in pages:
            ours = raw(server.port("http"), "GET", f"/web/{page}")
            theirs = raw(port, "GET", f"/{page}")
            assert ours.status == theirs.status, (page, ours.status, theirs.status, theirs.body[:200])
            if theirs.status != 200:  # hgweb's JSON error, and its message but where hg names a secret revision
                assert ours.headers["content-type"] == "application/json", page
                if b"filtered revision" not in theirs.body:
                    assert ours.body == theirs.body, page
                else:
                    assert json.loads(ours.body) == {"error": f"unknown revision '{page.split('/')[1]}'"}, page
                    errors += 1
            if theirs.status == 200:
                assert ours.body == theirs.body, page
                assert ours.headers["content-type"] == theirs.headers["content-type"] == "application/json"
                kind = page.split("/")[0].split("?")[0]
                compared[kind] = compared.get(kind, 0) + 1
    assert errors > 10
    assert min(compared.values()) >= 1 and len(compared) == 13, compared
    assert compared["json-file"] > 50 and compared["json-filelog"] > 50 and compared["json-diff"] > 50, compared
    assert compared["json-comparison"] > 50 and compared["json-annotate"] > 50, compared
    secret = client.hg("log", "-R", str(repo), "-r", "secret()", "-T", "{node}").stdout
    port = server.port("http")
    for page in (f"json-rev/{secret}", "json-rev/hidden-work", f"json-file/{secret}/secret.txt"):
        assert raw(port, "GET", f"/web/{page}").status == 404, page
    for page in ("json-shortlog", "json-rev/7", "json-changelog?revcount=100"):
        assert secret.encode() not in raw(port, "GET", f"/web/{page}").body, page


def test_the_logs_and_the_summary_follow_the_hgrc(
        served: tuple[RunningServer, Path], client: Client) -> None:
    server, repo = served
    (repo / ".hg" / "hgrc").write_text('[web]\nmaxchanges = 2\nmaxshortchanges = 3\nallow-archive = bz2 zip\n'
                                        'labels = one, "two words" three\n')
    with _hg_serve(client, repo) as port:
        for page in ("json-changelog", "json-shortlog", "json-log/2", "json-summary"):
            ours = raw(server.port("http"), "GET", f"/web/{page}")
            theirs = raw(port, "GET", f"/{page}").body.replace(f"http://localhost:{port}/".encode(),
                                                              f"http://127.0.0.1:{server.port('http')}/web/".encode())
            assert ours.body == theirs, page
    summary = raw(server.port("http"), "GET", "/web/json-summary").body
    assert b'"url": "http://127.0.0.1:%d/web/archive/tip.tar.bz2"' % server.port("http") in summary
    assert b'"labels": ["one", "two words", "three"]' in summary
    assert raw(server.port("http"), "GET", "/web/json-shortlog").body.count(b'"phase"') == 3
    searched = raw(server.port("http"), "GET", "/web/json-shortlog?rev=merge")  # maxchanges, not maxshortchanges
    assert searched.status == 200 and searched.body.count(b'"phase"') == 1
    assert raw(server.port("http"), "POST", "/web/json-rev/0").status == 405
    head = raw(server.port("http"), "HEAD", "/web/json-rev/0")
    assert head.status == 200 and head.body == b"" and int(head.headers["content-length"]) > 100


def test_a_reader_the_hgrc_refuses_gets_no_page(served: tuple[RunningServer, Path]) -> None:
    server, repo = served
    (repo / ".hg" / "hgrc").write_text("[web]\ndeny_read = *\n")
    for page in ("json-rev/0", "json-shortlog", "json-manifest/tip", "json-file/tip/a.txt"):
        assert raw(server.port("http"), "GET", f"/web/{page}").status in (401, 403), page


def test_pages_are_made_a_few_at_a_time(served: tuple[RunningServer, Path], reactor: object,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """While every page slot is taken, a page waits for one; past the waiting bound it is 503; a
    freed slot serves the next, and every slot comes back."""
    from twisted.internet import defer
    from twisted.internet.threads import blockingCallFromThread

    from gateway import hg_archive

    server, _repo = served
    slots = defer.DeferredSemaphore(1)
    monkeypatch.setattr(hg_archive, "_PAGE_SLOTS", slots)
    monkeypatch.setattr(hg_archive, "MAX_WAITING_PAGES", 0)
    blockingCallFromThread(reactor, slots.acquire)
    busy = raw(server.port("http"), "GET", "/web/json-rev/0")
    assert busy.status == 503 and b"too many pages are being made right now" in busy.body
    blockingCallFromThread(reactor, slots.release)
    assert raw(server.port("http"), "GET", "/web/json-rev/0").status == 200
    assert raw(server.port("http"), "GET", "/web/json-rev/nosuch").status == 404
    assert slots.tokens == 1


def test_slow_pages_of_one_repository_leave_slots_for_the_others(
        served: tuple[RunningServer, Path], client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages of one repository that take long (a crawler on a large file's annotate pages) hold at
    most ``PAGES_PER_REPOSITORY`` of the slots: another repository's page is made meanwhile."""
    import http.client
    import threading

    from twisted.internet import defer

    from gateway import hg_archive

    server, repo = served
    client.hg("clone", "-q", "-U", str(repo), str(server.root / "slow"))
    monkeypatch.setattr(hg_archive, "_PAGE_SLOTS", defer.DeferredSemaphore(3))
    released = threading.Event()
    started = threading.Semaphore(0)
    real = hg_archive._web_page

    def web_page(front: object, route: object, *args: object) -> bytes:
        if route.repo == "slow":  # type: ignore[attr-defined]
            started.release()
            released.wait(30)
        return real(front, route, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(hg_archive, "_web_page", web_page)
    slow = [threading.Thread(target=raw, args=(server.port("http"), "GET", "/slow/json-rev/0")) for _ in range(3)]
    for thread in slow:
        thread.start()
    try:
        assert started.acquire(timeout=10) and started.acquire(timeout=10)  # two made, the third waits
        # (a timeout when the slow pages held every slot: they are let go only after it; 20 s, not 5,
        # for one page on a loaded host)
        conn = http.client.HTTPConnection("127.0.0.1", server.port("http"), timeout=20)
        conn.request("GET", "/web/json-rev/0")
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        released.set()
        for thread in slow:
            thread.join(30)


def test_an_empty_repository_answers_as_hg_serve_does(make_server: Callable[..., RunningServer],
                                                      client: Client) -> None:
    """No changeset at all: the null revision is the tip (tagged ``tip``), any path of its empty
    manifest is the empty root, and the raw pages are hg serve's bytes too."""
    server = make_server("fs", http=[LOOPBACK])
    repo = server.root / "empty"
    client.hg("init", str(repo))
    pages = ["json-rev", "json-rev/null", "json-shortlog", "json-changelog", "json-manifest", "json-file/tip",
             "json-file/tip/a", "json-filelog/tip/a", "json-summary", "json-tags", "json-bookmarks", "json-branches",
             "raw-rev/tip", "raw-rev/null", "raw-file/tip", "raw-file/tip/a", "raw-tags", "raw-bookmarks",
             "raw-branches"]
    with _hg_serve(client, repo) as port:
        for page in pages:
            ours = raw(server.port("http"), "GET", f"/empty/{page}")
            theirs = raw(port, "GET", f"/{page}")
            assert ours.status == theirs.status, (page, ours.status, theirs.status)
            if theirs.status == 200:
                assert ours.body == theirs.body, page
    for page in ("", "/shortlog", "/rev/tip", "/file/tip", "/tags", "/branches", "/bookmarks"):
        answer = raw(server.port("http"), "GET", f"/empty{page}", {"Accept": "text/html"})
        assert answer.status == 200 and answer.headers["content-type"].startswith("text/html"), page


FEED_PAGES = [f"{style}-{page}" for style in ("atom", "rss") for page in ("log", "tags", "bookmarks", "branches")]


def test_the_feeds_are_what_hg_serve_writes(served: tuple[RunningServer, Path], client: Client) -> None:
    """``atom-log``, ``rss-log``, the tag, bookmark and branch feeds and a file's (``atom-log/REV/PATH``)
    side by side with ``hg serve``
    (its own URL and the repository's path, which it names the repository by, put in hgwire's):
    the shared history, then a changeset of twelve files (past ``[web] maxfiles``), authors written
    every way hg reads them, a description of blanks, several tags on one changeset, a closed
    branch; an empty repository's too."""
    server, repo = served
    hg = ("-R", str(repo))
    client.hg("update", "-q", *hg, "-r", "max(not secret())")
    _commit(client, repo, "twelve files", {f"many/{n:02d}.txt": b"%d\n" % n for n in range(12)}, 1_700_001_000)
    for user in ('"Quoted \\"Q\\" Name" <q@example.com>', "dotted.name@example.com", "Ünïcødé <u@example.com>",
                 "plain"):
        (repo / "who.txt").write_text(user)
        client.hg("commit", "-q", "-A", *hg, "-u", user, "-d", "1700001100 -7200", "-m", f"by {user} <&>")
    (repo / "who.txt").write_text("blank")
    client.hg("commit", "-q", *hg, "-u", "t", "-d", "1700001200 0", "-m", " \n ")
    client.hg("tag", "-q", *hg, "-u", "t", "-d", "1700001300 0", "-r", "2", "also-two", "<second>")
    client.hg("branch", "-q", *hg, "closing")
    _commit(client, repo, "to close", {"c.txt": b"c\n"}, 1_700_001_400)
    client.hg("commit", "-q", *hg, "-u", "t", "-d", "1700001500 0", "--close-branch", "-m", "closed")
    empty = server.root / "empty"
    client.hg("init", str(empty))
    http = server.port("http")
    file_feeds = ["atom-log/tip/a.txt", "rss-log/tip/a.txt", "atom-log/tip/twice.txt", "rss-log/4/copied.txt",
                  "atom-log/tip/only/one/x.txt", "rss-log/tip/many/03.txt"]
    for name, path in (("web", repo), ("empty", empty)):
        with _hg_serve(client, path) as port:
            for page in FEED_PAGES + (file_feeds if name == "web" else []):
                ours = raw(http, "GET", f"/{name}/{page}")
                theirs = raw(port, "GET", f"/{page}")
                expected = theirs.body.replace(f"http://localhost:{port}/".encode(),
                                               f"http://127.0.0.1:{http}/{name}/".encode())
                expected = expected.replace(str(path).encode(), name.encode())
                assert (ours.status, ours.body) == (theirs.status, expected), (name, page)
                assert ours.headers["content-type"] == theirs.headers["content-type"], page
    log = raw(http, "GET", "/web/atom-log").body
    assert b"(none)" in log and b"many/09.txt<br /><br />" in log and b"&lt;&amp;&gt;" in log


def test_a_style_on_a_page_url_is_that_style_s_page(served: tuple[RunningServer, Path], client: Client) -> None:
    """hgweb's ``?style=json`` (``atom``, ``rss``, ``raw``) on a page's URL answers that style's page,
    byte for byte as ``hg serve`` (the repository's own URL too: the json style's shortlog, the
    feeds' changelog); a page those styles do not have here is 404, and any other style gets the page
    as without it (hgweb's fallback to paper)."""
    server, repo = served
    http = server.port("http")
    with _hg_serve(client, repo) as port:
        for page in ("?style=json", "rev/2?style=json", "shortlog/3?style=json", "log?style=json",
                     "log/tip/a.txt?style=json", "file/tip/a.txt?style=json", "file/tip/deep?style=json",
                     "tags?style=json", "summary?style=json", "rev/2?style=raw", "?style=atom", "tags?style=rss",
                     "bookmarks?style=atom", *RAW_PAGES):
            ours = raw(http, "GET", f"/web/{page}" if not page.startswith("?") else f"/web{page}")
            theirs = raw(port, "GET", f"/{page}")
            expected = theirs.body.replace(f"http://localhost:{port}/".encode(), f"http://127.0.0.1:{http}/web/".encode())
            expected = expected.replace(str(repo).encode(), b"web")
            assert (ours.status, ours.body) == (theirs.status, expected), page
        # a style hgweb has in HTML (or none it knows): hg serve falls back to paper, hgwire
        # answers its own pages (paper's), as without the style
        for style in ("gitweb", "coal", "paper", "monoblue", "spartan", "no-such-style"):
            assert raw(port, "GET", f"/rev/2?style={style}").status == 200
            for page in ("rev/2", "file/tip/a.txt", "log"):
                ours = raw(http, "GET", f"/web/{page}?style={style}")
                assert (ours.status, ours.body) == (200, raw(http, "GET", f"/web/{page}").body), (page, style)
            assert raw(http, "GET", f"/web?style={style}").body == raw(http, "GET", "/web").body
    assert raw(http, "GET", "/web/file/tip/a.txt?style=atom").status == 404


RAW_PAGES = ["?style=raw", "log?style=raw", "changelog?style=raw", "shortlog?style=raw", "log/3?style=raw",
             "log?style=raw&revcount=2", "log/tip?style=raw&revcount=100", "log?style=raw&rev=merge",
             "log?style=raw&rev=side", "log?style=raw&rev=null", "changelog?style=raw&rev=a.txt",
             "log?style=raw&rev=user%28t%29+or+0", "log?style=raw&rev=fix+%28typo%29",
             *(f"diff/{rev}/{path}?style=raw" for rev in (0, 2, 4, 5, 6) for path in
               ("a.txt", "copied.txt", "bin.dat", "noeol.txt", "long.txt", "only/one/x.txt")),
             "filediff/6/long.txt?style=raw", "file/tip/a.txt?style=raw", "file/2/deep?style=raw", "file/1?style=raw",
             "tags?style=raw", "bookmarks?style=raw", "branches?style=raw", "raw-tags", "raw-bookmarks",
             "raw-branches"]
"""hgweb's raw style of the logs (and their search), of a file's diff, of a file and a directory, of
the tags, bookmarks and branches."""

SEARCHES = ["merge", "MERGE", "side", "same+file", "a.txt", "DEEP/er", "t", "ann%40example", "", "+", "nosuch",
            "body+%3Cb%3E", "line", "0", "1", "v1", "book", "tip", "side", "default", "mine", "null",
            "exec%2C", "merge&revcount=1", "e&revcount=3", "e&revcount=0", "e&revcount=x", "user(t)",
            "merge%28%29", "side%3A%3A", "fix+%28typo%29", "Merge%3A+side"]
"""Queries hgweb's search answers: words (case folded, all of them), file names, users, nothing,
revisions by number, tag, bookmark, branch, local tag; and the count; revsets, and words that only
look like one."""


def test_a_log_s_search_finds_what_hg_serve_finds(served: tuple[RunningServer, Path], client: Client) -> None:
    server, repo = served
    node = client.hg("log", "-R", str(repo), "-r", "1", "-T", "{node}").stdout
    queries = [*SEARCHES, node[:8], node]
    with _hg_serve(client, repo) as port:
        for page in ("json-changelog", "json-shortlog", "json-log"):
            for query in queries:
                ours = raw(server.port("http"), "GET", f"/web/{page}?rev={query}")
                theirs = raw(port, "GET", f"/{page}?rev={query}")
                assert (ours.status, ours.body) == (theirs.status, theirs.body), (page, query)
        assert raw(port, "GET", "/json-log/1?rev=merge").body == raw(server.port("http"), "GET",
                                                                      "/web/json-log/1?rev=merge").body
    found = raw(server.port("http"), "GET", "/web/json-changelog?rev=merge").body
    assert b"merge side" in found and b'"query": "merge"' in found
    secret = client.hg("log", "-R", str(repo), "-r", "secret()", "-T", "{node}").stdout
    for query in ("secret", secret, "hidden-work"):  # never found, as never shown
        answer = json.loads(raw(server.port("http"), "GET", f"/web/json-changelog?rev={query}").body)
        assert secret not in [entry["node"] for entry in answer["entries"]], query
    # hg serve answers 500 to a query beyond ASCII; hgwire searches
    assert raw(server.port("http"), "GET", "/web/json-changelog?rev=%C3%A9").status == 200
    refused = raw(server.port("http"), "GET", "/web/json-changelog?rev=wdir()")  # a revset not evaluated
    assert refused.status == 404 and b"revset" in refused.body
    assert raw(server.port("http"), "GET", "/web/json-changelog?rev=" + "x" * 2000).status == 414


def test_an_error_quoting_bytes_that_are_not_utf8_is_strict_json(
        make_server: Callable[..., RunningServer], client: Client) -> None:
    """``json-file/tip/%ff`` is hgweb's ``{"error": ...}`` with the byte as U+FFFD, as the pages
    show such a name, not as ``\\udcff``, a lone surrogate strict JSON parsers refuse (hg serve: 500)."""
    server = make_server("fs", http=[LOOPBACK])
    repo = server.root / "bytes"
    client.hg("init", str(repo))
    _commit(client, repo, "a", {"a.txt": b"a\n"}, 1700000000)
    for page in ("/bytes/json-file/tip/%ff", "/bytes/json-filelog/tip/caf%E9.txt", "/bytes/file/tip/%ff?style=json"):
        answer = raw(server.port("http"), "GET", page)
        assert (answer.status, answer.headers["content-type"]) == (404, "application/json"), page
        assert b"\\udc" not in answer.body, answer.body
        error = json.loads(answer.body)["error"]
        error.encode("utf-8")  # no lone surrogate
        assert "\ufffd" in error and "not found in manifest" in error, error
