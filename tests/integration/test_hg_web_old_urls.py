"""hgweb's old URLs, a page named by ``?cmd=`` (``NAME?cmd=changeset;node=X``, as hgweb linked its
pages before they had paths, and as links in mails and trackers still name them), reach the same
pages as their paths do, byte for byte as ``hg serve`` answers ``?cmd=changeset&node=X&style=raw``;
hg's own commands are answered as before."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable

from tests.conftest import Client, RunningServer
from tests.integration.test_hg_archive import _hg_serve


def _get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status, answer.url, answer.read()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.url, refused.read()


def test_old_style_page_urls_reach_the_pages(make_server: Callable[..., RunningServer], client: Client) -> None:
    server = make_server("fs", http=["tcp:0:interface=127.0.0.1"])
    repo = server.root / "team" / "web"
    client.hg("init", str(repo))
    (repo / "d").mkdir()
    (repo / "d" / "f.txt").write_text("one\n")
    client.hg("commit", "-q", "-A", "-R", str(repo), "-m", "one")
    (repo / "d" / "f.txt").write_text("one\ntwo\n")
    client.hg("commit", "-q", "-R", str(repo), "-m", "two")
    node = client.hg("log", "-R", str(repo), "-r", "tip", "-T", "{node}").stdout
    base = server.url("http", "team/web")

    with _hg_serve(client, repo) as port:
        expected = _get(f"http://127.0.0.1:{port}/?cmd=changeset&node={node}&style=raw")
    assert expected[0] == 200
    for query in (f"cmd=changeset&node={node}&style=raw", f"cmd=changeset;node={node};style=raw"):
        for url in (f"{base}?{query}", f"{base}/?{query}"):
            status, landed, body = _get(url)
            assert (status, body) == (200, expected[2]), url
            assert landed == f"{base}/changeset/{node}?style=raw"

    status, landed, body = _get(f"{base}?cmd=file;file=d/f.txt;node={node};style=raw")
    assert (status, body) == (200, b"one\ntwo\n") and landed.endswith(f"/file/{node}/d/f.txt?style=raw")
    status, landed, body = _get(f"{base}?cmd=filelog&file=d/f.txt")  # (hg serve: "node or filenode not given")
    assert status == 200 and b"two" in body and landed == f"{base}/filelog/tip/d/f.txt"
    for page in ("changelog", "shortlog", "manifest", "summary"):
        status, landed, body = _get(f"{base}?cmd={page}")
        assert status == 200 and landed == f"{base}/{page}" and b"<html" in body.lower()
    status, landed, body = _get(f"{base}?cmd=capabilities")  # hg's commands are hg's
    assert status == 200 and landed == f"{base}?cmd=capabilities" and b"unbundle=" in body
