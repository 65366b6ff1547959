"""A push deleting several packed branches (``git push --prune``, a mirror's: they leave
``packed-refs`` together) while another process changes one of them (a ``git update-ref`` or git's
receive-pack on the same repository on disk).  git's refs code takes each ref's own lock
(``refs/heads/NAME.lock``) before ``packed-refs.lock``, and keeps both until the ref is gone; hgwire
checked under ``packed-refs.lock`` alone, so a ``git update-ref`` moving a branch between that check
and the new ``packed-refs`` read the old file and wrote the branch loose: both said so, the push
reporting the branch deleted while it named the other's value.  The interleaving is driven by
running ``git update-ref`` from inside the server's write of ``packed-refs``, once it has checked
the refs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import backends.git
from tests.conftest import Client, RunningServer
from tests.git_ref_races import race_once, race_repository, update_ref
from tests.git_ref_races import ref_id as _ref

MOVED = ("refs/heads/x", "refs/heads/dir/deep")
"""Branches another process moves while the push deletes them (one whose directory is packed alone)."""


def test_a_branch_another_process_moves_during_the_packed_deletion_is_refused_to_it(
        make_server: Callable[..., RunningServer], client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    server, served, work, (first, second) = race_repository(make_server, client)
    client.git("push", "-q", str(served), "main", f"{first}:refs/heads/y", *(f"{first}:{name}" for name in MOVED),
               cwd=work)
    client.git("--git-dir", str(served), "pack-refs", "--all")
    assert not (served / "refs" / "heads" / "dir").exists()

    def meanwhile(*args: Any) -> Any:  # the refs checked, packed-refs.lock held, nothing written yet
        return [update_ref(client, served, name, second, first) for name in MOVED]

    theirs = race_once(monkeypatch, backends.git, "_packed_text", meanwhile)
    pushed = client.git("push", "--porcelain", server.git_url("r"), ":refs/heads/y", *(f":{name}" for name in MOVED),
                        cwd=work)

    assert len(theirs) == 2, "the push did not delete its branches from packed-refs together"
    for name, done in zip(MOVED, theirs, strict=True):
        assert f"-\t:{name}\t[deleted]" in pushed.stdout, pushed.stdout
        assert done.returncode != 0 and f"cannot lock ref '{name}'" in done.stderr, done.stderr
        assert _ref(client, served, name) == "", "another process moved the branch the push reported deleted"
    assert _ref(client, served, "refs/heads/y") == ""
    assert not list(served.glob("refs/**/*.lock")) and not (served / "refs" / "heads" / "dir").exists()
    client.git("--git-dir", str(served), "fsck", "--full")


def test_a_shadowed_branch_leaves_both_its_files_under_its_own_lock(
        make_server: Callable[..., RunningServer], client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """A packed branch hidden by its loose file (moved since it was packed): git's receive-pack removes
    its packed line, then its loose file, holding the branch's lock throughout; a ``git update-ref``
    in between is refused, where it moved the branch and the push's deletion then failed."""
    server, served, work, (first, second, third) = race_repository(make_server, client, 3)
    client.git("push", "-q", str(served), "main", f"{first}:refs/heads/x", f"{first}:refs/heads/y", cwd=work)
    client.git("--git-dir", str(served), "pack-refs", "--all")
    client.git("--git-dir", str(served), "update-ref", "refs/heads/x", second, first)  # loose, hiding the packed

    def meanwhile(*args: Any) -> Any:
        return [update_ref(client, served, "refs/heads/x", third, second)]

    theirs = race_once(monkeypatch, backends.git, "_packed_text", meanwhile)
    pushed = client.git("push", "--porcelain", server.git_url("r"), ":refs/heads/x", ":refs/heads/y", cwd=work,
                        check=False)

    assert len(theirs) == 1
    assert "-\t:refs/heads/x\t[deleted]" in pushed.stdout, pushed.stdout + pushed.stderr
    assert theirs[0].returncode != 0 and "cannot lock ref 'refs/heads/x'" in theirs[0].stderr, theirs[0].stderr
    assert _ref(client, served, "refs/heads/x") == "" and _ref(client, served, "refs/heads/y") == ""
    assert not list(served.glob("refs/**/*.lock"))
    client.git("--git-dir", str(served), "fsck", "--full")
