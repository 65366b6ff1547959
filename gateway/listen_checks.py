"""What is wrong with a listener's endpoint description, told in words an operator can act on.

Twisted reads ``tcp:``/``ssl:`` descriptions and answers mistakes with its internals
(``_parseTCP() got multiple values for argument 'interface'`` for an IPv6 address whose colons
are not escaped, ``invalid literal for int()`` for a port that is not a number, an
``OverflowError`` traceback for one past 65535).  ``endpoint_problem`` finds those before Twisted
reads the description; ``shared_port`` finds two of hgwire's own listeners on one port before
either binds.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping, Sequence
from typing import Any

from twisted.internet.endpoints import _parse

from gateway.channel import url_host

MAX_PORT = 65535
PORTED_TYPES = frozenset({"tcp", "ssl"})
"""Endpoint types that name a port and an interface (``interface=``, empty: every address)."""
INTERFACE_POSITION = {"tcp": 1, "ssl": 4}
"""Where a positional interface comes after the port: Twisted's ``_parseTCP(port, interface, ...)``
and ``_parseSSL(port, privateKey, certKey, sslmethod, interface, ...)``."""
IPV4_WILDCARDS = frozenset({"", "0.0.0.0"})
OPTIONS = {"tcp": ("port", "interface", "backlog"),
           "ssl": ("port", "interface", "backlog", "privateKey", "certKey", "extraCertChain", "dhParameters",
                   "sslmethod", "clientCA", "clientCRL", "clientCertificate")}
"""The keywords Twisted's ``tcp:`` and ``ssl:`` server descriptions take; another is refused by
Twisted with its parser's name (``_parseSSL() got an unexpected keyword argument``) and a traceback."""
CLIENT_CERTIFICATE_OPTIONS = frozenset({"cacertsdir", "cacerts", "cacert", "ca", "cafile", "clientca", "verify",
                                        "verifyclient", "requirecertificate", "trustroot", "trustroots"})
"""Keywords an operator writes to ask for TLS client certificates (Twisted's client endpoints'
``caCertsDir=``, OpenSSL's and the proxies' words), lowercased: hgwire's ``ssl:`` spells it ``clientCA=``."""
REVOCATION_OPTIONS = frozenset({"crl", "crlfile", "cacrl", "cacrlfile", "crlpath", "cacrlpath", "sslcrl",
                                "revocationfile", "carevocationfile"})
"""Keywords an operator writes for a certificate revocation list (lighttpd's ``ssl.ca-crl-file``,
nginx's ``ssl_crl``, Apache's ``SSLCARevocationFile``), lowercased: hgwire's ``ssl:`` spells it ``clientCRL=``."""
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


SYSTEMD_DOMAINS = {"INET": socket.AF_INET, "INET6": socket.AF_INET6, "UNIX": socket.AF_UNIX}
"""The ``domain=`` of a ``systemd:`` description → the address family of the socket it names."""


