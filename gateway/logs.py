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


JSON_NATIVE = (str, int, float, bool, type(None))

LEFT_OUT = frozenset({"format", "message", "time", "isError", "system", "failure", "why", "syslogPriority"})
"""Keys of an event a JSON line leaves out: the legacy log's copies of what it holds otherwise."""


def json_line(event: dict[str, Any]) -> str:
    """One event as one line of JSON: ``time`` (ISO 8601, UTC), ``level`` (``info``, ``warn``,
    ``error``, ``critical``), ``namespace``, ``text`` (what the text log shows, a failure's
    traceback under it), then the event's own fields (``repo``, ``user``, ``peer``, ``outcome``,
    ``elapsed_ms``, an access line's ``status`` and ``path``…), each a JSON value or its text."""
    import datetime
    import json

    from twisted.logger import eventAsText

    level = event.get("log_level")
    stamp = datetime.datetime.fromtimestamp(event.get("log_time") or 0, datetime.UTC)
    text = eventAsText(event, includeTraceback=True, includeTimestamp=False, includeSystem=False).rstrip("\n")
    record: dict[str, Any] = {"time": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                              "level": getattr(level, "name", "info"),
                              "namespace": event.get("log_namespace") or event.get("system") or "-",
                              "text": text}
    for key, value in event.items():
        if key.startswith("log_") or key in LEFT_OUT or key in record:
            continue
        if isinstance(value, (list, tuple)) and all(isinstance(v, JSON_NATIVE) for v in value):
            record[key] = list(value)
        else:
            record[key] = value if isinstance(value, JSON_NATIVE) else str(value)
    return json.dumps(record, ensure_ascii=False, allow_nan=False, default=str) + "\n"


def json_lines() -> Any:
    """``twistd -n --logger gateway.logs.json_lines hgwire …``: every event as a line of JSON on
    standard output (``json_line``), for a collector (the journal, a container's log, Vector,
    Fluent Bit).  ``--logger twisted.logger.jsonFileLogObserver`` does not start (it wants a file
    twistd does not give it), and its records begin with an RS byte (RFC 7464), which line-based
    collectors do not read."""
    import sys

    from twisted.logger import FileLogObserver

    return FileLogObserver(sys.stdout, json_line)
