"""A push deleting packed branches into a repository with a ``reference-transaction`` hook: git
2.39 takes ``packed-refs.lock`` before its hook is told "prepared", so a ``git pack-refs`` the hook
runs then (as a maintenance job would race it) is refused "Unable to create
'.../packed-refs.lock': File exists" and the push's deletions stand.  hgwire told the hook
"prepared" before it took that lock.  Each push is made beside git's own (``file://``); the racing
command runs from the hook, so the race is the same every run."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_daemon import commit

RACING_HOOK = """#!/bin/sh
# told "prepared" of the push's transaction: pack the refs meanwhile, as a maintenance job would
cat >/dev/null
[ "$1" = prepared ] || exit 0
[ -e "$GIT_DIR/packed-refs.lock" ] && held=held || held=free
git pack-refs --all 2>/dev/null
echo "$held $?" >> "$GIT_DIR/../packed.seen"
"""


def _seen(git_dir: Path) -> list[str]:
    return sorted(set((git_dir.parent / "packed.seen").read_text().splitlines()))


@pytest.mark.parametrize("atomic", [False, True])
def test_packed_refs_lock_is_held_when_the_hook_is_told_prepared(
        make_server: Callable[..., RunningServer], client: Client, atomic: bool) -> None:
    server = make_server("fs", git=[LOOPBACK])
    served, twin = server.root / "served" / "r.git", client.cwd / "twin" / "r.git"
    work = client.cwd / "work"
    client.git("init", "-q", "-b", "main", str(work))
    first = commit(client, work, "a.txt", "a\n", "first")
    client.git("init", "-q", "--bare", "-b", "main", str(served))
    client.git("push", "-q", str(served), *(f"{first}:refs/heads/{n}" for n in ("main", "a", "b", "c")), cwd=work)
    client.git("--git-dir", str(served), "pack-refs", "--all")
    hook = served / "hooks" / "reference-transaction"
    hook.write_text(RACING_HOOK)
    hook.chmod(0o755)
    shutil.copytree(served, twin, symlinks=True)
    for url in (f"file://{twin}", server.git_url("served/r")):
        client.git("push", *(["--atomic"] if atomic else []), url, ":refs/heads/a", ":refs/heads/b", cwd=work)
    assert _seen(served) == _seen(twin) == ["held 128"], (_seen(served), _seen(twin))
    listed = [client.git("--git-dir", str(repo), "for-each-ref", "--format=%(refname) %(objectname)").stdout
              for repo in (served, twin)]
    assert listed[0] == listed[1] == f"refs/heads/c {first}\nrefs/heads/main {first}\n", listed
    client.git("--git-dir", str(served), "fsck", "--full")
