"""OpenSSH certificates (``ssh-keygen -s``): the wire format, parsed and checked, no crypto here.

OpenSSH's ``PROTOCOL.certkeys``.  A certificate is a public key blob of type
``<key type>-cert-v01@openssh.com``::

    string  type                 ("ssh-ed25519-cert-v01@openssh.com", ...)
    string  nonce
    ...     the key's own fields ("ssh-ed25519": string pk; "ssh-rsa": mpint e, mpint n;
            "ecdsa-sha2-*": string curve, string Q)
    uint64  serial
    uint32  type                 (1: a user certificate, 2: a host one)
    string  key id
    string  valid principals     (strings, packed)
    uint64  valid after, valid before
    string  critical options     (name, data pairs)
    string  extensions           (name, data pairs)
    string  reserved
    string  signature key        (the CA's public key blob)
    string  signature            (by the CA, over everything before it)

``parse`` reads one (bounded, every length checked) into a ``Certificate``;
checking the CA's signature and the key's own signature is the gateway's
(``gateway.ssh``), with the keys library.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from protocols.errors import ProtocolError

CERT_SUFFIX = b"-cert-v01@openssh.com"
USER_CERT = 1
HOST_CERT = 2
MAX_PRINCIPALS = 256
MAX_CERT_BYTES = 16384

_KEY_FIELDS = {
    b"ssh-ed25519": 1,
    b"ssh-rsa": 2,
    b"ecdsa-sha2-nistp256": 2,
    b"ecdsa-sha2-nistp384": 2,
    b"ecdsa-sha2-nistp521": 2,
}
"""How many string-encoded fields (strings or mpints) the key of each certified type carries."""

FORCE_COMMAND = "force-command"
SOURCE_ADDRESS = "source-address"
KNOWN_CRITICAL = frozenset({FORCE_COMMAND, SOURCE_ADDRESS, "verify-required"})


class CertificateError(ProtocolError):
    """A certificate that is not one, or not a usable one; the message says why."""


@dataclass(frozen=True, slots=True)
class Certificate:
    key_type: bytes
    """The certified key's own type (``ssh-ed25519``)."""
    key_blob: bytes
    """The certified key as a plain public key blob: what signs the login."""
    serial: int
    cert_type: int
    key_id: str
    principals: tuple[str, ...]
    valid_after: int
    valid_before: int
    critical: tuple[tuple[str, bytes], ...]
    extensions: tuple[tuple[str, bytes], ...]
    ca_blob: bytes
    signature: bytes
    signed: bytes
    """The bytes the CA signed: the whole certificate before its signature."""

    def valid_at(self, now: float) -> bool:
        return self.valid_after <= now < self.valid_before

    def option(self, name: str) -> bytes | None:
        return next((value for key, value in self.critical if key == name), None)


def is_certificate(blob: bytes) -> bool:
    """Whether a public key blob is a certificate (its type names one)."""
    if len(blob) < 4:
        return False
    size = struct.unpack_from(">I", blob)[0]
    return blob[4:4 + size].endswith(CERT_SUFFIX)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def string(self) -> bytes:
        if self.at + 4 > len(self.data):
            raise CertificateError("a truncated certificate")
        size = struct.unpack_from(">I", self.data, self.at)[0]
        end = self.at + 4 + size
        if end > len(self.data):
            raise CertificateError("a truncated certificate")
        value = self.data[self.at + 4:end]
        self.at = end
        return value

    def uint(self, size: int) -> int:
        if self.at + size > len(self.data):
            raise CertificateError("a truncated certificate")
        value = int.from_bytes(self.data[self.at:self.at + size], "big")
        self.at += size
        return value


def _pairs(data: bytes, what: str) -> tuple[tuple[str, bytes], ...]:
    reader = _Reader(data)
    pairs = []
    while reader.at < len(data):
        name = reader.string().decode("utf-8", "replace")
        pairs.append((name, reader.string()))
        if len(pairs) > MAX_PRINCIPALS:
            raise CertificateError(f"a certificate with too many {what}")
    return tuple(pairs)


def _ns(value: bytes) -> bytes:
    return struct.pack(">I", len(value)) + value


def parse(blob: bytes) -> Certificate:
    """Read an OpenSSH certificate; raises ``CertificateError`` for anything else."""
    if len(blob) > MAX_CERT_BYTES:
        raise CertificateError("a certificate larger than any OpenSSH makes")
    reader = _Reader(blob)
    cert_type_name = reader.string()
    key_type = cert_type_name.removesuffix(CERT_SUFFIX)
    fields = _KEY_FIELDS.get(key_type) if cert_type_name.endswith(CERT_SUFFIX) else None
    if fields is None:
        raise CertificateError(f"certificate type {cert_type_name[:60].decode('ascii', 'replace')!r} is not "
                               "supported (ed25519, RSA and ECDSA certificates are)")
    reader.string()  # nonce
    key_blob = _ns(key_type) + b"".join(_ns(reader.string()) for _ in range(fields))
    serial = reader.uint(8)
    cert_type = reader.uint(4)
    key_id = reader.string().decode("utf-8", "replace")
    principals_reader = _Reader(packed := reader.string())
    principals = []
    while principals_reader.at < len(packed):
        principals.append(principals_reader.string().decode("utf-8", "replace"))
        if len(principals) > MAX_PRINCIPALS:
            raise CertificateError("a certificate with too many principals")
    valid_after = reader.uint(8)
    valid_before = reader.uint(8)
    critical = _pairs(reader.string(), "critical options")
    extensions = _pairs(reader.string(), "extensions")
    reader.string()  # reserved
    ca_blob = reader.string()
    signed = blob[:reader.at]
    signature = reader.string()
    if reader.at != len(blob):
        raise CertificateError("bytes after the certificate's signature")
    return Certificate(key_type, key_blob, serial, cert_type, key_id, tuple(principals), valid_after, valid_before,
                       critical, extensions, ca_blob, signature, signed)


def critical_refusal(cert: Certificate) -> str | None:
    """Why a critical option makes the certificate unusable here (None: none does): one hgwire does
    not know, ``force-command`` (hgwire runs no command line) or ``verify-required`` (no FIDO
    verification here), as OpenSSH's server refuses what it cannot honour."""
    for name, _ in cert.critical:
        if name not in KNOWN_CRITICAL:
            return f"the certificate has the critical option {name[:40]!r}, which hgwire does not know"
        if name != SOURCE_ADDRESS:
            return f"the certificate's {name} cannot be honoured by hgwire"
    return None


def source_addresses(cert: Certificate) -> tuple[str, ...] | None:
    """The ``source-address`` networks (``addr/len`` or addresses), or None when not restricted."""
    value = cert.option(SOURCE_ADDRESS)
    if value is None:
        return None
    reader = _Reader(value)
    text = reader.string().decode("ascii", "replace")
    return tuple(part.strip() for part in text.split(",") if part.strip())
