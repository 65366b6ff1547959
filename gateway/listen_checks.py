"""What is wrong with a listener's endpoint description, told in words an operator can act on.

Twisted reads ``tcp:``/``ssl:`` descriptions and answers mistakes with its internals
(``_parseTCP() got multiple values for argument 'interface'`` for an IPv6 address whose colons
are not escaped, ``invalid literal for int()`` for a port that is not a number, an
``OverflowError`` traceback for one past 65535).  ``endpoint_problem`` finds those before Twisted
reads the description.
"""

from __future__ import annotations

import re

from twisted.internet.endpoints import _parse

MAX_PORT = 65535
PORTED_TYPES = frozenset({"tcp", "ssl"})
"""Endpoint types that name a port and an interface (``interface=``, empty: every address)."""


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
