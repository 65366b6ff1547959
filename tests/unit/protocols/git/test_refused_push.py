"""A push over smart HTTP refused before it could start (``git_receive.RefusedPush``): its commands
read for their capabilities and refs, the refusal in the terms the client reads."""

from __future__ import annotations

import pytest

from protocols import sideband
from protocols.git_receive import RefusedPush
from protocols.pktline import FLUSH, PktLineDecoder, Special, encode

OLD = b"0" * 40
NEW = b"3bba56d2293932fb17fd7ad02c5458bdc402d243"
REASON = b"repository y.git not found"


def _packets(data: bytes) -> list[bytes | Special]:
    decoder = PktLineDecoder()
    decoder.receive_data(data)
    decoder.receive_data(b"")
    out: list[bytes | Special] = []
    while isinstance(packet := decoder.next_packet(), bytes | Special):
        out.append(packet)
    return out


def _request(caps: bytes, *refs: bytes) -> bytes:
    lines = [OLD + b" " + NEW + b" " + ref + (b"\0" + caps if n == 0 else b"") + b"\n" for n, ref in enumerate(refs)]
    return b"".join(encode(line) for line in lines) + FLUSH + b"PACK\0\0\0\2\0\0\0\0" + b"x" * 100_000


def test_with_report_status_each_ref_is_refused_with_the_reason_in_band_one() -> None:
    refusal = RefusedPush(REASON)
    request = _request(b"report-status side-band-64k object-format=sha1 agent=git/2.39.5",
                       b"refs/heads/new", b"refs/tags/v1")
    refusal.receive_data(request[:30])
    assert refusal.answer() is None  # the commands are not whole yet
    refusal.receive_data(request[30:])
    refusal.receive_data(b"\0" * (4 << 20))  # the pack after them is not kept
    answer = refusal.answer()
    assert answer is not None and answer.endswith(FLUSH)
    band, report = answer[4], _packets(b"".join(p[1:] for p in _packets(answer) if isinstance(p, bytes)))
    assert band == sideband.Band.DATA
    assert report == [b"unpack " + REASON + b"\n", b"ng refs/heads/new " + REASON + b"\n",
                      b"ng refs/tags/v1 " + REASON + b"\n", Special.FLUSH]


@pytest.mark.parametrize(("caps", "expected"), [
    (b"side-band-64k", encode(b"\x03" + REASON) + FLUSH),  # git prints "remote: REASON"
    (b"", encode(b"ERR " + REASON)),
    (b"report-status", encode(b"unpack " + REASON + b"\n") + encode(b"ng refs/heads/a " + REASON + b"\n") + FLUSH),
])
def test_without_side_band_or_report_the_refusal_is_what_the_client_reads(caps: bytes, expected: bytes) -> None:
    refusal = RefusedPush(REASON)
    refusal.receive_data(_request(caps, b"refs/heads/a"))
    assert refusal.answer() == expected


def test_a_request_that_ends_before_its_flush_is_answered_at_its_end() -> None:
    refusal = RefusedPush(REASON)
    refusal.receive_data(encode(OLD + b" " + NEW + b" refs/heads/a\0side-band-64k\n"))
    assert refusal.answer() is None
    refusal.receive_data(b"")
    assert refusal.answer() == encode(b"\x03" + REASON) + FLUSH


def test_a_signed_push_s_refs_are_read_from_its_certificate() -> None:
    cert = [b"push-cert\0report-status side-band-64k\n", b"certificate version 0.1\n", b"pusher A <a@b> 1 +0000\n",
            b"pushee http://h/y.git\n", b"nonce 1-abc\n", b"\n", OLD + b" " + NEW + b" refs/heads/signed\n",
            b"-----BEGIN PGP SIGNATURE-----\n", b"-----END PGP SIGNATURE-----\n", b"push-cert-end\n"]
    refusal = RefusedPush(REASON)
    refusal.receive_data(b"".join(encode(line) for line in cert) + FLUSH)
    answer = refusal.answer()
    assert answer is not None and b"ng refs/heads/signed " + REASON in answer
