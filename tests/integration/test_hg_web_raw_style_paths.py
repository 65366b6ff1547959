"""hgweb's raw style named in the path, as hgweb takes ``STYLE-PAGE`` for any page
(``/NAME/raw-diff/REV/PATH``, ``/NAME/raw-annotate/REV/PATH``, ``/NAME/raw-log``,
``/NAME/raw-changeset/REV``…, which scripts and old links use), answer what ``hg serve`` answers
for them, byte for byte; they were "repository NAME/raw-diff/… not found" where the same page with
``?style=raw`` was served."""

from __future__ import annotations

from collections.abc import Callable

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_hg_archive import _hg_serve
from tests.integration.test_hg_http import raw


def test_raw_style_pages_named_in_the_path_are_hg_serve_s(make_server: Callable[..., RunningServer],
                                                          client: Client) -> None:
    server = make_server("fs", http=[LOOPBACK])
    repo = server.root / "team" / "web"
    client.hg("init", str(repo))
    (repo / "sub").mkdir()
    (repo / "a").write_text("a\n")
    (repo / "sub" / "f.txt").write_text("x\ny\n")
    client.hg("commit", "-q", "-A", "-R", str(repo), "-u", "t", "-d", "0 0", "-m", "first")
    (repo / "a").write_text("a\nb\n")
    (repo / "b").write_text("b\n")
    client.hg("commit", "-q", "-A", "-R", str(repo), "-u", "t", "-d", "1 0", "-m", "second")
    port = server.port("http")

    pages = ("raw-diff/tip/a", "raw-filediff/1/a", "raw-annotate/tip/a", "raw-annotate/1/sub/f.txt", "raw-log",
             "raw-log/0", "raw-changelog", "raw-shortlog", "raw-changeset/0", "raw-changeset", "raw-rev",
             "raw-manifest", "raw-manifest/tip/sub",
             # raw-file with no revision (the tip's root) or no path was 404
             "raw-file", "raw-file/", "raw-file/tip", "raw-file/0", "raw-file/0/")
    with _hg_serve(client, repo) as reference:
        expected = {page: raw(reference, "GET", f"/{page}") for page in pages}
    for page in pages:
        ours = raw(port, "GET", f"/team/web/{page}")
        assert (ours.status, ours.body) == (200, expected[page].body), (page, ours.status, ours.body[:200])
        assert expected[page].status == 200, page
    assert b" b\n" not in expected["raw-file/0"].body and b" b\n" in expected["raw-file"].body

    ours = raw(port, "GET", "/team/web/raw-comparison/tip/a")  # (hg serve: 403 "not in template map")
    assert ours.status == 404 and b"'raw' style of this page is not served" in ours.body
    assert raw(port, "GET", "/team/web/raw-file/tip/a").body == b"a\nb\n"
