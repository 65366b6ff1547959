"""What an ``ssl:`` listener needs beyond Twisted's endpoint: the certificate chain in ``certKey``
and an ALPN choice that lets a client without ``http/1.1`` in its list proceed.

pyOpenSSL is imported here only when an ``ssl:`` endpoint is in use (it is optional).
"""

from __future__ import annotations

import contextlib
import datetime
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.endpoints import _parse, serverFromString
from twisted.internet.error import VerifyError
from twisted.internet.interfaces import IOpenSSLContextFactory, IProtocolNegotiationFactory
from twisted.internet.protocol import connectionDone
from twisted.protocols.tls import TLSMemoryBIOFactory, TLSMemoryBIOProtocol
from twisted.python.failure import Failure
from zope.interface import implementer

from gateway.channel import peer_text
from gateway.logs import SafeLogger

log = SafeLogger()

MAX_CHAIN = 16
"""The most certificates read after the leaf in a ``certKey`` file (a real chain has one to three)."""

PEM_CERTIFICATE = re.compile(rb"-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]{1,65536}?-----END CERTIFICATE-----")
"""One PEM certificate block (its base64 bounded: a certificate is a few KiB)."""


TLS_HANDSHAKE = b"\x16"
"""The first byte of a TLS handshake record, which a TLS client's first bytes (its ClientHello)
are (RFC 8446 5.1, content type 22); no git:// request or HTTP request line begins with it."""


def tls_handshake(first: bytes) -> bool:
    """Whether the first bytes a plain listener got are a TLS client's: an ``https://`` URL (or
    ``git`` with ``http.sslVerify``'s TLS) pointed at a port that does not speak TLS."""
    return first[:1] == TLS_HANDSHAKE


