"""``git fetch --deepen`` from a shallow clone whose shallow commit only a hidden ref reaches: git's
upload-pack deepens it when ``uploadpack.allowTipSHA1InWant`` (or ``allowReachableSHA1InWant``,
``allowAnySHA1InWant``) is set, the hidden tip counting among those that reach it, and leaves it
where it is without; hgwire left it where it was in both.  Compared with git's own upload-pack
(file://): the same shallow commits and the same objects, protocol v0 and v2."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_daemon import commit


def _objects(clone: Path) -> list[str]:
    return sorted(subprocess.run(["git", "cat-file", "--batch-all-objects", "--batch-check"], cwd=clone,
                                 capture_output=True, text=True, check=True).stdout.splitlines())


@pytest.mark.parametrize("version", ["0", "2"])
@pytest.mark.parametrize("setting", [None, "allowTipSHA1InWant", "allowReachableSHA1InWant"])
def test_deepen_counts_hidden_tips_as_git_does(make_server: Callable[..., RunningServer], client: Client,
                                               setting: str | None, version: str) -> None:
    server = make_server("fs", git=[LOOPBACK])
    work = client.cwd / "work"
    client.git("init", "-q", "-b", "main", str(work))
    commit(client, work, "a.txt", "a\n", "A")
    commit(client, work, "a.txt", "b\n", "B")
    client.git("checkout", "-q", "-b", "side", cwd=work)
    commit(client, work, "side.txt", "d\n", "D")
    commit(client, work, "side.txt", "e\n", "E")
    client.git("checkout", "-q", "main", cwd=work)
    commit(client, work, "a.txt", "c\n", "C")
    bare = server.root / "hid.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    client.git("push", "-q", str(bare), "main", "side:refs/hidden/side", cwd=work)
    client.git("--git-dir", str(bare), "config", "transfer.hideRefs", "refs/hidden")
    if setting:
        client.git("--git-dir", str(bare), "config", f"uploadpack.{setting}", "true")
    results: list[tuple[str, list[str]]] = []
    for at, url in enumerate((f"file://{bare}", server.git_url("hid"))):
        clone = client.cwd / f"clone-{at}"
        client.git("clone", "-q", "--depth", "1", "-b", "side", f"file://{work}", str(clone))
        client.git("-c", f"protocol.version={version}", "fetch", "-q", "--deepen=1", url, "main", cwd=clone)
        results.append(((clone / ".git" / "shallow").read_text(), _objects(clone)))
    assert results[1] == results[0]
    deepened = (results[0][0] != client.git("rev-parse", "side", cwd=work).stdout)
    assert deepened == bool(setting)  # (what git did, as this test knows it)
