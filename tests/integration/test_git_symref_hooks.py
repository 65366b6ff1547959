"""A push through a symbolic ref (``git symbolic-ref refs/heads/sym refs/heads/main`` on the
server): the receive hooks hear what git's own receive-pack tells them, byte for byte.

git's receive-pack tells ``pre-receive``, ``update``, ``post-receive`` and ``post-update`` the name
the client pushed (``refs/heads/sym``), and ``reference-transaction`` that name, then its target
(and ``HEAD`` after HEAD's branch) once the transaction's other refs are told.  The backend sees no
symbolic ref (it updates the target); the gateway tells the hooks the names as git does.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_daemon import commit, remote_refs, started_repo

HOOK = """#!/bin/sh
{ echo "== $(basename "$0") $*"
  case "$(basename "$0")" in update|post-update) ;; *) cat ;; esac
} >> "$GIT_DIR/told.log"
"""

PUSHES = [
    ["HEAD:refs/heads/sym"],
    ["HEAD:refs/heads/sym", "HEAD:refs/heads/main"],  # git skips sym's own update, tells the rest of it
    ["--atomic", "HEAD:refs/heads/zz", "HEAD:refs/heads/sym", "HEAD:refs/heads/aa"],
    ["--atomic", "HEAD:refs/heads/main", "HEAD:refs/heads/yy"],  # HEAD's line comes last, as git's
    ["HEAD:refs/heads/fut"],  # a symbolic ref to a branch still to come
    ["HEAD:refs/heads/xx", "HEAD:refs/heads/sym", "HEAD:refs/heads/ww"],
]


def _prepare(client: Client, git_dir: Path) -> None:
    client.git("--git-dir", str(git_dir), "symbolic-ref", "refs/heads/sym", "refs/heads/main")
    client.git("--git-dir", str(git_dir), "symbolic-ref", "refs/heads/fut", "refs/heads/future")
    (git_dir / "hooks").mkdir(exist_ok=True)
    for name in ("pre-receive", "update", "post-receive", "post-update", "reference-transaction"):
        (git_dir / "hooks" / name).write_text(HOOK)
        (git_dir / "hooks" / name).chmod(0o755)


def _told(git_dir: Path) -> str:
    text = (git_dir / "told.log").read_text()
    (git_dir / "told.log").write_text("")
    return text


def test_hooks_hear_a_push_through_a_symbolic_ref_as_git_tells_them(make_server: Any, client: Client) -> None:
    server: RunningServer = make_server("fs", git=[LOOPBACK])
    url, work = started_repo(server, client, "aliased", push=True)
    ours = server.root / "aliased.git"
    theirs = client.cwd / "aliased-copy.git"
    client.run("cp", "-a", str(ours), str(theirs))
    for git_dir in (ours, theirs):
        _prepare(client, git_dir)
    for n, push in enumerate(PUSHES):
        commit(client, work, "a.txt", f"{n}\n", f"push {n}")
        mine = client.git("push", "--porcelain", url, *push, cwd=work)
        git_s = client.git("push", "--porcelain", f"file://{theirs}", *push, cwd=work)
        told, git_told = _told(ours), _told(theirs)
        assert told == git_told, (push, "\n".join(difflib.unified_diff(
            told.splitlines(), git_told.splitlines(), "hgwire", "git", lineterm="")))
        assert "refs/heads/sym" in told or "sym" not in " ".join(push)
        assert mine.stdout.splitlines()[1:] == git_s.stdout.splitlines()[1:], (mine.stdout, git_s.stdout)
    assert remote_refs(client, "default", url) == remote_refs(client, "default", f"file://{theirs}")
    assert client.git("--git-dir", str(ours), "symbolic-ref", "refs/heads/sym").stdout.strip() == "refs/heads/main"