class TLSFilesError(ValueError):
    """The files of an ``ssl:`` endpoint do not go together; ``advice`` says what to check."""

    def __init__(self, reason: str, advice: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.advice = advice


MAX_PEM_FILE = 1024 * 1024
"""The most bytes read of a ``privateKey``/``certKey`` file for the checks below (a key and a
chain are a few KiB)."""

EXPIRY_WARNING = datetime.timedelta(days=14)
"""How long before its end a certificate's coming expiry is warned of at start."""

ENCRYPTED_KEY = re.compile(rb"-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: *4, *ENCRYPTED")
"""A passphrase-protected PEM key: PKCS#8's own block, or the traditional block's header."""

DEFAULT_KEY_FILE = "server.pem"
"""Where Twisted's ``ssl:`` endpoint reads the key when ``privateKey=`` is not given."""


def check_files(description: str, now: datetime.datetime | None = None) -> str | None:
    """Check the key and certificate files of the ``ssl:`` endpoint ``description`` before Twisted
    reads them: TLSFilesError for what Twisted would report obscurely (or, for an encrypted key,
    prompt for on the terminal: "Enter PEM pass phrase:"); the warning to log about the server's
    certificate's dates, if any.

    Files that cannot be read or parsed are left to Twisted, which reports them."""
    kwargs, key_file, cert_file = _files(description)
    if "privateKey" not in kwargs and "certKey" in kwargs and not os.path.exists(DEFAULT_KEY_FILE):
        raise TLSFilesError(f"certKey= is given without privateKey=, so the key would be read from "
                            f"{DEFAULT_KEY_FILE} in {os.getcwd()}, which is not there",
                            "add privateKey=KEY naming the server's private key (a file holding the key "
                            "and the certificates may be named by privateKey= alone)")
    key_pem, cert_pem = _read(key_file), _read(cert_file)
    if key_pem is None or cert_pem is None:
        return None
    if ENCRYPTED_KEY.search(key_pem):
        raise TLSFilesError(f"the private key in {key_file} is encrypted with a passphrase",
                            f"hgwire needs it without one: openssl pkey -in {key_file} -out NEWKEY, "
                            "then name NEWKEY in privateKey=")
    certificates = _certificates(cert_pem)
    if not certificates:
        return None
    _check_order(key_pem, certificates, cert_file)
    return _date_warning(certificates[0], cert_file, now or datetime.datetime.now(datetime.UTC))


def _files(description: str) -> tuple[dict[str, Any], str, str]:
    """The ``ssl:`` description's arguments, and the files it reads its key and its certificate
    from, with Twisted's defaults (the key from ``server.pem``, the certificate from the key's file)."""
    _, kwargs = _parse(description)
    key_file = str(kwargs.get("privateKey") or DEFAULT_KEY_FILE)
    return kwargs, key_file, str(kwargs.get("certKey") or key_file)


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read(MAX_PEM_FILE)
    except OSError:
        return None


def _certificates(pem: bytes) -> list[Any]:
    """The certificates of a PEM file that can be read, in their order (at most ``MAX_CHAIN`` + 1)."""
    from cryptography import x509

    certificates = []
    for match in PEM_CERTIFICATE.finditer(pem):
        try:
            certificates.append(x509.load_pem_x509_certificate(match.group()))
        except ValueError:
            return []  # Twisted says what is wrong with the file
        if len(certificates) > MAX_CHAIN:
            break
    return certificates


def _check_order(key_pem: bytes, certificates: list[Any], cert_file: str) -> None:
    """TLSFilesError when the key is not the first certificate's but a later one's: the chain is
    in the wrong order (intermediate first), which Twisted reports as a key of another pair."""
    from cryptography.hazmat.primitives import serialization

    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        return  # Twisted says what is wrong with the key
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    public = key.public_key().public_bytes(*spki)
    owners = [n for n, cert in enumerate(certificates, 1) if cert.public_key().public_bytes(*spki) == public]
    if owners and owners[0] != 1:
        raise TLSFilesError(f"the private key belongs to certificate {owners[0]} of {cert_file}, not to the first",
                            "the first certificate in certKey= must be the server's own, followed by its chain "
                            "(the intermediates)")


def _date_warning(certificate: Any, cert_file: str, now: datetime.datetime) -> str | None:
    """What to tell about the server's certificate's dates: expired, not valid yet, or soon to expire."""
    not_before, not_after = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    if now >= not_after:
        return (f"the certificate in {cert_file} expired on {not_after:%Y-%m-%d %H:%M} UTC: clients refuse it; "
                "renew it, then send hgwire a SIGHUP")
    if now < not_before:
        return (f"the certificate in {cert_file} is not valid until {not_before:%Y-%m-%d %H:%M} UTC: clients "
                "refuse it until then; check the host's clock or the certificate")
    if not_after - now < EXPIRY_WARNING:
        return (f"the certificate in {cert_file} expires on {not_after:%Y-%m-%d %H:%M} UTC, in "
                f"{_time_left(not_after - now)}: renew it, then send hgwire a SIGHUP")
    return None


def _time_left(left: datetime.timedelta) -> str:
    """``10 days``, ``1 day``, ``5 hours``, ``less than an hour``: "in 1 days" and "in 0 days" were told."""
    if left.days:
        return f"{left.days} day{'s' if left.days > 1 else ''}"
    hours = left.seconds // 3600
    return f"{hours} hour{'s' if hours > 1 else ''}" if hours else "less than an hour"


CLIENT_CA = "clientCA"
"""The ``ssl:`` option hgwire reads itself (Twisted's server endpoint has none such): the file of the
PEM certificates of the CAs whose certificates clients must present."""


def _fields(description: str) -> list[str]:
    """The raw fields of an endpoint description, parted at the colons that are not escaped."""
    fields, start, escaped = [], 0, False
    for at, char in enumerate(description):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ":":
            fields.append(description[start:at])
            start = at + 1
    fields.append(description[start:])
    return fields


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


CLIENT_CRL = "clientCRL"
"""The ``ssl:`` option naming the certificate revocation lists (PEM or DER) of the ``clientCA=``
CAs: a client certificate one of them lists is refused at the handshake."""
CLIENT_CERTIFICATE = "clientCertificate"
"""``required`` (the default with ``clientCA=``) or ``optional``: a client without a certificate
is let through, one with a certificate must pass the same checks."""
OPTIONAL = "optional"
REQUIRED = "required"
OWN_OPTIONS = (CLIENT_CA, CLIENT_CRL, CLIENT_CERTIFICATE)
"""The ``ssl:`` options hgwire reads itself and takes out before Twisted reads the description."""


def own_options(description: str) -> tuple[str, dict[str, str]]:
    """The ``ssl:`` description Twisted reads (without hgwire's ``OWN_OPTIONS``), and the values of
    those it has, unescaped (the last one when one is given twice)."""
    kept, own = [], {}
    for part in _fields(description):
        name, sep, value = part.partition("=")
        if sep and name in OWN_OPTIONS:
            own[name] = _unescape(value)
        else:
            kept.append(part)
    return (description if not own else ":".join(kept)), own


def split_client_ca(description: str) -> tuple[str, str | None]:
    """The ``ssl:`` description Twisted reads (without hgwire's options), and the file ``clientCA=``
    names ("" when it names none), None without it."""
    twisted, own = own_options(description)
    return twisted, own.get(CLIENT_CA)


def twisted_description(description: str) -> str:
    """``description`` as Twisted's ``serverFromString`` takes it (``clientCA=`` is hgwire's)."""
    return own_options(description)[0]


def client_files(description: str) -> list[str]:
    """The files of hgwire's own ``ssl:`` options (``clientCA=``, ``clientCRL=``) that name one."""
    own = own_options(description)[1]
    return [own[key] for key in (CLIENT_CA, CLIENT_CRL) if own.get(key)]


def client_cas(description: str, now: datetime.datetime | None = None) -> tuple[list[Any], str | None]:
    """The CA certificates of the ``clientCA=`` file of the ``ssl:`` description ``description``
    (none without the option), and the warning to log about their dates, if any; TLSFilesError for
    a file that cannot serve, each mistake in one sentence with what to do."""
    path = split_client_ca(description)[1]
    if path is None:
        return [], None
    what = "a file of the PEM certificates of the CAs that sign your clients' certificates"
    if not path:
        raise TLSFilesError("clientCA= names no file", f"write clientCA=FILE, {what}")
    try:
        with open(path, "rb") as f:
            pem = f.read(MAX_PEM_FILE)
    except OSError as exc:
        advice = (f"name {what} (cat a directory's certificates into one file)" if os.path.isdir(path) else
                  f"check that clientCA= names {what}, and that hgwire's user may read it")
        raise TLSFilesError(f"the clientCA= file {path} cannot be read ({exc.strerror or exc})", advice) from None
    from cryptography import x509
    from cryptography.utils import CryptographyDeprecationWarning

    blocks = PEM_CERTIFICATE.findall(pem)
    if not blocks:
        raise TLSFilesError(f"the clientCA= file {path} holds no PEM certificate",
                            f"check that clientCA= names {what} (-----BEGIN CERTIFICATE-----)")
    certificates = []
    with warnings.catch_warnings():  # a public root's odd serial number: cryptography's warning, not the operator's
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        for number, block in enumerate(blocks, 1):
            try:
                certificate = x509.load_pem_x509_certificate(block)
            except ValueError:
                raise TLSFilesError(f"certificate {number} of the clientCA= file {path} cannot be read",
                                    f"check that clientCA= names {what}") from None
            if not _may_sign(certificate):
                raise TLSFilesError(f"certificate {number} of the clientCA= file {path} "
                                    f"({certificate.subject.rfc4514_string()}) is neither a CA's nor self-signed, so no "
                                    "client's certificate can be checked against it",
                                    "put the certificate of the CA that signs your clients' certificates in that "
                                    "file, not a client's or the server's own")
            certificates.append(certificate)
    now = now or datetime.datetime.now(datetime.UTC)
    expired = [c for c in certificates if now >= c.not_valid_after_utc]
    public = public_cas_warning(path, certificates)
    if public is not None and len(certificates) > CLIENT_CA_HANDFUL:  # (a bundle's expired roots are beside the point)
        return certificates, public
    said = [public]
    if expired:
        said.append(f"the CA certificate {expired[0].subject.rfc4514_string()} in the clientCA= file {path} expired "
                        f"on {expired[0].not_valid_after_utc:%Y-%m-%d %H:%M} UTC: the clients it signed are refused; "
                        "put the CA's renewed certificate in the file, then send hgwire a SIGHUP")
    return certificates, "; ".join(w for w in said if w) or None


PEM_CRL = re.compile(rb"-----BEGIN X509 CRL-----\r?\n[A-Za-z0-9+/=\r\n]{1,16777216}?-----END X509 CRL-----")
"""One PEM revocation list block (``openssl ca -gencrl``'s output)."""
MAX_CRL_FILE = 16 * 1024 * 1024
"""The most bytes read of a ``clientCRL=`` file (a small CA's list is a few KiB; a big one's MiBs)."""


@dataclass(frozen=True)
class ClientChecks:
    """What an ``ssl:`` listener checks of its clients' certificates: the ``clientCA=`` CAs, the
    ``clientCRL=`` revocation lists, and whether a client must present one."""

    cas: list[Any] = field(default_factory=list)
    crls: list[Any] = field(default_factory=list)
    required: bool = True


def client_checks(description: str, now: datetime.datetime | None = None) -> tuple[ClientChecks, str | None]:
    """``client_cas``, ``client_crls`` and ``clientCertificate=`` of the ``ssl:`` description:
    what ``prepare`` needs, and the warnings to log; TLSFilesError for an option that cannot serve."""
    own = own_options(description)[1]
    mode = own.get(CLIENT_CERTIFICATE, REQUIRED)
    if mode not in (REQUIRED, OPTIONAL):
        raise TLSFilesError(f"{CLIENT_CERTIFICATE}={mode} is neither {REQUIRED} nor {OPTIONAL}",
                            f"write {CLIENT_CERTIFICATE}={OPTIONAL} to let clients without a certificate in "
                            f"(those with one are checked), or leave it out to require one")
    if CLIENT_CERTIFICATE in own and CLIENT_CA not in own:
        raise TLSFilesError(f"{CLIENT_CERTIFICATE}= is given without {CLIENT_CA}=",
                            f"add {CLIENT_CA}=FILE, the certificates of the CAs that sign your clients' certificates")
    cas, ca_warning = client_cas(description, now)
    crls, crl_warning = client_crls(description, cas, now)
    warning = "; ".join(w for w in (ca_warning, crl_warning) if w) or None
    return ClientChecks(cas, crls, mode == REQUIRED), warning


def client_crls(description: str, cas: Sequence[Any], now: datetime.datetime | None = None
                ) -> tuple[list[Any], str | None]:
    """The revocation lists of the ``clientCRL=`` file of ``description`` (none without the option),
    each signed by one of ``cas`` (the ``clientCA=`` certificates), and the warning to log (a list
    out of date, which refuses every client of its CA; a CA without a list); TLSFilesError for a
    file that cannot serve, each mistake in one sentence with what to do."""
    path = own_options(description)[1].get(CLIENT_CRL)
    if path is None:
        return [], None
    what = "a file of the revocation lists (PEM or DER) of the CAs in clientCA="
    if not cas:
        raise TLSFilesError("clientCRL= is given without clientCA=",
                            "add clientCA=FILE, the certificates of the CAs whose revocation lists clientCRL= names")
    if not path:
        raise TLSFilesError("clientCRL= names no file", f"write clientCRL=FILE, {what}")
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_CRL_FILE + 1)
    except OSError as exc:
        raise TLSFilesError(f"the clientCRL= file {path} cannot be read ({exc.strerror or exc})",
                            f"check that clientCRL= names {what}, and that hgwire's user may read it") from None
    if len(data) > MAX_CRL_FILE:
        raise TLSFilesError(f"the clientCRL= file {path} is larger than {MAX_CRL_FILE} bytes",
                            f"check that clientCRL= names {what}")
    from cryptography import x509

    blocks = PEM_CRL.findall(data) or ([data] if data[:1] == b"\x30" else [])  # DER: an ASN.1 SEQUENCE
    if not blocks:
        raise TLSFilesError(f"the clientCRL= file {path} holds no revocation list",
                            f"check that clientCRL= names {what} (-----BEGIN X509 CRL-----)")
    crls, signers = [], []
    for number, block in enumerate(blocks, 1):
        try:
            crl = x509.load_pem_x509_crl(block) if block[:1] == b"-" else x509.load_der_x509_crl(block)
        except ValueError:
            raise TLSFilesError(f"revocation list {number} of the clientCRL= file {path} cannot be read",
                                f"check that clientCRL= names {what}") from None
        signer = next((ca for ca in cas if ca.subject == crl.issuer and _signed_by(crl, ca)), None)
        if signer is None:
            raise TLSFilesError(f"revocation list {number} of the clientCRL= file {path} (of "
                                f"{crl.issuer.rfc4514_string()}) is not signed by a CA of the clientCA= file",
                                "put in clientCRL= the revocation lists of the CAs in clientCA= (openssl crl -in "
                                "FILE -noout -issuer names a list's CA)")
        crls.append(crl)
        signers.append(signer)
    return crls, _crl_warning(path, crls, signers, cas, now or datetime.datetime.now(datetime.UTC))


