"""A push's head count (``Transaction._heads``: every revision's heads, secret and hidden ones too,
as hg counts them) in a repository whose view leaves changesets out: worked out from the view's
heads and the revisions it leaves out, not by a walk of the whole history, with the same answer."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from backends.hg import graph, open_repository
from backends.interfaces import DeltaMode
from tests import hg_command_server
from tests.conftest import VENV_BIN

ENV = {**os.environ, "HGRCPATH": "", "HGPLAIN": "1", "HGUSER": "t <t@example.com>"}
EVOLUTION = "[experimental]\nevolution = all\n[phases]\npublish = False\n"


def _hg(path: Path, *args: str) -> str:
    done = hg_command_server.subprocess_run([os.path.join(VENV_BIN, "hg"), "-R", str(path), *args], cwd=path,
                                            env=ENV, check=True, text=True)
    return str(done.stdout)


def test_heads_of_a_push_beside_hidden_and_secret_heads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "target"
    target.mkdir()
    _hg(target, "init")
    (target / ".hg" / "hgrc").write_text(EVOLUTION)
    _hg(target, "debugbuilddag", "-q", "+40:a +5 <a +5 <a +3")  # heads 44, 49, 52 (drafts from 40)
    _hg(target, "phase", "-q", "-p", "-r", "::39")
    _hg(target, "phase", "-q", "-s", "-f", "-r", "45::49")  # a secret head
    _hg(target, "debugobsolete", "-q", _hg(target, "log", "-r", "44", "-T", "{node}"))  # a hidden one
    source = tmp_path / "source"
    shutil.copytree(target, source, symlinks=True)
    _hg(source, "update", "-q", "43")
    (source / "f").write_text("f\n")
    _hg(source, "commit", "-q", "-A", "-m", "new head")
    repo = open_repository(str(target), "t")
    origin = open_repository(str(source), "s")
    heads = repo.heads()  # (the push's discovery: the view's heads are known)
    assert len(heads) == 2  # 43 and 52: 44 hidden, 49 secret
    missing = origin.missing(heads, origin.heads())

    def walked(*args: object) -> list[int]:
        raise AssertionError("every revision walked for the heads")

    monkeypatch.setattr(graph, "heads", walked)
    tx = repo.transaction()
    try:
        result = tx.add_changegroup(origin.emit_groups(missing, DeltaMode.ANY))
        assert (result.heads_before, result.heads_after) == (3, 4)  # 44, 49, 52 and the new one
    finally:
        tx.abort()
    monkeypatch.undo()
    assert _hg(target, "log", "--hidden", "-r", "heads(all())", "-T", "{rev} ") == "44 49 52 "
