"""hgweb's raw index, ``/?style=raw`` (a repository's path a line, what scripts that mirror a
server read), is ``hg serve --web-conf``'s byte for byte over the same repositories: the
repositories the visitor may read, in name order; it was the plain page ("This is hgwire…")."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_hg_archive import _hg_serve
from tests.integration.test_hg_http import raw


def test_the_raw_index_is_hg_serve_s(make_server: Callable[..., RunningServer], client: Client,
                                     tmp_path: Path) -> None:
    server = make_server("fs", http=[LOOPBACK])
    for name, hgrc in (("solo", "[web]\nname = Nice\n"), ("team/app", ""), ("team/lib", "[web]\ndescription = d\n"),
                       ("closed", "[web]\ndeny_read = *\n"), ("quiet", "[web]\nhidden = true\n")):
        client.hg("init", str(server.root / name))
        (server.root / name / ".hg" / "hgrc").write_text(hgrc)
    client.hg("commit", "-q", "-R", str(server.root / "solo"), "-u", "t", "-d", "0 0", "-m", "x",
              "--config", "ui.allowemptycommit=1")
    web_conf = tmp_path / "web.conf"
    web_conf.write_text(f"[paths]\n/ = {server.root}/**\n")

    with _hg_serve(client, server.root / "solo", "--web-conf", str(web_conf)) as port:
        theirs = raw(port, "GET", "/?style=raw")
    ours = raw(server.port("http"), "GET", "/?style=raw")
    assert theirs.body == b"\n/solo/\n/team/app/\n/team/lib/\n\n"
    assert (ours.status, ours.body) == (200, theirs.body)
    assert ours.headers["content-type"].lower() == theirs.headers["content-type"].lower() == "text/plain; charset=utf-8"


def test_the_browser_index_shows_each_repository_s_contact(make_server: Callable[..., RunningServer],
                                                           client: Client) -> None:
    """An hg repository's ``[web] contact`` is in the index's row, beside its description, as in
    hgweb's index (it was on the repository's summary only)."""
    server = make_server("fs", http=[LOOPBACK])
    client.hg("init", str(server.root / "app"))
    (server.root / "app" / ".hg" / "hgrc").write_text("[web]\ndescription = the app\ncontact = Jane <jane@example.com>\n")
    page = raw(server.port("http"), "GET", "/", {"Accept": "text/html"}).body.decode()
    assert "<th>description</th><th>contact</th>" in page
    assert "<td>the app</td><td>Jane &lt;jane@example.com&gt;</td>" in page