def _signed_by(crl: Any, ca: Any) -> bool:
    try:
        return bool(crl.is_signature_valid(ca.public_key()))
    except (TypeError, ValueError):
        return False


def _crl_warning(path: str, crls: Sequence[Any], signers: Sequence[Any], cas: Sequence[Any],
                 now: datetime.datetime) -> str | None:
    """What to tell of the revocation lists at the start and on SIGHUP: one out of date (OpenSSL then
    refuses every client its CA signed), not valid yet, or a CA that signs clients without a list
    (its clients are refused: their revocation cannot be checked)."""
    said = []
    for crl, ca in zip(crls, signers, strict=True):
        issuer = ca.subject.rfc4514_string()
        if crl.next_update_utc is not None and now >= crl.next_update_utc:
            said.append(f"the revocation list of {issuer} in the clientCRL= file {path} is out of date since "
                        f"{crl.next_update_utc:%Y-%m-%d %H:%M} UTC: every client certificate that CA signed is "
                        "refused until a fresh list is in the file; put it there, then send hgwire a SIGHUP")
        elif now < crl.last_update_utc:
            said.append(f"the revocation list of {issuer} in the clientCRL= file {path} is not valid until "
                        f"{crl.last_update_utc:%Y-%m-%d %H:%M} UTC: every client certificate that CA signed is "
                        "refused until then; check the host's clock or the list")
    listed = {ca.subject for ca in signers}
    issuers = {ca.issuer for ca in cas if ca.issuer != ca.subject}  # a CA that signed another signs CAs
    missing = [ca for ca in cas if ca.subject not in listed and ca.subject not in issuers]
    if missing:
        names = ", ".join(ca.subject.rfc4514_string() for ca in missing)
        said.append(f"the clientCRL= file {path} has no revocation list of {names} (in the clientCA= file): the "
                    "client certificates it signs are refused, as their revocation cannot be checked; add its list "
                    "to the file, then send hgwire a SIGHUP")
    return "; ".join(said) or None


