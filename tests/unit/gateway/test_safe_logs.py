"""What a client sent reaches the log without control characters: no terminal escapes, no carriage
returns or newlines that would forge a line, no bidi overrides."""

from __future__ import annotations

from typing import Any

from twisted.logger import formatEvent

from gateway.logs import SafeLogger, log_safe


def test_control_characters_are_written_as_escapes() -> None:
    assert log_safe("plain text, tabs\tstay") == "plain text, tabs\tstay"
    assert log_safe("zz\x1b[31mRED\r\n2026 fake") == "zz\\x1b[31mRED\\r\\n2026 fake"
    assert log_safe("a\u202eb\x00c") == "a\\u202eb\\x00c"


def test_every_text_field_of_an_event_is_escaped() -> None:
    events: list[dict[str, Any]] = []
    log = SafeLogger(observer=events.append)  # type: ignore[arg-type]
    log.info("{proto} {repo}: {outcome}", proto="hg-web", repo="evil\x1b]0;title\x07",
             outcome="refused 404: zz\x1b[31mRED\r\nfake line", count=3, changes=[{"name": "x"}])
    [event] = events
    line = formatEvent(event)
    assert "\x1b" not in line and "\r" not in line and "\n" not in line, line
    assert line == "hg-web evil\\x1b]0;title\\x07: refused 404: zz\\x1b[31mRED\\r\\nfake line"
    assert event["count"] == 3 and event["changes"] == [{"name": "x"}]
