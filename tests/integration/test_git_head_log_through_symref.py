"""A push through a symbolic ref HEAD names (HEAD -> ``refs/heads/sym`` -> ``refs/heads/a``, the
client pushing to ``sym``): git 2.39 logs the update in ``logs/HEAD`` too (its refs code matches
HEAD's own target against each name of the update, and takes ``HEAD.lock`` for it); hgwire logged
it in ``sym``'s and ``a``'s reflogs alone.  Checked beside git's own receive-pack (``file://``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Client, RunningServer
from tests.integration.test_git_atomic_hooked_ref_locks import hooked_pair

QUIET_HOOK = "#!/bin/sh\ncat >/dev/null\n"


def _log(git_dir: Path, name: str) -> list[str]:
    """Each line of a reflog as ``old new``, or none for a log that does not exist."""
    path = git_dir / "logs" / name
    return [" ".join(line.split()[:2]) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.parametrize("hooked", [False, True])
def test_a_push_through_the_symbolic_ref_head_names_is_logged_in_head_s_reflog(
        make_server: Callable[..., RunningServer], client: Client, hooked: bool) -> None:
    server, served, twin, work, (first, second, _third) = hooked_pair(
        make_server, client, QUIET_HOOK, ("a",), symref=True)
    for git_dir in (served, twin):
        if not hooked:
            (git_dir / "hooks" / "reference-transaction").unlink()
        client.git("--git-dir", str(git_dir), "symbolic-ref", "HEAD", "refs/heads/sym")
        client.git("--git-dir", str(git_dir), "config", "core.logAllRefUpdates", "true")
    logs = {}
    for url, git_dir in ((f"file://{twin}", twin), (server.git_url("ours/r"), served)):
        client.git("push", "-q", url, f"{second}:refs/heads/sym", cwd=work)
        logs[url] = {name: _log(git_dir, name) for name in ("HEAD", "refs/heads/sym", "refs/heads/a")}
        assert not list(git_dir.glob("refs/**/*.lock")) and not (git_dir / "HEAD.lock").exists()
        client.git("--git-dir", str(git_dir), "fsck", "--full")
    gits, ours = logs.values()
    assert gits["HEAD"] == [f"{first} {second}"], gits
    assert ours == gits
