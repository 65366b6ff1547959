"""What a client sent reaches the log without control characters: no terminal escapes, no carriage
returns or newlines that would forge a line, no bidi overrides."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from twisted.logger import formatEvent

from gateway.logs import SafeLogger, log_safe, loggable_name


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


UNSAFE_IN_A_LOG = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\ud800-\udfff]")
"""C0 controls (a tab aside), DEL, the C1 set, lone surrogates."""


def test_a_byte_that_is_not_utf8_is_written_as_its_escape() -> None:
    """A URL's ``%9B`` (the 8-bit CSI), decoded with ``surrogateescape``, is ``\\udc9b``: it went
    out to the log file as the byte itself."""
    assert log_safe(b"\x9b31mRED".decode("utf-8", "surrogateescape")) == "\\x9b31mRED"
    assert loggable_name(b"team/\xc0\xae\xc0\xae".decode("utf-8", "surrogateescape")) == "team/\\xc0\\xae\\xc0\\xae"
    assert log_safe("\ud800 alone") == "\\ud800 alone"


@given(st.binary(max_size=64), st.text(st.characters(exclude_categories=()), max_size=16))
def test_no_logged_text_holds_a_control_or_a_lone_surrogate(raw: bytes, text: str) -> None:
    """Whatever bytes a URL or a name carried, decoded as the gateway decodes them."""
    for value in (raw.decode("utf-8", "surrogateescape"), raw.decode("latin-1"), text):
        events: list[dict[str, Any]] = []
        log = SafeLogger(observer=events.append)  # type: ignore[arg-type]
        log.info("{proto} {repo}: {outcome}", proto="hg-web", repo=value, outcome=f"refused 404: {value}")
        for line in (formatEvent(events[0]) or "", loggable_name(value)):
            assert not UNSAFE_IN_A_LOG.search(line), ascii(line)
            line.encode("utf-8")  # strict: nothing the file observer would write as raw bytes


def test_under_twistd_syslog_each_level_has_its_own_priority() -> None:
    """``twistd --syslog`` wrote every warning ("nobody can log in over HTTP") at ``info``, below
    what ``journalctl -p warning`` or an rsyslog rule on ``*.warning`` shows, and every critical
    line ("cannot listen on …") and error at ``alert``, what pages someone at night."""
    import syslog

    from twisted.logger import LegacyLogObserverWrapper, LogPublisher
    from twisted.python.syslog import SyslogObserver

    written: list[tuple[int, str]] = []

    class Observer(SyslogObserver):
        openlog = staticmethod(lambda *args: None)
        syslog = staticmethod(lambda priority, line: written.append((priority, line)))

    observer: Any = Observer("hgwire")  # type: ignore[no-untyped-call]  # (twisted.python.syslog is untyped)
    log = SafeLogger(namespace="gateway.service", observer=LogPublisher(LegacyLogObserverWrapper(observer.emit)))
    log.debug("one")
    log.info("two")
    log.warn("three")  # noqa: G010
    log.error("four")
    log.critical("five")
    priorities = {line.split("] ", 1)[-1]: priority & 7 for priority, line in written}
    assert priorities == {"one": syslog.LOG_DEBUG, "two": syslog.LOG_INFO, "three": syslog.LOG_WARNING,
                          "four": syslog.LOG_ERR, "five": syslog.LOG_CRIT}, written
