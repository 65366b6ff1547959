"""Repositories whose manifests list many files: the pages that need no manifest read none."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from backends.hg import archive, open_repository, web
from tests import hg_command_server
from tests.conftest import VENV_BIN

ENV = {**os.environ, "HGRCPATH": "", "HGPLAIN": "1", "HGUSER": "t <t@example.com>"}


def hg(path: Path, *args: str) -> None:
    hg_command_server.subprocess_run([os.path.join(VENV_BIN, "hg"), "-R", str(path), *args], cwd=path, env=ENV,
                                     check=True)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    path = tmp_path / "r"
    path.mkdir()
    hg(path, "init")
    for i in range(3):
        (path / f"f{i}").write_text(f"{i}\n")
        hg(path, "commit", "-q", "-A", "-m", f"c{i}")
    return path


@pytest.mark.parametrize("page", ["json-shortlog", "json-shortlog/tip", "json-changelog/1", "json-graph/tip",
                                  "raw-log/tip", "raw-log/1"])
def test_a_log_page_reads_no_manifest(path: Path, page: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A log lists changesets, not files: the 100,000 entries of a wide manifest took a log page
    0.25 s to parse, for a revision's name (``.hgtags`` is looked up in one, not parsed)."""
    def no_manifest(_text: bytes) -> None:
        raise AssertionError("a log page parsed a manifest")

    monkeypatch.setattr(archive, "manifest_entries", no_manifest)
    shown = web.page(open_repository(str(path), "r"), page)
    monkeypatch.undo()
    assert shown == web.page(open_repository(str(path), "r"), page)
    assert b"c2" in shown or b"c1" in shown


def test_a_small_index_keeps_no_node_map(path: Path) -> None:
    """A store of 100,000 one-revision filelogs keeps as many index snapshots in the shared cache:
    each is slotted and finds its node without a node map (1,160 bytes each before, 960 now)."""
    filelog = open_repository(str(path), "r").filelog(b"f1")
    node = filelog.node(0)
    assert filelog.rev(node) == 0
    assert not hasattr(filelog.index, "__dict__")
    assert filelog.index._nodemap == {}
    with pytest.raises(KeyError):
        filelog.rev(bytes(20).replace(b"\0", b"\1"))
    with pytest.raises(KeyError):
        filelog.rev(node[:10])