CLIENT_CA_HANDFUL = 8
"""The most certificates a ``clientCA=`` file holds without a warning: one organisation's CA, its
intermediates, a renewal's overlap; a bundle of many is the public CAs' (any client gets in)."""

SYSTEM_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt",
                  "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", "/etc/ssl/ca-bundle.pem", "/etc/ssl/cert.pem",
                  "/usr/local/share/certs/ca-root-nss.crt", "/usr/local/etc/ssl/cert.pem",
                  "/etc/ca-certificates/extracted/tls-ca-bundle.pem")
"""Where systems keep their bundle of public CAs (Debian, Fedora/RHEL, SUSE, Alpine/macOS, FreeBSD,
Arch); OpenSSL's own default file is looked at too."""


def system_bundles() -> list[str]:
    """The system's bundles of public CAs that exist here, OpenSSL's default first."""
    import ssl

    defaults = ssl.get_default_verify_paths()
    paths = [defaults.cafile, defaults.openssl_cafile, *SYSTEM_BUNDLES]
    return [path for path in dict.fromkeys(p for p in paths if p) if os.path.isfile(path)]


def _der_certificates(pem: bytes) -> set[bytes]:
    """The certificates of a PEM bundle, as DER bytes (unparsed: a bundle holds some 150)."""
    import base64
    import binascii

    found = set()
    for block in PEM_CERTIFICATE.findall(pem):
        body = block.split(b"-----")[2]
        with contextlib.suppress(binascii.Error):
            found.add(base64.b64decode(b"".join(body.split()), validate=True))
    return found


