"""An atomic push deleting packed branches while another git process (a ``git pack-refs``, a ``git
gc``) holds ``packed-refs.lock`` for a moment: git 2.39's ref transaction retries that lock for
``core.packedRefsTimeout`` (1 s by default) and the push succeeds once it is let go; hgwire's atomic
push tried it once and failed every ref ("atomic transaction failed").  The other process lets the
lock go the moment hgwire first finds it held (its ``GitFile`` on ``packed-refs`` refused)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import backends.git
from tests.conftest import Client, RunningServer
from tests.git_ref_races import race_repository


def test_an_atomic_push_waits_for_packed_refs_lock_as_git_does(
        make_server: Callable[..., RunningServer], client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    server, served, work, (first, second) = race_repository(make_server, client)
    client.git("push", "-q", str(served), f"{first}:refs/heads/main", f"{first}:refs/heads/a",
               f"{first}:refs/heads/b", cwd=work)
    client.git("--git-dir", str(served), "pack-refs", "--all")
    lock = served / "packed-refs.lock"
    lock.write_text("")  # another git process rewriting packed-refs
    refused: list[str] = []
    real = backends.git.GitFile

    def git_file(path: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return real(path, *args, **kwargs)
        except backends.git.FileLocked:
            if Path(path.decode() if isinstance(path, bytes) else path) == served / "packed-refs" \
                    and lock.exists() and not refused:
                refused.append("packed-refs")
                lock.unlink()  # (it is done: the lock let go)
            raise

    monkeypatch.setattr(backends.git, "GitFile", git_file)
    pushed = client.git("push", "--atomic", "--porcelain", server.git_url("r"), f"{second}:refs/heads/main",
                        ":refs/heads/a", ":refs/heads/b", cwd=work, check=False)

    assert refused == ["packed-refs"]
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    listed = client.git("--git-dir", str(served), "for-each-ref", "--format=%(refname) %(objectname)").stdout
    assert listed.split("\n")[:-1] == [f"refs/heads/main {second}"], listed
    assert not list(served.glob("refs/**/*.lock")) and not lock.exists()
    client.git("--git-dir", str(served), "fsck", "--full")
