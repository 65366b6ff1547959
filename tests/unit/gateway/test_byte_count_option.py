"""``--log-size`` read as logrotate's ``size``: bytes, or K, M, G of them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.options import byte_count


@pytest.mark.parametrize(("given_text", "expected"), [
    ("0", 0), ("1000000", 1_000_000), ("10M", 10 << 20), ("10m", 10 << 20), ("512k", 512 << 10),
    ("1G", 1 << 30), ("10MB", 10 << 20), ("10MiB", 10 << 20), ("3 K", 3 << 10), (" 7 ", 7), (2048, 2048),
])
def test_sizes_are_read_as_logrotate_reads_them(given_text: object, expected: int) -> None:
    assert byte_count(given_text, "--log-size") == expected


@pytest.mark.parametrize("bad", ["", "-1", "1.5M", "10T", "M", "ten", "10MM", "0x10", "١٠", "10 B", "1e6", "B"])
def test_anything_else_is_refused_naming_the_option(bad: str) -> None:
    with pytest.raises(ValueError, match=r"^--log-size must be a whole number of bytes, 0 or more, optionally "
                                         r"with K, M or G \(10M\), not "):
        byte_count(bad, "--log-size")


@given(st.integers(min_value=0, max_value=10**12), st.sampled_from(["", "K", "M", "G", "k", "KB", "GiB"]))
def test_a_number_and_a_suffix_give_that_many_units(number: int, suffix: str) -> None:
    unit = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[suffix[:1].upper()]
    assert byte_count(f"{number}{suffix}", "--log-size") == number * unit