def public_cas_warning(path: str, certificates: Sequence[Any], bundles: Sequence[str] | None = None) -> str | None:
    """The warning for a ``clientCA=`` file that lets in clients of the public CAs: the system's
    bundle itself (``bundles``: ``system_bundles()``), more than ``CLIENT_CA_HANDFUL`` CAs, or a CA
    of the system's bundle (a public CA signs certificates for anyone who asks); else None."""
    from cryptography.hazmat.primitives.serialization import Encoding

    bundles = system_bundles() if bundles is None else bundles
    real = os.path.realpath(path)
    public: set[bytes] = set()
    for bundle in bundles:
        with contextlib.suppress(OSError), open(bundle, "rb") as f:
            public |= _der_certificates(f.read(MAX_PEM_FILE))
    ours = [c.public_bytes(Encoding.DER) for c in certificates]
    known = [c for c, der in zip(certificates, ours, strict=True) if der in public]
    instead = ("write clientCA= with a file of your own CA's certificates only (its root, and the intermediates "
               "that sign your clients' certificates if clients do not send them), then send hgwire a SIGHUP")
    meaning = ("a certificate any of them issued to anyone who asked passes the TLS handshake, so clientCA= keeps "
               "no one out")
    if any(real == os.path.realpath(bundle) for bundle in bundles):
        return (f"the clientCA= file {path} is the system's bundle of public CAs ({len(ours)} of them): {meaning}; "
                f"{instead}")
    if len(ours) > CLIENT_CA_HANDFUL:
        some = f", {len(known)} of them public CAs of the system's bundle" if known else ""
        return f"the clientCA= file {path} holds {len(ours)} CA certificates{some}: {meaning}; {instead}"
    if known:
        names = ", ".join(c.subject.rfc4514_string() for c in known)
        which = f"{names}, a public CA" if len(known) == 1 else f"{len(known)} public CAs ({names})"
        return (f"the clientCA= file {path} holds {which} of the system's bundle: a client certificate it issued to "
                f"anyone who asked passes the TLS handshake; {instead}")
    return None


def _may_sign(certificate: Any) -> bool:
    """Whether a client certificate can be checked against ``certificate``: a CA's (basicConstraints
    CA:TRUE) or a self-signed one (a client's own, trusted as it is)."""
    from cryptography import x509

    try:
        if certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            return True
    except x509.ExtensionNotFound:
        pass
    return bool(certificate.issuer == certificate.subject)


