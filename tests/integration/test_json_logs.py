"""``twistd -n --logger gateway.logs.json_lines hgwire``: a line of JSON an event, for a log
collector.  ``--logger twisted.logger.jsonFileLogObserver`` stopped the start with a TypeError."""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.conftest import VENV_BIN

TWISTD = f"{VENV_BIN}/twistd"


class _Lines:
    """Lines of a pipe as they arrive: read from the descriptor itself, so that lines that came in
    one read are not left in a file object's buffer while the selector waits for more."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self.proc = proc
        self.fd = proc.stdout.fileno()
        self.pending = b""

    def next_event(self, want: str, seen: list[dict[str, Any]]) -> dict[str, Any]:
        deadline = time.monotonic() + 30
        with selectors.DefaultSelector() as selector:
            selector.register(self.fd, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                while b"\n" in self.pending:
                    line, _, self.pending = self.pending.partition(b"\n")
                    event: dict[str, Any] = json.loads(line)  # every line is one JSON object
                    seen.append(event)
                    if want in event["text"]:
                        return event
                if not selector.select(timeout=1):
                    continue
                data = os.read(self.fd, 65536)
                assert data, ("twistd ended", self.proc.stderr.read() if self.proc.stderr else b"", seen)
                self.pending += data
        raise AssertionError(f"no event with {want!r}: {seen}")


def test_every_event_is_a_line_of_json_with_its_fields(tmp_path: Path) -> None:
    (tmp_path / "repos").mkdir()
    subprocess.run(["git", "init", "-q", "--bare", str(tmp_path / "repos" / "app.git")], check=True)
    proc = subprocess.Popen([TWISTD, "-n", "--pidfile=", "--logger", "gateway.logs.json_lines", "hgwire",
                             "--root", str(tmp_path / "repos"), "--git", "tcp:0:interface=127.0.0.1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    lines = _Lines(proc)
    seen: list[dict[str, Any]] = []
    try:
        serving = lines.next_event("hgwire serves git at", seen)
        assert serving["level"] == "info" and serving["namespace"] == "gateway.service"
        assert serving["time"].endswith("Z") and serving["kind"] == "git"
        url = serving["url"].replace("NAME.git", "app.git")
        subprocess.run(["git", "ls-remote", url], check=True, capture_output=True, timeout=60)
        served = lines.next_event("git-upload-pack app.git", seen)
        assert served["repo"] == "app.git" and served["outcome"] == "ok"
        assert isinstance(served["elapsed_ms"], int) and served["peer"].startswith("127.0.0.1:")
        assert not any(key.startswith("log_") for key in served)
    finally:
        proc.terminate()
        proc.wait(30)
