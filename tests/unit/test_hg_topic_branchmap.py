"""The topic-aware branch map and topic lookups of a repository serving hg-evolve's topics read each
draft's changeset once per state of the changelog and phases, not at every request (20,000 drafts
took a second a ``branchmap``).  The changesets' ``topic`` extras are set by a few lines of test
extension, so hg-evolve is not needed here."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from backends.hg import open_repository
from backends.hg.repository import HgRepo
from tests import hg_command_server
from tests.conftest import VENV_BIN

ENV = {"HGRCPATH": "", "HGPLAIN": "1", "HGUSER": "t <t@example.com>", "PATH": os.environ.get("PATH", "")}
TOPIC_EXTRA = """\
def reposetup(ui, repo):
    class topical(repo.__class__):
        def commitctx(self, ctx, *args, **kwargs):
            topic = self.ui.config(b"test", b"topic")
            if topic:
                ctx._extra[b"topic"] = topic
            return super().commitctx(ctx, *args, **kwargs)
    repo.__class__ = topical
"""


def _repository(tmp_path: Path) -> tuple[HgRepo, list[str]]:
    """``base`` (public), then three drafts on topic ``t``, then a bare draft on ``base``."""
    path = tmp_path / "r"
    ext = tmp_path / "topic_extra.py"
    ext.write_text(TOPIC_EXTRA)
    run = [os.path.join(VENV_BIN, "hg"), "-R", str(path), "--config", f"extensions.topic_extra={ext}"]
    hg_command_server.subprocess_run([os.path.join(VENV_BIN, "hg"), "init", str(path)], cwd=tmp_path, env=ENV, check=True)
    nodes: list[str] = []
    for name, topic in (("base", ""), ("t1", "t"), ("t2", "t"), ("t3", "t"), ("bare", "")):
        if name == "bare":
            hg_command_server.subprocess_run([*run, "update", "-q", nodes[0]], cwd=path, env=ENV, check=True)
        (path / name).write_text(name)
        hg_command_server.subprocess_run([*run, "--config", f"test.topic={topic}", "commit", "-q", "-A", "-m", name],
                                         cwd=path, env=ENV, check=True)
        done = hg_command_server.subprocess_run([*run, "log", "-r", ".", "-T", "{node}"], cwd=path, env=ENV,
                                                check=True)
        nodes.append(done.stdout.decode())
    hg_command_server.subprocess_run([*run, "phase", "-p", nodes[0]], cwd=path, env=ENV, check=True)
    (path / ".hg" / "hgrc").write_text("[extensions]\ntopic =\n[phases]\npublish = False\n")
    return open_repository(str(path), "r"), nodes


def test_drafts_are_read_once_per_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo, nodes = _repository(tmp_path)
    read: list[int] = []
    changeset = HgRepo.changeset

    def counted(self: HgRepo, cl: object, rev: int) -> object:
        read.append(rev)
        return changeset(self, cl, rev)  # type: ignore[arg-type]

    monkeypatch.setattr(HgRepo, "changeset", counted)
    expected = {b"default": [bytes.fromhex(nodes[4])], b"default:t": [bytes.fromhex(nodes[3])]}
    assert repo.topic_branchmap() == expected
    assert sorted(read) == [1, 2, 3, 4]  # the drafts, once
    assert repo.topic_branchmap() == expected
    assert sorted(read) == [1, 2, 3, 4]  # nothing read again while nothing changed
    del read[:]
    assert repo.lookup(b"t") == bytes.fromhex(nodes[3])
    assert 1 not in read and 2 not in read  # the topics known: only the tags' heads are read
