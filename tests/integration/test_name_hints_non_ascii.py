"""A name hint (``gateway.name_hints``) naming a repository whose name is not ASCII, told over
HTTP: hg prints only the status line's reason (``abort: HTTP Error 404: <reason>``), which is
ASCII, and every letter outside it was sent as ``?`` ("did you mean ?quipe/th??"); git prints the
plain-text body (``remote: …``)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import LOOPBACK, Client, RunningServer, client_environment, start_server, stop_server


@pytest.fixture(scope="module")
def hinted(reactor: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, Client]]:
    base = tmp_path_factory.mktemp("non-ascii-hints")
    client = Client(client_environment(base), base)
    server = start_server(reactor, "fs", base / "root", http=[LOOPBACK])
    subprocess.run(["git", "init", "-q", "--bare", str(server.root / "équipe" / "café.git")], check=True)
    client.hg("init", str(server.root / "équipe" / "thé"))
    yield server, client
    stop_server(reactor, server)


def test_hg_over_http_names_the_repository_readably(hinted: tuple[RunningServer, Client]) -> None:
    server, client = hinted
    base = f"http://127.0.0.1:{server.port('http')}"
    said = client.hg("id", f"{base}/Équipe/Thé", check=False)
    assert said.returncode != 0
    assert ("abort: HTTP Error 404: repository %C3%89quipe/Th%C3%A9 not found; names are case-sensitive: "
            "did you mean %C3%A9quipe/th%C3%A9?\n") in said.stderr, said.stderr
    said = client.hg("id", f"{base}/%C3%A9quipe", check=False)
    assert ("abort: HTTP Error 404: %C3%A9quipe is not a git or Mercurial repository but a folder of them; "
            "name one, such as %C3%A9quipe/th%C3%A9, %C3%A9quipe/caf%C3%A9.git\n") in said.stderr, said.stderr
    assert client.hg("id", f"{base}/%C3%A9quipe/th%C3%A9").returncode == 0  # (the name as told: it is the URL's)


def test_git_over_http_names_the_repository_as_it_is(hinted: tuple[RunningServer, Client]) -> None:
    server, client = hinted
    base = f"http://127.0.0.1:{server.port('http')}"
    said = client.git("ls-remote", f"{base}/Équipe/Café.git", check=False)
    assert said.returncode != 0
    assert ("remote: repository Équipe/Café.git not found; names are case-sensitive: did you mean "
            "équipe/café.git?\n") in said.stderr, said.stderr
    said = client.git("ls-remote", f"{base}/équipe", check=False)
    assert ("remote: équipe is not a git or Mercurial repository but a folder of them; name one, such as "
            "équipe/café.git, équipe/thé\n") in said.stderr, said.stderr
