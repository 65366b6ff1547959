"""A changelog too large for the shared index cache is not parsed again by every open while the
views kept for its store hold it (a 200,000-changeset repository: each HTTP request parsed its
index, built its node map and recomputed its views, 0.15 s of CPU; a no-op pull 0.4 s)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from backends.hg import open_repository, revlog
from backends.hg.revlog import SHARED_INDEXES
from tests import hg_command_server
from tests.conftest import VENV_BIN

ENV = {**os.environ, "HGRCPATH": "", "HGPLAIN": "1", "HGUSER": "t <t@example.com>"}


def _hg(path: Path, *args: str) -> None:
    hg_command_server.subprocess_run([os.path.join(VENV_BIN, "hg"), "-R", str(path), *args], cwd=path, env=ENV,
                                     check=True)


def test_a_changelog_the_index_cache_does_not_keep_is_parsed_once_while_unchanged(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "r"
    path.mkdir()
    _hg(path, "init")
    for n in range(3):
        (path / "f").write_text(f"{n}\n")
        _hg(path, "commit", "-q", "-A", "-m", f"c{n}")
    monkeypatch.setattr(SHARED_INDEXES, "budget", 0)  # (as for 200,000 changesets: over a quarter of it)
    parsed: list[int] = []
    parse = revlog.parse_index

    def counted(data: bytes, *args: object) -> revlog.Index:
        index = parse(data, *args)  # type: ignore[arg-type]
        if index.entries and len(data) >= 3 * revlog.ENTRY_SIZE:
            parsed.append(len(index.entries))
        return index

    monkeypatch.setattr(revlog, "parse_index", counted)
    first = open_repository(str(path), "r")
    first.views()
    assert parsed == [3]
    second = open_repository(str(path), "r")
    assert second.views() is first.views()
    assert [len(r.changelog()) for r in (first, second)] == [3, 3]
    assert parsed == [3]  # not parsed again, its node map and views not rebuilt

    (path / "f").write_text("more\n")
    _hg(path, "commit", "-q", "-m", "c3")  # changed on disk: read again
    third = open_repository(str(path), "r")
    assert len(third.changelog()) == 4
    assert len(third.views().parents) == 4
    assert third.heads() == [third.changelog().node(3)]
