"""A push creating many branches (a migration's: they go into ``packed-refs`` together) while
another process creates one of them (a ``git update-ref`` or git's receive-pack on the same
repository on disk).  git's refs code takes each ref's own lock (``refs/heads/NAME.lock``) before
it reads whether the ref is there, and keeps it until the ref is written; hgwire checked under
``packed-refs.lock`` alone, so a ``git update-ref`` of a branch between that check and the new
``packed-refs`` also "created" it: both said so, and its loose file hid what the push reported.
The interleaving is driven by running ``git update-ref`` from inside the server's write of
``packed-refs``, once it has checked the refs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import backends.git
from tests.conftest import Client, RunningServer
from tests.git_ref_races import race_once, race_repository, update_ref
from tests.git_ref_races import ref_id as _ref

BRANCHES = [f"refs/heads/b{i:02d}" for i in range(backends.git.PACKED_CREATIONS_MIN + 2)] + ["refs/heads/dir/deep"]


def test_a_branch_another_process_creates_during_the_packed_write_is_created_once(
        make_server: Callable[..., RunningServer], client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    server, served, work, (first, second) = race_repository(make_server, client)
    client.git("push", "-q", str(served), "main", cwd=work)  # (second is there for update-ref)

    def meanwhile(*args: Any) -> Any:  # the refs checked, packed-refs.lock held, nothing written yet
        return [update_ref(client, served, name, second, "0" * 40) for name in ("refs/heads/b00", "refs/heads/dir/deep")]

    theirs = race_once(monkeypatch, backends.git, "_packed_text", meanwhile)
    pushed = client.git("push", "--porcelain", server.git_url("r"), *(f"{first}:{name}" for name in BRANCHES),
                        cwd=work)

    assert len(theirs) == 2, "the push did not write its branches into packed-refs together"
    for name, done in zip(("refs/heads/b00", "refs/heads/dir/deep"), theirs, strict=True):
        assert f"*\t{first}:{name}\t[new branch]" in pushed.stdout, pushed.stdout
        assert done.returncode != 0 and f"cannot lock ref '{name}'" in done.stderr, done.stderr
        assert _ref(client, served, name) == first, "another process created the branch the push reported made"
    assert all(_ref(client, served, name) == first for name in BRANCHES)
    assert not list(served.glob("refs/**/*.lock")) and not (served / "refs" / "heads" / "dir").exists()
    client.git("--git-dir", str(served), "fsck", "--full")
