"""A repository's config setting ``core.bigFileThreshold`` (or ``core.fsyncObjectFiles``) twice, the
first value one git cannot read and the last a good one: git 2.39's receive-pack reads each value as
its config callback meets it and dies at the bad one ("bad numeric config value '12q'"), where hgwire
judged the last alone and took the push.  ``core.commitGraph``, which git reads last-only, is judged
on its last value by both.  Each is checked beside git's own (``file://``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.git_config_twins import served_and_twin


@pytest.mark.parametrize(("key", "bad", "good", "refused", "says"), [
    ("core.bigFileThreshold", "12q", "1m", True, "bad numeric config value '12q' for 'core.bigfilethreshold'"),
    ("core.fsyncObjectFiles", "maybe", "true", True, "bad boolean config value 'maybe' for 'core.fsyncobjectfiles'"),
    ("core.commitGraph", "maybe", "true", False, ""),
])
def test_each_value_is_judged_where_git_reads_each(
        make_server: Callable[..., RunningServer], client: Client, key: str, bad: str, good: str,
        refused: bool, says: str) -> None:
    server = make_server("fs", git=[LOOPBACK])

    def configure(bare: Path) -> None:
        client.git("config", "--add", key, bad, cwd=bare)
        client.git("config", "--add", key, good, cwd=bare)

    work, bare, twin = served_and_twin(client, server, configure)
    for url in (f"file://{twin}", server.git_url("v")):
        run = client.git("push", url, "main:refs/heads/new", cwd=work, check=False)
        assert (run.returncode != 0) == refused, (url, run.stderr)
        assert says in run.stderr, (url, run.stderr)
    if not refused:
        client.git("fsck", "--full", cwd=bare)
