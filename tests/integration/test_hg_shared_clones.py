"""Identical concurrent clones share one generation of their bundle, with real ``hg`` clients.

The server runs in this process, so the test holds the generation back (its
first write waits) until every clone has asked for it: the join is certain,
not a matter of timing.  Each clone must then be complete and verify, and a
clone after a push must get the new state, never the shared old answer.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO

import pytest

from gateway.shared_streams import SHARED
from tests import conftest
from tests.conftest import LOOPBACK, Client, RunningServer, SshKeys, ssh_server_settings
from tests.integration import test_hg_ssh
from tests.integration.test_hg_ssh import HgSsh, _commit

CLONES = 3


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The SSH tests' history repository, built once for this module and only read."""
    base = tmp_path_factory.mktemp("history")
    env = conftest.client_environment(base)
    return test_hg_ssh.build_history(Client(env, base), base)


def hold_generation_until(monkeypatch: pytest.MonkeyPatch, joined: int) -> None:
    """The generation's first write waits (in the pool) until ``joined`` more requests have joined it."""
    start = SHARED.joined
    create = SHARED.new_spool

    def held() -> IO[bytes]:
        deadline = time.monotonic() + 60
        while SHARED.joined - start < joined and time.monotonic() < deadline:
            time.sleep(0.01)
        return create()

    monkeypatch.setattr(SHARED, "new_spool", held)


@pytest.mark.parametrize("transport", ["http", "ssh"])
def test_concurrent_identical_clones_share_one_generation(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, history: Path,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, transport: str) -> None:
    settings = {"http": [LOOPBACK]} if transport == "http" else ssh_server_settings(ssh_keys)
    server = make_server("fs", **settings)
    hgssh = HgSsh(server, client, ssh_keys.command(server.port("ssh")) if transport == "ssh" else "ssh")
    url = server.url("http", "c") if transport == "http" else hgssh.url("c")
    client.hg("clone", "-q", "-U", str(history), str(server.root / "c"))
    before = (SHARED.started, SHARED.joined)
    dests = [tmp_path / f"clone-{i}" for i in range(CLONES)]
    with monkeypatch.context() as patch, ThreadPoolExecutor(CLONES) as clients:
        hold_generation_until(patch, CLONES - 1)
        list(clients.map(lambda dest: hgssh.hg("clone", "-q", "-U", url, str(dest), timeout=90), dests))
    assert (SHARED.started - before[0], SHARED.joined - before[1]) == (1, CLONES - 1)
    expected = hgssh.log(history).replace(" draft ", " public ")  # the server's copy is publishing
    for dest in dests:
        assert hgssh.log(dest) == expected
        client.hg("verify", "-q", "-R", str(dest))

    # A push changes the repository's state: the next clone is a new generation with the new changeset.
    work = tmp_path / "pusher"
    shutil.copytree(dests[0], work)
    client.hg("update", "-q", "-R", str(work), "default")
    _commit(client, work, "after.txt", "after\n", "after the shared clones")
    client.hg("push", "-q", "-R", str(work), str(server.root / "c"))
    before = (SHARED.started, SHARED.joined)
    later = tmp_path / "later"
    hgssh.hg("clone", "-q", "-U", url, str(later))
    assert (SHARED.started - before[0], SHARED.joined - before[1]) == (1, 0)
    assert "after the shared clones" in client.hg("log", "-R", str(later), "-T", "{desc}\n").stdout
    client.hg("verify", "-q", "-R", str(later))
    assert SHARED.running() == 0
