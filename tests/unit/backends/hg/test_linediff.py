"""``backends.hg.linediff``: transcripts of Mercurial's choices among equally good alignments (each
checked against ``hg diff``; ``tests/integration/test_hg_line_diff.py`` compares 400 more with the
real client), and properties of any answer: runs in order, of equal lines, closed by the empty
run at both ends."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends.hg import linediff
from backends.hg.linediff import blocks, split_lines, text_blocks


@pytest.mark.parametrize(("old", "new", "expected"), [
    (b"", b"", [(0, 0, 0, 0)]),
    (b"", b"a\n", [(0, 0, 1, 1)]),
    (b"a", b"a\n", [(1, 1, 1, 1)]),  # a last line without its end differs from one with it
    (b"a\nb\na\nb\n", b"a\nb\n", [(0, 2, 0, 2), (4, 4, 2, 2)]),  # the first copy kept
    (b"a\na\na\n", b"a\na\n", [(0, 2, 0, 2), (3, 3, 2, 2)]),  # the change slid to the end
    (b"x\ny\nx\n", b"y\nx\ny\n", [(0, 2, 1, 3), (3, 3, 3, 3)]),
    (b"a\nx\nb\nx\nc\n", b"x\n", [(1, 2, 0, 1), (5, 5, 1, 1)]),  # the nearer the middle from the top
])
def test_transcripts(old: bytes, new: bytes, expected: list[tuple[int, int, int, int]]) -> None:
    assert text_blocks(old, new) == expected


def test_popular_lines_never_start_a_match() -> None:
    """20,000 copies of a line pass the popularity threshold (49 for 20,001 lines): only the run
    from the start is found, lengthened over them; the rest is one change (as hg diff has it)."""
    old = [b"same\n"] * 20000
    new = [b"same\n"] * 10000 + [b"new\n"] + [b"same\n"] * 10000
    assert blocks(old, new) == [(0, 10000, 0, 10000), (20000, 20000, 20001, 20001)]


def test_split_lines() -> None:
    assert split_lines(b"") == []
    assert split_lines(b"a\n\nb") == [b"a\n", b"\n", b"b"]
    assert split_lines(b"\n") == [b"\n"]


def test_a_search_past_its_budget_still_answers_equal_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(linediff, "MAX_STEPS", 3)
    old, new = split_lines(b"a\nb\nc\nd\n"), split_lines(b"a\nc\nd\ne\n")
    assert blocks(old, new) == [(0, 1, 0, 1), (2, 4, 1, 3), (4, 4, 4, 4)]


lines = st.lists(st.sampled_from([b"a\n", b"b\n", b"\n", b"}\n", b"x y\n"]), max_size=60)


@settings(max_examples=300, deadline=None)
@given(lines, lines)
def test_runs_are_ordered_equal_and_closed(old: list[bytes], new: list[bytes]) -> None:
    runs = blocks(old, new)
    assert runs[-1] == (len(old), len(old), len(new), len(new))
    a_end = b_end = 0
    for a1, a2, b1, b2 in runs:
        assert a_end <= a1 <= a2 and b_end <= b1 <= b2 and a2 - a1 == b2 - b1
        assert old[a1:a2] == new[b1:b2]
        a_end, b_end = a2, b2
    if old == new:
        assert [r for r in runs if r[0] < r[1]] == ([(0, len(old), 0, len(new))] if old else [])


@pytest.mark.parametrize(("text", "switches", "expected"), [
    (b"a \t b\r\n  c  \n", (True, False, False), b"ab\nc\n"),
    (b"a \t b\r\n  c  \n", (False, True, False), b"a b\n c\n"),
    (b"a \t b\r\n  c \f \n", (False, False, True), b"a \t b\n  c\n"),
    (b"x  \ny \t", (False, True, False), b"x\ny "),  # a last line's trailing run stays one space
    (b"same\n", (False, False, False), b"same\n"),
])
def test_whitespace_cleaning_transcripts(text: bytes, switches: tuple[bool, bool, bool], expected: bytes) -> None:
    """hg's cleaning under its whitespace switches (checked against hg's own on random texts)."""
    assert linediff.clean_whitespace(text, *switches) == expected
