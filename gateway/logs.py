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

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
"""Control characters (a tab aside), the C1 set, line and paragraph separators and the bidi
controls that reorder what a terminal shows."""


def log_safe(text: str) -> str:
    """``text`` with its control characters written as escapes (``\\x1b``, ``\\n``, ``\\u202e``)."""
    if not _CONTROL.search(text):
        return text
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


MAX_LOGGED_NAME = 300
"""Characters of a requested repository name a log line shows (a refused one may be long)."""


def loggable_name(name: str) -> str:
    """A requested name as the log may show it, before or after the name check refused it: bounded,
    and with what is not printable escaped (an escape sequence for the operator's terminal, a
    newline that forges a log line)."""
    name = name[:MAX_LOGGED_NAME]
    return name if name.isprintable() else name.encode("unicode_escape").decode("ascii")


class SafeLogger(Logger):
    """A ``Logger`` whose events' text fields hold no control characters (``log_safe``)."""

    def emit(self, level: LogLevel, format: str | None = None, **kwargs: Any) -> None:
        for key, value in kwargs.items():
            if type(value) is str and not key.startswith("log_"):
                kwargs[key] = log_safe(value)
        super().emit(level, format, **kwargs)
