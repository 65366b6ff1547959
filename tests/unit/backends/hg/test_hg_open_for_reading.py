"""``open_for_reading`` gives an open repository again only while nothing an open reads changed."""

from __future__ import annotations

import os
from pathlib import Path

from backends.hg import create_repository, open_for_reading


def test_the_same_repository_until_its_files_change(tmp_path: Path) -> None:
    path = str(tmp_path / "r")
    create_repository(path, "r")
    first = open_for_reading(path, "r")
    assert open_for_reading(path, "r") is first
    assert open_for_reading(path, "other name") is not first  # (names are part of what it answers)
    journal = tmp_path / "r" / ".hg" / "store" / "journal"
    journal.write_bytes(b"")  # a write under way or interrupted: an open of its own, as before
    assert open_for_reading(path, "r") is not first
    assert not journal.exists()  # (that open rolled it back)
    second = open_for_reading(path, "r")
    requires = tmp_path / "r" / ".hg" / "requires"
    os.utime(requires, ns=(1, 1))  # rewritten requirements
    assert open_for_reading(path, "r") is not second


def test_a_repository_serving_hidden_changesets_is_never_given_again(tmp_path: Path) -> None:
    path = str(tmp_path / "r")
    create_repository(path, "r")
    first = open_for_reading(path, "r")
    first.serve_hidden = True  # (the gateway never asks it for such a request; were it set anyway)
    assert open_for_reading(path, "r") is not first
