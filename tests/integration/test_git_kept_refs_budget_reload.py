"""``[limits] git_kept_refs_bytes`` bounds what git's kept ``packed-refs`` parses hold between
requests (300 MB by default, which an operator had no say over): a file over a quarter of it is
parsed by each request, a reload that lowers it lets go at once, and ``/.metrics`` says what is
held (``hgwire_git_kept_refs``, ``…_bytes``)."""

from __future__ import annotations

import http.client
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.threads import blockingCallFromThread

from backends import git as git_backend
from gateway.policy import PolicyReloader
from tests.conftest import LOOPBACK, Client, RunningServer

RULES = '[[repo]]\npattern = "*"\n'
TAGS = 3000


def packed_tags_repository(client: Client, repo: Path, prefix: str) -> str:
    """Make ``repo``: a bare repository of one commit on ``main`` and ``TAGS`` tags of it named
    ``PREFIX00000``…, all in ``packed-refs``; its commit's id."""
    client.git("init", "-q", "--bare", str(repo))
    work = client.cwd / "w"
    client.git("init", "-q", str(work))
    client.git("commit", "-q", "--allow-empty", "-m", "a", cwd=work)
    client.git("push", "-q", str(repo), "HEAD:refs/heads/main", cwd=work)
    head = client.git("rev-parse", "HEAD", cwd=work).stdout.strip()
    client.git("update-ref", "--stdin", cwd=repo,
               input="".join(f"create refs/tags/{prefix}{i:05d} {head}\n" for i in range(TAGS)).encode())
    client.git("pack-refs", "--all", "--prune", cwd=repo)
    return head


@pytest.fixture(autouse=True)
def _budget_restored() -> Iterator[None]:
    budget = git_backend._PACKED_REFS.budget
    yield
    git_backend._PACKED_REFS.resize(budget)


def _reload(reactor: Any, server: RunningServer, policy: Path, text: str) -> None:
    policy.write_text(RULES + text)
    time.sleep(0.01)  # (a new modification time)
    reloader = next(s for s in server.service if isinstance(s, PolicyReloader))
    blockingCallFromThread(reactor, reloader.reload)


def _kept(server: RunningServer) -> tuple[int, int]:
    """``hgwire_git_kept_refs`` and ``hgwire_git_kept_refs_bytes`` of ``/.metrics``."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port("http"), timeout=20)
    try:
        connection.request("GET", "/.metrics")
        answer = connection.getresponse()
        assert answer.status == 200
        body = answer.read().decode()
    finally:
        connection.close()
    values = dict(line.split(" ") for line in body.splitlines() if line.startswith("hgwire_git_kept_refs"))
    return int(float(values["hgwire_git_kept_refs"])), int(float(values["hgwire_git_kept_refs_bytes"]))


def test_a_small_budget_parses_each_request_and_a_lowered_one_lets_go_at_the_reload(
        reactor: Any, make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(RULES + "[limits]\ngit_kept_refs_bytes = 2000000\n")  # a quarter: 2,000 refs' worth
    server = make_server("fs", http=[LOOPBACK], git=[LOOPBACK], config_file=str(policy))
    assert git_backend._PACKED_REFS.budget == 2_000_000 // git_backend.PACKED_REF_BYTES, "applied at the start"

    repo = server.root / "m.git"
    packed_tags_repository(client, repo, "t")
    packed = os.path.join(os.fsencode(repo), b"packed-refs")
    expected = client.git("ls-remote", str(repo)).stdout
    assert expected.count("refs/tags/") == TAGS

    assert client.git("ls-remote", server.git_url("m.git")).stdout == expected
    server.settled()
    assert git_backend._PACKED_REFS.get(packed) is None, "over a quarter of the budget: parsed, not kept"
    files, held = _kept(server)
    assert held <= 2_000_000

    _reload(reactor, server, policy, "[limits]\ngit_kept_refs_bytes = 20000000\n")
    assert client.git("ls-remote", server.git_url("m.git")).stdout == expected
    server.settled()
    assert git_backend._PACKED_REFS.get(packed) is not None, "within a quarter: kept"
    files, held = _kept(server)
    assert files >= 1 and TAGS * git_backend.PACKED_REF_BYTES < held <= 20_000_000

    _reload(reactor, server, policy, "[limits]\ngit_kept_refs_bytes = 0\n")
    assert _kept(server) == (0, 0), "a lowered budget lets go at the reload, before any git request"
    assert client.git("ls-remote", server.git_url("m.git")).stdout == expected
    server.settled()
    assert _kept(server) == (0, 0), "0 keeps nothing"
