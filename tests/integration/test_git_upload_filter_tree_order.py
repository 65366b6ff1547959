"""``uploadpackfilter.tree.maxDepth`` allows the ``tree`` filter, as ``uploadpackfilter.tree.allow``
does or not: git reads them in the config's order, the last one deciding.  An operator who wrote
``allow = false`` and then ``maxDepth = 2`` under ``[uploadpackfilter "tree"]`` has ``tree:1``
served by git; hgwire refused it ("filter 'tree' not supported"), an ``allow`` anywhere winning."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest

from tests.conftest import LOOPBACK, Client, RunningServer


@pytest.mark.parametrize(("settings", "served"), [
    ((("allow", "false"), ("maxDepth", "2")), True),
    ((("maxDepth", "2"), ("allow", "false")), False),
    ((("allow", "true"), ("maxDepth", "0")), False),
])
def test_the_last_of_tree_allow_and_tree_max_depth_decides(
        make_server: Callable[..., RunningServer], client: Client,
        settings: tuple[tuple[str, str], ...], served: bool) -> None:
    server = make_server("fs", git=[LOOPBACK])
    bare = server.root / "ordered.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    work = client.cwd / "src"
    client.git("init", "-q", str(work))
    (work / "dir").mkdir()
    (work / "dir" / "a.txt").write_text("a\n")
    client.git("add", ".", cwd=work)
    client.git("commit", "-qm", "a", cwd=work)
    client.git("push", "-q", str(bare), "main", cwd=work)
    for key, value in settings:
        client.git("--git-dir", str(bare), "config", "--add", f"uploadpackfilter.tree.{key}", value)
    done = client.git("clone", "-q", "--no-checkout", "--filter=tree:1", server.git_url("ordered"),
                      str(client.cwd / "c"), check=False)
    if served:
        assert done.returncode == 0, done.stderr
    else:
        assert done.returncode != 0, done.stderr
        assert ("filter 'tree' not supported" in done.stderr
                or "tree filter allows max depth 0, but got 1" in done.stderr), done.stderr
