"""A repository whose ``gc.auto`` (or ``gc.autoPackLimit``) git would not read: git's receive-pack runs
``gc --auto`` after each push, which dies of it, and the pusher sees "remote: fatal: bad numeric
config value '5000000000' for 'gc.auto': out of range" while the push stands (a push whose ref is
refused is told too).  hgwire skipped its repack and only logged why; the pusher is now told as
git tells it.  ``gc.autoPackLimit`` is read last-only (``12q`` then ``1`` tells nothing), as git's
gc reads it.  Each checked beside git's own (``file://``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.git_config_twins import served_and_twin


@pytest.mark.parametrize(("settings", "says"), [
    ([("gc.auto", "5000000000")], "bad numeric config value '5000000000' for 'gc.auto'"),
    ([("gc.autoPackLimit", "1"), ("gc.autoPackLimit", "12q")], "bad numeric config value '12q' for 'gc.autopacklimit'"),
    ([("gc.autoPackLimit", "12q"), ("gc.autoPackLimit", "1")], None),
    ([("gc.auto", "5000000000"), ("receive.autogc", "false")], None),
])
def test_a_gc_setting_git_would_not_read_is_told_after_the_push(
        make_server: Callable[..., RunningServer], client: Client, settings: list[tuple[str, str]],
        says: str | None) -> None:
    server = make_server("fs", git=[LOOPBACK])

    def configure(bare: Path) -> None:
        for key, value in settings:
            client.git("config", "--add", key, value, cwd=bare)
        client.git("config", "receive.denyDeletes", "true", cwd=bare)

    work, bare, twin = served_and_twin(client, server, configure)
    for url in (f"file://{twin}", server.git_url("v")):
        pushed = client.git("push", url, "main:refs/heads/new", cwd=work)  # (it stands)
        refused = client.git("push", url, ":refs/heads/new", cwd=work, check=False)
        assert refused.returncode != 0 and "deletion prohibited" in refused.stderr, (url, refused.stderr)
        for run in (pushed, refused):
            told = [line for line in run.stderr.splitlines() if line.startswith("remote: fatal:")]
            assert (says is not None and len(told) == 1 and says in told[0]) or (says is None and not told), \
                (url, run.stderr)
        assert "refs/heads/new" in client.git("ls-remote", url).stdout
    client.git("fsck", "--full", cwd=bare)
