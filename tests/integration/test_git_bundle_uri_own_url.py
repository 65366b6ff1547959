"""``git clone --bundle-uri=<the repository's own HTTP URL>``: git asks for that URL (``Accept:
*/*``, ``User-Agent: git/…``) and read hgwire's plain-text page of the repository as a bundle list,
printing "bad config line 1 in file …/tmp_uri_…"; git http-backend answers 404 and git says
"failed to download bundle from URI".  hgwire now answers git's fetch so too; a browser still gets
the summary page and curl the text that says how to clone."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from backends.interfaces import Kind
from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_daemon import commit
from tests.integration.test_hg_http import raw


def test_git_s_bundle_fetch_of_the_repository_s_url_gets_a_404(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> None:
    server = make_server("fs", http=[LOOPBACK])
    port = server.port("http")
    server.backend.create("app", Kind.GIT)
    seed = tmp_path / "seed"
    client.git("init", "-q", "-b", "main", str(seed))
    commit(client, seed, "a.txt", "a\n", "a")
    client.git("push", "-q", str(server.root / "app.git"), "HEAD:main", cwd=seed)
    url = server.url("http", "app")

    cloned = client.git("clone", f"--bundle-uri={url}", url, str(tmp_path / "c"))
    assert "bad config line" not in cloned.stderr, cloned.stderr
    assert f"failed to download bundle from URI '{url}'" in cloned.stderr, cloned.stderr
    assert (tmp_path / "c" / "a.txt").read_text() == "a\n"

    fetched = raw(port, "GET", "/app.git", {"User-Agent": "git/2.39.5", "Accept": "*/*"})
    assert fetched.status == 404 and b"--bundle-uri" in fetched.body
    assert fetched.headers.get("vary") == "Accept, User-Agent"
    curl = raw(port, "GET", "/app.git", {"User-Agent": "curl/8.5.0", "Accept": "*/*"})
    assert curl.status == 200 and curl.body.startswith(b"app is a Git repository served by hgwire.\n")
    browser = raw(port, "GET", "/app.git", {"User-Agent": "git/2.39.5", "Accept": "text/html"})
    assert browser.status == 200 and browser.headers["content-type"].startswith("text/html")
