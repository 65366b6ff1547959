"""Annotating a file with a long history reads each revision's text once, from its parent's."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from backends.hg import mpatch, open_repository, web
from tests import hg_command_server
from tests.conftest import VENV_BIN

ENV = {**os.environ, "HGRCPATH": "", "HGPLAIN": "1", "HGUSER": "t <t@example.com>"}
REVISIONS = 120


def test_annotate_patches_each_revision_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``.hgtags`` edited 5,000 times (one line more each time) took hgwire's annotate page 16 s
    of CPU (``hg serve`` 2.8 s): each revision's text was rebuilt from the start of its delta
    chain, every earlier delta applied again, so the work grew with the square of the history."""
    path = tmp_path / "r"
    path.mkdir()
    hg_command_server.subprocess_run([os.path.join(VENV_BIN, "hg"), "init", str(path)], cwd=tmp_path, env=ENV,
                                     check=True)
    # each changeset adds a line to "mf": a chain of small deltas, one a revision
    hg_command_server.subprocess_run([os.path.join(VENV_BIN, "hg"), "-R", str(path), "debugbuilddag", "-m",
                                      f"+{REVISIONS}"], cwd=path, env=ENV, check=True)
    repo = open_repository(str(path), "r")
    applied = 0
    real = mpatch.patches

    def counting(base: bytes, deltas: list[bytes]) -> bytes:
        nonlocal applied
        applied += len(deltas)
        return real(base, deltas)

    monkeypatch.setattr(mpatch, "patches", counting)
    lines = json.loads(web.json_annotate(repo, "tip", "mf"))["annotate"]
    assert len(lines) > REVISIONS // 2
    assert {line["node"] for line in lines} > {lines[0]["node"]}
    # the tip's text from its chain, then each revision once from the one before it
    assert applied <= 3 * REVISIONS, applied
