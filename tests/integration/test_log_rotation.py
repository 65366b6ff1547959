"""``twistd --logfile FILE hgwire`` under logrotate: ``copytruncate``, and a rename with
``postrotate kill -USR1`` (with and without logrotate's ``create``), done here by hand as logrotate
does them, against the real twistd process."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from tests.conftest import VENV_BIN

TWISTD = f"{VENV_BIN}/twistd"
REOPENED = "was moved or removed; hgwire writes a new one there"


class Logging:
    def __init__(self, proc: subprocess.Popen[bytes], log: Path, port: int) -> None:
        self.proc, self.log, self.port = proc, log, port

    def request(self, path: str) -> None:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/{path}", timeout=10) as answer:
            answer.read()

    def logged(self, path: Path, text: str) -> bool:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if path.exists() and text.encode() in path.read_bytes():
                return True
            time.sleep(0.05)
        return False

    def signal_and_mark(self, mark: str, handled: Callable[[], bool]) -> None:
        """SIGUSR1, then a request once ``handled`` says the reactor has handled the signal (it does
        a turn later: a request made before would be logged where the signal had not yet moved it)."""
        self.proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 10  # (then the request all the same: the test's asserts say what is wrong)
        while not handled() and time.monotonic() < deadline:
            time.sleep(0.02)
        self.request(f"?{mark}")

    def reopened(self) -> bool:
        """Whether the service said it writes a new FILE (SIGUSR1 after the file was moved)."""
        return self.log.exists() and REOPENED.encode() in self.log.read_bytes()


class _Shared:
    """One service for the module's tests that need nothing but its start (a start is most of such a
    test's cost): each gets it with ``logs/`` holding ``hgwire.log`` alone, empty, and written by the
    service, else a service started anew."""

    def __init__(self, factory: pytest.TempPathFactory) -> None:
        self.factory, self.stack, self.resets = factory, ExitStack(), 0
        self.current: Logging | None = None

    def fresh(self) -> Logging:
        if self.current is not None and not self._reset(self.current):
            self.stack.close()
            self.current = None
        if self.current is None:
            self.stack = ExitStack()
            self.current = self.stack.enter_context(_started(self.factory.mktemp("logging")))
        return self.current

    def _reset(self, logging: Logging) -> bool:
        if logging.proc.poll() is not None or not logging.log.is_file():
            return False
        for entry in logging.log.parent.iterdir():
            if entry != logging.log:
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        with open(logging.log, "r+b") as emptied:
            emptied.truncate(0)
        self.resets += 1
        logging.request(f"?reset{self.resets}")
        if not logging.logged(logging.log, f"GET /?reset{self.resets} "):
            return False  # (writing a file moved away: a test that failed)
        with open(logging.log, "r+b") as emptied:
            emptied.truncate(0)
        return True


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Shared]:
    service = _Shared(tmp_path_factory)
    try:
        yield service
    finally:
        service.stack.close()


@pytest.fixture
def logging(shared: _Shared) -> Logging:
    return shared.fresh()


@contextmanager
def _started(tmp_path: Path, existing_mode: int | None = None, *options: str) -> Iterator[Logging]:
    """The service logging to ``logs/hgwire.log`` (made first with ``existing_mode``, when given),
    with hgwire's ``options`` besides."""
    log = tmp_path / "logs" / "hgwire.log"
    log.parent.mkdir(exist_ok=True)
    if existing_mode is not None:
        log.touch()
        log.chmod(existing_mode)
    proc = subprocess.Popen([TWISTD, "-n", "--pidfile=", "--logfile", str(log), "hgwire", "--root",
                             str(tmp_path / "repos"), "--http", "tcp:0:interface=127.0.0.1", *options],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 90  # (a start takes over 30 s on a 2-core host at load 24)
        found = None
        while found is None:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text() if log.exists() else ""
            time.sleep(0.05)
            text = log.read_text() if log.exists() else ""
            # (the last line of the start, once its signal handlers are in place)
            found = re.search(r"serves http at http://127\.0\.0\.1:(\d+)/", text) if "serves repositories" in text else None
        yield Logging(proc, log, int(found.group(1)))
    finally:
        proc.terminate()
        proc.wait(30)


def test_copytruncate_leaves_no_nul_bytes(logging: Logging) -> None:
    """The file was truncated under a descriptor that went on writing at its old offset: the file
    began with as many NUL bytes as it had held."""
    logging.request("?before")
    assert logging.logged(logging.log, "GET /?before")
    shutil.copyfile(logging.log, f"{logging.log}-1")
    with open(logging.log, "r+b") as truncated:  # logrotate's copytruncate
        truncated.truncate(0)
    logging.request("?after")
    assert logging.logged(logging.log, "GET /?after")
    written = logging.log.read_bytes()
    assert b"\0" not in written and written.startswith(b"20"), written[:80]
    assert b"GET /?before" not in written


def test_sigusr1_after_a_rename_writes_a_new_file(logging: Logging) -> None:
    """logrotate without ``create`` renames FILE and sends SIGUSR1: twistd's rotation gave up (FILE
    was gone) and the service went on writing the renamed file."""
    moved = logging.log.with_name("hgwire.log-20261206")
    logging.log.rename(moved)
    logging.signal_and_mark("renamed", logging.reopened)
    assert logging.logged(logging.log, "GET /?renamed"), "nothing was written to a new FILE"
    assert "GET /?renamed" not in moved.read_text()
    assert "was moved or removed; hgwire writes a new one there" in logging.log.read_text()
    assert not logging.log.with_name("hgwire.log.1").exists()


def test_sigusr1_after_logrotate_create_keeps_logrotate_names(logging: Logging) -> None:
    """With ``create``, logrotate's new empty FILE was renamed FILE.1 by twistd's rotation (and an
    earlier FILE.1 FILE.2): an empty file more at each rotation, under twistd's names."""
    moved = logging.log.with_name("hgwire.log-20261206")
    logging.log.rename(moved)
    logging.log.touch()
    logging.signal_and_mark("created", logging.reopened)
    assert logging.logged(logging.log, "GET /?created")
    assert not logging.log.with_name("hgwire.log.1").exists()
    assert sorted(p.name for p in logging.log.parent.iterdir()) == ["hgwire.log", "hgwire.log-20261206"]


def test_sigusr1_alone_still_rotates_as_twistd_does(logging: Logging) -> None:
    logging.request("?first")
    assert logging.logged(logging.log, "GET /?first")
    rotated = logging.log.with_name("hgwire.log.1")
    logging.signal_and_mark("second", rotated.exists)
    assert logging.logged(logging.log, "GET /?second")
    assert "GET /?first" in rotated.read_text() and "GET /?first" not in logging.log.read_text()


def test_sigusr1_without_a_log_file_does_not_end_the_service(tmp_path: Path) -> None:
    """``-n`` logging to standard output (the journal): SIGUSR1's default action ended the process
    at once (status 138), clones and pushes with it."""
    log = tmp_path / "out.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([TWISTD, "-n", "--pidfile=", "hgwire", "--root", str(tmp_path / "repos"),
                                 "--http", "tcp:0:interface=127.0.0.1"], stdout=out, stderr=subprocess.STDOUT,
                                cwd=tmp_path)
    try:
        deadline = time.monotonic() + 30
        while "serves repositories" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 10
        while "nothing to rotate or reopen; hgwire goes on serving" not in log.read_text():
            assert proc.poll() is None, (proc.returncode, log.read_text())
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        port = re.search(r"serves http at http://127\.0\.0\.1:(\d+)/", log.read_text())
        assert port is not None
        with urllib.request.urlopen(f"http://127.0.0.1:{port.group(1)}/", timeout=10) as answer:
            assert answer.status == 200
    finally:
        proc.terminate()
        proc.wait(30)


