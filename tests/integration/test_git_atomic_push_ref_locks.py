"""An atomic push (``git push --atomic``) while another process moves one of its refs (a ``git
update-ref`` or git's receive-pack on the same repository on disk).  git's ref transaction takes
every ref's own lock (``refs/heads/NAME.lock``), checks each ref's value under them, then writes
them all; hgwire checked the values under its own lock alone, then wrote each ref taking its lock in
turn, so a ``git update-ref`` of the second ref after the first was written made the push half done:
one ref moved, the other refused.  The interleaving is driven by running ``git update-ref`` as the
server logs its first ref's update, once that ref is written."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import backends.git
from tests.conftest import Client, RunningServer
from tests.git_ref_races import race_once, race_repository, update_ref


def test_an_atomic_push_holds_every_ref_until_all_are_written(
        make_server: Callable[..., RunningServer], client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    server, served, work, (first, second, third) = race_repository(make_server, client, 3)
    client.git("push", "-q", str(served), "main", f"{first}:refs/heads/a", f"{first}:refs/heads/b",
               f"{first}:refs/heads/gone", cwd=work)
    client.git("--git-dir", str(served), "pack-refs", "--all")
    client.git("--git-dir", str(served), "update-ref", "refs/heads/a", first, first)  # (a loose, b packed)
    (served / "refs" / "heads" / "a").write_text(first + "\n")

    def meanwhile(self: Any, update: Any) -> Any:  # a ref of the push written
        return [update_ref(client, served, name, third, "" if name.endswith("new") else first)
                for name in ("refs/heads/a", "refs/heads/b", "refs/heads/new")]

    theirs = race_once(monkeypatch, backends.git.DulwichGitRepository, "_log_update", meanwhile)
    pushed = client.git("push", "--atomic", "--porcelain", server.git_url("r"), f"{second}:refs/heads/a",
                        f"{second}:refs/heads/b", f"{second}:refs/heads/new", ":refs/heads/gone", cwd=work,
                        check=False)

    assert len(theirs) == 3
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    for name, done in zip(("refs/heads/a", "refs/heads/b", "refs/heads/new"), theirs, strict=True):
        assert done.returncode != 0 and f"cannot lock ref '{name}'" in done.stderr, (name, done.stderr)
    listed = client.git("--git-dir", str(served), "for-each-ref", "--format=%(refname) %(objectname)",
                        "refs/heads").stdout.split("\n")
    assert listed[:4] == [f"refs/heads/a {second}", f"refs/heads/b {second}", f"refs/heads/main {third}",
                          f"refs/heads/new {second}"], listed
    assert not list(served.glob("refs/**/*.lock")) and not (served / "packed-refs.lock").exists()
    client.git("--git-dir", str(served), "fsck", "--full")


def test_an_atomic_push_one_of_whose_refs_another_process_holds_changes_none(
        make_server: Callable[..., RunningServer], client: Client) -> None:
    server, served, work, (first, second) = race_repository(make_server, client)
    client.git("push", "-q", str(served), "main", f"{first}:refs/heads/a", f"{first}:refs/heads/b", cwd=work)
    client.git("--git-dir", str(served), "config", "core.filesRefLockTimeout", "0")
    (served / "refs" / "heads" / "b.lock").write_text("")  # another git process changing b

    pushed = client.git("push", "--atomic", "--porcelain", server.git_url("r"), f"{second}:refs/heads/a",
                        f"{second}:refs/heads/b", cwd=work, check=False)

    assert pushed.returncode != 0 and "refs/heads/b.lock" in pushed.stdout + pushed.stderr, pushed.stdout
    assert client.git("--git-dir", str(served), "rev-parse", "a", "b").stdout.split() == [first, first]
    (served / "refs" / "heads" / "b.lock").unlink()
    assert not list(served.glob("refs/**/*.lock"))
