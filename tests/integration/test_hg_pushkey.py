"""The pushkey command as ``hg serve`` answers it (``hg debugpushkey`` drives it): a phase moves
only from the phase the client saw (or is already where it asked: a race with the right result), a
bookmark only to a changeset the client may see (and a move to where it is already succeeds), and
``between`` answers only the null pair rather than wrong data."""

from __future__ import annotations

import http.client
from collections.abc import Callable
from pathlib import Path

from tests.conftest import Client, RunningServer
from tests.integration.test_hg_http import HgHttp, _settings, htpasswd  # noqa: F401


def _served(make_server: Callable[..., RunningServer], client: Client, htpasswd: Path  # noqa: F811
            ) -> tuple[HgHttp, Path, str, str]:
    web = HgHttp(make_server("fs", **_settings(htpasswd)), client)
    repo = web.server.root / "keys"
    client.hg("init", str(repo))
    (repo / ".hg" / "hgrc").write_text("[phases]\npublish = False\n")
    for n in range(3):
        (repo / "f.txt").write_text(f"{n}\n")
        client.hg("commit", "-q", "-A", "-m", f"c{n}", cwd=repo)
    client.hg("phase", "-q", "--public", "-r", "0", cwd=repo)
    client.hg("phase", "-q", "--force", "--secret", "-r", "2", cwd=repo)
    draft = client.hg("log", "-r", "1", "-T", "{node}", cwd=repo).stdout
    secret = client.hg("log", "-r", "2", "-T", "{node}", cwd=repo).stdout
    return web, repo, draft, secret


def _phase(client: Client, repo: Path, node: str) -> str:
    return client.hg("log", "-r", node, "-T", "{phase}", cwd=repo).stdout


def test_a_phase_moves_only_from_the_phase_the_client_saw(
        make_server: Callable[..., RunningServer], client: Client, htpasswd: Path) -> None:  # noqa: F811
    web, repo, draft, _ = _served(make_server, client, htpasswd)
    url = web.push_url("keys")
    stale = client.hg("debugpushkey", url, "phases", draft, "2", "0", check=False)
    assert stale.stdout.strip() == "False" and _phase(client, repo, draft) == "draft", stale.stdout
    moved = client.hg("debugpushkey", url, "phases", draft, "1", "0")
    assert moved.stdout.strip() == "True" and _phase(client, repo, draft) == "public"
    raced = client.hg("debugpushkey", url, "phases", draft, "1", "0")
    assert raced.stdout.strip() == "True"  # already public: the result asked for
    client.hg("verify", "-q", cwd=repo)


def test_a_bookmark_goes_only_where_the_client_may_see(
        make_server: Callable[..., RunningServer], client: Client, htpasswd: Path) -> None:  # noqa: F811
    web, repo, draft, secret = _served(make_server, client, htpasswd)
    url = web.push_url("keys")
    refused = client.hg("debugpushkey", url, "bookmarks", "onsecret", "", secret, check=False)
    assert refused.stdout.strip() == "False", refused.stdout
    assert "onsecret" not in client.hg("bookmarks", cwd=repo).stdout
    client.hg("debugpushkey", url, "bookmarks", "mark", "", draft)
    assert client.hg("debugpushkey", url, "bookmarks", "mark", "", draft).stdout.strip() == "True"  # there already
    gone = client.hg("debugpushkey", url, "bookmarks", "never", draft, "")  # deleting one that is not there
    assert gone.stdout.strip() == "True"
    assert client.hg("log", "-r", "mark", "-T", "{node}", cwd=repo).stdout == draft


def test_between_answers_the_null_pair_and_refuses_others(
        make_server: Callable[..., RunningServer], client: Client, htpasswd: Path) -> None:  # noqa: F811
    web, _, draft, _ = _served(make_server, client, htpasswd)
    null = "0" * 40

    def between(pairs: str) -> bytes:
        conn = http.client.HTTPConnection("127.0.0.1", web.server.port("http"), timeout=20)
        try:
            conn.request("GET", f"/keys?cmd=between&pairs={pairs}")
            return conn.getresponse().read()
        finally:
            conn.close()

    assert between(f"{null}-{null}") == b"\n"
    assert b"the legacy 'between' command is answered for the null pair only" in between(f"{draft}-{null}")