VERIFY_ERRORS = {2: "its issuer is not among the clientCA= certificates",
                 3: "the clientCRL= file has no revocation list of its CA, so its revocation cannot be checked",
                 11: "the revocation list of its CA in the clientCRL= file is not valid yet",
                 12: "the revocation list of its CA in the clientCRL= file is out of date (a fresh one is needed, "
                     "then a SIGHUP)",
                 23: "it is revoked (the clientCRL= file lists it)",
                 9: "it is not valid yet", 10: "it has expired",
                 18: "it is self-signed and not among the clientCA= certificates",
                 19: "its chain ends in a CA not among the clientCA= certificates",
                 20: "its issuer is not among the clientCA= certificates",
                 21: "its issuer is not among the clientCA= certificates",
                 24: "a certificate of its chain is not a CA's", 26: "it is not for a client (its extendedKeyUsage)"}
"""OpenSSL's verify errors (``X509_V_ERR_*``) a client certificate meets, in words."""


def _client_verified(connection: Any, certificate: Any, error: int, depth: int, ok: int) -> bool:
    """OpenSSL's verdict on a client's certificate (one call for each of its chain), logged when it
    is refused: the client reads only a TLS alert."""
    if not ok:
        transport = connection.get_app_data()
        peer = getattr(transport, "getPeer", lambda: None)()
        log.info("TLS handshake from {peer} refused: the client certificate {client_certificate}: {error}",
                 peer=f"{getattr(peer, 'host', '?')}:{getattr(peer, 'port', '?')}",
                 client_certificate=certificate.to_cryptography().subject.rfc4514_string(),
                 error=VERIFY_ERRORS.get(error, f"OpenSSL verify error {error}"), depth=depth)
    return bool(ok)


def require_client_certificates(context: Any, certificates: list[Any], crls: Sequence[Any] = (),
                                required: bool = True) -> None:
    """Make the TLS ``context`` ask each client for a certificate, name ``certificates`` (CAs) to it,
    and end the handshake of a client that sends one none of them signed, one that ``crls`` (their
    revocation lists) list, or (``required``) none at all."""
    from OpenSSL import SSL, crypto

    store = context.get_cert_store()
    for certificate in certificates:
        store.add_cert(crypto.X509.from_cryptography(certificate))
        context.add_client_ca(certificate)  # named in the certificate request: a client picks its certificate by it
    for crl in crls:
        store.add_crl(crl)
    if crls:  # the client's own certificate is looked up in its CA's list (not the CAs': they are the operator's)
        store.set_flags(crypto.X509StoreFlags.CRL_CHECK)
    demand = SSL.VERIFY_FAIL_IF_NO_PEER_CERT if required else 0
    context.set_verify(SSL.VERIFY_PEER | demand | SSL.VERIFY_CLIENT_ONCE, _client_verified)


def no_client_certificate(reason: Any) -> bool:
    """Whether a connection was lost (``reason``, a Failure) because its client sent no certificate
    to a listener that requires one: OpenSSL's "peer did not return a certificate" (TLS 1.2),
    "certificate required" (1.3)."""
    error = getattr(reason, "value", None)
    if not type(error).__module__.startswith("OpenSSL"):
        return False
    said = str(error)
    return "peer did not return a certificate" in said or "certificate required" in said


def client_certificate_subject(transport: Any) -> str | None:
    """The subject (RFC 4514: ``CN=alice,O=Example``) of the certificate the client of ``transport``
    presented over TLS, None without one (a plain connection, a listener without ``clientCA=``)."""
    getter = getattr(transport, "getPeerCertificate", None)
    if getter is None:
        return None
    try:
        certificate = getter()
    except Exception:  # noqa: BLE001 - a connection without TLS, or one gone
        return None
    if certificate is None:
        return None
    return str(certificate.to_cryptography().subject.rfc4514_string())


def key_mismatch(exc: BaseException) -> TLSFilesError | None:
    """The error to tell for ``exc`` when it is Twisted's refusal of a key that is not the
    certificate's (``VerifyError``, raised while the endpoint description is read); else None."""
    if not isinstance(exc, VerifyError):
        return None
    return TLSFilesError("the private key does not belong to the certificate",
                         "check that privateKey= and certKey= name the key and certificate of one pair")


