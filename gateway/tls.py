"""What an ``ssl:`` listener needs beyond Twisted's endpoint: an ALPN choice that lets a client
without ``http/1.1`` in its list proceed.

pyOpenSSL is imported here only when an ``ssl:`` endpoint is in use (it is optional).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from twisted.internet.interfaces import IProtocolNegotiationFactory


def prepare(options: Any, description: str) -> None:
    """Complete the TLS options of the ``ssl:`` endpoint ``description`` before it listens.

    - A client whose ALPN list lacks every protocol the listener speaks (``curl --http1.0`` offers
      ``http/1.0``, an HTTP/2-only client ``h2``) gets no ALPN protocol and goes on over HTTP/1.x,
      as with lighttpd and ``hg serve``; Twisted's own choice failed those handshakes with an
      "internal error" alert.
    """
    context = options.getContext()  # made (and cached) now, before any connection uses it
    context.set_alpn_select_callback(_select_alpn)


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
