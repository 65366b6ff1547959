"""hgweb's diffs and line-range logs matched from the stored deltas (``linediff.hinted_blocks``, as
annotate): a small edit of a long file searches its changed lines, not the whole texts, and a walk
down a file's history rebuilds each revision once, not from its delta chain's start; the pages are
the same whatever the deltas say."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

from backends.hg import annotate, linediff, mpatch, open_repository, web
from backends.hg.linediff import Lines, Run
from tests import hg_command_server
from tests.conftest import VENV_BIN

ENV = {**os.environ, "HGRCPATH": "", "HGPLAIN": "1", "HGUSER": "t <t@example.com>"}
REVISIONS = 150


@pytest.fixture
def long_history(tmp_path: Path) -> Path:
    path = tmp_path / "r"
    path.mkdir()
    hg = os.path.join(VENV_BIN, "hg")
    hg_command_server.subprocess_run([hg, "init", str(path)], cwd=tmp_path, env=ENV, check=True)
    # each changeset changes a line of "mf" (300 lines): a chain of small deltas against the parent
    hg_command_server.subprocess_run([hg, "-R", str(path), "debugbuilddag", "-m", f"+{REVISIONS}"], cwd=path,
                                     env=ENV, check=True)
    return path


def _counting(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Lines handed to Mercurial's whole-region search, and deltas patched to rebuild texts."""
    counts = {"searched": 0, "patched": 0}
    real_matcher, real_patches = linediff._Matcher, mpatch.patches

    def matcher(old: list[bytes], new: list[bytes]) -> linediff._Matcher:
        counts["searched"] += len(old) + len(new)
        return real_matcher(old, new)

    def patches(text: bytes, deltas: list[bytes]) -> bytes:
        counts["patched"] += len(deltas)
        return real_patches(text, deltas)

    monkeypatch.setattr(linediff, "_Matcher", matcher)
    monkeypatch.setattr(mpatch, "patches", patches)
    return counts


def test_a_line_range_s_log_searches_only_what_changed(long_history: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``log/tip/FILE?linerange=`` of a file of 3,000 revisions took hgwire 46 s of CPU (refused at
    10 s; ``hg serve`` 28 s wall): each revision rebuilt from its chain's start and matched against
    its parent over both whole texts.  Now each text is patched once and only changed lines are
    searched."""
    counts = _counting(monkeypatch)
    repo = open_repository(str(long_history), "r")
    entries = json.loads(web.json_filelog(repo, "tip", "mf", lines=web.LineRange(9, 20)))["entries"]
    assert len(entries) == 6  # the five changesets that edited lines 10 to 20, and the first
    assert counts["searched"] < 20 * REVISIONS, counts  # each revision's changed lines, not its 300
    assert counts["patched"] < 4 * REVISIONS, counts  # not the chain's start again for each revision
    descending = json.loads(web.json_filelog(repo, "0", "mf", lines=web.LineRange(9, 20, descend=True)))["entries"]
    assert len(descending) == 6
    assert counts["searched"] < 40 * REVISIONS, counts


def test_diffs_search_only_what_changed(long_history: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A changeset's diff (``rev/``, ``diff/REV/FILE``, ``raw-rev``) of a long file with one line
    changed searched both whole texts; now the lines the stored delta keeps are proven, the rest
    searched."""
    counts = _counting(monkeypatch)
    repo = open_repository(str(long_history), "r")
    for rev in range(100, 110):
        for page in (web.json_rev(repo, str(rev)), web.json_diff(repo, str(rev), "mf")):
            lines = [line["l"] for line in json.loads(page)["diff"][0]["lines"]]
            assert sum(line.startswith("+") and not line.startswith("+++") for line in lines) == 1
    assert counts["searched"] < 20 * 30, counts


def test_stored_deltas_are_hints_never_trusted(long_history: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs a stored delta wrongly calls kept (another tool's delta) change no page."""
    def pages() -> list[bytes]:
        repo = open_repository(str(long_history), "r")
        return [web.json_filelog(repo, "tip", "mf", lines=web.LineRange(9, 20)),
                web.json_filelog(repo, "0", "mf", lines=web.LineRange(99, 130, descend=True)),
                *(web.json_rev(repo, str(rev)) for rev in range(0, REVISIONS, 7))]

    want = pages()
    real = annotate.kept_runs
    rng = random.Random(5)

    def wrong(hunks: list[mpatch.Hunk], before: Lines, before_meta: int, after: Lines, after_meta: int) -> list[Run]:
        runs = real(hunks, before, before_meta, after, after_meta)
        return [(max(0, i + rng.randint(-2, 2)), j, k + rng.randint(0, 3)) for i, j, k in runs]

    monkeypatch.setattr(annotate, "kept_runs", wrong)
    assert pages() == want


def test_a_walk_counts_a_long_file_s_lines_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In a file of 1,000 lines or more the matching must know no line is popular: each step of a
    line range's walk counted the copies of every line of its child; the parent's count is now
    bounded from the child's (its lines the step did not match, added), and only the first step
    counts."""
    path = tmp_path / "r"
    path.mkdir()
    hg = os.path.join(VENV_BIN, "hg")
    hg_command_server.subprocess_run([hg, "init", str(path)], cwd=tmp_path, env=ENV, check=True)
    hg_command_server.subprocess_run([hg, "-R", str(path), "debugbuilddag", "-m", "+520"], cwd=path, env=ENV,
                                     check=True)  # "mf": 1,040 lines
    counted = 0
    real = Lines.most_repeated

    def counting(lines: Lines) -> int:
        nonlocal counted
        counted += 1
        return real(lines)

    monkeypatch.setattr(Lines, "most_repeated", counting)
    repo = open_repository(str(path), "r")
    entries = json.loads(web.json_filelog(repo, "tip", "mf", lines=web.LineRange(9, 20)))["entries"]
    assert len(entries) == 6
    assert counted <= 2, counted  # was one a revision
