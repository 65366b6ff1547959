"""One branch's heads taken as the visible heads (``HgRepo._branch_head_revs``): a history whose every
changeset is on ``default`` but with a closed head, a secret head and an obsolete one answers the
branch map, heads and branch tips the real ``hg`` computes for its ``served`` view."""

from __future__ import annotations

import os
from pathlib import Path

from backends.hg import open_repository
from tests import hg_command_server
from tests.conftest import VENV_BIN

ENV = {**os.environ, "HGRCPATH": "", "HGPLAIN": "1", "HGUSER": "t <t@example.com>"}
EVOLUTION = ("--config", "experimental.evolution=createmarkers")


def hg(path: Path, *args: str) -> str:
    done = hg_command_server.subprocess_run([os.path.join(VENV_BIN, "hg"), "-R", str(path), *EVOLUTION, *args],
                                            cwd=path, env=ENV, check=True, text=True)
    return str(done.stdout)


def commit(path: Path, name: str, *extra: str) -> str:
    (path / name).write_text(name + "\n")
    hg(path, "commit", "-q", "-A", "-m", name, *extra)
    return hg(path, "log", "-r", ".", "-T", "{node}").strip()


def served_heads(path: Path) -> list[bytes]:
    """The branch heads (closed ones too) of hg's ``served`` view: no secret, no hidden changeset."""
    out = hg(path, "log", "-r", "sort(heads(branch(default) and not secret()), rev)", "-T", "{node}\n")
    return [bytes.fromhex(line) for line in out.split()]


def test_one_branch_with_closed_secret_and_obsolete_heads(tmp_path: Path) -> None:
    path = tmp_path / "one"
    hg_command_server.subprocess_run([os.path.join(VENV_BIN, "hg"), "init", str(path)], cwd=tmp_path, env=ENV,
                                     check=True)
    commit(path, "a")
    base = commit(path, "b")
    open_head = commit(path, "c")
    hg(path, "update", "-q", base)
    commit(path, "d")
    closed = commit(path, "e", "--close-branch")
    hg(path, "update", "-q", open_head)
    commit(path, "secret", "--secret")
    hg(path, "update", "-q", open_head)
    gone = commit(path, "obsolete")
    hg(path, "update", "-q", open_head)
    hg(path, "debugobsolete", "-q", gone)
    wanted = served_heads(path)
    assert wanted == [bytes.fromhex(open_head), bytes.fromhex(closed)]

    repo = open_repository(str(path), "one")
    assert sorted(repo.branchmap()) == [b"default"]
    assert sorted(repo.branchmap()[b"default"]) == sorted(wanted)
    assert sorted(repo.heads()) == sorted(wanted)
    assert repo.branch_tips() == {b"default": (bytes.fromhex(open_head), False)}
