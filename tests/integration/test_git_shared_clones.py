"""Identical concurrent full git clones share one generation of their pack, with real ``git`` clients.

As for hg (``test_hg_shared_clones``, whose hold it uses): the server runs in
this process, so the test holds the generation's first write until every
clone has joined it.  Each clone must then have every ref and pass
``git fsck --full``; a clone after a push must get the new state; a fetch
with haves never shares.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from gateway.shared_streams import SHARED
from tests.conftest import LOOPBACK, Client, RunningServer, SshKeys, ssh_server_settings
from tests.integration.test_git_daemon import PROTOCOLS, commit
from tests.integration.test_hg_shared_clones import CLONES, hold_generation_until


def refs_of(client: Client, repo: Path) -> str:
    return client.git("for-each-ref", "--format=%(objectname) %(refname)", cwd=repo).stdout


def serve_history(make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, tmp_path: Path,
                  transport: str, **settings: object) -> tuple[RunningServer, str, Path]:
    """An fs server on ``transport`` serving ``proj.git`` (30 commits, tag v1, branch topic): it, its URL
    for the client, and the source repository the history was made in."""
    listeners = ssh_server_settings(ssh_keys) if transport == "ssh" else {transport: [LOOPBACK]}
    server = make_server("fs", **listeners, **settings)
    if transport == "ssh":
        client.env["GIT_SSH_COMMAND"] = ssh_keys.command(server.port("ssh"))
        url = f"ssh://git@127.0.0.1:{server.port('ssh')}/proj.git"
    else:
        url = server.url(transport, "proj.git")
    src = tmp_path / "src"
    client.git("init", "-q", "-b", "main", str(src))
    for i in range(30):
        commit(client, src, f"file-{i % 7}.txt", f"line {i}\n" * (i + 1), f"commit {i}")
    client.git("tag", "-a", "v1", "-m", "release", cwd=src)
    client.git("branch", "topic", "HEAD~5", cwd=src)
    client.git("clone", "-q", "--bare", str(src), str(server.root / "proj.git"))
    return server, url, src


@pytest.mark.parametrize(("transport", "proto"), [("git", "default"), ("git", "v0"), ("http", "default"),
                                                  ("ssh", "default")])
def test_concurrent_full_clones_share_one_pack(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, transport: str, proto: str) -> None:
    server, url, src = serve_history(make_server, client, ssh_keys, tmp_path, transport)
    expected = refs_of(client, src)

    before = (SHARED.started, SHARED.joined)
    dests = [tmp_path / f"clone-{i}" for i in range(CLONES)]
    with monkeypatch.context() as patch, ThreadPoolExecutor(CLONES) as clients:
        hold_generation_until(patch, CLONES - 1)
        list(clients.map(lambda dest: client.git(*PROTOCOLS[proto], "clone", "-q", "--mirror", url, str(dest),
                                                 timeout=90), dests))
    assert (SHARED.started - before[0], SHARED.joined - before[1]) == (1, CLONES - 1)
    for dest in dests:
        assert refs_of(client, dest) == expected
        client.git("fsck", "--full", "--strict", cwd=dest)

    # A fetch with haves is computed for itself; a clone after a push gets the new state.
    tip = commit(client, src, "after.txt", "after\n", "after the shared clones")
    client.git("push", "-q", str(server.root / "proj.git"), "main", cwd=src)
    before = (SHARED.started, SHARED.joined)
    client.git(*PROTOCOLS[proto], "fetch", "-q", url, "main", cwd=dests[0])
    assert client.git("rev-parse", "FETCH_HEAD", cwd=dests[0]).stdout.strip() == tip
    later = tmp_path / "later"
    client.git(*PROTOCOLS[proto], "clone", "-q", "--mirror", url, str(later))
    assert (SHARED.started - before[0], SHARED.joined - before[1]) == (1, 0)
    assert client.git("rev-parse", "main", cwd=later).stdout.strip() == tip
    client.git("fsck", "--full", "--strict", cwd=later)
    assert SHARED.running() == 0
