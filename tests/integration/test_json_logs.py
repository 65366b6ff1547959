"""``twistd -n --logger gateway.logs.json_lines hgwire``: a line of JSON an event, for a log
collector.  ``--logger twisted.logger.jsonFileLogObserver`` stopped the start with a TypeError."""

from __future__ import annotations

import json
import selectors
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.conftest import VENV_BIN

TWISTD = f"{VENV_BIN}/twistd"


def _next_event(proc: subprocess.Popen[str], want: str, seen: list[dict[str, Any]]) -> dict[str, Any]:
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if not selector.select(timeout=1):
                continue
            line = proc.stdout.readline()
            assert line, ("twistd ended", proc.stderr.read() if proc.stderr else "", seen)
            event: dict[str, Any] = json.loads(line)  # every line is one JSON object
            seen.append(event)
            if want in event["text"]:
                return event
    raise AssertionError(f"no event with {want!r}: {seen}")


def test_every_event_is_a_line_of_json_with_its_fields(tmp_path: Path) -> None:
    (tmp_path / "repos").mkdir()
    subprocess.run(["git", "init", "-q", "--bare", str(tmp_path / "repos" / "app.git")], check=True)
    proc = subprocess.Popen([TWISTD, "-n", "--pidfile=", "--logger", "gateway.logs.json_lines", "hgwire",
                             "--root", str(tmp_path / "repos"), "--git", "tcp:0:interface=127.0.0.1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    seen: list[dict[str, Any]] = []
    try:
        serving = _next_event(proc, "hgwire serves git at", seen)
        assert serving["level"] == "info" and serving["namespace"] == "gateway.service"
        assert serving["time"].endswith("Z") and serving["kind"] == "git"
        url = serving["url"].replace("NAME.git", "app.git")
        subprocess.run(["git", "ls-remote", url], check=True, capture_output=True, timeout=60)
        served = _next_event(proc, "git-upload-pack app.git", seen)
        assert served["repo"] == "app.git" and served["outcome"] == "ok"
        assert isinstance(served["elapsed_ms"], int) and served["peer"].startswith("127.0.0.1:")
        assert not any(key.startswith("log_") for key in served)
    finally:
        proc.terminate()
        proc.wait(30)
