"""Bytes from a client (a ref name, a part type, a submodule value) as text a message may quote."""

from __future__ import annotations


def printable(value: bytes, limit: int | None = None, errors: str = "backslashreplace") -> str:
    """``value`` as text for a message or a log line: decoded as UTF-8 (bytes that are not, as
    ``errors`` says: ``\\xNN`` by default), every character that does not print escaped (``\\x1b``,
    ``\\n``), at most ``limit`` bytes of it; never Python's ``b'...'``."""
    text = (value if limit is None else value[:limit]).decode("utf-8", errors)
    return text if text.isprintable() else "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def quoted(value: bytes | str, limit: int) -> str:
    """``value`` in quotes for a message a client prints (``'sparse:oid=main'``): at most ``limit``
    of it, escaped as ``printable`` escapes it, never Python's ``b'...'``."""
    text = printable(value, limit) if isinstance(value, bytes) else printable(value[:limit].encode("utf-8", "replace"))
    return "'" + text + "'"
