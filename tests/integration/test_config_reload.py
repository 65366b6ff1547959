"""The ``--config`` file read again under the real ``twistd hgwire``: by the 2 s look at its
stamp and by SIGHUP (an operator's ``kill -HUP``, systemd's reload), told to systemd through a
``$NOTIFY_SOCKET`` of the test's own.

An edit followed by a SIGHUP was read twice, the look at the stamp and the signal each putting
the same rules "in force" (two lines, and the reload's work done twice, for one change)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from tests.integration.test_cli import TWISTD, _free_port, read_log, stop_twistd
from tests.integration.test_systemd_notify import Listener, notify  # noqa: F401 - a fixture

FIRST = "anonymous_read = true\n"
SECOND = "anonymous_read = false\n"


def _start(tmp_path: Path, config: Path, notify_address: str) -> subprocess.Popen[str]:
    port = _free_port()
    return subprocess.Popen([TWISTD, "-n", "--pidfile=", "hgwire", "--root", str(tmp_path / "repos"),
                             "--git", f"tcp:{port}:interface=127.0.0.1", "--config", str(config)],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "NOTIFY_SOCKET": notify_address})


def _rewrite(path: Path, text: str) -> None:
    """Write ``text``, its mtime a second on (the look at the stamp sees a new file at once)."""
    path.write_text(text)
    status = path.stat()
    os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns + 1_000_000_000))


def _reload(proc: subprocess.Popen[str], listener: Listener) -> dict[str, str]:
    """SIGHUP, then systemd's two messages of the reload: what the second (READY=1) says."""
    proc.send_signal(signal.SIGHUP)
    listener.wait_for("RELOADING")
    return listener.wait_for("READY")


def test_an_edit_then_a_sighup_puts_the_rules_in_force_once(notify: Listener, tmp_path: Path) -> None:  # noqa: F811
    config = tmp_path / "hgwire.toml"
    config.write_text(FIRST)
    proc = _start(tmp_path, config, notify.address)
    try:
        notify.wait_for("READY")
        _rewrite(config, SECOND)
        read_log(proc, "new rules in force")  # the look at the stamp read it
        _reload(proc, notify)  # then the operator's SIGHUP: the same text, nothing new
        _reload(proc, notify)  # and one more, the file as it was
    finally:
        stop_twistd(proc)
    said = proc.stdout.read() if proc.stdout else ""
    assert "new rules in force" not in said, said


def test_a_refused_reload_says_so_to_systemd(notify: Listener, tmp_path: Path) -> None:  # noqa: F811
    """A SIGHUP that found the file broken ended as every reload, ``READY=1`` with ``serving …``:
    ``systemctl status`` said nothing of the refusal.  Its ``STATUS=`` now says what was refused
    and that the last good rules serve on, and keeps saying it until a good read."""
    config = tmp_path / "hgwire.toml"
    config.write_text(FIRST)
    proc = _start(tmp_path, config, notify.address)
    try:
        notify.wait_for("READY")
        _rewrite(config, "[[repo]\nbroken")
        ready = _reload(proc, notify)
        status = ready["STATUS"]
        assert status.startswith(f"--config refused, the last good rules in force: {config}: "), status
        assert "; serving 1 listener; " in status, status
        _rewrite(config, SECOND)
        ready = _reload(proc, notify)
        assert ready["STATUS"].startswith("serving 1 listener; "), ready
    finally:
        stop_twistd(proc)
    said = proc.stdout.read() if proc.stdout else ""
    assert said.count("keeping the last good rules") == 1, said


def test_a_sighup_that_finds_nothing_new_says_so(notify: Listener, tmp_path: Path) -> None:  # noqa: F811
    """Once the look at the stamp had read an edit, the operator's SIGHUP (``systemctl reload``)
    logged nothing at all of the file, refused or in force: the log after the reload said neither
    that the rules were in force nor that the file was still refused."""
    config = tmp_path / "hgwire.toml"
    config.write_text(FIRST)
    proc = _start(tmp_path, config, notify.address)
    try:
        notify.wait_for("READY")
        _reload(proc, notify)  # (its line is logged before its READY=1)
        _rewrite(config, "[[repo]\nbroken")
        said = read_log(proc, "keeping the last good rules")  # the look at the stamp read it
        _reload(proc, notify)
    finally:
        stop_twistd(proc)
    said += proc.stdout.readlines() if proc.stdout else []
    first = [line for line in said if "SIGHUP: " in line and "is as it was last read" in line]
    assert first and f"SIGHUP: {config} is as it was last read; its rules stay in force" in first[0], said
    after = said[next(n for n, line in enumerate(said) if "keeping the last good rules" in line):]
    again = [line for line in after if "SIGHUP: " in line]
    assert again and (f"SIGHUP: {config} is as it was, still refused, and the last good rules stay in force: "
                      f"{config}: ") in again[0], said
