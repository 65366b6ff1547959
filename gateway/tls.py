"""What an ``ssl:`` listener needs beyond Twisted's endpoint: the certificate chain in ``certKey``
and an ALPN choice that lets a client without ``http/1.1`` in its list proceed.

pyOpenSSL is imported here only when an ``ssl:`` endpoint is in use (it is optional).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from twisted.internet.endpoints import _parse
from twisted.internet.error import VerifyError
from twisted.internet.interfaces import IProtocolNegotiationFactory

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


def key_mismatch(exc: BaseException) -> TLSFilesError | None:
    """The error to tell for ``exc`` when it is Twisted's refusal of a key that is not the
    certificate's (``VerifyError``, raised while the endpoint description is read); else None."""
    if not isinstance(exc, VerifyError):
        return None
    return TLSFilesError("the private key does not belong to the certificate",
                         "check that privateKey= and certKey= name the key and certificate of one pair")


MAX_PEM_FILE = 1024 * 1024
"""The most read of a TLS file to tell what it lacks (a key and its chain are a few KiB)."""


def files_error(exc: BaseException, description: str) -> TLSFilesError | None:
    """The error to tell for ``exc`` when it is OpenSSL's refusal of the files of the ``ssl:``
    endpoint ``description`` (its codes, ``[('PEM routines', '', 'no start line')]``, say nothing to
    an operator): which file holds no certificate, or no private key; else None."""
    if not type(exc).__module__.startswith("OpenSSL"):
        return None
    from OpenSSL import crypto

    _, kwargs = _parse(description)
    key_file = str(kwargs.get("privateKey") or "server.pem")
    cert_file = str(kwargs.get("certKey") or key_file)
    try:
        crypto.load_certificate(crypto.FILETYPE_PEM, _head(cert_file))
    except (crypto.Error, OSError):
        if "certKey" not in kwargs:
            return TLSFilesError(f"{key_file} holds no certificate, and without certKey= the certificate is read "
                                 "from the privateKey= file", "add certKey= naming the server's certificate (PEM)")
        return TLSFilesError(f"{cert_file} holds no PEM certificate",
                             "check that certKey= names the server's certificate (PEM)")
    try:
        crypto.load_privatekey(crypto.FILETYPE_PEM, _head(key_file), passphrase=lambda *_: b"")
    except (crypto.Error, OSError):
        return TLSFilesError(f"{key_file} holds no PEM private key without a passphrase",
                             "check that privateKey= names the server's private key (PEM, without a passphrase)")
    return TLSFilesError("OpenSSL refused the TLS files", "check that privateKey= names the server's private key "
                         "and certKey= its certificate, both PEM")


def _head(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read(MAX_PEM_FILE)


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
    _, kwargs = _parse(description)
    return str(kwargs.get("certKey") or kwargs.get("privateKey") or "server.pem")


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
