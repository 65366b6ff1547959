"""Push certificates (``git push --signed``): nonces, the certificate's parts, signature results.

gitprotocol-pack(5) "push-cert", git-receive-pack(1) and githooks(5) ``pre-receive``.
A repository whose config sets ``receive.certNonceSeed`` advertises
``push-cert=<nonce>``; the client then sends its commands inside a signed
certificate instead of bare::

    certificate version 0.1
    pusher <signing key> <time> <zone>
    pushee <url>
    nonce <nonce>
    push-option <option>      (one per push option)

    <old> <new> <ref>         (one per command)
    -----BEGIN PGP SIGNATURE----- (or SSH, or an X.509 signed message)

The server does not judge the signature: it tells the ``pre-receive`` and
``post-receive`` hooks what it found (``GIT_PUSH_CERT_*``), as git's
receive-pack does, and they decide.

A nonce is ``<seconds>-<HMAC of the seed, keyed with "<path>:<seconds>">`` in hex, made
with the repository's own hash (HMAC-SHA1 in a SHA-1 repository, HMAC-SHA256 in a SHA-256
one), as git's receive-pack makes it, so a stateless server (smart HTTP, where
the advertisement and the push are two requests) can check one it issued a
moment ago: it is then "SLOP" by so many seconds, or "OK" within
``receive.certNonceSlop``.  Pure functions: no I/O here; running the signature
program is ``gateway.git_signatures``'s.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from dataclasses import dataclass

MAX_CERT = 8 << 20
"""Bytes of one push certificate (its commands included) taken from a client."""

SIGNATURE_STARTS = {
    b"-----BEGIN PGP SIGNATURE-----": "openpgp",
    b"-----BEGIN PGP MESSAGE-----": "openpgp",
    b"-----BEGIN SIGNED MESSAGE-----": "x509",
    b"-----BEGIN SSH SIGNATURE-----": "ssh",
}
"""How each kind of signature git makes begins, and the format (``gpg.format``) that checks it."""

NONCE_OK = "OK"
NONCE_BAD = "BAD"
NONCE_MISSING = "MISSING"
NONCE_UNSOLICITED = "UNSOLICITED"
NONCE_SLOP = "SLOP"


def nonce(seed: bytes, path: bytes, stamp: int, *, algorithm: str) -> bytes:
    """The nonce a server with ``receive.certNonceSeed = seed`` issues for ``path`` at ``stamp``,
    in a repository whose objects are named by ``algorithm`` (``sha1`` or ``sha256``): git's
    receive-pack makes its HMAC with the repository's hash (``the_hash_algo``)."""
    mac = hmac.new(path + b":" + str(stamp).encode(), seed, algorithm).hexdigest()
    return f"{stamp}-{mac}".encode()


@dataclass(frozen=True, slots=True)
class NonceCheck:
    """What the hooks are told of the certificate's nonce."""

    status: str
    nonce: bytes | None
    """The nonce the server stands by (``GIT_PUSH_CERT_NONCE``): its own, or, within the slop
    it allows, the one the certificate carries; None when it issued none."""
    slop: int | None = None
    """For ``SLOP``: by how many seconds the certificate's nonce is older than the server's."""


def check_nonce(payload: bytes, issued: bytes | None, seed: bytes | None, path: bytes, stateless: bool,
                slop_limit: int = 0, *, algorithm: str) -> NonceCheck:
    """The certificate's nonce against the one the server issued, as git's receive-pack checks it.

    Over a stateful connection the nonce must be the one issued.  In stateless mode it may come
    from an earlier request: it is checked against what the server would have issued at its
    time, and is ``SLOP`` by the seconds between, or ``OK`` when that is within ``slop_limit``
    (``receive.certNonceSlop``; 0: never).  ``algorithm`` is the repository's hash, as for ``nonce``.
    """
    found = header(payload, b"nonce")
    if found is None:
        return NonceCheck(NONCE_MISSING, issued)
    if issued is None or seed is None:
        return NonceCheck(NONCE_UNSOLICITED, issued)
    if hmac.compare_digest(found, issued):
        return NonceCheck(NONCE_OK, issued)
    if not stateless:
        return NonceCheck(NONCE_BAD, issued)
    digits = _leading_digits(found)
    if not digits or digits.startswith(b"0") or found[len(digits):len(digits) + 1] != b"-":
        return NonceCheck(NONCE_BAD, issued)
    stamp = int(digits)
    if not hmac.compare_digest(nonce(seed, path, stamp, algorithm=algorithm), found):
        return NonceCheck(NONCE_BAD, issued)  # not one this server made
    slop = int(_leading_digits(issued) or b"0") - stamp
    if slop_limit and abs(slop) <= slop_limit:
        return NonceCheck(NONCE_OK, found)  # as if the server had issued it
    return NonceCheck(NONCE_SLOP, issued, slop)


def _leading_digits(text: bytes) -> bytes:
    end = 0
    while end < len(text) and 0x30 <= text[end] <= 0x39:
        end += 1
    return text[:end]


def header(payload: bytes, name: bytes) -> bytes | None:
    """The value of the first ``name`` header line, up to the empty line that ends the headers
    (git's ``find_commit_header``); None when there is none."""
    return next(_headers(payload, name), None)


