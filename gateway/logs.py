"""The service's loggers: ``twisted.logger`` with what a client sent made safe for a terminal.

Repository names, paths, ref names and reasons that quote them come from clients; a log line
that holds them as they are lets anyone write terminal escapes (``ESC[31m``), carriage returns
(overwriting what a ``tail -f`` shows) and newlines (a forged log line) into an operator's log.
``SafeLogger`` escapes the control characters of every text field of an event (``\\x1b``, ``\\r``,
``\\n``) before it is emitted; the event's other fields and the ``log_*`` keys are left as they are.
"""

from __future__ import annotations

import re
from typing import Any

from twisted.logger import Logger, LogLevel

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
"""Control characters (a tab aside), the C1 set, line and paragraph separators, the bidi
controls that reorder what a terminal shows, and lone surrogates: a URL's or a name's bytes that
are not UTF-8, decoded with ``surrogateescape``, go out to the log file as those very bytes
(``%9B`` is the 8-bit CSI, which starts a terminal escape as ``ESC [`` does)."""

_SURROGATE_ESCAPES = range(0xDC80, 0xDD00)
"""The lone surrogates ``surrogateescape`` makes of the bytes 0x80-0xFF that are not UTF-8."""


def _escape(char: str) -> str:
    """One character as its escape: ``\\xNN`` of the byte a ``surrogateescape`` surrogate stands
    for, else Python's (``\\x1b``, ``\\n``, ``\\u202e``, ``\\ud800``)."""
    code = ord(char)
    if code in _SURROGATE_ESCAPES:
        return f"\\x{code - 0xDC00:02x}"
    return char.encode("unicode_escape").decode("ascii")


def log_safe(text: str) -> str:
    """``text`` with its control characters written as escapes (``\\x1b``, ``\\n``, ``\\u202e``,
    ``\\x9b`` for a byte that is not UTF-8)."""
    if not _CONTROL.search(text):
        return text
    return _CONTROL.sub(lambda m: _escape(m.group()), text)


MAX_LOGGED_NAME = 300
"""Characters of a requested repository name a log line shows (a refused one may be long)."""


def loggable_name(name: str) -> str:
    """A requested name as the log may show it, before or after the name check refused it: bounded,
    and with what is not printable escaped (an escape sequence for the operator's terminal, a
    newline that forges a log line)."""
    name = name[:MAX_LOGGED_NAME]
    return name if name.isprintable() else "".join(c if c.isprintable() else _escape(c) for c in name)


SYSLOG_PRIORITIES = {LogLevel.debug: 7, LogLevel.info: 6, LogLevel.warn: 4, LogLevel.error: 3, LogLevel.critical: 2}
"""Each level's syslog priority (RFC 5424: debug, info, warning, err, crit), which ``twistd
--syslog`` reads from an event's ``syslogPriority``: without it, it writes every event at ``info``
but errors and failures, at ``alert``."""


class SafeLogger(Logger):
    """A ``Logger`` whose events' text fields hold no control characters (``log_safe``), and that
    carry their level's syslog priority (``SYSLOG_PRIORITIES``)."""

    def emit(self, level: LogLevel, format: str | None = None, **kwargs: Any) -> None:
        for key, value in kwargs.items():
            if type(value) is str and not key.startswith("log_"):
                kwargs[key] = log_safe(value)
        kwargs.setdefault("syslogPriority", SYSLOG_PRIORITIES.get(level, 6))
        super().emit(level, format, **kwargs)
