"""``push.negotiate`` and ``git fetch --negotiate-only``: protocol v2's ``wait-for-done`` with the real git.

``git push`` with ``push.negotiate=true`` first runs a fetch that only negotiates (``wait-for-done``:
the server acknowledges haves, never answers ``ready`` and sends no pack), to learn what the server
has before packing.  No other test drives that path; git's own upload-pack prints the same commits
as hgwire does here (checked side by side over git://, SSH and HTTP).  Over HTTP each round is its
own request, so the rounds' state lives in what the client sends again.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from backends.interfaces import Kind
from tests.conftest import LOOPBACK, Client, RunningServer, SshKeys
from tests.integration.test_git_transports import TRANSPORTS


def _server(kind: str, make_server: Callable[..., RunningServer], client: Client, keys: SshKeys,
            tmp_path: Path) -> Callable[[str], str]:
    if kind == "git":
        server = make_server("fs", git=[LOOPBACK])
        server.backend.create("app", Kind.GIT)
        return server.git_url
    transport = TRANSPORTS[kind](make_server, "fs", client, keys, tmp_path)
    transport.running.backend.create("app", Kind.GIT)
    return transport.git_url


@pytest.mark.parametrize("kind", ["git", "http"])
def test_push_negotiate_learns_the_common_commits_first(kind: str, make_server: Callable[..., RunningServer],
                                                       client: Client, ssh_keys: SshKeys, tmp_path: Path) -> None:
    url = _server(kind, make_server, client, ssh_keys, tmp_path)("app")
    work = tmp_path / "work"
    client.git("clone", "-q", url, work)
    for index in range(40):
        (work / "file").write_text(f"{index}\n")
        client.git("add", "file", cwd=work)
        client.git("commit", "-q", "-m", f"c{index}", cwd=work)
    client.git("push", "-q", "origin", "HEAD:main", cwd=work)
    fork = client.git("rev-parse", "HEAD~25", cwd=work).stdout.strip()
    client.git("checkout", "-q", "-b", "topic", "HEAD~25", cwd=work)
    for index in range(3):
        (work / "topic").write_text(f"{index}\n")
        client.git("add", "topic", cwd=work)
        client.git("commit", "-q", "-m", f"t{index}", cwd=work)
    mine = set(client.git("rev-list", "main..topic", cwd=work).stdout.split())
    client.git("update-ref", "-d", "refs/remotes/origin/main", cwd=work)  # so the client must ask

    v2 = ("-c", "protocol.version=2")
    common = client.git(*v2, "fetch", "--negotiate-only", "--negotiation-tip=topic", "origin", cwd=work).stdout.split()
    assert fork in common and not mine & set(common), common

    traced = client.git(*v2, "-c", "push.negotiate=true", "push", "origin", "topic", cwd=work,
                        env={"GIT_TRACE_PACKET": "1"})
    assert "push negotiation failed" not in traced.stderr, traced.stderr
    assert "wait-for-done" in traced.stderr and f"ACK {fork}" in traced.stderr
    pushed = client.git("ls-remote", "origin", "refs/heads/topic", cwd=work).stdout.split()[0]
    assert pushed == client.git("rev-parse", "topic", cwd=work).stdout.strip()