def files_error(exc: BaseException, description: str) -> TLSFilesError | None:
    """The error to tell for ``exc`` when it is OpenSSL's refusal of the files of the ``ssl:``
    endpoint ``description`` (its codes, ``[('PEM routines', '', 'no start line')]``, say nothing to
    an operator): which file holds no certificate, or no private key; else None."""
    if not type(exc).__module__.startswith("OpenSSL"):
        return None
    from OpenSSL import crypto

    kwargs, key_file, cert_file = _files(description)
    try:
        crypto.load_certificate(crypto.FILETYPE_PEM, _read(cert_file) or b"")
    except crypto.Error:
        if "certKey" not in kwargs:
            return TLSFilesError(f"{key_file} holds no certificate, and without certKey= the certificate is read "
                                 "from the privateKey= file", "add certKey= naming the server's certificate (PEM)")
        return TLSFilesError(f"{cert_file} holds no PEM certificate",
                             "check that certKey= names the server's certificate (PEM)")
    try:
        crypto.load_privatekey(crypto.FILETYPE_PEM, _read(key_file) or b"", passphrase=lambda *_: b"")
    except crypto.Error:
        return TLSFilesError(f"{key_file} holds no PEM private key without a passphrase",
                             "check that privateKey= names the server's private key (PEM, without a passphrase)")
    return TLSFilesError("OpenSSL refused the TLS files", "check that privateKey= names the server's private key "
                         "and certKey= its certificate, both PEM")


HANDSHAKE_LINGER = 2.0
"""Seconds a connection whose handshake failed is kept open, reading and dropping what its client
still sends, after the alert and the end of what hgwire sends (``LingeringTLSProtocol``)."""


class LingeringTLSProtocol(TLSMemoryBIOProtocol):
    """TLS whose failed handshake ends as lighttpd's does: the alert, then the end of what hgwire
    sends, then what the client still sends read and dropped until it closes (or
    ``HANDSHAKE_LINGER`` passes).

    Twisted closed the socket at once.  A TLS 1.3 client sends its request right after its
    certificate, before it reads the server's verdict: arriving at a closed socket, the request made
    the kernel reset the connection, and git said "getpeername() failed with errno 107: Transport
    endpoint is not connected" or "Send failure: Broken pipe" (half of the tries) instead of the
    alert's "GnuTLS recv error (-12): A TLS fatal alert has been received"."""

    _lingering: Any = None

    def _tlsShutdownFinished(self, reason: Any) -> None:
        if reason is None or self._handshakeDone or self._lingering is not None \
                or not hasattr(self.transport, "loseWriteConnection"):
            super()._tlsShutdownFinished(reason)
            return
        from twisted.internet import reactor

        if self._reason is None:
            self._reason = reason
        self._lostTLSConnection = True
        self._flushSendBIO()  # the alert
        tcp: Any = self.transport
        self._lingering = reactor.callLater(HANDSHAKE_LINGER, tcp.abortConnection)
        tcp.loseWriteConnection()

    def dataReceived(self, data: bytes) -> None:
        if self._lingering is not None:
            return
        if self._plain_http(data):
            return
        super().dataReceived(data)

    _seen_first = False

    def _plain_http(self, data: bytes) -> bool:
        """A plain HTTP request (``http://`` for an HTTPS port) at this TLS listener's first byte: a
        letter, where a TLS record begins with its content type (22, a handshake).  Answered with a
        plain 400 that says so, as nginx answers it, then the connection lingers as after a failed
        handshake.  curl (so git) said "Empty reply from server", hg "bad HTTP status line: ''"."""
        if self._seen_first or not data:
            return False
        self._seen_first = True
        if not (getattr(self.factory, "plain_http_refused", False) and data[:1].isalpha()):
            return False
        from twisted.internet import reactor

        log.info("HTTP request from {peer}: plain HTTP on the HTTPS listener (the client used http:// for an "
                 "https:// port)", peer=peer_text(self.transport.getPeer()))  # type: ignore[union-attr]
        tcp: Any = self.transport
        tcp.write(PLAIN_HTTP_REFUSAL)
        self._lingering = reactor.callLater(HANDSHAKE_LINGER, tcp.abortConnection)
        tcp.loseWriteConnection()
        return True

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self._lingering is not None and self._lingering.active():
            self._lingering.cancel()
        super().connectionLost(reason)


class LingeringTLSFactory(TLSMemoryBIOFactory):
    """``TLSMemoryBIOFactory`` of ``LingeringTLSProtocol``: what an ``ssl:`` listener listens with."""

    protocol = LingeringTLSProtocol
    plain_http_refused = False
    """Whether a plain HTTP request is answered in plain HTTP (``--http`` listeners)."""


PLAIN_HTTP_TOLD = ("this port speaks HTTPS, not plain HTTP: use an https:// URL for it, or the server's plain "
                   "HTTP port for http://")
_PLAIN_HTTP_BODY = PLAIN_HTTP_TOLD.encode() + b"; nothing was done\n"
PLAIN_HTTP_REFUSAL = (b"HTTP/1.0 400 " + PLAIN_HTTP_TOLD.encode() + b"\r\nContent-Type: text/plain; charset=utf-8\r\n"
                      b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(_PLAIN_HTTP_BODY) + _PLAIN_HTTP_BODY)
