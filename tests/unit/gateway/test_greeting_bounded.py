"""The SSH greeting (``ssh -T git@host``, ``ssh git@host info``) of a large root: it reads and
checks the repositories it shows and the next one it may show, not every one of the root."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from backends.filesystem import FilesystemBackend
from backends.interfaces import Kind
from gateway import ssh
from gateway.auth import Access, Authorizer
from gateway.policy import PolicyFile

if TYPE_CHECKING:
    from tests.unit.gateway.conftest import Counted


def _root(tmp_path: Path, teams: int = 12, each: int = 4) -> FilesystemBackend:
    backend = FilesystemBackend(str(tmp_path / "root"))
    for team in range(teams):
        for n in range(each):
            backend.create(f"team{team:02d}/r{n}", Kind.GIT if n % 2 else Kind.HG)
    return backend


def test_a_greeting_stops_at_the_repositories_it_shows(tmp_path: Path, counted: Counted,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # 10,000 repositories: every one was listed and checked (3.7 s) to show 200 and count the rest
    backend = _root(tmp_path)
    policy = tmp_path / "rules.toml"
    policy.write_text("anonymous_read = false\n" + "".join(
        f'[[repo]]\npattern = "{pattern}"\nread = ["*"]\nwrite = ["alice"]\n'
        for pattern in ("team00/r[!1]*", "team0[1-9]/*", "team1*/*")) + '[[repo]]\npattern = "team00/r1*"\nread = ["bob"]\n')
    authorizer = Authorizer(policy=PolicyFile(str(policy)), locate=backend.locate, names_below=backend.names_below)
    monkeypatch.setattr(ssh, "MAX_GREETING_REPOSITORIES", 6)
    counted.listed.clear()
    text = ssh.greeting(backend, authorizer, "alice").decode()
    assert text.splitlines()[2:] == [
        "You may read (R) and push to (W):",
        " R W  team00/r0", " R W  team00/r2", " R W  team00/r3.git",
        " R W  team01/r0", " R W  team01/r1.git", " R W  team01/r2",
        " … and more ('info PATTERN' lists those whose names hold PATTERN)",
    ], "in name order, team00/r1.git kept from alice"
    root = str(tmp_path / "root")
    assert counted.listed == [root, os.path.join(root, "team00"), os.path.join(root, "team01")]
    assert set(counted.checked) <= {f"team0{t}/r{n}{'.git' if n % 2 else ''}" for t in (0, 1) for n in range(4)}
    assert len(counted.checked) <= 2 * 6 + 2, "the shown ones read and write, and two more read"
    counted.listed.clear()
    assert "team11/r3.git" in ssh.greeting(backend, authorizer, "alice", "team11/*").decode()
    assert counted.listed == [os.path.join(root, "team11")], "info PATTERN lists only its folder"


def test_a_greeting_shows_what_it_showed_before(tmp_path: Path) -> None:
    """No repository twice, none through a link, none in a hidden folder, in name order."""
    root = tmp_path / "root"
    backend = FilesystemBackend(str(root))
    backend.names_through_links = True  # (--backend fs without --config: a link serves, but is not listed)
    for name in ("b/app.git", "a-b/x.git", "a.git", "b/a/c.git"):
        subprocess.run(["git", "init", "-q", "--bare", str(root / name)], check=True)
    backend.create("b/work", Kind.HG)
    subprocess.run(["git", "init", "-q", "--bare", str(root / ".hidden" / "h.git")], check=True)
    os.symlink(root / "b", root / "alias")
    os.symlink(root / "b" / "app.git", root / "b" / "same.git")
    text = ssh.greeting(backend, Authorizer(), "alice").decode()
    assert text.splitlines()[3:] == [" R W  a-b/x.git", " R W  a.git", " R W  b/a/c.git", " R W  b/app.git",
                                     " R W  b/work"]
    assert backend.open("alias/same").kind is Kind.GIT  # served through its links all the same


class _ListOnly:
    """A backend with ``list()`` alone, in no order: the greeting sorts it, as it always did."""

    def __init__(self, names: list[str]) -> None:
        self.names = names

    def list(self) -> list[str]:
        return list(reversed(self.names))


def test_a_backend_without_list_folder_is_listed_whole_then_cut(counted: Counted,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ssh, "MAX_GREETING_REPOSITORIES", 2)
    monkeypatch.setattr(ssh, "refuses_every_push", lambda backend, name: False)
    names = [f"r{n:03d}.git" for n in range(100)]
    text = ssh.greeting(_ListOnly(names), Authorizer(), "alice").decode()
    assert text.splitlines()[3:] == [" R W  r000.git", " R W  r001.git",
                                     " … and more ('info PATTERN' lists those whose names hold PATTERN)"]
    assert counted.checked == ["r000.git", "r000.git", "r001.git", "r001.git", "r002.git"]


def test_a_read_of_a_repository_does_not_look_into_it_as_a_folder(tmp_path: Path) -> None:
    """Under rules with a read list, a read of a name looked below it (``names_below``) to tell a
    folder nobody may read from one that holds something: for a repository too, 0.6 ms of the
    event loop each read, 6 s of a greeting over 10,000 repositories."""
    backend = _root(tmp_path, teams=1, each=2)
    policy = tmp_path / "rules.toml"
    policy.write_text('[[repo]]\npattern = "private/*"\nread = ["bob"]\n')
    asked: list[str] = []

    def locate(name: str) -> tuple[str, Kind] | None:
        asked.append("locate " + name)
        return backend.locate(name)

    def names_below(name: str, limit: int) -> list[str] | None:
        asked.append("names_below " + name)
        return backend.names_below(name, limit)

    authorizer = Authorizer(policy=PolicyFile(str(policy)), locate=locate, names_below=names_below)
    assert authorizer.allows("alice", "team00/r1.git", "git-ssh", Access.READ)
    assert asked == ["locate team00/r1.git"]
    asked.clear()
    assert authorizer.allows("alice", "team00", "hg-ssh", Access.READ)  # a folder still is looked into
    assert asked[:2] == ["locate team00", "names_below team00"]
