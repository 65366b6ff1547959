"""The plugin as an operator meets it: ``twistd hgwire`` from the command line."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.conftest import VENV_BIN

TWISTD = f"{VENV_BIN}/twistd"


def test_help_documents_every_option() -> None:
    result = subprocess.run([TWISTD, "hgwire", "--help"], capture_output=True, text=True, check=True)
    for option in ("--root", "--backend", "--ssh", "--http", "--git", "--host-key", "--authorized-keys",
                   "--htpasswd", "--config", "--read-only", "--create-on-push", "--allow-push-over-http"):
        assert option in result.stdout


def test_unknown_backend_is_a_clear_error(tmp_path: Path) -> None:
    result = subprocess.run([TWISTD, "-n", "hgwire", "--root", str(tmp_path), "--backend", "nope",
                             "--git", "tcp:0:interface=127.0.0.1"], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "--backend must be fs, memory or package.module:factory" in result.stdout + result.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_twistd(args: list[str], cwd: Path) -> tuple[subprocess.Popen[str], str]:
    """Start ``twistd -n hgwire ARGS`` and wait for the first URL it logs."""
    proc = subprocess.Popen([TWISTD, "-n", "--pidfile=", "hgwire", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    seen = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        seen.append(line)
        match = re.search(r"hgwire serves \w+ at (\S+)", line)
        if match:
            return proc, match.group(1)
        if proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError("twistd hgwire did not log a URL:\n" + "".join(seen))


def stop_twistd(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_runs_and_logs_clone_url(tmp_path: Path) -> None:
    port = _free_port()
    proc, url = start_twistd(["--root", str(tmp_path / "repos"), "--git", f"tcp:{port}:interface=127.0.0.1"],
                             tmp_path)
    try:
        assert url == f"git://127.0.0.1:{port}/NAME.git"
        assert (tmp_path / "repos").is_dir()
    finally:
        stop_twistd(proc)