def _systemd_problem(description: str, sockets: Any = None) -> EndpointError | None:
    """What is wrong with a ``systemd:`` description, given the sockets systemd passed
    (``sockets``: Twisted's ``ListenFDs``, read from the environment when twistd started).

    Twisted answers these with ``list index out of range`` or ``KeyError`` and a traceback, and
    adopts an IPv6 socket (what ``ListenStream=9418`` makes) under ``domain=INET`` without a word,
    every client's address read as garbage (``::58cb:7530:e57f:0%809267118``) in the logs and the
    per-address limits."""
    from twisted.internet.endpoints import _SystemdParser

    try:
        args, kwargs = _parse(description)
    except Exception:  # noqa: BLE001 - Twisted's error is told where it reads the description
        return None
    fields = dict(zip(("domain", "index", "name"), (str(a) for a in args[1:]), strict=False))
    fields.update({str(k): str(v) for k, v in kwargs.items()})
    unknown = [key for key in fields if key not in ("domain", "index", "name")]
    if unknown or len(args) > 4:
        return EndpointError(f"systemd: has no option {unknown[0] if unknown else args[4]}",
                             "its options are domain, index, name: systemd:domain=INET6:name=git")
    domain = fields.get("domain", "")
    if domain not in SYSTEMD_DOMAINS:
        return EndpointError(f"domain={domain} is not a socket domain", "write domain=INET6, INET or UNIX")
    if ("index" in fields) == ("name" in fields):
        return EndpointError("it names its socket by neither or both of index= and name=",
                             "give one: name= (the .socket unit's FileDescriptorName=) or index= (from 0)")
    listen = sockets if sockets is not None else _SystemdParser._sddaemon
    descriptors, names = listen.inheritedDescriptors(), listen.inheritedNamedDescriptors()
    if not descriptors:
        return EndpointError("systemd passed this process no socket (LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES, "
                             "which systemd 227 and later set, are not all there)",
                             "start it through its .socket unit (systemd-socket-activate needs --fdname=NAME), "
                             "or listen on tcp:PORT instead")
    if "index" in fields:
        index = fields["index"]
        if not index.isdigit() or int(index) >= len(descriptors):
            count = f"{len(descriptors)} socket" + ("s" if len(descriptors) > 1 else "")
            return EndpointError(f"systemd passed {count}, so index={index[:20]} names none "
                                 "(they are counted from 0)",
                                 "check the .socket unit's Listen lines, or name the socket: name= and FileDescriptorName=")
        fd = descriptors[int(index)]
    else:
        if fields["name"] not in names:
            return EndpointError(f"systemd passed no socket named {fields['name']} (it passed "
                                 f"{', '.join(sorted(names))})", "give name= one of those, FileDescriptorName= of "
                                 "the .socket unit")
        fd = names[fields["name"]]
    try:
        with socket.socket(fileno=os.dup(fd)) as passed:
            family, address = passed.family, passed.getsockname()
            listening = passed.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    except OSError:
        return None  # Twisted says what is wrong with it
    if not listening:  # Twisted's port spun on accept() failing EINVAL, a traceback each time
        return EndpointError("the socket systemd passed is one client's connection, not a listening socket "
                             "(Accept=yes in the .socket unit: hgwire has no inetd mode)",
                             "set Accept=no (the default) in the .socket unit: one hgwire serves every connection")
    if family != SYSTEMD_DOMAINS[domain]:
        right = next(key for key, value in SYSTEMD_DOMAINS.items() if value == family) if family in \
            SYSTEMD_DOMAINS.values() else None
        where = (f"{url_host(address[0])}:{address[1]}" if family in (socket.AF_INET6, socket.AF_INET) else
                 str(address))
        return EndpointError(f"the socket systemd passed is {family.name[3:]} ({where}), not domain={domain}"
                             + (" (ListenStream=PORT listens on IPv6 and IPv4 both)" if right == "INET6" else ""),
                             f"write domain={right}" if right else "pass a stream socket of INET, INET6 or UNIX")
    return None


def endpoint_problem(description: str) -> EndpointError | None:
    """What is wrong with the port or interface of a ``tcp:``/``ssl:`` description, or with the
    socket a ``systemd:`` one names, if anything."""
    if description[:8].lower() == "systemd:":
        return _systemd_problem(description)
    parsed = _ported(description)
    if parsed is None:
        return None
    positional, kwargs = parsed
    kind = description.split(":", 1)[0].lower()
    unknown = [key for key in kwargs if key not in OPTIONS[kind]]
    if unknown and unknown[0].lower() in REVOCATION_OPTIONS and kind == "ssl":
        return EndpointError(f"ssl: has no option {unknown[0]}=",
                             "to refuse the client certificates your CA revoked, write clientCRL=FILE, a file of "
                             "its revocation lists, beside clientCA=FILE (README, HTTP: HTTPS client certificates)")
    if unknown and unknown[0].lower() in CLIENT_CERTIFICATE_OPTIONS and kind == "ssl":
        return EndpointError(f"ssl: has no option {unknown[0]}=",
                             "to require client certificates signed by your CA, write clientCA=FILE, a file of "
                             "the CA's PEM certificates (README, HTTP: HTTPS client certificates)")
    if unknown and unknown[0].lower() in CLIENT_CERTIFICATE_OPTIONS:
        return EndpointError(f"{kind}: has no option {unknown[0]}=: client certificates come with TLS",
                             "listen on ssl:PORT:privateKey=KEY:certKey=CERT:clientCA=FILE")
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
