"""A push naming a symbolic ref (``refs/heads/sym`` pointing at ``refs/heads/a``): git 2.39's refs
code locks the symbolic ref too (``refs/heads/sym.lock`` held by another process refuses the push
"failed to update ref", an ``--atomic`` one whole) and appends the symbolic ref's own reflog line
besides its target's.  hgwire, whose backend was given the target alone, took the push and logged
the target only.  Through a chain (``refs/heads/sym`` -> ``refs/heads/s2`` -> ``refs/heads/a``) git
locks and logs each link: ``refs/heads/s2.lock`` held refuses it too.  Each push is made beside
git's own (``file://``)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Client, RunningServer
from tests.git_ref_races import race_repository
from tests.integration.test_git_head_lock_branch_push import _statuses


def _logged(repo: Path, ref: str) -> list[tuple[str, str, str]]:
    """(old, new, message) of each line of ``ref``'s reflog (who and when differ between servers)."""
    path = repo / "logs" / ref
    if not path.exists():
        return []
    return [(line.split(" ")[0], line.split(" ")[1], line.partition("\t")[2])
            for line in path.read_text().splitlines()]


@pytest.mark.parametrize("chain", [False, True])
def test_a_push_through_a_symbolic_ref_locks_and_logs_it_as_git_does(
        make_server: Callable[..., RunningServer], client: Client, chain: bool) -> None:
    server, served, work, (first, second, third) = race_repository(make_server, client, 3, init=("-b", "main"))
    twin = client.cwd / "twin.git"
    client.git("push", "-q", str(served), f"{first}:refs/heads/main", f"{first}:refs/heads/a", cwd=work)
    client.git("--git-dir", str(served), "config", "core.logAllRefUpdates", "true")
    if chain:
        client.git("--git-dir", str(served), "symbolic-ref", "refs/heads/s2", "refs/heads/a")
    client.git("--git-dir", str(served), "symbolic-ref", "refs/heads/sym", "refs/heads/s2" if chain else "refs/heads/a")
    shutil.copytree(served, twin, symlinks=True)
    held = "refs/heads/s2" if chain else "refs/heads/sym"
    for repo in (served, twin):
        (repo / f"{held}.lock").write_text("held\n")
    for push in ([f"{second}:refs/heads/sym"], ["--atomic", f"{second}:refs/heads/sym", f"{second}:refs/heads/y"]):
        said = []
        for url in (f"file://{twin}", server.git_url("r")):
            pushed = client.git("push", "--porcelain", url, *push, cwd=work, check=False)
            said.append(_statuses(pushed.stdout))
            assert held in pushed.stdout + pushed.stderr, (url, pushed.stdout + pushed.stderr)
        assert said[0] == said[1] and said[0][0][1].startswith("!"), (push, said)
    for repo in (served, twin):
        assert (repo / f"{held}.lock").read_text() == "held\n"
        (repo / f"{held}.lock").unlink()
    for url in (f"file://{twin}", server.git_url("r")):
        client.git("push", "-q", url, f"{third}:refs/heads/sym", cwd=work)
    for ref in ("refs/heads/sym", "refs/heads/s2", "refs/heads/a"):
        assert _logged(served, ref) == _logged(twin, ref), ref
    for ref in ("refs/heads/sym", held):
        assert (first, third, "push") in _logged(served, ref), ref
    listed = [client.git("--git-dir", str(repo), "for-each-ref", "--format=%(refname) %(objectname)").stdout
              for repo in (served, twin)]
    assert listed[0] == listed[1], listed
    assert (served / "refs/heads/sym").read_text() == f"ref: refs/heads/{'s2' if chain else 'a'}\n"
    client.git("--git-dir", str(served), "fsck", "--full")
