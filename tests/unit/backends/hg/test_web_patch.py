"""The plain diff of ``raw-rev`` (``backends.hg.web.unified_hunks``): applied to the old text, its
hunks give the new one, for any texts (repeated lines, lines without an end, empty sides); hunks
hold at most three lines of context around each change and never overlap; and the JSON strings
escape as hg's paranoid ``json`` filter does."""

from __future__ import annotations

import difflib
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends.hg.web import json_string, unified_hunks

_HEADER = re.compile(rb"@@ -(\d+),(\d+) \+(\d+),(\d+) @@\n")


def _apply(old: bytes, hunks: list[bytes]) -> bytes:
    """A strict reader of the hunks: every context and removed line must be the old text's."""
    lines = old.split(b"\n")
    lines = [line + b"\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
    out: list[bytes] = []
    at = 0
    body = b"".join(hunks)
    pos = 0
    previous_end = 0
    while pos < len(body):
        match = _HEADER.match(body, pos)
        assert match is not None, body[pos:pos + 40]
        a_start, a_len, _b_start, b_len = map(int, match.groups())
        start = a_start - 1 if a_len else a_start
        assert start >= previous_end  # hunks in order, not overlapping
        out.extend(lines[at:start])
        at = start
        pos = match.end()
        seen_a = seen_b = 0
        while pos < len(body) and not body.startswith(b"@@", pos):
            end = body.index(b"\n", pos) + 1
            kind, text = body[pos:pos + 1], body[pos + 1:end]
            pos = end
            if body.startswith(b"\\ No newline at end of file\n", pos):
                text = text[:-1]
                pos += len(b"\\ No newline at end of file\n")
            if kind in b" -":
                assert lines[at] == text
                at += 1
                seen_a += 1
            if kind in b" +":
                out.append(text)
                seen_b += 1
        assert (seen_a, seen_b) == (a_len, b_len)
        previous_end = at
    out.extend(lines[at:])
    return b"".join(out)


texts = st.lists(st.sampled_from([b"a\n", b"b\n", b"c\n", b"a", b"\n", b"x y\n"]), max_size=40).map(b"".join)


@settings(max_examples=500, deadline=None)
@given(texts, texts)
def test_the_hunks_turn_the_old_text_into_the_new(old: bytes, new: bytes) -> None:
    hunks = unified_hunks(old, new)
    assert _apply(old, hunks) == new
    if old == new:
        assert hunks == []
    for hunk in _split_hunks(b"".join(hunks)):
        kinds = [line[:1] for line in hunk.split(b"\n")[1:] if line and not line.startswith(b"\\")]
        changed = [i for i, kind in enumerate(kinds) if kind != b" "]
        assert changed and changed[0] <= 3 and len(kinds) - 1 - changed[-1] <= 3  # context: three lines at most


def _split_hunks(body: bytes) -> list[bytes]:
    starts = [m.start() for m in _HEADER.finditer(body)]
    return [body[a:b] for a, b in zip(starts, [*starts[1:], len(body)][:len(starts)], strict=True)]


def test_two_changes_seven_lines_apart_share_a_hunk_and_eight_apart_do_not() -> None:
    old = b"".join(b"%d\n" % i for i in range(1, 21))
    near = old.replace(b"\n2\n", b"\ntwo\n").replace(b"\n9\n", b"\nnine\n")
    far = old.replace(b"\n2\n", b"\ntwo\n").replace(b"\n10\n", b"\nten\n")
    assert sum(h.startswith(b"@@") for h in unified_hunks(old, near)) == 1
    assert sum(h.startswith(b"@@") for h in unified_hunks(old, far)) == 2


def test_json_strings_escape_as_hg_does() -> None:
    assert json_string(b'plain "q" \\ tab\t') == b'"plain \\"q\\" \\\\ tab\\t"'
    assert json_string(b"<a>&'") == b"\"\\u003ca\\u003e&'\""
    assert json_string("café \U0001d11e".encode()) == b'"caf\\u00e9 \\ud834\\udd1e"'
    assert json_string(b"bad \xdd byte \x7f \x00") == b'"bad \\udcdd byte \\u007f \\u0000"'
    plain = bytes(range(0x20, 0x7F)).translate(None, b'"\\<>')  # written as it is, with nothing looked at
    assert json_string(plain) == b'"%s"' % plain and json_string(b"") == b'""'
    assert json_string(plain + b"\n") == b'"%s\\n"' % plain and json_string(b"\n\n") == b'"\\n\\n"'


def test_a_change_among_many_equal_lines_is_cut_as_hg_cuts_it() -> None:
    """20,000 equal lines are popular: they never start a match, so (as ``hg diff`` writes it, checked
    by hand) the change reaches from the first new line to the end."""
    old = b"same\n" * 20000
    new = b"same\n" * 10000 + b"new\n" + b"same\n" * 10000
    hunks = unified_hunks(old, new)
    assert hunks[0] == b"@@ -9998,10003 +9998,10004 @@\n"
    assert _apply(old, hunks) == new


def test_a_search_past_its_budget_answers_difflib_s_diff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past MAX_STEPS the matching is difflib's (exact below MAX_EXACT_LINES squared, autojunk
    above): still a patch that gives the new text."""
    from backends.hg import linediff

    seen: list[bool] = []
    real = difflib.SequenceMatcher

    def spy(isjunk: object, a: object, b: object, autojunk: bool = True) -> difflib.SequenceMatcher[bytes]:
        seen.append(autojunk)
        return real(None, a, b, autojunk=autojunk)  # type: ignore[arg-type]

    monkeypatch.setattr(linediff.difflib, "SequenceMatcher", spy)
    small_old, small_new = b"x\n" + b"a\n" * 10 + b"y\n", b"x\n" + b"b\n" * 10 + b"y\n"
    big_old = b"".join(b"%d\n" % (i % 47) for i in range(6000))
    big_new = b"".join(b"%d\n" % (i % 45) for i in range(6000))
    assert _apply(big_old, unified_hunks(big_old, big_new)) == big_new
    assert seen == []  # within the budget: Mercurial's search
    monkeypatch.setattr(linediff, "MAX_STEPS", 5)
    assert _apply(small_old, unified_hunks(small_old, small_new)) == small_new
    assert _apply(big_old, unified_hunks(big_old, big_new)) == big_new
    assert seen == [False, True]


@pytest.mark.parametrize(("value", "expected"), [
    (b"", []),
    (b"one", [b"one"]),
    (b"one, two  three,four", [b"one", b"two", b"three", b"four"]),
    (b'one, "two words" three', [b"one", b"two words", b"three"]),
    (b'"a, b" , c', [b"a, b", b"c"]),
    (b'"say \\"hi\\""', [b'say "hi"']),
])
def test_a_list_setting_is_read_as_hg_reads_its_common_forms(value: bytes, expected: list[bytes]) -> None:
    from backends.hg.web import config_list

    assert config_list(value) == expected
