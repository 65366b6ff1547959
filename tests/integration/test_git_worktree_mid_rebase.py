"""A working tree detached in the middle of a rebase (``rebase-merge/head-name``) or a bisect
(``BISECT_START``, ``BISECT_LOG``) has its branch checked out for git: ``find_shared_symref`` asks
``is_worktree_being_rebased``/``_bisected``, so receive-pack refuses a push moving that branch
or deleting it ("branch is currently checked out" both).  hgwire saw a detached HEAD and no branch: it moved
the branch under the rebase or bisect.  Checked beside git's own receive-pack (``file://``) for a
linked working tree of a bare repository and for a repository's own tree.  Under
``receive.denyCurrentBranch = updateInstead`` git moves the branch and checks its files out over the
rebase's state; hgwire refuses the push, saying why."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from backends.git import BUSY_CHECKOUT, LINKED_CHECKOUT
from tests.conftest import Client, RunningServer
from tests.git_ref_races import race_repository


def _outcome(client: Client, url: str, spec: str, git_dir: Path, work: Path) -> tuple[int, list[str], str]:
    pushed = client.git("push", "--porcelain", "--force", url, spec, cwd=work, check=False)
    status = [line for line in pushed.stdout.splitlines() if line[:1] in ("!", " ", "*", "-", "+", "=")]
    refs = client.git("--git-dir", str(git_dir), "for-each-ref", "--format=%(refname) %(objectname)").stdout
    return pushed.returncode, status, refs


def _busy(client: Client, tree: Path, how: str) -> None:
    """Leave ``tree`` (on branch ``b``) detached in the middle of a rebase or a bisect of ``b``."""
    if how == "rebase":  # an exec that fails stops the rebase after its first pick
        client.git("-c", "sequence.editor=:", "rebase", "-q", "-i", "-x", "false", "HEAD~1", cwd=tree, check=False)
    else:
        client.git("bisect", "start", cwd=tree)
        client.git("checkout", "-q", "--detach", cwd=tree)


@pytest.mark.parametrize("linked", [True, False], ids=["linked", "own"])
@pytest.mark.parametrize("how", ["rebase", "bisect"])
@pytest.mark.parametrize("delete", [False, True, None], ids=["move", "delete", "update-instead"])
def test_a_branch_being_rebased_or_bisected_is_checked_out_as_git_finds_it(
        make_server: Callable[..., RunningServer], client: Client, how: str, linked: bool, delete: bool | None) -> None:
    server, served, work, (first, second) = race_repository(make_server, client, 2, "ours/r.git")
    top = served
    if not linked:  # a repository with a working tree (ours/w/.git), served as ours/w
        top = server.root / "ours" / "w"
        client.git("init", "-q", str(top))
        served = top / ".git"
    if delete is None:
        client.git("--git-dir", str(served), "config", "receive.denyCurrentBranch", "updateInstead")
    client.git("push", "-q", str(served), f"{first}:refs/heads/a", f"{second}:refs/heads/b", cwd=work)
    if linked:
        client.git("--git-dir", str(served), "symbolic-ref", "HEAD", "refs/heads/a")
    else:
        client.git("checkout", "-q", "b", cwd=top)
    twin_top = client.cwd / "theirs" / top.name
    twin_top.parent.mkdir()
    shutil.copytree(top, twin_top, symlinks=True)
    twin = twin_top if linked else twin_top / ".git"
    for git_dir, tree in ((served, server.root / "ours" / "wt"), (twin, client.cwd / "theirs" / "wt")):
        if linked:
            client.git("--git-dir", str(git_dir), "worktree", "add", "-q", str(tree), "b")
        _busy(client, tree if linked else git_dir.parent, how)
    spec = ":refs/heads/b" if delete else f"{first}:refs/heads/b"
    gits = _outcome(client, f"file://{twin_top}", spec, twin, work)
    ours = _outcome(client, server.git_url(f"ours/{top.name.removesuffix('.git')}"), spec, served, work)
    if delete is None:  # git moved b and checked its files out over the rebase or bisect; hgwire refuses
        assert gits[0] == 0, gits
        said = LINKED_CHECKOUT if linked else BUSY_CHECKOUT
        assert ours[:2] == (1, [f"!\t{spec}\t[remote rejected] ({said})"]), ours
    else:
        assert gits[:2] == (1, [f"!\t{spec}\t[remote rejected] (branch is currently checked out)"]), gits
        assert ours == gits
    assert client.git("--git-dir", str(served), "rev-parse", "refs/heads/b").stdout.strip() == second
    client.git("--git-dir", str(served), "fsck", "--full")
