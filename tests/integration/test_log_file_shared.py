"""Two services started with one ``--logfile``.

twistd renames its log file when it rotates it (``--log-size``, SIGUSR1): two services writing
one file rotated each other's file away, each writing on into the file the other had renamed, and
their lines mixed.  The second start is now refused in one line, the lock on the file following
it through the first's rotations, and let go when the first stops."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from tests.integration.test_cli import TWISTD, _free_port, stop_twistd
from tests.integration.test_pid_file import _catches


def _start(tmp_path: Path, log: Path, name: str) -> subprocess.Popen[str]:
    return subprocess.Popen([TWISTD, "-n", "--pidfile=", "--logfile", str(log), "hgwire", "--root",
                             str(tmp_path / name), "--git", f"tcp:{_free_port()}:interface=127.0.0.1"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _until(what: str, ready: object, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not ready():  # type: ignore[operator]
        assert proc.poll() is None, (what, proc.communicate())
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def _serving(proc: subprocess.Popen[str], log: Path, starts: int = 1) -> None:
    _until("it serves", lambda: log.exists() and log.read_text().count("worker threads") >= starts, proc)
    _until("its event loop runs", lambda: _catches(proc.pid, signal.SIGTERM), proc)


def _refused(tmp_path: Path, log: Path) -> str:
    second = _start(tmp_path, log, "repos2")
    try:
        said, _ = second.communicate(timeout=60)
    except subprocess.TimeoutExpired:  # (it runs beside the first)
        second.kill()
        said = second.communicate()[0]
    assert second.returncode == 1, f"both run:\n{said}"
    return said.strip()


def test_a_second_service_on_one_log_file_is_refused_through_the_first_s_rotations(tmp_path: Path) -> None:
    log = tmp_path / "hgwire.log"
    first = _start(tmp_path, log, "repos1")
    try:
        _serving(first, log)
        said = (f"twistd hgwire: --logfile {log} is written by another hgwire already, and each would rotate the "
                "other's file away: give each service a --logfile of its own, or stop the other first")
        assert _refused(tmp_path, log) == said
        first.send_signal(signal.SIGUSR1)  # twistd's own rotation: FILE to FILE.1, a new FILE
        _until("rotated", lambda: Path(f"{log}.1").exists() and log.exists(), first)
        assert _refused(tmp_path, log) == said
        os.rename(log, f"{log}.2")  # logrotate's move, then its signal: a new FILE
        first.send_signal(signal.SIGUSR1)
        _until("reopened", lambda: log.exists(), first)
        assert _refused(tmp_path, log) == said
        assert not (tmp_path / "repos2").exists(), "nothing made before the refusal"
    finally:
        stop_twistd(first)
    again = _start(tmp_path, log, "repos2")  # the first has stopped: its lock went with it
    try:
        _serving(again, log, starts=1)
    finally:
        stop_twistd(again)


def test_a_log_file_that_cannot_be_opened_is_one_line(tmp_path: Path) -> None:
    """twistd opened it after the service was made, and failed with a traceback."""
    log = tmp_path / "no-such-directory" / "hgwire.log"
    proc = _start(tmp_path, log, "repos")
    said, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1, said
    assert said.strip() == (f"twistd hgwire: --logfile {log} cannot be opened (No such file or directory): make its "
                            "directory and let hgwire's user write there, or name another file"), said
