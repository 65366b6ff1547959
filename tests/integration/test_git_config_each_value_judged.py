"""A repository's config setting ``core.bigFileThreshold`` (or ``core.fsyncObjectFiles``) twice, the
first value one git cannot read and the last a good one: git 2.39's receive-pack reads each value as
its config callback meets it and dies at the bad one ("bad numeric config value '12q'"), where hgwire
judged the last alone and took the push.  ``core.commitGraph``, which git reads last-only, is judged
on its last value by both.  Each is checked beside git's own (``file://``)."""

from __future__ import annotations

import shutil
from collections.abc import Callable

import pytest

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_daemon import commit


@pytest.mark.parametrize(("key", "bad", "good", "refused", "says"), [
    ("core.bigFileThreshold", "12q", "1m", True, "bad numeric config value '12q' for 'core.bigfilethreshold'"),
    ("core.fsyncObjectFiles", "maybe", "true", True, "bad boolean config value 'maybe' for 'core.fsyncobjectfiles'"),
    ("core.commitGraph", "maybe", "true", False, ""),
])
def test_each_value_is_judged_where_git_reads_each(
        make_server: Callable[..., RunningServer], client: Client, key: str, bad: str, good: str,
        refused: bool, says: str) -> None:
    server = make_server("fs", git=[LOOPBACK])
    work, bare, twin = client.cwd / "work", server.root / "v.git", client.cwd / "twin.git"
    client.git("init", "-q", "-b", "main", str(work))
    commit(client, work, "f", "f\n", "first")
    client.git("clone", "-q", "--bare", str(work), str(bare))
    client.git("config", "pack.threads", "1", cwd=bare)
    client.git("config", "--add", key, bad, cwd=bare)
    client.git("config", "--add", key, good, cwd=bare)
    shutil.copytree(bare, twin, symlinks=True)
    for url in (f"file://{twin}", server.git_url("v")):
        run = client.git("push", url, "main:refs/heads/new", cwd=work, check=False)
        assert (run.returncode != 0) == refused, (url, run.stderr)
        assert says in run.stderr, (url, run.stderr)
    if not refused:
        client.git("fsck", "--full", cwd=bare)
