"""Annotate's line matching from hints (``linediff.hinted_blocks``): the same runs as Mercurial's
search over the whole texts (``linediff.blocks``) whatever the hints say, and an annotation that no
longer searches every revision's whole text."""

from __future__ import annotations

import difflib
import json
import os
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends.hg import annotate, linediff, open_repository, web
from backends.hg.linediff import Lines, Run, blocks, hinted_blocks, split_lines, trimmed_hints
from tests import hg_command_server
from tests.conftest import VENV_BIN

ENV = {**os.environ, "HGRCPATH": "", "HGPLAIN": "1", "HGUSER": "t <t@example.com>"}
WORDS = [b"{\n", b"}\n", b"\n", b"x\n", b"x", b"x\0\n", b"y = 1\n"]


def _edited(rng: random.Random, text: bytes, words: list[bytes]) -> bytes:
    lines = split_lines(text)
    for _ in range(rng.randint(0, 5)):
        at, roll = rng.randint(0, len(lines)), rng.random()
        if roll < 0.3:
            lines[at:at] = [rng.choice(words) for _ in range(rng.randint(1, 4))]
        elif roll < 0.55:
            del lines[at:at + rng.randint(1, 3)]
        elif roll < 0.8 and lines:  # a block moved
            first = rng.randrange(len(lines))
            block = lines[first:first + rng.randint(1, 6)]
            del lines[first:first + len(block)]
            to = rng.randint(0, len(lines))
            lines[to:to] = block
        elif lines:  # a block duplicated
            to = rng.randint(0, len(lines))
            first = rng.randrange(len(lines))
            lines[to:to] = lines[first:first + rng.randint(1, 8)]
    return b"".join(line if line.endswith(b"\n") else line + b"\n" for line in lines[:-1]) + b"".join(lines[-1:])


def _hints(rng: random.Random, old: Lines, new: Lines) -> list[Run]:
    kind = rng.random()
    if kind < 0.4:
        return trimmed_hints(old, new)
    if kind < 0.8:  # another diff's runs, as a delta made by another tool
        matcher = difflib.SequenceMatcher(None, old.lines, new.lines, autojunk=False)
        return [(m.a, m.b, m.size) for m in matcher.get_matching_blocks() if m.size]
    return [(rng.randint(0, len(old.lines)), rng.randint(0, len(new.lines)), rng.randint(1, 40))  # wrong ones
            for _ in range(rng.randint(0, 4))]


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32), st.sampled_from([3, 5, 7]), st.sampled_from([0, 3, 40, 300, 2600]),
       st.sampled_from([0.0, 0.5, 0.95]))
def test_hinted_blocks_are_hg_s_blocks(seed: int, kinds: int, size: int, unique: float) -> None:
    """A chain of revisions (each the next one's old text, so what ``Lines`` learns about its
    repeated lines carries over), from a few repeated lines, some unique ones, moved and copied
    blocks, lines without a newline; a text of 2,600 lines from a few has popular lines (more
    copies than 1,000,000 / lines)."""
    rng = random.Random(seed)
    words = WORDS[:kinds]

    def line() -> bytes:
        return b"u%d\n" % rng.randrange(10**9) if rng.random() < unique else rng.choice(words)

    text = b"".join(line() for _ in range(size))
    old = Lines.of(text)
    for _ in range(8):
        edited = _edited(rng, text, [line() for _ in range(6)])
        new = Lines.of(edited)
        assert hinted_blocks(old, new, _hints(rng, old, new)) == blocks(split_lines(text), split_lines(edited))
        text, old = edited, new


@pytest.mark.parametrize(("old", "new"), [
    (b"a\nb\na\nb\n", b"a\nb\n"), (b"a\na\na\n", b"a\na\n"), (b"x\ny\nx\n", b"y\nx\ny\n"),
    (b"a\nx\nb\nx\nc\n", b"x\n"), (b"a", b"a\n"), (b"a\n", b"a"), (b"", b"a\n"), (b"a\n", b""),
])
def test_transcripts_with_any_hint(old: bytes, new: bytes) -> None:
    """The tie-breaks of Mercurial's search, whatever run a hint offers."""
    want = blocks(split_lines(old), split_lines(new))
    a, b = Lines.of(old), Lines.of(new)
    for hint in [[], trimmed_hints(a, b), *([(i, j, 1)] for i in range(len(a.lines)) for j in range(len(b.lines)))]:
        assert hinted_blocks(a, b, hint) == want, hint


@pytest.fixture(scope="module")
def long_history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once for the module: the tests only read it (``debugbuilddag -m``, 150 changesets)."""
    tmp_path = tmp_path_factory.mktemp("annotate-history")
    path = tmp_path / "r"
    path.mkdir()
    hg = os.path.join(VENV_BIN, "hg")
    hg_command_server.subprocess_run([hg, "init", str(path)], cwd=tmp_path, env=ENV, check=True)
    # each changeset changes a line of "mf": a chain of small deltas against the parent
    hg_command_server.subprocess_run([hg, "-R", str(path), "debugbuilddag", "-m", "+150"], cwd=path, env=ENV,
                                     check=True)
    return path


def test_annotate_searches_only_what_changed(long_history: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``.hgtags`` edited 5,000 times took hgwire's annotate 11 s of CPU (``hg serve`` 2.8 s):
    every revision was matched against its parent by a search over both whole texts in Python.
    The unchanged lines the stored delta (or the texts' common start and end) shows are now proven
    to be what that search would pick; only the changed lines are searched."""
    searched = 0
    real = linediff._Matcher

    def counting(old: list[bytes], new: list[bytes]) -> linediff._Matcher:
        nonlocal searched
        searched += len(old) + len(new)
        return real(old, new)

    monkeypatch.setattr(linediff, "_Matcher", counting)
    repo = open_repository(str(long_history), "r")
    lines = json.loads(web.json_annotate(repo, "tip", "mf"))["annotate"]
    assert len(lines) > 100 and len({line["node"] for line in lines}) > 50
    assert searched < 20 * 150, searched  # each revision's changed lines, not its whole text


def test_stored_deltas_are_hints_never_trusted(long_history: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stored delta may come from another tool's diff (or hgwire's own, for a pushed revision):
    runs it wrongly calls kept, or kept elsewhere than hg's search would, change no line's answer."""
    repo = open_repository(str(long_history), "r")
    want = web.json_annotate(repo, "tip", "mf")
    real = annotate._kept
    rng = random.Random(5)

    def wrong(hunks: list[tuple[int, int, bytes]], before: annotate._Annotated, after: annotate._Annotated
              ) -> list[Run]:
        runs = real(hunks, before, after)
        return [(max(0, i + rng.randint(-2, 2)), j, k + rng.randint(0, 3)) for i, j, k in runs]

    monkeypatch.setattr(annotate, "_kept", wrong)
    assert web.json_annotate(open_repository(str(long_history), "r"), "tip", "mf") == want