def test_sighup_after_logrotate_create_writes_the_new_file(logging: Logging) -> None:
    """logrotate's ``create`` with ``postrotate kill -HUP`` (what rsyslog and many daemons take):
    SIGHUP reloaded the rest and left the service writing the renamed file for ever, the new FILE
    empty.  It now reopens FILE as SIGUSR1 does, and a SIGHUP with FILE in place rotates nothing."""
    reloaded = "there is no --config file or ssl: listener to read again"
    logging.proc.send_signal(signal.SIGHUP)
    assert logging.logged(logging.log, reloaded)
    assert sorted(p.name for p in logging.log.parent.iterdir()) == ["hgwire.log"]  # not rotated
    moved = logging.log.with_name("hgwire.log-20261207")
    logging.log.rename(moved)
    logging.log.touch()
    logging.proc.send_signal(signal.SIGHUP)
    assert logging.logged(logging.log, reloaded), "the reload's line went to the moved file"
    logging.request("?after-hup")
    assert logging.logged(logging.log, "GET /?after-hup")
    assert "GET /?after-hup" not in moved.read_text()
    assert "SIGHUP: the log file" in logging.log.read_text()
    assert sorted(p.name for p in logging.log.parent.iterdir()) == ["hgwire.log", "hgwire.log-20261207"]


@pytest.mark.parametrize("signal_sent", [signal.SIGHUP, signal.SIGUSR1], ids=["SIGHUP", "SIGUSR1"])
def test_logrotate_create_keeps_its_mode(tmp_path: Path, signal_sent: signal.Signals) -> None:
    """``create 0600`` (logs of who pushed what from where kept from other users): twistd gave each
    file it opened the mode the file had when it started (here 0644), so the reopened file was made
    readable by everyone again."""
    with _started(tmp_path, existing_mode=0o644) as logging:
        moved = logging.log.with_name("hgwire.log-20261207")
        logging.log.rename(moved)
        logging.log.touch()
        logging.log.chmod(0o600)  # logrotate's create 0600
        logging.proc.send_signal(signal_sent)
        assert logging.logged(logging.log, "was moved or removed; hgwire writes a new one there")
        logging.request("?after")
        assert logging.logged(logging.log, "GET /?after")
        assert oct(logging.log.stat().st_mode & 0o777) == oct(0o600)


