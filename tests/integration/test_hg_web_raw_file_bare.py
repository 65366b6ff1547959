"""hgweb's ``raw-file`` with no revision (``/NAME/raw-file``: the tip's root, as its raw manifest)
and with a revision but no path (``/NAME/raw-file/REV``) answer what ``hg serve`` answers, byte for
byte (test_hg_web_raw_style_paths); the bare form was 404.  A repository really named ``X/raw-file`` wins, as hgweb's: the
longest repository before the page's name (``/X/raw-file`` is its own page, ``/X/raw-file/raw-file``
its tip's root)."""

from __future__ import annotations

from collections.abc import Callable

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_hg_http import raw


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
