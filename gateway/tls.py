"""What an ``ssl:`` listener needs beyond Twisted's endpoint: the certificate chain in ``certKey``
and an ALPN choice that lets a client without ``http/1.1`` in its list proceed.

pyOpenSSL is imported here only when an ``ssl:`` endpoint is in use (it is optional).
"""

from __future__ import annotations

import datetime
import os
import re
from collections.abc import Sequence
from typing import Any

from twisted.internet.endpoints import _parse, serverFromString
from twisted.internet.error import VerifyError
from twisted.internet.interfaces import IOpenSSLContextFactory, IProtocolNegotiationFactory
from zope.interface import implementer

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
                f"{(not_after - now).days} days: renew it, then send hgwire a SIGHUP")
    return None


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
        try:
            options = serverFromString(reactor, self.description)._sslContextFactory
        except VerifyError as exc:
            raise key_mismatch(exc) or exc from None
        prepare(options, self.description)
        self.options = options
        return warning


def prepare(options: Any, description: str) -> None:
    """Complete the TLS options of the ``ssl:`` endpoint ``description`` before it listens.

    - Without ``extraCertChain=``, the certificates that follow the leaf in the ``certKey`` file (a
      Let's Encrypt ``fullchain.pem``) are sent with it, as lighttpd and ``hg serve`` send them:
      Twisted kept the first and a client that trusts only the root could not verify the leaf.
    - A client whose ALPN list lacks every protocol the listener speaks (``curl --http1.0`` offers
      ``http/1.0``, an HTTP/2-only client ``h2``) gets no ALPN protocol and goes on over HTTP/1.x,
      as with lighttpd and ``hg serve``; Twisted's own choice failed those handshakes with an
      "internal error" alert.
    """
    if not options.extraCertChain:
        options.extraCertChain = chain_after_leaf(_cert_file(description), options.certificate)
    context = options.getContext()  # made (and cached) now, before any connection uses it
    context.set_alpn_select_callback(_select_alpn)


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
