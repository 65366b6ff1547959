"""A repository whose HEAD names a symbolic ref (HEAD -> ``refs/heads/sym`` -> ``refs/heads/a``): git's
receive-pack takes ``a`` for its current branch (it resolves HEAD through every symbolic ref), so a
push deleting ``a`` is refused "deletion of the current branch prohibited" (``receive.denyDeleteCurrent``)
and, with a working tree, one moving it "branch is currently checked out" (``denyCurrentBranch``), or
under ``updateInstead`` moves the tree with it.  hgwire compared the pushed ref with HEAD's own target
(``sym``) alone: it deleted ``a``, leaving HEAD leading nowhere, and moved the checked-out branch
under its working tree, the tree left behind.  Checked beside git's own
receive-pack (``file://``)."""

from __future__ import annotations

import shutil
from collections.abc import Callable

import pytest

from tests.conftest import Client, RunningServer
from tests.git_ref_races import race_repository


def _outcome(client: Client, url: str, spec: str, git_dir: object, work: object) -> tuple[int, list[str], list[str], str]:
    pushed = client.git("push", "--porcelain", url, spec, cwd=work, check=False)
    status = [line for line in pushed.stdout.splitlines() if line[:1] in ("!", " ", "*", "-", "+", "=")]
    errors = [line for line in pushed.stderr.splitlines() if line.startswith("remote: error: refusing")]
    refs = client.git("--git-dir", str(git_dir), "for-each-ref", "--format=%(refname) %(objectname)").stdout
    return pushed.returncode, status, errors, refs


@pytest.mark.parametrize("bare,deny", [(True, ""), (False, ""), (False, "updateInstead")],
                         ids=["bare", "worktree", "update-instead"])
def test_the_branch_head_reaches_through_a_symbolic_ref_is_the_current_one(
        make_server: Callable[..., RunningServer], client: Client, bare: bool, deny: str) -> None:
    server, served, work, (first, second) = race_repository(make_server, client, 2, "ours/r.git")
    top = served
    if not bare:  # a repository with a working tree (ours/w/.git), served as ours/w
        top = server.root / "ours" / "w"
        client.git("init", "-q", str(top))
        served = top / ".git"
        if deny:
            client.git("--git-dir", str(served), "config", "receive.denyCurrentBranch", deny)
    client.git("push", "-q", str(served), f"{first}:refs/heads/a", f"{first}:refs/heads/b", cwd=work)
    client.git("--git-dir", str(served), "symbolic-ref", "refs/heads/sym", "refs/heads/a")
    client.git("--git-dir", str(served), "symbolic-ref", "HEAD", "refs/heads/sym")
    if not bare:
        client.git("reset", "-q", "--hard", cwd=top)  # (the tree of a, the branch checked out)
    twin_top = client.cwd / "theirs" / top.name
    shutil.copytree(top, twin_top, symlinks=True)
    twin = twin_top if bare else twin_top / ".git"
    spec = ":refs/heads/a" if bare else f"{second}:refs/heads/a"
    gits = _outcome(client, f"file://{twin_top}", spec, twin, work)
    ours = _outcome(client, server.git_url(f"ours/{top.name.removesuffix('.git')}"), spec, served, work)
    assert ours == gits
    if deny:  # the tree moved with the branch, as git's push-to-deploy moves it
        assert gits[0] == 0 and (twin_top / "b.txt").exists(), gits
        assert (top / "b.txt").read_text() == "b\n"
        assert client.git("status", "--porcelain", cwd=top).stdout == ""
    else:
        refused = "deletion of the current branch prohibited" if bare else "branch is currently checked out"
        assert gits[0] == 1 and gits[1] == [f"!\t{spec}\t[remote rejected] ({refused})"], gits
        assert client.git("--git-dir", str(served), "rev-parse", "refs/heads/a").stdout.strip() == first
    client.git("--git-dir", str(served), "fsck", "--full")
