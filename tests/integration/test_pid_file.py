"""twistd's ``--pidfile`` left by a run that did not stop cleanly, under the real ``twistd hgwire``.

twistd itself refuses to start while the file names a live process, with five lines ("Another
twistd server is running, PID 1 … This could either be a previously started instance of your
application or a different application entirely …") that neither say which process that is nor
what to do.  hgwire looks first and says it in one line: hgwire already runs (stop it), or the
number is some other program's now (remove the file)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.integration.test_cli import TWISTD, _free_port, read_log, stop_twistd


def _run(tmp_path: Path, pid_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TWISTD, "-n", "--pidfile", str(pid_file), "hgwire", "--root", str(tmp_path / "repos"),
                           "--git", f"tcp:{_free_port()}:interface=127.0.0.1"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, check=False)


def test_a_pid_file_naming_another_program_says_to_remove_it(tmp_path: Path) -> None:
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        pid_file = tmp_path / "hgwire.pid"
        pid_file.write_text(f"{other.pid}\n")
        done = _run(tmp_path, pid_file)
    finally:
        other.kill()
        other.wait()
    said = (done.stdout + done.stderr).strip()
    assert done.returncode == 1, said
    assert said == (f"twistd hgwire: --pidfile {pid_file} names process {other.pid} ({sys.executable} -c import "
                    "time; time.sleep(120)), which is not hgwire: the file is left from a run that did not stop "
                    f"cleanly and its number is another program's now; remove {pid_file} and start again"), said
    assert not (tmp_path / "repos").exists(), "nothing made before the refusal"


def test_a_pid_file_of_a_running_hgwire_says_to_stop_it(tmp_path: Path) -> None:
    pid_file = tmp_path / "hgwire.pid"
    first = subprocess.Popen([TWISTD, "-n", "--pidfile", str(pid_file), "hgwire", "--root", str(tmp_path / "repos"),
                              "--git", f"tcp:{_free_port()}:interface=127.0.0.1"], cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        read_log(first, "worker threads")
        assert pid_file.read_text().strip() == str(first.pid)
        done = _run(tmp_path, pid_file)
    finally:
        stop_twistd(first)
    said = (done.stdout + done.stderr).strip()
    assert done.returncode == 1, said
    assert said == (f"twistd hgwire: hgwire already runs as process {first.pid} with --pidfile {pid_file}: stop "
                    f"it first (kill {first.pid}), or give this one a --pidfile of its own"), said


def test_a_pid_file_without_a_number_says_to_remove_it(tmp_path: Path) -> None:
    pid_file = tmp_path / "hgwire.pid"
    pid_file.write_text("")  # a disk that filled as it was written
    done = _run(tmp_path, pid_file)
    said = (done.stdout + done.stderr).strip()
    assert done.returncode == 1, said
    assert said == (f"twistd hgwire: --pidfile {pid_file} holds no process number (it is empty): remove it and "
                    "start again"), said
    assert os.path.exists(pid_file)


def test_a_pid_file_naming_this_very_process_is_removed(tmp_path: Path) -> None:
    """A container's hgwire is process 1 at each start, and so is the number its last run left in a
    --pidfile kept on a volume: twistd refused to start ("Another twistd server is running, PID 1")
    for ever.  Such a file names this very process: it is removed, and the start goes on."""
    import shutil

    import pytest

    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs unshare and root for a PID namespace of its own")
    pid_file = tmp_path / "hgwire.pid"
    pid_file.write_text("1\n")
    proc = subprocess.Popen(["unshare", "--fork", "--pid", "--mount-proc", "--kill-child", TWISTD, "-n", "--pidfile", str(pid_file),
                             "hgwire", "--root", str(tmp_path / "repos"), "--git",
                             f"tcp:{_free_port()}:interface=127.0.0.1"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        said = "".join(read_log(proc, "worker threads|Another twistd|unshare:"))
        if "unshare:" in said:
            pytest.skip(f"no PID namespace here: {said}")
        assert f"removed --pidfile {pid_file}: it named this very process (1), left by an earlier run" in said, said
        assert "worker threads" in said, said
    finally:
        _stop_in_namespace(proc)


def _stop_in_namespace(proc: subprocess.Popen[str]) -> None:
    """Stop the twistd ``unshare --fork`` runs: unshare ignores SIGTERM and waits for its child (a
    SIGTERM to it waited out stop_twistd's 15 s), so the child, the twistd, is sent it, once it
    catches it (the first process of a PID namespace never gets a signal it has no handler for,
    and twistd's is set after it logs that it serves)."""
    try:
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    except OSError:  # (unshare has exited)
        children = []
    for child in map(int, children):
        deadline = time.monotonic() + 30
        while _catches(child, signal.SIGTERM) is False and time.monotonic() < deadline:
            time.sleep(0.01)
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()  # (--kill-child: the twistd is killed with it)
        proc.wait()


def _catches(pid: int, signum: int) -> bool | None:
    """Whether process ``pid`` has a handler for ``signum`` (its ``SigCgt``); None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    caught = next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught, 16) >> (signum - 1) & 1)


def test_another_twistd_in_a_path_named_hgwire_is_not_hgwire(tmp_path: Path) -> None:
    """A twistd of another plugin run from a directory named hgwire (``/opt/hgwire/venv/bin/twistd
    web``) was taken for hgwire, and the operator told to kill it; hgwire is its own word."""
    venv = tmp_path / "hgwire" / "venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "twistd").write_text("import time\ntime.sleep(120)\n")
    other = subprocess.Popen([sys.executable, str(venv / "twistd"), "web", "--path", str(tmp_path)])
    try:
        pid_file = tmp_path / "hgwire.pid"
        pid_file.write_text(f"{other.pid}\n")
        done = _run(tmp_path, pid_file)
    finally:
        other.kill()
        other.wait()
    said = (done.stdout + done.stderr).strip()
    assert done.returncode == 1, said
    assert f"names process {other.pid} ({sys.executable} {venv}/twistd web" in said, said
    assert "which is not hgwire: the file is left from a run that did not stop cleanly" in said, said


def test_a_long_command_line_of_a_running_one_is_known(tmp_path: Path) -> None:
    """Only the first 200 characters of the running process's command line were read: a twistd with
    long paths before ``hgwire`` (--logfile, --pidfile under a deep directory) was "not hgwire", and
    the operator told to remove the file of the hgwire running there."""
    deep = tmp_path / ("d" * 100) / ("e" * 100)
    deep.mkdir(parents=True)
    pid_file = deep / "run.pid"
    first = subprocess.Popen([TWISTD, "-n", "--pidfile", str(pid_file), "hgwire", "--root", str(tmp_path / "repos"),
                              "--git", f"tcp:{_free_port()}:interface=127.0.0.1"], cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        read_log(first, "worker threads")
        done = _run(tmp_path, pid_file)
    finally:
        stop_twistd(first)
    said = (done.stdout + done.stderr).strip()
    assert done.returncode == 1, said
    assert said.startswith(f"twistd hgwire: hgwire already runs as process {first.pid} with --pidfile"), said
