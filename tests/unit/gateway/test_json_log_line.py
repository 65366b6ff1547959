"""``gateway.logs.json_line``: one event as a line of JSON."""

from __future__ import annotations

import json

from twisted.logger import LogLevel
from twisted.python.failure import Failure

from gateway.logs import json_line


def test_a_failure_carries_its_traceback_and_odd_fields_their_text() -> None:
    try:
        raise ValueError("disk said no")
    except ValueError:
        failure = Failure()  # type: ignore[no-untyped-call]
    event = {"log_level": LogLevel.critical, "log_namespace": "gateway.x", "log_time": 0.5,
             "log_format": "push to {repo} failed", "repo": "app.git", "log_failure": failure,
             "where": object(), "sizes": (1, 2), "syslogPriority": 2}
    line = json_line(event)
    assert line.endswith("}\n") and "\n" not in line[:-1]
    record = json.loads(line)
    assert record["time"] == "1970-01-01T00:00:00.500Z" and record["level"] == "critical"
    assert record["text"].startswith("push to app.git failed\n") and "ValueError: disk said no" in record["text"]
    assert record["repo"] == "app.git" and record["sizes"] == [1, 2] and record["where"].startswith("<object")
    assert "syslogPriority" not in record