"""The answer to a plain HTTP request at an HTTPS listener; the sentence is its reason phrase too,
all hg shows of a 400."""


@implementer(IOpenSSLContextFactory)
class ReloadableContext:
    """The TLS settings of an ``ssl:`` listener, which ``reload`` reads again from its files.

    Twisted asks its context factory for the context of each new connection, so
    a renewed certificate and key serve the connections after ``reload`` while
    the open ones keep theirs, as nginx's reload does."""

    def __init__(self, description: str, options: Any) -> None:
        self.description = description
        self.options = options

    def getContext(self) -> Any:
        return self.options.getContext()

    def reload(self, reactor: Any) -> str | None:
        """Read the endpoint's files again and use them for new connections; the warning about the
        new certificate's dates, if any.  A pair that cannot be used raises (TLSFilesError, OSError,
        OpenSSL's errors) and leaves the one in use."""
        warning = check_files(self.description)
        checks, ca_warning = client_checks(self.description)
        try:
            options = serverFromString(reactor, twisted_description(self.description))._sslContextFactory
        except VerifyError as exc:
            raise key_mismatch(exc) or exc from None
        prepare(options, self.description, checks)
        self.options = options
        return "; ".join(w for w in (warning, ca_warning) if w) or None


def prepare(options: Any, description: str, client_certificates: Sequence[Any] | ClientChecks = ()) -> None:
    """Complete the TLS options of the ``ssl:`` endpoint ``description`` before it listens.

    - Without ``extraCertChain=``, the certificates that follow the leaf in the ``certKey`` file (a
      Let's Encrypt ``fullchain.pem``) are sent with it, as lighttpd and ``hg serve`` send them:
      Twisted kept the first and a client that trusts only the root could not verify the leaf.
    - A client whose ALPN list lacks every protocol the listener speaks (``curl --http1.0`` offers
      ``http/1.0``, an HTTP/2-only client ``h2``) gets no ALPN protocol and goes on over HTTP/1.x,
      as with lighttpd and ``hg serve``; Twisted's own choice failed those handshakes with an
      "internal error" alert.
    - With ``clientCA=`` (``client_certificates``, read by ``client_checks``), each client must present
      a certificate one of those CAs signed, which no ``clientCRL=`` list revokes, or its handshake
      fails (``clientCertificate=optional``: a client may also present none).
    """
    checks = (client_certificates if isinstance(client_certificates, ClientChecks)
              else ClientChecks(list(client_certificates)))
    if not options.extraCertChain:
        options.extraCertChain = chain_after_leaf(_cert_file(description), options.certificate)
    context = options.getContext()  # made (and cached) now, before any connection uses it
    context.set_alpn_select_callback(_select_alpn)
    if checks.cas:
        require_client_certificates(context, list(checks.cas), checks.crls, checks.required)


def _cert_file(description: str) -> str:
    """The file an ``ssl:`` description reads its certificate from (Twisted's defaults)."""
    return _files(description)[2]


def chain_after_leaf(path: str, leaf: Any) -> list[Any]:
    """The certificates after the leaf in the PEM file ``path`` (the leaf itself skipped wherever it
    is), at most ``MAX_CHAIN``; TLSFilesError if there are more or one cannot be read."""
    from OpenSSL import crypto

    with open(path, "rb") as f:
        text = f.read(MAX_CHAIN * 65536 + 65536)
    chain = []
    leaf_digest = leaf.digest("sha256")
    for match in PEM_CERTIFICATE.finditer(text):
        try:
            cert = crypto.load_certificate(crypto.FILETYPE_PEM, match.group())
        except crypto.Error:
            raise TLSFilesError(f"a certificate in {path} cannot be read",
                                "check that certKey= names a PEM file of certificates") from None
        if cert.digest("sha256") == leaf_digest:
            continue
        chain.append(cert)
        if len(chain) > MAX_CHAIN:
            raise TLSFilesError(f"{path} holds more than {MAX_CHAIN} certificates after the server's",
                                "check that certKey= names the server's certificate and its chain")
    return chain


def _select_alpn(connection: Any, offered: Sequence[bytes]) -> Any:
    """The first protocol the listener speaks (HTTP/1.1) among those the client offers; none (the
    client proceeds without ALPN, over HTTP/1.x) when it offers none of them."""
    from OpenSSL.SSL import NO_OVERLAPPING_PROTOCOLS

    tls = connection.get_app_data()
    factory = getattr(getattr(tls, "factory", None), "wrappedFactory", None)
    negotiation = IProtocolNegotiationFactory(factory, None)
    for protocol in negotiation.acceptableProtocols() if negotiation is not None else ():
        if protocol in offered:
            return protocol
    return NO_OVERLAPPING_PROTOCOLS
