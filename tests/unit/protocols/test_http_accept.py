"""Which media types an ``Accept`` header names, with what weight (RFC 9110 §12.5.1)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.http_accept import MAX_RANGES, names_any, weights

HTML = ("text/html", "application/xhtml+xml")


@pytest.mark.parametrize(("header", "html"), [
    (b"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", True),  # a browser's
    (b"TEXT/HTML", True),
    (b"text/html;level=1;q=0.5", True),
    (b"text/plain, text/html;q=0.1", True),  # named with a weight: preferred to plain text, as before
    (b"application/xhtml+xml", True),
    (b"*/*", False),  # curl
    (b"", False),
    (None, False),
    (b"text/html;q=0, text/plain", False),  # named and refused
    (b"text/html; Q=0.000", False),
    (b"text/htmlx", False),  # another type that merely begins alike
    (b"text/*", False),
    (b"application/json, text/html-sandboxed", False),
    (b"text/html;q=2", False),  # a malformed weight: left out
    (b"text/html;q=abc", False),
])
def test_html_is_wanted_when_named_with_a_weight_above_zero(header: bytes | None, html: bool) -> None:
    assert names_any(header, HTML) is html


def test_a_range_keeps_its_first_weight_and_parameters_other_than_q_are_left_out() -> None:
    assert weights(b"text/html;level=1, text/html;q=0, */*;q=0.5") == {"text/html": 1.0, "*/*": 0.5}


def test_the_header_is_read_only_so_far() -> None:
    """Bounded: a header of thousands of ranges is read to ``MAX_RANGES`` of them."""
    assert not names_any(b"a/b," * 10_000 + b"text/html", HTML)
    assert len(weights(b",".join(b"a/b%d" % i for i in range(1000)))) == MAX_RANGES


@given(st.binary(max_size=300))
def test_any_header_is_read(header: bytes) -> None:
    assert all(0.0 <= weight <= 1.0 for weight in weights(header).values())
