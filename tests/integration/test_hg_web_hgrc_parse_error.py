"""A repository whose ``.hg/hgrc`` holds ``allow_read = alice`` under a header hg cannot read
(``[web`` unclosed) was served over HTTP to anyone (hgwire skipped the line, and the setting after
it went to no section), where hg refuses the repository whole ("config error at .hg/hgrc:1: [web"):
``hg id`` now fails with a sentence saying the hgrc has a line hg cannot read."""

from __future__ import annotations

from collections.abc import Callable

from tests.conftest import LOOPBACK, Client, RunningServer


def test_an_unclosed_web_header_keeps_the_repository_from_everyone(
        make_server: Callable[..., RunningServer], client: Client) -> None:
    server = make_server("fs", http=[LOOPBACK])
    client.hg("init", str(server.root / "team" / "closed"))
    (server.root / "team" / "closed" / ".hg" / "hgrc").write_text("[web\nallow_read = alice\n")
    said = client.hg("id", f"http://127.0.0.1:{server.port('http')}/team/closed", check=False)
    assert said.returncode != 0, said.stdout
    assert "has a line hg cannot read" in said.stderr and "'[web'" in said.stderr, said.stderr
