"""What is wrong with a listener's endpoint description, told in words an operator can act on.

Twisted reads ``tcp:``/``ssl:`` descriptions and answers mistakes with its internals
(``_parseTCP() got multiple values for argument 'interface'`` for an IPv6 address whose colons
are not escaped, ``invalid literal for int()`` for a port that is not a number, an
``OverflowError`` traceback for one past 65535).  ``endpoint_problem`` finds those before Twisted
reads the description; ``shared_port`` finds two of hgwire's own listeners on one port before
either binds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from twisted.internet.endpoints import _parse

MAX_PORT = 65535
PORTED_TYPES = frozenset({"tcp", "ssl"})
"""Endpoint types that name a port and an interface (``interface=``, empty: every address)."""
INTERFACE_POSITION = {"tcp": 1, "ssl": 4}
"""Where a positional interface comes after the port: Twisted's ``_parseTCP(port, interface, ...)``
and ``_parseSSL(port, privateKey, certKey, sslmethod, interface, ...)``."""
IPV4_WILDCARDS = frozenset({"", "0.0.0.0"})
OPTIONS = {"tcp": ("port", "interface", "backlog"),
           "ssl": ("port", "interface", "backlog", "privateKey", "certKey", "extraCertChain", "dhParameters",
                   "sslmethod")}
"""The keywords Twisted's ``tcp:`` and ``ssl:`` server descriptions take; another is refused by
Twisted with its parser's name (``_parseSSL() got an unexpected keyword argument``) and a traceback."""
CLIENT_CERTIFICATE_OPTIONS = frozenset({"cacertsdir", "cacerts", "cacert", "ca", "cafile", "clientca", "verify",
                                        "verifyclient", "requirecertificate", "trustroot", "trustroots"})
"""Keywords an operator writes to ask for TLS client certificates (Twisted's client endpoints'
``caCertsDir=``, OpenSSL's and the proxies' words), lowercased: hgwire's ``ssl:`` asks for none."""
PROXY_PREFIX = "haproxy:"
"""Before an endpoint description: its connections come from a proxy that sends the PROXY protocol
header first (Twisted's own spelling for that)."""


def proxied_endpoint(description: str) -> tuple[bool, str]:
    """Whether ``description`` asks for the PROXY protocol header, and the endpoint without the prefix.

    hgwire reads the header itself rather than through Twisted's ``haproxy:``
    wrapper, so that a connection is counted and bounded by the client's
    address, not the proxy's, and the listener's protocol (an SSH banner) starts
    only once the client is known.
    """
    if description[:len(PROXY_PREFIX)].lower() == PROXY_PREFIX:
        return True, description[len(PROXY_PREFIX):]
    return False, description


class EndpointError(ValueError):
    """An endpoint description hgwire can tell is wrong; ``advice`` says what to write instead."""

    def __init__(self, reason: str, advice: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.advice = advice


def _ported(description: str) -> tuple[list[str], dict[str, str]] | None:
    """The positional arguments after the type and the keywords of a ``tcp:``/``ssl:``
    description; None for another type or one Twisted's own reading refuses (it says why)."""
    try:
        args, kwargs = _parse(description)
    except Exception:  # noqa: BLE001 - Twisted's error is told where it reads the description
        return None
    if not args or str(args[0]).lower() not in PORTED_TYPES:
        return None
    return [str(a) for a in args[1:]], {str(k): str(v) for k, v in kwargs.items()}


def endpoint_problem(description: str) -> EndpointError | None:
    """What is wrong with the port or interface of a ``tcp:``/``ssl:`` description, if anything."""
    parsed = _ported(description)
    if parsed is None:
        return None
    positional, kwargs = parsed
    kind = description.split(":", 1)[0].lower()
    unknown = [key for key in kwargs if key not in OPTIONS[kind]]
    if unknown and unknown[0].lower() in CLIENT_CERTIFICATE_OPTIONS and kind == "ssl":
        return EndpointError(f"hgwire's ssl: listeners do not ask clients for certificates ({unknown[0]}=)",
                             "leave it out; to require client certificates, let a TLS proxy in front check them "
                             "(README, HTTP: HTTPS client certificates)")
    if unknown:
        return EndpointError(f"{kind}: has no option {unknown[0]}=",
                             f"its options are {', '.join(OPTIONS[kind])}; check the spelling")
    if "interface" in kwargs and len(positional) > 1:  # tcp:9418:interface=::1 read as "", "", "1"
        address = ":".join([kwargs["interface"], *positional[1:]])
        return EndpointError("the IPv6 address in interface= is cut at its first colon",  # (colons part the fields)
                             "escape each colon: interface=" + address.replace(":", "\\:"))
    port = kwargs.get("port", positional[0] if positional else None)
    if port is None:
        return EndpointError("it names no port", "write the port after the type, e.g. tcp:9418:interface=127.0.0.1")
    if not re.fullmatch(r"[0-9]{1,5}", port) or int(port) > MAX_PORT:
        return EndpointError(f"the port {port[:20]!r} is not a number from 0 to {MAX_PORT}",
                             "write the port as a number, e.g. tcp:9418:interface=127.0.0.1")
    return None


def port_and_interface(description: str) -> tuple[int, str] | None:
    """The port and interface a ``tcp:``/``ssl:`` description binds (behind ``haproxy:`` too);
    None for another type, port 0 (any free port) or a description ``endpoint_problem`` refuses."""
    text = proxied_endpoint(description)[1]
    parsed = _ported(text)
    if parsed is None or endpoint_problem(text) is not None:
        return None
    positional, kwargs = parsed
    port = int(kwargs.get("port", positional[0] if positional else "0"))
    at = INTERFACE_POSITION[text.split(":", 1)[0].lower()]
    interface = kwargs.get("interface", positional[at] if len(positional) > at else "")
    return (port, interface) if port else None


def _overlap(one: str, other: str) -> bool:
    """Whether two interfaces cannot both bind one port: the same address, or an IPv4 address and
    IPv4's wildcard, or IPv6's wildcard ``::`` (which takes IPv4 too on a dual-stack host)."""
    if one == other or "::" in (one, other):
        return True
    if one in IPV4_WILDCARDS:
        return ":" not in other
    return other in IPV4_WILDCARDS and ":" not in one


def shared_port(listeners: Mapping[str, Sequence[str]]) -> str | None:
    """One sentence naming two listeners (option → descriptions) that would bind one port, which
    the second could not have ("Address already in use", which sent operators looking for another
    program); None if there are none."""
    seen: list[tuple[str, str, int, str]] = []
    for option, descriptions in listeners.items():
        for description in descriptions:
            bound = port_and_interface(description)
            if bound is None:
                continue
            port, interface = bound
            for other_option, other, other_port, other_interface in seen:
                if port == other_port and _overlap(interface, other_interface):
                    return (f"{other_option} {other} and {option} {description} both listen on port {port}: "
                            "give each listener a port of its own")
            seen.append((option, description, port, interface))
    return None
