"""An atomic push (``git push --atomic``) into a repository with a ``reference-transaction`` hook, or
``receive.denyCurrentBranch = updateInstead`` with the checked-out branch among its refs, while
another process moves one of its refs (a ``git update-ref`` on the same disk).  git 2.39 takes every
ref's own lock before its hook is told "prepared" and writes them all under them (its
``updateInstead`` deploy runs first, in ``update()``), so the other process is refused "cannot lock
ref" and the push is whole; hgwire told the hook "prepared" before any lock and then wrote the refs
one at a time, so the other process moved one and the push was half made (one ref moved, the other
refused)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import backends.git
from tests.conftest import LOOPBACK, Client, RunningServer
from tests.git_ref_races import race_once, race_repository
from tests.integration.test_git_daemon import commit


def racing_hook(ref: str) -> str:
    """A ``reference-transaction`` hook that, told "prepared" of the push's transaction, moves
    ``ref`` from the first commit to the third meanwhile, as another process would, and writes
    what that ``git update-ref`` said and its status beside the repository (``../moved.err``,
    ``../moved.rc``)."""
    return f"""#!/bin/sh
[ -n "$RACING" ] && exit 0
cat >/dev/null
[ "$1" = prepared ] || exit 0
RACING=1 git update-ref {ref} "$(cat "$GIT_DIR/../third")" "$(cat "$GIT_DIR/../first")" 2>"$GIT_DIR/../moved.err"
echo $? > "$GIT_DIR/../moved.rc"
"""


RACING_HOOK = racing_hook("refs/heads/b")


def _rc_and_refs(client: Client, git_dir: Path) -> tuple[str, str, list[str]]:
    top = git_dir.parent
    rc, err = (top / "moved.rc").read_text().strip(), (top / "moved.err").read_text()
    refs = client.git("--git-dir", str(git_dir), "for-each-ref", "--format=%(refname) %(objectname)",
                      "refs/heads/a", "refs/heads/b").stdout.split("\n")[:-1]
    return rc, err, refs


def hooked_pair(make_server: Callable[..., RunningServer], client: Client, hook: str, branches: tuple[str, ...],
                symref: bool = False) -> tuple[RunningServer, Path, Path, Path, tuple[str, str, str]]:
    """A served repository (``ours/r``) and its twin for git over file:// (``theirs/r``), both with
    ``hook`` as their ``reference-transaction`` hook: ``branches`` at the first of three commits,
    ``refs/tags/keep`` at the third (``refs/heads/sym`` -> ``a`` too if ``symref``); the ids of the
    first and third written beside each (``../first``, ``../third``) for the hook.  The server, the
    two repositories, the work tree and the three commits."""
    server, served, work, (first, second, third) = race_repository(make_server, client, 3, "ours/r.git")
    (client.cwd / "theirs").mkdir()
    twin = client.cwd / "theirs" / "r.git"
    client.git("push", "-q", str(served), *(f"{first}:refs/heads/{b}" for b in branches),
               f"{third}:refs/tags/keep", cwd=work)
    if symref:
        client.git("--git-dir", str(served), "symbolic-ref", "refs/heads/sym", "refs/heads/a")
    hook_file = served / "hooks" / "reference-transaction"
    hook_file.write_text(hook)
    hook_file.chmod(0o755)
    shutil.copytree(served, twin, symlinks=True)
    for top in (served.parent, twin.parent):
        (top / "first").write_text(first)
        (top / "third").write_text(third)
    return server, served, twin, work, (first, second, third)


@pytest.mark.parametrize("through", ["refs/heads/a", "refs/heads/sym"])
def test_an_atomic_push_with_a_transaction_hook_holds_every_ref_as_git_does(
        make_server: Callable[..., RunningServer], client: Client, through: str) -> None:
    server, served, twin, work, (_first, second, _third) = hooked_pair(
        make_server, client, RACING_HOOK, ("a", "b"), symref=True)

    for url, git_dir in ((f"file://{twin}", twin), (server.git_url("ours/r"), served)):
        pushed = client.git("push", "--atomic", "--porcelain", url, f"{second}:{through}",
                            f"{second}:refs/heads/b", cwd=work, check=False)
        rc, err, refs = _rc_and_refs(client, git_dir)
        assert rc != "0" and "cannot lock ref 'refs/heads/b'" in err, (url, rc, err, refs)
        assert pushed.returncode == 0, (url, pushed.stdout + pushed.stderr)
        assert refs == [f"refs/heads/a {second}", f"refs/heads/b {second}"], (url, refs)
        assert not list(git_dir.glob("refs/**/*.lock"))
        client.git("--git-dir", str(git_dir), "fsck", "--full")


def test_an_atomic_push_deploying_the_checked_out_branch_holds_every_ref(
        make_server: Callable[..., RunningServer], client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    server = make_server("fs", git=[LOOPBACK])
    site = server.root / "site"
    client.git("init", "-q", "-b", "main", str(site))
    first = commit(client, site, "a.txt", "a\n", "first")
    client.git("config", "receive.denyCurrentBranch", "updateInstead", cwd=site)
    client.git("branch", "b", cwd=site)
    work = client.cwd / "work"
    client.git("clone", "-q", str(site), str(work))
    second = commit(client, work, "b.txt", "b\n", "second")
    third = commit(client, work, "c.txt", "c\n", "third")
    client.git("push", "-q", server.git_url("site"), f"{third}:refs/tags/keep", cwd=work)

    def meanwhile(self: Any, update: Any) -> Any:  # a ref of the push written
        other = "refs/heads/b" if update.ref == b"refs/heads/main" else "refs/heads/main"
        return [client.git("update-ref", other, third, first, cwd=site, check=False)]

    theirs = race_once(monkeypatch, backends.git.DulwichGitRepository, "_log_update", meanwhile)
    pushed = client.git("push", "--atomic", "--porcelain", server.git_url("site"), f"{second}:refs/heads/main",
                        f"{second}:refs/heads/b", cwd=work, check=False)

    assert len(theirs) == 1
    assert theirs[0].returncode != 0 and "cannot lock ref" in theirs[0].stderr, theirs[0].stderr
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    assert client.git("rev-parse", "main", "b", cwd=site).stdout.split() == [second, second]
    assert (site / "b.txt").read_text() == "b\n"  # (the working tree deployed)
    client.git("fsck", "--full", cwd=site)
