"""hgweb's ``raw-file`` with no revision (``/NAME/raw-file``: the tip's root, as its raw manifest)
and with a revision but no path (``/NAME/raw-file/REV``) answer what ``hg serve`` answers, byte for
byte; the bare form was 404.  A repository really named ``X/raw-file`` wins, as hgweb's: the
longest repository before the page's name (``/X/raw-file`` is its own page, ``/X/raw-file/raw-file``
its tip's root)."""

from __future__ import annotations

from collections.abc import Callable

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_hg_archive import _hg_serve
from tests.integration.test_hg_http import raw


def test_raw_file_without_a_revision_or_a_path_is_hg_serve_s(make_server: Callable[..., RunningServer],
                                                             client: Client) -> None:
    server = make_server("fs", http=[LOOPBACK])
    repo = server.root / "team" / "web"
    client.hg("init", str(repo))
    (repo / "sub").mkdir()
    (repo / "a").write_text("a\n")
    (repo / "sub" / "f.txt").write_text("x\n")
    client.hg("commit", "-q", "-A", "-R", str(repo), "-u", "t", "-d", "0 0", "-m", "first")
    (repo / "b").write_text("b\n")
    client.hg("commit", "-q", "-A", "-R", str(repo), "-u", "t", "-d", "1 0", "-m", "second")
    port = server.port("http")

    pages = ("raw-file", "raw-file/", "raw-file/tip", "raw-file/0", "raw-file/0/")
    with _hg_serve(client, repo) as reference:
        expected = {page: raw(reference, "GET", f"/{page}") for page in pages}
    for page in pages:
        assert expected[page].status == 200, (page, expected[page])
        ours = raw(port, "GET", f"/team/web/{page}")
        assert (ours.status, ours.body) == (200, expected[page].body), (page, ours.status, ours.body[:200])
    assert b" b\n" not in expected["raw-file/0"].body and b" b\n" in expected["raw-file"].body and expected["raw-file"].body != expected["raw-file/0"].body


def test_a_repository_named_x_raw_file_wins(make_server: Callable[..., RunningServer], client: Client) -> None:
    server = make_server("fs", http=[LOOPBACK])
    outer, inner = server.root / "team" / "p", server.root / "team" / "p" / "raw-file"
    for repo, name in ((outer, "outer"), (inner, "inner")):
        client.hg("init", str(repo))
        (repo / name).write_text(f"{name}\n")
        client.hg("commit", "-q", "-A", "-u", "t", "-d", "0 0", "-m", name, "-I", name, cwd=repo)
    port = server.port("http")

    page = raw(port, "GET", "/team/p/raw-file")  # the repository's own page, not p's listing
    assert page.status == 200 and b"team/p/raw-file" in page.body, page.body[:300]
    listing = raw(port, "GET", "/team/p/raw-file/raw-file")
    assert listing.status == 200 and b"inner" in listing.body and b"outer" not in listing.body, listing.body
    assert raw(port, "GET", "/team/p/raw-file/raw-file/tip/inner").body == b"inner\n"
    assert raw(port, "GET", "/team/p/raw-file/tip/outer").body == b"outer\n"  # (p's: no page of p/raw-file is "tip")
