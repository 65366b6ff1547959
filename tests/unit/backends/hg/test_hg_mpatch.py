"""Property tests for the bounded mpatch codec."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backends.hg import mpatch
from protocols.errors import StorageError


@st.composite
def text_and_delta(draw: st.DrawFn, text: bytes | None = None) -> tuple[bytes, bytes, bytes]:
    """A text, a random valid delta over it, and the expected result."""
    if text is None:
        text = draw(st.binary(max_size=200))
    cuts = sorted(draw(st.lists(st.integers(0, len(text)), max_size=8)))
    if len(cuts) % 2:
        cuts.append(len(text))
    hunks = []
    expected = []
    pos = 0
    for start, end in zip(cuts[::2], cuts[1::2]):
        data = draw(st.binary(max_size=20))
        hunks.append(struct.pack(">lll", start, end, len(data)) + data)
        expected.append(text[pos:start] + data)
        pos = end
    expected.append(text[pos:])
    return text, b"".join(hunks), b"".join(expected)


@given(text_and_delta())
def test_apply_matches_model(case: tuple[bytes, bytes, bytes]) -> None:
    text, delta, expected = case
    assert mpatch.apply(text, delta) == expected


@given(st.data())
def test_compose_equals_sequential_application(data: st.DataObject) -> None:
    text, d1, mid = data.draw(text_and_delta())
    _, d2, mid2 = data.draw(text_and_delta(mid))
    _, d3, final = data.draw(text_and_delta(mid2))
    assert mpatch.patches(text, [d1, d2, d3]) == final
    assert mpatch.apply(text, mpatch.compose([d1, d2, d3], len(text))) == final


@given(st.binary(max_size=300), st.binary(max_size=300))
def test_diff_round_trips(old: bytes, new: bytes) -> None:
    assert mpatch.apply(old, mpatch.diff(old, new)) == new


LINES = st.sampled_from([b"a\n", b"b\n", b"cc\n", b"\n", b"d\r\n", b"e\r", b"f"])


@given(st.lists(LINES, max_size=14), st.lists(LINES, max_size=14))
def test_line_diff_round_trips(old_lines: list[bytes], new_lines: list[bytes]) -> None:
    old, new = b"".join(old_lines), b"".join(new_lines)
    assert mpatch.apply(old, mpatch.line_diff(old, new)) == new


@given(st.binary(max_size=300), st.binary(max_size=300))
def test_line_diff_round_trips_any_bytes(old: bytes, new: bytes) -> None:
    assert mpatch.apply(old, mpatch.line_diff(old, new)) == new


@given(st.lists(st.sampled_from([b"a\n", b"b\n", b"cc\n"]), max_size=12),
       st.lists(st.sampled_from([b"a\n", b"b\n", b"cc\n"]), max_size=12))
def test_line_diff_is_on_line_boundaries(old_lines: list[bytes], new_lines: list[bytes]) -> None:
    old, new = b"".join(old_lines) + b"\n", b"".join(new_lines) + b"\n"
    assert mpatch.on_line_boundaries(old, mpatch.line_diff(old, new))


def test_line_diff_replaces_each_changed_line_of_a_manifest_alone() -> None:
    """Two changed lines far apart: two small hunks, not everything between them."""
    lines = [b"dir%02d/file\0%040x\n" % (i, i) for i in range(100)]
    changed = list(lines)
    changed[3] = b"dir03/file\0" + b"f" * 40 + b"\n"
    changed[96] = b"dir96/file\0" + b"e" * 40 + b"\n"
    old, new = b"".join(lines), b"".join(changed)
    hunks = mpatch.parse_hunks(mpatch.line_diff(old, new))
    assert [data for _, _, data in hunks] == [changed[3], changed[96]]
    assert mpatch.apply(old, mpatch.line_diff(old, new)) == new


@pytest.mark.parametrize(
    "delta",
    [
        struct.pack(">lll", 5, 3, 0),  # end before start
        struct.pack(">lll", 0, 100, 0),  # end past the text
        struct.pack(">lll", 0, 1, 10) + b"x",  # truncated data
        struct.pack(">lll", 2, 3, 0) + struct.pack(">lll", 1, 2, 0),  # unordered
        b"\0\0\0",  # truncated header
        struct.pack(">lll", -1, 2, 0),
        struct.pack(">lll", 0, 1, -5),
    ],
)
def test_rejects_corrupt_deltas(delta: bytes) -> None:
    with pytest.raises(StorageError):
        mpatch.apply(b"0123456789", delta)


def test_caps_result_size() -> None:
    delta = struct.pack(">lll", 0, 0, 5) + b"abcde"
    with pytest.raises(StorageError):
        mpatch.apply(b"xyz", delta, max_size=4)


@given(st.lists(st.sampled_from([b"a\n", b"b\n", b"cc\n", b"d"]), max_size=12), st.lists(st.sampled_from([b"a\n", b"b\n", b"cc\n"]), max_size=12))
def test_diff_hunks_cover_whole_lines(old_lines: list[bytes], new_lines: list[bytes]) -> None:
    old, new = b"".join(old_lines) + b"\n", b"".join(new_lines) + b"\n"
    for start, end, data in mpatch.parse_hunks(mpatch.diff(old, new)):
        assert start == 0 or old[start - 1 : start] == b"\n"
        assert end == len(old) or old[end - 1 : end] == b"\n"
        assert data == b"" or data.endswith(b"\n")


@given(st.lists(st.sampled_from([b"a\n", b"b\n", b"cc\n"]), max_size=12),
       st.lists(st.sampled_from([b"a\n", b"b\n", b"cc\n"]), max_size=12))
def test_diff_output_is_on_line_boundaries(old_lines: list[bytes], new_lines: list[bytes]) -> None:
    old, new = b"".join(old_lines) + b"\n", b"".join(new_lines) + b"\n"
    assert mpatch.on_line_boundaries(old, mpatch.diff(old, new))


@pytest.mark.parametrize("hunk, whole", [
    ((0, 2, b"x\n"), True),           # replaces the first line
    ((2, 4, b""), True),              # deletes the second line
    ((4, 4, b"new\n"), True),         # inserts at the end
    ((1, 2, b"x\n"), False),          # starts inside a line
    ((0, 1, b"x\n"), False),          # ends inside a line
    ((0, 2, b"no newline"), False),   # inserts a partial line
])
def test_on_line_boundaries(hunk: tuple[int, int, bytes], whole: bool) -> None:
    start, end, data = hunk
    delta = struct.pack(">lll", start, end, len(data)) + data
    assert mpatch.on_line_boundaries(b"a\nb\n", delta) is whole


@given(st.binary(max_size=200), st.lists(st.tuples(st.integers(0, 200), st.integers(0, 50), st.binary(max_size=30)),
                                         min_size=1, max_size=5))
def test_a_text_over_the_bound_is_refused_with_its_exact_size(
        base: bytes, edits: list[tuple[int, int, bytes]]) -> None:
    hunks, pos = [], 0
    for gap, span, data in edits:
        start = min(pos + gap, len(base))
        end = min(start + span, len(base))
        hunks.append(struct.pack(">lll", start, end, len(data)) + data)
        pos = end
    delta = b"".join(hunks)
    size = len(mpatch.apply(base, delta))
    with pytest.raises(mpatch.TextTooLarge) as refused:
        mpatch.apply(base, delta, size - 1)
    assert refused.value.size == size
