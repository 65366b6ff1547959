"""A download's ``Range`` (how git-lfs resumes an object it has part of): the one span it asks, or
the whole object, or 416; and the store reading just that span."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backends.lfs import LfsStore
from protocols import git_lfs


@pytest.mark.parametrize(("header", "size", "span"), [
    (None, 10, None),
    ("bytes=4-9", 10, (4, 10)),  # git-lfs's own: from what it has to the last byte
    ("bytes=4-", 10, (4, 10)),
    ("bytes=4-5", 10, (4, 6)),
    ("bytes=4-99", 10, (4, 10)),  # an end past the object's: up to its end
    ("bytes=-3", 10, (7, 10)),  # the last three bytes
    ("bytes=-30", 10, None),  # a suffix longer than the object: all of it
    ("bytes=0-", 10, None),  # everything: a plain answer
    ("bytes=0-9", 10, None),
    ("bytes= 2-3 ", 10, (2, 4)),
    ("bytes=5-4", 10, None),  # not a valid range: ignored
    ("bytes=1-2,4-5", 10, None),  # several ranges: the whole object
    ("items=1-2", 10, None),
    ("bytes=-", 10, None),
    ("bytes=a-b", 10, None),
    ("bytes=" + "9" * 20 + "-", 10, None),  # too many digits to be read: ignored
])
def test_a_range_header_names_one_span_or_the_whole_object(header: str | None, size: int,
                                                           span: tuple[int, int] | None) -> None:
    assert git_lfs.byte_range(header, size) == span


@pytest.mark.parametrize(("header", "size"), [("bytes=10-", 10), ("bytes=12-20", 10), ("bytes=-0", 10),
                                              ("bytes=0-", 0)])
def test_a_range_past_the_end_is_not_satisfiable(header: str, size: int) -> None:
    with pytest.raises(git_lfs.RangeNotSatisfiable) as refused:
        git_lfs.byte_range(header, size)
    assert refused.value.http_status == 416
    assert refused.value.size == size


@given(st.text(max_size=60), st.integers(min_value=0, max_value=1 << 40))
def test_any_header_names_a_span_inside_the_object_or_none(header: str, size: int) -> None:
    try:
        span = git_lfs.byte_range(header, size)
    except git_lfs.RangeNotSatisfiable:
        return
    assert span is None or 0 <= span[0] < span[1] <= size and span != (0, size)


@given(st.integers(min_value=0, max_value=400_000), st.integers(min_value=1, max_value=400_000))
def test_the_store_reads_just_the_span(first: int, length: int) -> None:
    import tempfile
    data = bytes(range(256)) * 1200  # (300 KiB: three of the store's chunks)
    oid = hashlib.sha256(data).hexdigest()
    with tempfile.TemporaryDirectory() as root:
        store = LfsStore(root)
        store.put(oid, len(data), [data])
        found = store.open(oid, first, first + length)
        assert found is not None
        size, chunks = found
        assert size == len(data)
        assert b"".join(chunks) == data[first:first + length]

