"""hgweb's JSON index, ``/?style=json``, is ``hg serve --web-conf``'s byte for byte over the same
repositories: a description or contact a repository does not give is ``"unknown"`` (it was
``""``), the contact falls back to the repository's ``[ui] username`` as hgweb's does, and a
repository without a commit yet has its store's time as its last change (it was ``[0, 0]``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_hg_archive import _hg_serve
from tests.integration.test_hg_http import raw


def test_the_json_index_is_hg_serve_s(make_server: Callable[..., RunningServer], client: Client,
                                      tmp_path: Path) -> None:
    server = make_server("fs", http=[LOOPBACK])
    for name, hgrc in (("bare", ""), ("given", "[web]\ndescription = the <app>\ncontact = Jane <j@x>\n"),
                       ("team/user", "[ui]\nusername = Carol <c@x>\n[web]\ndescription =\n"),
                       ("team/blank", "[web]\ncontact =\nlabels = one, two\n")):
        client.hg("init", str(server.root / name))
        (server.root / name / ".hg" / "hgrc").write_text(hgrc)
    client.hg("commit", "-q", "-R", str(server.root / "bare"), "-u", "t", "-d", "0 0", "-m", "x",
              "--config", "ui.allowemptycommit=1")
    web_conf = tmp_path / "web.conf"
    web_conf.write_text(f"[paths]\n/ = {server.root}/**\n")

    with _hg_serve(client, server.root / "bare", "--web-conf", str(web_conf)) as port:
        theirs = raw(port, "GET", "/?style=json")
    ours = raw(server.port("http"), "GET", "/?style=json")
    assert theirs.body.count(b'"unknown"') == 5 and b'"Carol \\u003cc@x\\u003e"' in theirs.body
    assert (ours.status, ours.body.decode()) == (200, theirs.body.decode())
