"""Two starts of ``twistd hgwire`` racing on one ``--pidfile``.

twistd checks the file at its start and writes it only once the service is made (the backend
loaded, the listeners built): a second start in between found the file free, ran as well, and the
first of the two to stop removed the other's file.  The claim is now a lock held by the running
start: the second is refused in one line, and a file left by a run that is gone is still taken
over."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from tests.integration.test_cli import TWISTD, _free_port, read_log, stop_twistd
from tests.integration.test_pid_file import _catches

HELD_BACKEND = """
import os
import time

from backends import load_backend


def held(root):
    open(os.environ["HGWIRE_TEST_HELD_AT"], "w").close()
    while not os.path.exists(os.environ["HGWIRE_TEST_GO_ON"]):
        time.sleep(0.02)
    return load_backend("fs", root)
"""


def _start(tmp_path: Path, pid_file: Path, name: str, *extra: str, env: dict[str, str] | None = None
           ) -> subprocess.Popen[str]:
    return subprocess.Popen([TWISTD, "-n", "--pidfile", str(pid_file), "hgwire", "--root", str(tmp_path / name),
                             "--git", f"tcp:{_free_port()}:interface=127.0.0.1", *extra], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for(path: Path, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def _serving(proc: subprocess.Popen[str]) -> str:
    """The log up to the start's last line, once the event loop runs (a SIGTERM sooner ends the
    process before it cleans up)."""
    said = "".join(read_log(proc, "worker threads"))
    deadline = time.monotonic() + 30
    while not _catches(proc.pid, signal.SIGTERM) and time.monotonic() < deadline:
        assert proc.poll() is None, said
        time.sleep(0.02)
    return said


def test_a_second_start_while_the_first_is_still_starting_is_refused(tmp_path: Path) -> None:
    (tmp_path / "held_backend.py").write_text(HELD_BACKEND)
    held_at, go_on = tmp_path / "held", tmp_path / "go-on"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
           "HGWIRE_TEST_HELD_AT": str(held_at), "HGWIRE_TEST_GO_ON": str(go_on)}
    pid_file = tmp_path / "hgwire.pid"
    first = _start(tmp_path, pid_file, "repos1", "--backend", "held_backend:held", env=env)
    second: subprocess.Popen[str] | None = None
    try:
        _wait_for(held_at, first)  # past twistd's check of the file, which it has not written yet
        assert not pid_file.exists()
        second = _start(tmp_path, pid_file, "repos2")
        try:
            said, _ = second.communicate(timeout=60)
        except subprocess.TimeoutExpired:  # (it runs beside the first)
            second.kill()
            said = second.communicate()[0]
        assert second.returncode == 1, f"both started:\n{said}"
        assert said.strip() == (f"twistd hgwire: another hgwire, process {first.pid}, is starting with --pidfile "
                                f"{pid_file}: let it start, or stop it (kill {first.pid}), or give this one a "
                                "--pidfile of its own"), said
        assert not (tmp_path / "repos2").exists(), "nothing made before the refusal"
        go_on.touch()
        assert "worker threads" in _serving(first)
        assert pid_file.read_text().strip() == str(first.pid)
    finally:
        go_on.touch()
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                stop_twistd(proc)
    assert first.returncode in (0, -signal.SIGTERM)
    assert not pid_file.exists() and not Path(f"{pid_file}.lock").exists(), "the stop leaves nothing behind"


def test_a_file_left_by_a_killed_run_is_taken_over(tmp_path: Path) -> None:
    """A run killed with SIGKILL leaves its pid file and its lock file; its lock went with it."""
    pid_file = tmp_path / "hgwire.pid"
    killed = _start(tmp_path, pid_file, "repos")
    _serving(killed)
    killed.kill()
    killed.wait()
    assert pid_file.exists() and Path(f"{pid_file}.lock").exists()
    again = _start(tmp_path, pid_file, "repos")
    try:
        said = _serving(again)
        assert "worker threads" in said and "Removing stale pidfile" in said, said
        assert pid_file.read_text().strip() == str(again.pid)
    finally:
        stop_twistd(again)


def test_a_pid_file_where_none_can_be_written_is_one_line(tmp_path: Path) -> None:
    pid_file = tmp_path / "no-such-directory" / "hgwire.pid"
    proc = _start(tmp_path, pid_file, "repos")
    said, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1, said
    assert said.strip() == (f"twistd hgwire: --pidfile {pid_file} cannot be written (No such file or directory): "
                            "name a file in a directory hgwire's user may write, or give --pidfile= for none"), said
