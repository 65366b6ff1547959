"""The delta codec of ``backends.git_deltachain``: parsing and encoding round-trip, composition
of a chain gives what applying its deltas one after the other gives (checked against dulwich's
``apply_delta`` too), and malformed deltas are refused."""

from __future__ import annotations

import pytest
from dulwich.pack import apply_delta
from hypothesis import given, settings
from hypothesis import strategies as st

from backends.git_deltachain import (
    DeltaError,
    Pieces,
    apply_pieces,
    compose,
    compose_chain,
    encode_delta,
    parse_delta,
)


@st.composite
def delta_over(draw: st.DrawFn, base: bytes) -> bytes:
    """A valid delta against ``base``: random copies of its ranges and inserts."""
    pieces = Pieces(len(base), [], [], [], [])
    out = 0
    for _ in range(draw(st.integers(0, 12))):
        if base and draw(st.booleans()):
            start = draw(st.integers(0, len(base) - 1))
            size = draw(st.integers(1, len(base) - start))
            pieces.starts.append(out)
            pieces.source.append(start)
            pieces.length.append(size)
            pieces.literal.append(b"")
        else:
            lit = draw(st.binary(min_size=1, max_size=300))
            pieces.starts.append(out)
            pieces.source.append(-1)
            pieces.length.append(len(lit))
            pieces.literal.append(lit)
            size = len(lit)
        out += size
    return encode_delta(pieces)


def applied(base: bytes, delta: bytes) -> bytes:
    return b"".join(apply_delta(base, delta))


@settings(max_examples=200, deadline=None)
@given(st.data(), st.binary(max_size=2000))
def test_parse_then_encode_makes_a_delta_with_the_same_result(data: st.DataObject, base: bytes) -> None:
    delta = data.draw(delta_over(base))
    pieces = parse_delta(delta)
    assert apply_pieces(pieces, base) == applied(base, delta)
    again = encode_delta(pieces)
    assert applied(base, again) == applied(base, delta)
    assert len(again) <= len(delta)  # contiguous copies merged, nothing added


@settings(max_examples=200, deadline=None)
@given(st.data(), st.binary(max_size=1500), st.integers(1, 6))
def test_a_composed_chain_applies_as_the_chain_does(data: st.DataObject, base: bytes, links: int) -> None:
    texts = [base]
    deltas = []
    for _ in range(links):
        delta = data.draw(delta_over(texts[-1]))
        deltas.append(delta)
        texts.append(applied(texts[-1], delta))
    composed = compose_chain(list(reversed(deltas)))   # target's delta first
    assert composed.base_size == len(base) and composed.target_size == len(texts[-1])
    assert apply_pieces(composed, base) == texts[-1]
    assert applied(base, encode_delta(composed)) == texts[-1]


def test_long_copies_and_offsets_are_split_and_read_back() -> None:
    base = bytes(range(256)) * 0x300  # a copy of 0x10000 bytes is the one written with no size byte
    pieces = Pieces(len(base), [0, 0x10000], [0x10000, 0], [0x10000, 0x20000], [b"", b""])
    delta = encode_delta(pieces)
    assert applied(base, delta) == base[0x10000:0x20000] + base[:0x20000]
    assert apply_pieces(parse_delta(delta), base) == applied(base, delta)


def test_inserts_longer_than_127_bytes_are_split() -> None:
    lit = bytes(range(200)) * 3
    delta = encode_delta(Pieces(0, [0], [-1], [len(lit)], [lit]))
    assert applied(b"", delta) == lit


@pytest.mark.parametrize("delta", [
    b"",                                   # no sizes
    b"\x05",                               # one size
    b"\x05\x03\x91\x04\x03",               # copy past the base's end (offset 4, size 3 of 5)
    b"\x05\x03\x00",                       # the reserved instruction
    b"\x05\x04\x03ab",                     # insert cut short
    b"\x05\x02\x03abc",                    # more than the declared target
    b"\x05\x03\x91",                       # copy instruction cut short
])
def test_malformed_deltas_are_refused(delta: bytes) -> None:
    with pytest.raises(DeltaError):
        parse_delta(delta)


def test_a_chain_whose_sizes_do_not_meet_is_refused() -> None:
    inner = parse_delta(b"\x00\x03\x03abc")
    outer = parse_delta(b"\x04\x01\x01z")
    with pytest.raises(DeltaError):
        compose(outer, inner)
