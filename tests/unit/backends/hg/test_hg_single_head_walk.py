"""The one-head-per-branch checks of a push (``Transaction.branch_heads_now``) work from the branch
heads the repository's views know before the push: they read the pushed changesets, the heads of the
branches and the revisions whose name or visibility may have changed, not every changeset of the
history, and answer as the walk of every changeset does."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, cast

import pytest

from backends.hg import open_repository
from backends.hg.writer import SingleHeadRule, Transaction
from backends.interfaces import DeltaMode
from tests import hg_command_server
from tests.conftest import VENV_BIN

ENV = {**os.environ, "HGRCPATH": "", "HGPLAIN": "1", "HGUSER": "t <t@example.com>"}
RULES = [SingleHeadRule(extension=True, closed=True, public_only=False, topics=True),
         SingleHeadRule(extension=False, closed=False, public_only=False, topics=False),
         SingleHeadRule(extension=False, closed=True, public_only=True, topics=False)]


def _hg(path: Path, *args: str) -> str:
    done = hg_command_server.subprocess_run([os.path.join(VENV_BIN, "hg"), "-R", str(path), *args], cwd=path,
                                            env=ENV, check=True, text=True)
    return str(done.stdout)


class _Counted(list):  # type: ignore[type-arg]
    """The repository's branch of each changeset, counting the ones read."""

    reads = 0

    def __getitem__(self, rev: Any) -> Any:
        _Counted.reads += 1
        return super().__getitem__(rev)


@pytest.mark.parametrize("drafts", [False, True])
def test_a_push_touching_two_branches_reads_their_heads_not_the_history(
        drafts: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "target"
    target.mkdir()
    _hg(target, "init")
    _hg(target, "debugbuilddag", "-q", "+150:a @stable +60 @default <a +40")
    _hg(target, "phase", "-q", "-p", "-r", "all()" if not drafts else "::149")
    source = tmp_path / "source"
    shutil.copytree(target, source, symlinks=True)
    nodes = _hg(source, "log", "-T", "{node}\n", "-r", "209+249").split()
    tips = {}
    for name, at in (("s", nodes[0]), ("d", nodes[1]), ("d2", nodes[1])):
        _hg(source, "update", "-q", at)
        (source / name).write_text(f"{name}\n")
        _hg(source, "commit", "-q", "-A", "-m", name)
        tips[_hg(source, "log", "-r", ".", "-T", "{node}")] = name
    repo = open_repository(str(target), "t")
    origin = open_repository(str(source), "s")
    repo.branchmap()  # (as the push's discovery asks)
    tx = cast(Transaction, repo.transaction())
    try:
        tx.add_changegroup(origin.emit_groups(origin.missing(repo.heads(), origin.heads()), DeltaMode.ANY))
        found = {}
        for rule in RULES:
            branches = _Counted(repo.changeset_branches())
            monkeypatch.setattr(repo, "changeset_branches", lambda b=branches: b)
            _Counted.reads = 0
            found[rule] = tx.branch_heads_now(rule)
            assert _Counted.reads < 20 or drafts, _Counted.reads  # every revision before: 250
            monkeypatch.undo()
        shown = [(name.decode(), sorted(tips.get(node.hex(), "old") for node, _closed in heads))
                 for name, heads in found[RULES[1]]]
        assert shown == [("stable", ["s"]), ("default", ["d", "d2"])]
        every = Transaction._branch_heads_before

        def whole(self: Transaction, phases: bytearray, hidden: set[int]) -> tuple[set[int], set[int]]:
            every(self, phases, hidden)
            return set(), set(range(len(self.cl)))

        monkeypatch.setattr(Transaction, "_branch_heads_before", whole)
        for rule in RULES:
            assert tx.branch_heads_now(rule) == found[rule]
    finally:
        tx.abort()
