"""The mistyped-name hint (``readable_near``) listed the repositories below the asked name's folder
in name order, nested ones too, until 1,000, then kept those of the folder itself: a folder's
repositories sorting after 1,000 nested ones (``team/a/…``) were never compared, and each miss
looked into 1,000 directories (is it a repository?), 50 ms of a worker for a folder of 10,000,
3.6 ms before the hint.  With the backend's optional ``folder_entries`` the folder's own entries
alone are compared, and only the few close ones are asked whether they are a repository."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from backends.filesystem import FilesystemBackend
from gateway import name_hints
from gateway.channel import SessionContext


def _near(root: Path, asked: str) -> str | None:
    ctx = SessionContext(backend=cast(Any, FilesystemBackend(str(root))), repo_name=asked, transport="hg-ssh",
                         peer="127.0.0.1")
    return name_hints.readable_near(ctx)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("near")
    for i in range(1200):
        (root / "team" / "a" / f"r{i:04d}" / ".hg").mkdir(parents=True)
    (root / "team" / "zoo" / ".hg").mkdir(parents=True)
    (root / "team" / "apps" / "x" / ".hg").mkdir(parents=True)  # (a folder, no repository)
    (root / "top" / ".hg").mkdir(parents=True)
    return root


def test_a_folders_own_repository_past_a_thousand_nested_ones_is_told(root: Path) -> None:
    assert _near(root, "team/zoq") == "team/zoo"
    assert _near(root, "tpo") == "top"


def test_a_folder_is_never_told_as_a_repository(root: Path) -> None:
    assert _near(root, "team/app") is None
    assert _near(root, "team/b") is None  # (team/a is a folder too)
