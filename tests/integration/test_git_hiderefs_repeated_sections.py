"""``hideRefs`` values in a config file that writes a section twice (``[transfer]``, ``[uploadpack]``,
``[receive]``, ``[transfer]`` again) are taken in the file's order, as git takes them (the last
value that matches decides): dulwich gathers a section's values under its first header, so
hgwire showed ``refs/pull/7/head`` to fetches and let pushes change it where git hides it."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_daemon import commit

CONFIG = """
[transfer]
\thideRefs = refs/pull
[uploadpack]
\thideRefs = !refs/pull/7
[receive]
\thideRefs = !refs/pull/7
\tdenyDeletes = false
[transfer]
\thideRefs = refs/pull
"""


def pull_refs_repository(make_server: Callable[..., RunningServer], client: Client,
                         name: str) -> tuple[RunningServer, Path, Path]:
    """A server and its bare repository ``name`` holding ``main``, ``refs/pull/7/head`` and
    ``refs/pull/8/head``, pushed from the client's work tree (returned too)."""
    server = make_server("fs", git=[LOOPBACK])
    work = client.cwd / "work"
    client.git("init", "-q", "-b", "main", str(work))
    commit(client, work, "a.txt", "a\n", "first")
    bare = server.root / f"{name}.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    client.git("push", "-q", str(bare), "main", "main:refs/pull/7/head", "main:refs/pull/8/head", cwd=work)
    return server, bare, work


def pushes_to_pull_7_are_denied(client: Client, server: RunningServer, bare: Path, work: Path) -> None:
    """A new commit pushed to ``refs/pull/7/head`` is denied as a hidden ref's update, by git's
    receive-pack (file://) and by hgwire alike."""
    commit(client, work, "b.txt", "b\n", "second")
    for url in (f"file://{bare}", server.git_url(bare.name.removesuffix(".git"))):
        pushed = client.git("push", url, "main:refs/pull/7/head", cwd=work, check=False)
        assert pushed.returncode != 0 and "deny updating a hidden ref" in pushed.stderr, (url, pushed.stderr)


@pytest.mark.parametrize("version", ["0", "2"])
def test_hiderefs_of_a_section_written_twice_count_where_they_are(
        make_server: Callable[..., RunningServer], client: Client, version: str) -> None:
    server, bare, work = pull_refs_repository(make_server, client, "hide")
    with open(bare / "config", "a") as f:
        f.write(CONFIG)
    gits = client.git("-c", f"protocol.version={version}", "ls-remote", f"file://{bare}").stdout
    ours = client.git("-c", f"protocol.version={version}", "ls-remote", server.git_url("hide")).stdout
    assert "refs/pull" not in gits and "refs/heads/main" in gits
    assert ours == gits
    pushes_to_pull_7_are_denied(client, server, bare, work)
