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
    rebase,
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


@settings(max_examples=300, deadline=None)
@given(st.data(), st.binary(min_size=0, max_size=1500))
def test_a_delta_rebased_on_a_sibling_makes_the_same_text(data: st.DataObject, base: bytes) -> None:
    """Two texts made from one base: the first as a delta against the second."""
    target_delta = data.draw(delta_over(base))
    sibling_delta = data.draw(delta_over(base))
    target, sibling = applied(base, target_delta), applied(base, sibling_delta)
    pieces = rebase(parse_delta(target_delta), parse_delta(sibling_delta), base)
    assert pieces.base_size == len(sibling) and pieces.target_size == len(target)
    assert applied(sibling, encode_delta(pieces)) == target


def test_a_rebased_delta_copies_what_the_sibling_holds() -> None:
    base = bytes(range(256))
    target = parse_delta(encode_delta(Pieces(256, [0, 100], [0, 150], [100, 100], [b"", b""])))
    sibling = parse_delta(encode_delta(Pieces(256, [0, 5, 105], [-1, 50, 200], [5, 100, 40], [b"xxxxx", b"", b""])))
    pieces = rebase(target, sibling, base)
    # the sibling: 5 bytes of its own, base[50:150] at 5, base[200:240] at 105.  The target's
    # base[0:50], base[150:200] and base[240:250] are inserted; base[50:100] and base[200:240] copied
    assert applied(applied(base, encode_delta(sibling)), encode_delta(pieces)) == base[:100] + base[150:250]
    assert [(src, size) for src, size in zip(pieces.source, pieces.length, strict=True) if src >= 0] == [(5, 50), (105, 40)]


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
