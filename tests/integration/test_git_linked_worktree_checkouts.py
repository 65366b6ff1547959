"""A bare repository with a linked working tree (``git worktree add ../wt b``): git's receive-pack
finds ``b`` checked out there (``find_shared_symref`` over every working tree), so a push moving or
deleting ``b`` is refused as one of the checked-out branch ("branch is currently checked out"; under
``receive.denyCurrentBranch = updateInstead`` a deletion "deletion of the current branch prohibited").
hgwire looked at the repository's own HEAD alone: it moved or deleted ``b`` under that tree.  Checked
beside git's own receive-pack (``file://``); under ``updateInstead`` git moves the linked tree with
the branch, which hgwire does not do: it refuses the push, saying so, where it moved the ref alone."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from backends.git import LINKED_CHECKOUT
from tests.conftest import Client, RunningServer
from tests.git_ref_races import race_repository


def _outcome(client: Client, url: str, spec: str, git_dir: Path, work: Path) -> tuple[int, list[str], list[str], str]:
    pushed = client.git("push", "--porcelain", url, spec, cwd=work, check=False)
    status = [line for line in pushed.stdout.splitlines() if line[:1] in ("!", " ", "*", "-", "+", "=")]
    errors = [line.rstrip() for line in pushed.stderr.splitlines() if line.startswith("remote: ")]
    refs = client.git("--git-dir", str(git_dir), "for-each-ref", "--format=%(refname) %(objectname)").stdout
    return pushed.returncode, status, errors, refs


@pytest.mark.parametrize("deny,delete", [("", False), ("", True), ("updateInstead", True), ("updateInstead", False)],
                         ids=["move", "delete", "update-instead-delete", "update-instead-move"])
def test_a_branch_a_linked_working_tree_has_checked_out_is_refused_as_git_refuses_it(
        make_server: Callable[..., RunningServer], client: Client, deny: str, delete: bool) -> None:
    server, served, work, (first, second) = race_repository(make_server, client, 2, "ours/r.git")
    client.git("push", "-q", str(served), f"{first}:refs/heads/a", f"{first}:refs/heads/b", cwd=work)
    client.git("--git-dir", str(served), "symbolic-ref", "HEAD", "refs/heads/a")
    if deny:
        client.git("--git-dir", str(served), "config", "receive.denyCurrentBranch", deny)
    twin = client.cwd / "theirs" / "r.git"
    twin.parent.mkdir()
    shutil.copytree(served, twin, symlinks=True)
    trees = {}
    for git_dir, tree in ((served, server.root / "ours" / "wt"), (twin, client.cwd / "theirs" / "wt")):
        client.git("--git-dir", str(git_dir), "worktree", "add", "-q", str(tree), "b")
        trees[git_dir] = tree
    spec = ":refs/heads/b" if delete else f"{second}:refs/heads/b"
    gits = _outcome(client, f"file://{twin}", spec, twin, work)
    ours = _outcome(client, server.git_url("ours/r"), spec, served, work)
    if deny and not delete:  # git moved its linked tree with b; hgwire refuses, b and its tree as they were
        assert gits[0] == 0 and (trees[twin] / "b.txt").exists(), gits
        assert ours[:2] == (1, [f"!\t{spec}\t[remote rejected] ({LINKED_CHECKOUT})"]), ours
    else:
        assert gits[0] == 1, gits
        assert ours == gits
    assert client.git("--git-dir", str(served), "rev-parse", "refs/heads/b").stdout.strip() == first
    assert not (trees[served] / "b.txt").exists()
    client.git("--git-dir", str(served), "fsck", "--full")