def test_log_keep_bounds_the_rotated_files_and_log_size_sets_when(tmp_path: Path) -> None:
    """twistd rotates FILE at 1,000,000 bytes and deletes none of FILE.1, FILE.2…: the log's
    directory grew for ever unless logrotate was set up as well.  ``--log-keep 2`` keeps FILE.1 and
    FILE.2 (the older deleted at each rotation), ``--log-size`` sets the size that rotates (``3K``:
    3,072 bytes, as logrotate reads ``size 3K``)."""
    with _started(tmp_path, None, "--log-size", "3K", "--log-keep", "2") as logging:
        for n in range(60):  # about 250 bytes a request: a rotation every dozen, five in all
            logging.request(f"?request{n}")
        assert logging.logged(logging.log, "GET /?request59")
        names = sorted(p.name for p in logging.log.parent.iterdir())
        assert names == ["hgwire.log", "hgwire.log.1", "hgwire.log.2"], names
        assert "GET /?request0 " not in "".join(p.read_text() for p in logging.log.parent.iterdir())
        assert logging.log.stat().st_size < 3072 + 1000
        assert 3072 - 1000 < logging.log.with_name("hgwire.log.1").stat().st_size < 3072 + 1000


def test_log_size_0_never_rotates_by_size(tmp_path: Path) -> None:
    """Under logrotate, twistd's own rotation at 1,000,000 bytes made FILE.1, FILE.2… besides
    logrotate's names; ``--log-size 0`` leaves rotation to logrotate (SIGUSR1 still rotates)."""
    with _started(tmp_path, None, "--log-size", "0") as logging:
        # a line longer than the default's million bytes: twistd would rotate after it
        logging.request("?" + "x" * 4000)
        for n in range(400):
            logging.request(f"?request{n}-" + "y" * 3000)
        assert logging.logged(logging.log, "GET /?request399-")
        assert sorted(p.name for p in logging.log.parent.iterdir()) == ["hgwire.log"]
        assert logging.log.stat().st_size > 1_000_000


@pytest.mark.parametrize("keep", ["0", "2"])
def test_rotation_leaves_names_that_are_not_its_own(tmp_path: Path, keep: str) -> None:
    """twistd counted every ``FILE.*`` ending in a number as its own: with ``--log-keep 2``
    logrotate's ``FILE.20261201`` (``dateext`` with ``dateformat .%Y%m%d``) was deleted at the first
    rotation, and without it renamed ``FILE.20261202`` at each; a ``FILE.9`` after a gap the same.
    Only ``FILE.1``, ``FILE.2``… unbroken from 1 are its rotations."""
    logs = tmp_path / "logs"
    logs.mkdir()
    strangers = {"hgwire.log.20261201": "logrotate's", "hgwire.log.9": "after a gap", "hgwire.log.1.gz": "gz",
                 "hgwire.log.bak": "a copy", "hgwire.log.old.3": "an old one"}
    for name, text in strangers.items():
        (logs / name).write_text(text)
    with _started(tmp_path, None, "--log-size", "3000", "--log-keep", keep) as logging:
        for n in range(60):  # about 250 bytes a request: a rotation every dozen, five in all
            logging.request(f"?request{n}")
        assert logging.logged(logging.log, "GET /?request59")
        rotated = sorted(p.name for p in logs.iterdir() if p.name not in strangers)
        assert rotated[:3] == ["hgwire.log", "hgwire.log.1", "hgwire.log.2"], rotated
        assert len(rotated) == 3 if keep == "2" else len(rotated) >= 4, rotated
        assert {name: (logs / name).read_text() for name in strangers if (logs / name).exists()} == strangers


def test_a_directory_among_the_rotations_loses_no_line(tmp_path: Path) -> None:
    """A directory ``FILE.1`` (or ``FILE.N`` where a rotation was to go): twistd's rotation raised at
    every line once FILE reached its size, before writing it, so every later line was lost without a
    word.  FILE now goes on growing, with one line saying what is in the way."""
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "hgwire.log.1").mkdir()
    with _started(tmp_path, None, "--log-size", "3000", "--log-keep", "2") as logging:
        for n in range(30):
            logging.request(f"?request{n}")
        assert logging.logged(logging.log, "GET /?request29"), "lines were lost"
        assert logging.logged(logging.log, "hgwire.log.1 is not a file (a directory or a link) and not one of its")
        assert (logs / "hgwire.log.1").is_dir()
        assert sorted(p.name for p in logs.iterdir()) == ["hgwire.log", "hgwire.log.1"]
        text = logging.log.read_text()
        assert text.count("was not rotated") < 5, text


def test_log_keep_without_a_log_file_says_it_changes_nothing(tmp_path: Path) -> None:
    """``-n`` to the journal with ``--log-keep 5``: nothing was rotated nor kept, and nothing said so
    (an operator believed the log bounded)."""
    log = tmp_path / "out.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([TWISTD, "-n", "--pidfile=", "hgwire", "--root", str(tmp_path / "repos"),
                                 "--http", "tcp:0:interface=127.0.0.1", "--log-keep", "5"], stdout=out,
                                stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 30
        while "serves repositories" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(30)
    assert "--log-size and --log-keep bound twistd's --logfile alone, and there is none" in log.read_text()
