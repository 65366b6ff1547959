"""The index page of a large root: a page opens only the repositories it lists (``gateway.repo_page``)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from gateway import repo_page


class _Listing:
    def __init__(self, names: list[str]) -> None:
        self.names = names

    def list(self) -> list[str]:
        return list(reversed(self.names))  # a backend need not list in order: the index sorts


def _front(names: list[str]) -> Any:
    return SimpleNamespace(config=SimpleNamespace(backend=_Listing(names)), authorizer=None)


@pytest.fixture
def looked_at(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names whose entries were made (each one opens its repository); ``secret`` ones are not shown."""
    looked: list[str] = []

    def entry(front: Any, name: str, user: str | None) -> dict[str, Any] | None:
        looked.append(name)
        if "secret" in name:
            return None
        return {"name": name, "path": name, "kind": "git", "description": "", "date": None}

    monkeypatch.setattr(repo_page, "_index_entry", entry)
    return looked


def test_a_page_of_the_index_opens_only_the_repositories_it_lists(looked_at: list[str]) -> None:
    # 10,000 repositories: the page of 1,000 opened every one of them to count the rest (25 s)
    names = [f"team{n // 200:02d}/r{n:05d}.git" for n in range(5000)] + ["team99/secret.git", "zz/last.git"]
    front = _front(names)
    body, following = repo_page._index(front, None, "http://host")
    assert len(looked_at) == repo_page.MAX_INDEX + 1  # the page's, and one to know that more follow
    assert following == "/?after=team04/r00999.git"
    assert b'href="http://host/?after=team04/r00999.git"' in body
    looked_at.clear()
    body, following = repo_page._index(front, None, "http://host", as_json=True, after="team24/r04999.git")
    assert looked_at == ["team24/r04999.git", "team99/secret.git", "zz/last.git"] and following is None
    assert b"zz/last.git" in body and b"secret" not in body
    _, following = repo_page._index(front, None, "http://host", as_json=True, after="team04/r00999.git")
    assert following == "/?after=team09/r01999.git&style=json"


def test_a_next_page_never_names_a_repository_the_visitor_may_not_read(looked_at: list[str],
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(repo_page, "MAX_INDEX_LOOKED_AT", 10)
    names = ["a.git"] + [f"b/secret{n:02d}.git" for n in range(20)] + ["c.git"]
    body, following = repo_page._index(_front(names), None, "http://host")
    assert following == "/?after=a.git" and b"secret" not in body
    body, following = repo_page._index(_front(names), None, "http://host", after="a.git")
    assert following is None and b"There is no repository" in body


def _fs_root(tmp_path: Path, teams: int = 6, each: int = 3) -> Any:
    from backends.filesystem import FilesystemBackend

    root = tmp_path / "root"
    for team in range(teams):
        for n in range(each):
            subprocess.run(["git", "init", "-q", "--bare", str(root / f"team{team}" / f"r{n}.git")], check=True)
    return FilesystemBackend(str(root))


@pytest.fixture
def listed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """The directories listed (the ``fs`` backend's ``os.scandir``), under the root ``_fs_root`` makes."""
    seen: list[str] = []
    scandir = os.scandir

    def listing(path: str) -> Any:
        seen.append(os.path.relpath(path, tmp_path / "root"))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", listing)
    return seen


def test_a_folder_page_lists_that_folder_only(tmp_path: Path, looked_at: list[str], listed: list[str]) -> None:
    # /team25/ of 10,000 repositories listed every directory of the root to show its 200
    front: Any = SimpleNamespace(config=SimpleNamespace(backend=_fs_root(tmp_path)), authorizer=None)
    _, following = repo_page._index(front, None, "http://host", folder="team3/")
    assert looked_at == ["team3/r0.git", "team3/r1.git", "team3/r2.git"] and following is None
    assert listed == ["team3"]


def test_a_next_page_of_the_index_lists_from_where_the_last_one_ended(
        tmp_path: Path, looked_at: list[str], listed: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    # each page listed the whole root again (0.8 s for 10,000 repositories) to find where it starts
    monkeypatch.setattr(repo_page, "MAX_INDEX", 4)
    front: Any = SimpleNamespace(config=SimpleNamespace(backend=_fs_root(tmp_path)), authorizer=None)
    _, following = repo_page._index(front, None, "http://host")
    assert following == "/?after=team1/r0.git" and listed == [".", "team0", "team1"]
    looked_at.clear()
    listed.clear()
    _, following = repo_page._index(front, None, "http://host", after="team2/r1.git")
    assert looked_at == ["team2/r1.git", "team2/r2.git", "team3/r0.git", "team3/r1.git", "team3/r2.git", "team4/r0.git"]
    assert following == "/?after=team3/r2.git" and listed == [".", "team2", "team3", "team4"]


def test_a_page_after_a_name_the_visitor_may_not_read_is_the_first(looked_at: list[str]) -> None:
    """The names a page looked past, and so the time it took, told anyone which repositories they may
    not read exist, name by name (after=secret0500 then after=secret0501...): a page follows only a
    name the visitor may read, the last one its previous page listed."""
    names = ["pub.git"] + [f"secret{n:04d}.git" for n in range(3000)]
    front = _front(names)
    first, _ = repo_page._index(front, None, "http://host")
    looked_first = len(looked_at)
    for after in ("secret0500.git", "secret2999", "secret9", "secret-none"):
        looked_at.clear()
        body, following = repo_page._index(front, None, "http://host", after=after)
        assert body == first and following is None, after
        assert len(looked_at) == looked_first + 1, after  # (the name asked for, then the first page's)
