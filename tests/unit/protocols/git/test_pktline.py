"""The pkt-line codec: strict lengths, specials, bounds, and an encode/decode round trip."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols import pktline
from protocols.errors import LimitExceeded, ProtocolError
from protocols.pktline import PktLineDecoder, Signal, Special

from .transcript import side


def decode_all(data: bytes) -> list[bytes | Special]:
    decoder = PktLineDecoder()
    decoder.receive_data(data)
    out: list[bytes | Special] = []
    while (packet := decoder.next_packet()) is not Signal.NEED_DATA:
        assert not isinstance(packet, Signal)
        out.append(packet)
    return out


def test_encode_matches_git_bytes() -> None:
    assert pktline.encode(b"NAK\n") == b"0008NAK\n"
    assert pktline.encode(b"done\n") == b"0009done\n"
    assert pktline.encode(b"") == b"0004"


def test_specials() -> None:
    assert decode_all(b"000000010002") == [Special.FLUSH, Special.DELIM, Special.RESPONSE_END]


def test_decodes_a_recorded_advertisement() -> None:
    packets = side("ls-remote-v0", "s")
    decoded = decode_all(b"".join(packets))
    assert decoded[-1] is Special.FLUSH
    assert [p[4:] for p in packets[:-1]] == decoded[:-1]


@pytest.mark.parametrize("header", [b"-001", b"+0ff", b" 0ff", b"0_ff", b"00g0", b"0x10"])
def test_rejects_non_hex_lengths(header: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_all(header + b"x" * 300)


@pytest.mark.parametrize(("header", "shown"), [
    (b"zzzz", "'zzzz'"), (b"\x1b[2J", "'\\x1b[2J'"), (b"\xff000", "'\\xff000'"), (b"'0\n0", "''0\\x0a0'"),
])
def test_a_bad_length_is_shown_as_text(header: bytes, shown: str) -> None:
    """As text a person reads ('zzzz'), not as a bytes literal (b'zzzz'); what is not ASCII escaped."""
    with pytest.raises(ProtocolError) as raised:
        decode_all(header + b"x" * 10)
    assert str(raised.value) == f"bad pkt-line length {shown}: expected four hex digits"


@pytest.mark.parametrize("header", [b"0003"])
def test_rejects_lengths_shorter_than_the_header(header: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_all(header + b"abc")


def test_rejects_over_limit_lengths() -> None:
    with pytest.raises(LimitExceeded):
        decode_all(b"fff1" + b"x" * 10)
    assert decode_all(b"fff0" + b"x" * 65516) == [b"x" * 65516]


def test_encode_refuses_oversized_payloads() -> None:
    with pytest.raises(ValueError):
        pktline.encode(b"x" * 65517)


def test_incremental_feeding_and_eof() -> None:
    decoder = PktLineDecoder()
    decoder.receive_data(b"00")
    assert decoder.next_packet() is Signal.NEED_DATA
    decoder.receive_data(b"09don")
    assert decoder.next_packet() is Signal.NEED_DATA
    decoder.receive_data(b"e\n0000")
    assert decoder.next_packet() == b"done\n"
    assert decoder.next_packet() is Special.FLUSH
    decoder.receive_data(b"")
    assert decoder.next_packet() is Signal.NEED_DATA and decoder.eof


def test_eof_inside_a_packet_is_an_error() -> None:
    decoder = PktLineDecoder()
    decoder.receive_data(b"0010abc")
    decoder.receive_data(b"")
    with pytest.raises(ProtocolError):
        decoder.next_packet()


def test_buffer_is_bounded() -> None:
    decoder = PktLineDecoder(max_buffer=pktline.MAX_PKT)
    decoder.receive_data(b"x" * pktline.MAX_PKT)
    with pytest.raises(LimitExceeded):
        decoder.receive_data(b"y")


def test_take_raw_hands_over_the_rest() -> None:
    decoder = PktLineDecoder()
    decoder.receive_data(b"0000PACK\x00\x00")
    assert decoder.next_packet() is Special.FLUSH
    assert decoder.take_raw() == b"PACK\x00\x00"


payloads = st.lists(st.one_of(st.binary(max_size=300), st.sampled_from(list(Special))), max_size=20)


@given(payloads, st.integers(min_value=1, max_value=50))
def test_round_trip_in_any_split(items: list[bytes | Special], step: int) -> None:
    wire = b"".join(pktline.encode_special(i) if isinstance(i, Special) else pktline.encode(i) for i in items)
    decoder = PktLineDecoder()
    out: list[bytes | Special] = []
    for i in range(0, len(wire), step):
        decoder.receive_data(wire[i : i + step])
        while (packet := decoder.next_packet()) is not Signal.NEED_DATA:
            assert not isinstance(packet, Signal)
            out.append(packet)
    assert out == items


@given(st.binary(min_size=4, max_size=4))
def test_any_header_is_either_valid_or_a_protocol_error(header: bytes) -> None:
    try:
        length = pktline.parse_length(header)
    except ProtocolError:
        return
    assert length in (0, 1, 2) or 4 <= length <= pktline.MAX_PKT
