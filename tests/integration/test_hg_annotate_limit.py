"""hgweb's annotate of a file with a long history: refused past ``[limits] annotate_max_revisions``
(a 403 that says to clone and run hg annotate), 50,000 by default where it was a fixed 10,000 (a
1,000-line file of 50,000 revisions costs 8.3 s of CPU, hg serve's 7.4)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from backends.hg import annotate
from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_hg_http import raw


def _file_of(client: Client, repo: Path, revisions: int) -> None:
    client.hg("init", str(repo))
    lines = [f"line {n}\n" for n in range(10)]
    for rev in range(revisions):
        lines[rev % 10] = f"line {rev % 10} of revision {rev}\n"
        (repo / "f.txt").write_text("".join(lines))
        client.hg("commit", "-q", "-A", "-m", f"r{rev}", cwd=repo)


def test_the_annotate_bound_is_a_limit_of_the_config_file(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('[[repo]]\npattern = "*"\n[limits]\nannotate_max_revisions = 20\n')
    server = make_server("fs", http=[LOOPBACK], config_file=str(policy))
    _file_of(client, server.root / "long", 25)
    _file_of(client, server.root / "short", 15)
    port = server.port("http")
    for page in ("annotate", "json-annotate"):
        refused = raw(port, "GET", f"/long/{page}/tip/f.txt")
        assert refused.status == 403, (page, refused)
        assert b"more than 20 revisions" in refused.body and b"clone the repository and run hg annotate" in \
            refused.body, refused.body
        served = raw(port, "GET", f"/short/{page}/tip/f.txt")
        assert served.status == 200 and b"line 4 of revision 14" in served.body, (page, served)


def test_without_the_key_the_default_bound_applies(
        make_server: Callable[..., RunningServer], client: Client) -> None:
    server = make_server("fs", http=[LOOPBACK])
    _file_of(client, server.root / "long", 25)
    port = server.port("http")
    assert raw(port, "GET", "/long/annotate/tip/f.txt").status == 200
    assert annotate.LIMIT.revisions == annotate.MAX_FILE_REVISIONS == 50000  # (outside the server's workers)
