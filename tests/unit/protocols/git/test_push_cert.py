"""Signed pushes: a recorded ``git push --signed`` to git daemon replayed through the core, the
nonce git's receive-pack issues, the certificate's parts and what signature checkers say."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backends.interfaces import ObjectId, RefUpdate
from protocols import git_push_cert as pc
from protocols.errors import LimitExceeded, ProtocolError
from protocols.git_receive import PackData, PackEnd, ReceivePack, RefCommands, advertisement
from protocols.pktline import FLUSH, Signal, encode

from .transcript import load

OLD = ObjectId(b"dd186d1f36e7b7d7dce85957d8fd88261d439c85")
NEW = ObjectId(b"1efbd66be675827f81da34a3c285d247455581d0")
NONCE = b"1796324306-7eccef3f94c74e3703f86eb5d9de3a0c8f608114"
"""What git daemon offered (``receive.certNonceSeed = seed``, its directory ``.``)."""
SEED = b"seed"
NONCE_SHA256 = b"1796569550-7b4bf0b4c284ba5fad764b87b782ff49446fe7415ad03b7d07bafa699ffb6c07"
"""What git 2.39's receive-pack offered for a SHA-256 repository (``git init --object-format=sha256``,
the same seed and directory): an HMAC-SHA256."""


def _events(core: ReceivePack, packets: list[bytes]) -> list[object]:
    events: list[object] = []
    for data in packets:
        core.receive_data(data)
        while (event := core.next_event()) not in (Signal.NEED_DATA, Signal.PAUSED):
            events.append(event)
    return events


def test_the_nonce_is_the_one_git_issues() -> None:
    assert pc.nonce(SEED, b".", 1796324306, algorithm="sha1") == NONCE


def test_a_sha256_repositorys_nonce_is_the_one_git_issues_and_checks_as_git_checks_it() -> None:
    assert pc.nonce(SEED, b".", 1796569550, algorithm="sha256") == NONCE_SHA256
    older = pc.nonce(SEED, b".", 1796569540, algorithm="sha256")
    assert len(older) == len(b"1796569540-") + 64

    def check(found: bytes, stateless: bool, slop: int = 0) -> pc.NonceCheck:
        return pc.check_nonce(b"nonce " + found + b"\n\n", NONCE_SHA256, SEED, b".", stateless, slop,
                              algorithm="sha256")

    assert check(NONCE_SHA256, False) == pc.NonceCheck(pc.NONCE_OK, NONCE_SHA256)
    assert check(older, False) == pc.NonceCheck(pc.NONCE_BAD, NONCE_SHA256)
    assert check(older, True) == pc.NonceCheck(pc.NONCE_SLOP, NONCE_SHA256, 10)
    assert check(older, True, slop=10) == pc.NonceCheck(pc.NONCE_OK, older)
    sha1_made = pc.nonce(SEED, b".", 1796569540, algorithm="sha1")  # not what this repository issues
    assert check(sha1_made, True, slop=10) == pc.NonceCheck(pc.NONCE_BAD, NONCE_SHA256)


def test_advertisement_offers_push_cert_where_git_daemon_does() -> None:
    recorded = [d for t, d in load("push-signed") if t == "s"]
    ours = advertisement({b"refs/heads/main": OLD}, b"AGENT", cert_nonce=NONCE)
    assert ours == b"".join(recorded[: recorded.index(FLUSH) + 1])


def test_a_recorded_signed_push_gives_the_certificates_commands() -> None:
    core = ReceivePack()
    core.offer_push_cert(NONCE)
    events = _events(core, [d for t, d in load("push-signed")[1:] if t == "c"])
    commands = events[0]
    assert isinstance(commands, RefCommands)
    assert commands.updates == (RefUpdate(b"refs/heads/main", OLD, NEW),)
    assert commands.options == (b"ci.skip",)
    assert b"push-options" in commands.caps and b"side-band-64k" in commands.caps
    assert commands.cert.startswith(b"certificate version 0.1\npusher SHA256:")
    assert commands.cert.endswith(b"-----END SSH SIGNATURE-----\n")
    assert b"push-cert-end" not in commands.cert
    assert not commands.cert_options_differ
    payload, signature = pc.split(commands.cert)
    assert signature.startswith(b"-----BEGIN SSH SIGNATURE-----\n")
    assert pc.header(payload, b"nonce") == NONCE
    assert pc.push_options(payload) == [b"ci.skip"]
    assert pc.check_nonce(payload, NONCE, SEED, b".", stateless=False, algorithm="sha1") == pc.NonceCheck(pc.NONCE_OK, NONCE)
    assert isinstance(events[1], PackData) and isinstance(events[-1], PackEnd)


def _cert(commands: list[bytes], nonce: bytes = NONCE, options: tuple[bytes, ...] = (),
          signature: bytes = b"-----BEGIN SSH SIGNATURE-----\nabc\n-----END SSH SIGNATURE-----\n") -> bytes:
    head = b"certificate version 0.1\npusher key 1 +0000\npushee git://h/r\nnonce " + nonce + b"\n"
    head += b"".join(b"push-option " + o + b"\n" for o in options)
    return head + b"\n" + b"".join(c + b"\n" for c in commands) + signature


def _signed_request(cert: bytes, caps: bytes = b"report-status") -> list[bytes]:
    lines = [encode(b"push-cert\0" + caps)] + [encode(line) for line in cert.splitlines(keepends=True)]
    return [*lines, encode(b"push-cert-end\n"), FLUSH]


COMMAND = OLD + b" " + NEW + b" refs/heads/main"


def test_a_certificate_not_asked_for_is_refused() -> None:
    with pytest.raises(ProtocolError, match="does not take signed pushes"):
        _events(ReceivePack(), _signed_request(_cert([COMMAND])))


def test_commands_outside_the_certificate_are_refused() -> None:
    core = ReceivePack()
    core.offer_push_cert(NONCE)
    with pytest.raises(ProtocolError, match="both push certificate and unsigned commands"):
        _events(core, [encode(COMMAND + b"\0report-status\n"), *_signed_request(_cert([COMMAND]))])
    core = ReceivePack()
    core.offer_push_cert(NONCE)
    with pytest.raises(ProtocolError, match="both push certificate and unsigned commands"):
        _events(core, [*_signed_request(_cert([COMMAND]))[:-1], encode(COMMAND + b"\n"), FLUSH])


def test_a_flush_inside_the_certificate_ends_it_and_the_commands() -> None:
    core = ReceivePack()
    core.offer_push_cert(NONCE)
    request = _signed_request(_cert([COMMAND]))
    events = _events(core, [*request[:-2], FLUSH])  # no push-cert-end
    assert isinstance(events[0], RefCommands) and events[0].updates == (RefUpdate(b"refs/heads/main", OLD, NEW),)


@pytest.mark.parametrize(("cert", "error"), [
    (b"certificate version 0.1\nno empty line\n", "malformed push certificate"),
    (_cert([b"not-a-command"]), "expected '<old> <new> <ref>'"),
    (_cert([OLD + b" " + NEW + b" refs/heads/\x01x"]), "invalid ref name"),
])
def test_a_malformed_certificate_is_refused(cert: bytes, error: str) -> None:
    core = ReceivePack()
    core.offer_push_cert(NONCE)
    with pytest.raises(ProtocolError, match=error):
        _events(core, _signed_request(cert))


def test_certificates_are_bounded_and_a_truncated_one_refused() -> None:
    core = ReceivePack()
    core.offer_push_cert(NONCE)
    big = encode(b"x" * 65000 + b"\n")
    with pytest.raises(LimitExceeded, match="push certificate of more than"):
        _events(core, [encode(b"push-cert\0report-status")] + [big] * (pc.MAX_CERT // 65000 + 1))
    core = ReceivePack()
    core.offer_push_cert(NONCE)
    with pytest.raises(ProtocolError, match="closed the connection"):
        _events(core, [*_signed_request(_cert([COMMAND]))[:3], b""])


def test_push_options_must_be_those_the_certificate_signs() -> None:
    cert = _cert([COMMAND], options=(b"a", b"b"))
    same = RefCommands((RefUpdate(b"refs/heads/main", OLD, NEW),), frozenset(), (b"a", b"b"), (), cert)
    assert not same.cert_options_differ
    for options in ((b"a",), (b"b", b"a"), (b"a", b"b", b"c"), ()):
        assert RefCommands(same.updates, frozenset(), options, (), cert).cert_options_differ
    assert not RefCommands(same.updates, frozenset(), (b"x",)).cert_options_differ  # unsigned


def test_nonce_checks_as_git_receive_pack() -> None:
    def check(found: bytes | None, stateless: bool, slop: int = 0, issued: bytes = NONCE) -> pc.NonceCheck:
        payload = b"nonce " + found + b"\n\n" if found is not None else b"pusher x\n\n"
        return pc.check_nonce(payload, issued, SEED, b".", stateless, slop, algorithm="sha1")

    older = pc.nonce(SEED, b".", 1796324300, algorithm="sha1")
    assert check(None, False) == pc.NonceCheck(pc.NONCE_MISSING, NONCE)
    assert check(older, False) == pc.NonceCheck(pc.NONCE_BAD, NONCE)  # a connection of its own: must be ours
    assert check(older, True) == pc.NonceCheck(pc.NONCE_SLOP, NONCE, 6)
    assert check(older, True, slop=5) == pc.NonceCheck(pc.NONCE_SLOP, NONCE, 6)
    assert check(older, True, slop=6) == pc.NonceCheck(pc.NONCE_OK, older)  # as if issued now
    newer = pc.nonce(SEED, b".", 1796324310, algorithm="sha1")
    assert check(newer, True) == pc.NonceCheck(pc.NONCE_SLOP, NONCE, -4)
    assert check(pc.nonce(b"other seed", b".", 1796324300, algorithm="sha1"), True) == pc.NonceCheck(pc.NONCE_BAD, NONCE)
    assert check(pc.nonce(SEED, b"other/repo", 1796324300, algorithm="sha1"), True) == pc.NonceCheck(pc.NONCE_BAD, NONCE)
    for forged in (b"0" + older, b"x" + older, older.replace(b"-", b"+"), older[:-1], b""):
        assert check(forged, True).status == pc.NONCE_BAD, forged
    assert pc.check_nonce(b"nonce " + NONCE + b"\n\n", None, None, b".", False, algorithm="sha1").status == pc.NONCE_UNSOLICITED


def test_headers_end_at_the_empty_line() -> None:
    payload = b"certificate version 0.1\nnonce 1-a\npush-option x\n\nnonce 2-b\npush-option y\n"
    assert pc.header(payload, b"nonce") == b"1-a"
    assert pc.push_options(payload) == [b"x"]
    assert pc.header(payload, b"pushee") is None
    assert pc.header(b"noncex 1\n\n", b"nonce") is None


def test_the_signature_starts_at_the_last_line_that_begins_one() -> None:
    cert = _cert([COMMAND], signature=b"-----BEGIN PGP SIGNATURE-----\nx\n-----BEGIN SSH SIGNATURE-----\ny\n")
    _, signature = pc.split(cert)
    assert signature == b"-----BEGIN SSH SIGNATURE-----\ny\n"
    assert pc.signature_format(signature) == "ssh"
    assert pc.split(b"no signature\n") == (b"no signature\n", b"")
    assert pc.signature_format(b"-----BEGIN SIGNED MESSAGE-----\n") == "x509"
    assert pc.signature_format(b"-----BEGIN PGP MESSAGE-----\n") == "openpgp"
    assert pc.signature_format(b"") is None


@given(st.lists(st.tuples(st.binary(min_size=20, max_size=20), st.binary(min_size=20, max_size=20),
                          st.from_regex(rb"\Arefs/heads/[a-z]{1,12}\Z")), max_size=6),
       st.lists(st.from_regex(rb"\A[a-z=.]{1,10}\Z"), max_size=4))
def test_certificates_give_back_their_commands_and_options(commands: list[tuple[bytes, bytes, bytes]],
                                                           options: list[bytes]) -> None:
    lines = [old.hex().encode() + b" " + new.hex().encode() + b" " + ref for old, new, ref in commands]
    cert = _cert(lines, options=tuple(options))
    assert pc.command_lines(cert) == lines
    payload, signature = pc.split(cert)
    assert payload + signature == cert and pc.signature_format(signature) == "ssh"
    assert pc.push_options(payload) == options
    if lines:
        core = ReceivePack()
        core.offer_push_cert(NONCE)
        events = _events(core, _signed_request(cert))
        assert isinstance(events[0], RefCommands)
        assert [u.ref for u in events[0].updates] == [ref for _, _, ref in commands]
        assert events[0].cert == cert


def test_gpg_status_lines_read_as_git_reads_them() -> None:
    good = (b"[GNUPG:] NEWSIG\n[GNUPG:] KEY_CONSIDERED ABC 0\n[GNUPG:] GOODSIG 0123456789ABCDEF Alice <a@x>\n"
            b"[GNUPG:] VALIDSIG FPR 2026-01-01 1 0 4 0 22 8 00 FPR\n[GNUPG:] TRUST_ULTIMATE 0 pgp\n")
    assert pc.parse_gpg_status(good) == pc.SignatureCheck("G", "0123456789ABCDEF", "Alice <a@x>")
    assert pc.parse_gpg_status(b"[GNUPG:] BADSIG 0123456789ABCDEF Alice <a@x>\n") == pc.SignatureCheck(
        "B", "0123456789ABCDEF", "Alice <a@x>")
    assert pc.parse_gpg_status(b"[GNUPG:] ERRSIG 0123456789ABCDEF 22 8 00 1 9 -\n[GNUPG:] NO_PUBKEY X\n") == \
        pc.SignatureCheck("E", "0123456789ABCDEF", None)
    assert pc.parse_gpg_status(b"[GNUPG:] EXPKEYSIG 01 Old <o@x>\n").result == "Y"
    assert pc.parse_gpg_status(b"[GNUPG:] GOODSIG 01 A\n[GNUPG:] GOODSIG 02 B\n") == pc.SignatureCheck("E")
    assert pc.parse_gpg_status(b"[GNUPG:] GOODSIG 01 A\n[GNUPG:] TRUST_BOGUS\n") == pc.SignatureCheck("E")
    assert pc.parse_gpg_status(b"gpg: some words\n") == pc.NO_SIGNATURE


def test_ssh_keygen_output_read_as_git_reads_it() -> None:
    assert pc.parse_ssh_output(b'Good "git" signature for alice@x with ED25519 key SHA256:abc\n') == \
        pc.SignatureCheck("G", "SHA256:abc", "alice@x")
    assert pc.parse_ssh_output(b'Good "git" signature for a with b with ED25519 key SHA256:abc\n') == \
        pc.SignatureCheck("G", "SHA256:abc", "a with b")
    assert pc.parse_ssh_output(b'Good "git" signature with ED25519 key SHA256:abc\n') == \
        pc.SignatureCheck("G", "SHA256:abc", None)
    assert pc.parse_ssh_output(b"Could not verify signature.\n").result == "B"
    assert pc.parse_ssh_output(b"").result == "B"
