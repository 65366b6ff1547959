"""An HTTP ``Accept`` header's media ranges and their weights (RFC 9110 §12.5.1), bounded.

The server's and a repository's own URL answer a browser with HTML and anything else (git, hg,
curl's ``*/*``) with plain text; which one is decided here, by the media types a client names
with a weight above zero, not by a substring (``text/htmlx`` and ``text/html;q=0`` are no HTML).
"""

from __future__ import annotations

import re

MAX_ACCEPT = 4096
"""Bytes of the header read; the rest is left out (a browser's is under 200)."""
MAX_RANGES = 64
"""Media ranges read, in order; the others are left out."""

_QVALUE = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")
"""RFC 9110 §12.4.2's ``qvalue``."""
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def weights(header: bytes | None) -> dict[str, float]:
    """The weight of each media range ``header`` names (``"text/html"``, ``"*/*"``), lower-cased,
    parameters other than ``q`` left out; a range named twice keeps its first weight, one with a
    malformed type or ``q`` is left out (as if not named)."""
    found: dict[str, float] = {}
    text = (header or b"")[:MAX_ACCEPT].decode("latin-1")
    for item in text.split(",")[:MAX_RANGES]:
        media, *params = (part.strip() for part in item.split(";"))
        kind, slash, sub = media.lower().partition("/")
        if not (slash and _TOKEN.fullmatch(kind) and _TOKEN.fullmatch(sub)):
            continue
        weight = _weight(params)
        if weight is not None:
            found.setdefault(f"{kind}/{sub}", weight)
    return found


def _weight(params: list[str]) -> float | None:
    """The ``q`` among a range's parameters (1 without one); None when it is malformed."""
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            value = value.strip()
            return float(value) if _QVALUE.fullmatch(value) else None
    return 1.0


def names_any(header: bytes | None, media_types: tuple[str, ...]) -> bool:
    """Whether ``header`` names one of ``media_types`` itself (not through ``*/*`` or
    ``text/*``) with a weight above zero."""
    found = weights(header)
    return any(found.get(media_type, 0.0) > 0 for media_type in media_types)
