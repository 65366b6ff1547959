"""A first push into a repository whose HEAD names a branch it lacks points HEAD at a pushed branch
(git leaves HEAD as it is), but never at a symbolic ref: a push through ``refs/heads/alias`` (a
symbolic ref on the server, ``git symbolic-ref refs/heads/alias refs/heads/zzz``) made HEAD name
``alias``, HEAD a symbolic ref to a symbolic ref, where git's receive-pack leaves HEAD naming the
missing branch (through ``alias -> refs/tags/t`` a clone was left on a detached HEAD).  The choice
is among real branches, the alias's target among them; with none, HEAD is left as git leaves it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_daemon import commit


def _served(client: Client, path: Path, alias_to: str) -> None:
    client.git("init", "-q", "--bare", "-b", "trunk", str(path))
    client.git("--git-dir", str(path), "symbolic-ref", "refs/heads/alias", alias_to)


def _head(path: Path) -> str:
    return (path / "HEAD").read_text()


@pytest.mark.parametrize(("alias_to", "pushed", "head"), [
    ("refs/heads/zzz", ["main:refs/heads/alias"], "refs/heads/zzz"),  # the branch the push made through it
    ("refs/heads/zzz", ["main:refs/heads/alias", "main:refs/heads/dev"], "refs/heads/dev"),
    ("refs/tags/t", ["main:refs/heads/alias"], "refs/heads/trunk"),  # no branch pushed: git's HEAD
])
def test_a_first_push_through_a_symbolic_ref_never_points_head_at_it(
        make_server: Callable[..., RunningServer], client: Client, alias_to: str, pushed: list[str], head: str) -> None:
    server = make_server("fs", git=[LOOPBACK])
    work = client.cwd / "work"
    client.git("init", "-q", "-b", "main", str(work))
    commit(client, work, "a.txt", "a\n", "first")
    served, twin = server.root / "r.git", client.cwd / "twin.git"
    _served(client, served, alias_to)
    _served(client, twin, alias_to)

    client.git("push", "-q", server.git_url("r"), *pushed, cwd=work)
    client.git("push", "-q", f"file://{twin}", *pushed, cwd=work)

    assert client.git("--git-dir", str(served), "for-each-ref").stdout == \
        client.git("--git-dir", str(twin), "for-each-ref").stdout
    assert _head(twin) == "ref: refs/heads/trunk\n"  # git's receive-pack never moves HEAD
    assert _head(served) == f"ref: {head}\n"
    client.git("--git-dir", str(served), "fsck", "--full")
