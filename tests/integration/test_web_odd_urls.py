"""URLs of hgweb's that hgwire answered oddly: the null revision by its 12-digit id (hgweb's links
on an empty repository), a revision that is not UTF-8 named in an error as it was sent, hgweb's
``help`` and ``static`` of a repository ("no such page", not "repository not found"), and the
index's ``?sort=``."""

from __future__ import annotations

from collections.abc import Callable

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_hg_archive import _commit, _hg_serve
from tests.integration.test_hg_http import raw

BROWSER = {"Accept": "text/html"}


def test_the_null_revision_by_its_short_id_is_as_hg_serve(make_server: Callable[..., RunningServer],
                                                          client: Client) -> None:
    server = make_server("fs", http=[LOOPBACK])
    empty = server.root / "empty"
    client.hg("init", str(empty))
    port = server.port("http")
    with _hg_serve(client, empty) as reference:
        assert "/rev/000000000000" in raw(reference, "GET", "/file/tip", BROWSER).body.decode()  # hgweb's link
        for page in ("json-rev/000000000000", "raw-rev/000000000000", "json-rev/00000"):
            theirs, ours = raw(reference, "GET", "/" + page), raw(port, "GET", "/empty/" + page)
            assert (ours.status, ours.body) == (theirs.status, theirs.body), page
        assert raw(port, "GET", "/empty/rev/000000000000", BROWSER).status == 200
    _commit(client, empty, "one", {"a.txt": b"a\n"}, 1_700_000_000)
    assert raw(port, "GET", "/empty/rev/000000000000", BROWSER).status == 200


def _an_hg_and_a_git_repository(make_server: Callable[..., RunningServer], client: Client) -> RunningServer:
    """An HTTP server holding an empty hg repository ``web`` and an empty git one ``g.git``."""
    server = make_server("fs", http=[LOOPBACK])
    client.hg("init", str(server.root / "web"))
    client.git("init", "-q", "--bare", str(server.root / "g.git"))
    return server


def test_an_unknown_revision_is_named_as_it_was_sent(make_server: Callable[..., RunningServer],
                                                     client: Client) -> None:
    server = _an_hg_and_a_git_repository(make_server, client)
    port = server.port("http")
    for target in ("/web/rev/%ff", "/web/json-rev/%ff", "/web/file/%ff", "/g.git/rev/%ff"):
        answer = raw(port, "GET", target, BROWSER)
        assert answer.status == 404, target
        assert b"\\xff" in answer.body and b"udcff" not in answer.body, (target, answer.body)


def test_hgweb_pages_hgwire_has_not_are_no_such_page(make_server: Callable[..., RunningServer],
                                                     client: Client) -> None:
    server = _an_hg_and_a_git_repository(make_server, client)
    port = server.port("http")
    for target in ("/web/help", "/web/help/config", "/web/static/style.css", "/g.git/help"):
        answer = raw(port, "GET", target, BROWSER)
        assert (answer.status, b"no such page" in answer.body, b"not found" in answer.body) == (404, True, False), \
            (target, answer.body)
    assert b"not found" in raw(port, "GET", "/nosuch/help", BROWSER).body  # no repository there
    client.hg("init", str(server.root / "web" / "help"))  # a repository of that name is its own
    assert raw(port, "GET", "/web/help", BROWSER).status == 200


def test_the_index_takes_hgweb_s_sort(make_server: Callable[..., RunningServer], client: Client) -> None:
    server = make_server("fs", http=[LOOPBACK])
    client.hg("init", str(server.root / "web"))
    port = server.port("http")
    for query in ("?sort=name", "?sort=-lastchange", "?sort=name&style=paper"):
        answer = raw(port, "GET", "/" + query, BROWSER)
        assert answer.status == 200 and b"/web" in answer.body, query
    assert raw(port, "GET", "/?style=json&sort=name").body.startswith(b'{\n"entries": [')
    assert raw(port, "GET", "/?other=1", BROWSER).status == 404