def _headers(payload: bytes, name: bytes) -> Iterator[bytes]:
    """The values of the ``name`` header lines, in order, up to the empty line that ends the headers."""
    prefix = name + b" "
    pos = 0
    while pos < len(payload):
        end = payload.find(b"\n", pos)
        end = len(payload) if end < 0 else end
        if end == pos:
            return
        line = payload[pos:end]
        if line.startswith(prefix):
            yield line[len(prefix):]
        pos = end + 1


def push_options(payload: bytes) -> list[bytes]:
    """The ``push-option`` headers of a certificate, in order."""
    return list(_headers(payload, b"push-option"))


def signature_start(cert: bytes) -> int:
    """Where the signature of ``cert`` begins: the last line that starts one (git's
    ``parse_signed_buffer``), or the end when no line does."""
    match = len(cert)
    pos = 0
    while pos < len(cert):
        if signature_format(cert[pos:pos + 40]) is not None:
            match = pos
        end = cert.find(b"\n", pos)
        pos = len(cert) if end < 0 else end + 1
    return match


def signature_format(signature: bytes) -> str | None:
    """``openpgp``, ``x509`` or ``ssh`` for a signature that begins as that kind does; else None."""
    for start, fmt in SIGNATURE_STARTS.items():
        if signature.startswith(start):
            return fmt
    return None


def split(cert: bytes) -> tuple[bytes, bytes]:
    """The signed payload and the signature of a certificate."""
    at = signature_start(cert)
    return cert[:at], cert[at:]


def command_lines(cert: bytes) -> list[bytes]:
    """The ``<old> <new> <ref>`` lines of a certificate: after the empty line that ends its
    headers, up to its signature (git's ``queue_commands_from_cert``).

    Raises ValueError for a certificate without that empty line (git: "malformed push
    certificate").
    """
    body = cert.find(b"\n\n")
    if body < 0:
        raise ValueError("malformed push certificate: no empty line after its headers")
    end = signature_start(cert)
    text = cert[body + 2:end] if body + 2 < end else b""
    lines = text.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """What checking a signature found, as git's ``struct signature_check`` holds it.

    ``result`` is git's letter: ``G`` good, ``B`` bad, ``E`` cannot be checked (a missing
    key, or something odd), ``X`` good but expired, ``Y`` good by an expired key, ``R`` good by
    a revoked key, ``N`` no signature (or none that could be checked).  ``key`` is the key's
    id (OpenPGP, a 16-hex-digit id) or fingerprint (SSH); ``signer`` who signed it, as the
    checking program names them."""

    result: str = "N"
    key: str | None = None
    signer: str | None = None


NO_SIGNATURE = SignatureCheck()

_GPG_STATUSES = (
    ("GOODSIG ", "G", True),
    ("BADSIG ", "B", True),
    ("ERRSIG ", "E", False),
    ("EXPSIG ", "X", True),
    ("EXPKEYSIG ", "Y", True),
    ("REVKEYSIG ", "R", True),
)
"""gpg's status lines that say what became of a signature: the letter, and whether a user id follows the key."""
_TRUST_LEVELS = ("UNDEFINED", "NEVER", "MARGINAL", "FULLY", "ULTIMATE")


def parse_gpg_status(status: bytes) -> SignatureCheck:
    """Read ``gpg --status-fd`` output (``[GNUPG:] GOODSIG <keyid> <user id>`` …) as git does: the
    one verdict line says the letter, key and signer; two verdicts (two signatures) or a trust
    level git does not know make it ``E`` with nothing else told."""
    result, key, signer = "N", None, None
    seen = 0
    for raw in status.split(b"\n"):
        line = raw.decode("utf-8", "replace")
        if not line.startswith("[GNUPG:] "):
            continue
        line = line[len("[GNUPG:] "):]
        if line.startswith("TRUST_"):
            if line[len("TRUST_"):].split(" ", 1)[0] not in _TRUST_LEVELS:
                return SignatureCheck("E")
            continue
        for prefix, letter, has_uid in _GPG_STATUSES:
            if not line.startswith(prefix):
                continue
            seen += 1
            if seen > 1:
                return SignatureCheck("E")
            result = letter
            rest = line[len(prefix):]
            key, space, uid = rest.partition(" ")
            signer = uid if has_uid and space else signer
            break
    return SignatureCheck(result, key, signer)


def parse_ssh_output(output: bytes) -> SignatureCheck:
    """Read what ``ssh-keygen -Y verify`` (or ``check-novalidate``) said, as git does: its first
    line ``Good "git" signature for <principal> with <type> key <fingerprint>`` is good with a
    signer, ``... signature with ...`` good by a key no allowed signer names, anything else bad."""
    line = output.split(b"\n", 1)[0].decode("utf-8", "replace")
    known = 'Good "git" signature for '
    unknown = 'Good "git" signature with '
    signer = None
    if line.startswith(known):
        rest = line[len(known):]
        at = rest.rfind(" with ")
        if at < 0:
            return SignatureCheck("B")
        signer, line = rest[:at], rest[at + 1:]
    elif line.startswith(unknown):
        line = line[len(unknown):]
    else:
        return SignatureCheck("B")
    at = line.find("key ")
    if at < 0:
        return SignatureCheck("B", None, signer)
    return SignatureCheck("G", line[at + 4:], signer)
