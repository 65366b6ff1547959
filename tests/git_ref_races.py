"""Set-ups of the tests that race a push against another git process on the same repository on disk
(a ``git update-ref``, git's own receive-pack): the served repository and a work tree with a few
commits, the other process run from inside a step of the server's (its ref write, its reflog line),
and what the refs say after."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_daemon import commit

T = TypeVar("T")

COMMITS = (("a.txt", "a\n", "first"), ("b.txt", "b\n", "second"), ("c.txt", "c\n", "third"))
"""The work tree's commits, in turn: one file each."""


def race_repository(make_server: Callable[..., RunningServer], client: Client, commits: int = 2,
                    name: str = "r.git", init: Sequence[str] = ()) -> tuple[RunningServer, Path, Path, list[str]]:
    """A server over git:// on loopback and its empty bare repository ``name`` (``git init --bare``
    with ``init``'s options), with a work tree (``work``, branch ``main``) of ``commits`` commits
    (``COMMITS``): the server, the repository, the work tree and the commits' ids, oldest first."""
    server = make_server("fs", git=[LOOPBACK])
    served = server.root / name
    served.parent.mkdir(parents=True, exist_ok=True)
    work = client.cwd / "work"
    client.git("init", "-q", "-b", "main", str(work))
    ids = [commit(client, work, file, text, message) for file, text, message in COMMITS[:commits]]
    client.git("init", "-q", "--bare", *init, str(served))
    return server, served, work, ids


def race_once(monkeypatch: pytest.MonkeyPatch, owner: object, name: str,
              race: Callable[..., Iterable[T]]) -> list[T]:
    """Have ``owner.name`` (a module's function, a class's method) run ``race`` with its own
    arguments before it does its work, at each call until ``race`` gives something (another
    process at that moment of the server's work): what ``race`` gave, filled in as the push runs."""
    theirs: list[T] = []
    real = getattr(owner, name)

    def meanwhile(*args: Any) -> Any:
        if not theirs:
            theirs.extend(race(*args))
        return real(*args)

    monkeypatch.setattr(owner, name, meanwhile)
    return theirs


def update_ref(client: Client, repo: Path, name: str, new: str, old: str) -> subprocess.CompletedProcess[str]:
    """``git update-ref NAME NEW OLD`` in ``repo``, as another process on the same disk runs it."""
    return client.git("--git-dir", str(repo), "update-ref", name, new, old, check=False)


def ref_id(client: Client, repo: Path, name: str) -> str:
    """The id ``name`` has in ``repo`` (empty where there is no such ref), as git reads it."""
    return client.git("--git-dir", str(repo), "for-each-ref", "--format=%(objectname)", name).stdout.strip()
