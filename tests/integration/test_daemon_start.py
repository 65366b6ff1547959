"""Starting the service as an init system or an operator does: listening before twistd drops its
privileges (``--uid``/``--gid``), and a daemonized start (no ``-n``) that fails says so by its
exit status."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LOOPBACK, VENV_BIN

TWISTD = f"{VENV_BIN}/twistd"


def test_listeners_listen_in_the_privileged_start(reactor: Any, tmp_path: Path) -> None:
    """twistd calls ``privilegedStartService``, then switches to ``--uid``/``--gid``, then calls
    ``startService``: a listener that only listened in the latter could not bind a port below 1024
    (22, 80, 443) under ``twistd --uid git``, "Permission denied" for each."""
    from twisted.internet.threads import blockingCallFromThread

    from backends import load_backend
    from gateway.config import ServiceConfig
    from gateway.service import build_service

    root = tmp_path / "root"
    root.mkdir()
    config = ServiceConfig(backend=load_backend("fs", str(root)), root=str(root), git=[LOOPBACK],
                           shutdown_grace=0)
    service: Any = build_service(config)

    def privileged() -> Any:
        service.privilegedStartService()
        return service.listener("git").port

    port = blockingCallFromThread(reactor, privileged)
    try:
        assert port is not None, "the listener had not bound its port before the privileges would be dropped"
        bound = port.getHost().port
        blockingCallFromThread(reactor, service.startService)  # (after the switch) does not listen again
        assert service.listener("git").port is port
        with socket.create_connection(("127.0.0.1", bound), timeout=5):
            pass
    finally:
        blockingCallFromThread(reactor, service.stopService)


def test_a_daemonized_start_that_cannot_listen_exits_1(tmp_path: Path) -> None:
    """``twistd hgwire`` without ``-n`` (how a SysV script or a ``Type=forking`` unit starts it)
    returned 0 when a port was taken: the daemon's line said why in the log, then it ended, and the
    init system believed it started.  Now the command itself exits 1 and points at the log."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        endpoint = f"tcp:{taken.getsockname()[1]}:interface=127.0.0.1"
        pidfile, logfile = tmp_path / "hgwire.pid", tmp_path / "hgwire.log"
        result = subprocess.run([TWISTD, "--pidfile", str(pidfile), "--logfile", str(logfile), "hgwire",
                                 "--root", str(tmp_path / "repos"), "--git", endpoint],
                                capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path)
    deadline = time.monotonic() + 10
    while pidfile.exists() and time.monotonic() < deadline:  # (a daemon that started would keep it)
        pid = int(pidfile.read_text() or 0)
        try:
            os.kill(pid, 0)
        except (ProcessLookupError, ValueError):
            break
        time.sleep(0.1)
    log = logfile.read_text()
    assert result.returncode == 1, (result.stdout, result.stderr, log)
    assert "An error has occurred" in result.stderr and "log file" in result.stderr, result.stderr
    assert f"cannot listen on {endpoint}: Address already in use" in log, log
    assert "Traceback" not in log and "hgwire serves" not in log, log


def _parsed_as_twistd(*argv: str) -> Any:
    """twistd's own command line parsed as ``twistd`` parses it (its options, then the plugin's),
    without a pid file (the default, ./twistd.pid, would be claimed by the test's own process for
    its whole run: ``gateway.start_locks``)."""
    from twisted.scripts._twistd_unix import ServerOptions

    config = ServerOptions()  # type: ignore[no-untyped-call]
    config.parseOptions(["--pidfile=", *argv])  # type: ignore[no-untyped-call]
    return config


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root, as twistd --uid does")
@pytest.mark.parametrize("switch", [["--uid", "nobody", "--gid", "nogroup"], ["--uid", "nobody"]])
def test_files_made_at_a_root_start_are_the_service_users(tmp_path: Path, switch: list[str]) -> None:
    """``twistd --uid git --gid git hgwire`` started as root made ROOT, its SSH host key and its Git
    LFS token key as root (the keys mode 600) before it switched: a later start as git (systemd
    ``User=git``) failed "host key … cannot be read or made (Permission denied)".  They are now
    made the user's (without ``--gid``, the user's own group, as twistd switches to), the keys
    still mode 600."""
    import pwd

    nobody = pwd.getpwnam("nobody")
    root = tmp_path / "repos"
    config = _parsed_as_twistd(*switch, "hgwire", "--root", str(root), "--ssh", LOOPBACK, "--http", LOOPBACK)
    config.loadedPlugins["hgwire"].makeService(config.subOptions)
    made = {path.name: path.stat() for path in (root, root / ".ssh_host_ed25519_key", root / ".lfs_token_key")}
    assert {name: (st.st_uid, st.st_gid) for name, st in made.items()} == dict.fromkeys(
        made, (nobody.pw_uid, nobody.pw_gid))
    assert made[".ssh_host_ed25519_key"].st_mode & 0o777 == 0o600
    assert made[".lfs_token_key"].st_mode & 0o777 == 0o600


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to make files")
def test_files_made_without_a_switch_stay_the_starting_users(tmp_path: Path) -> None:
    """Without ``--uid`` (or when already that user) nothing is given away."""
    root = tmp_path / "repos"
    config = _parsed_as_twistd("hgwire", "--root", str(root), "--ssh", LOOPBACK, "--http", LOOPBACK)
    config.loadedPlugins["hgwire"].makeService(config.subOptions)
    for path in (root, root / ".ssh_host_ed25519_key", root / ".lfs_token_key"):
        assert path.stat().st_uid == 0, path


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root, to give files away")
def test_keys_another_user_owns_say_what_to_run(tmp_path: Path) -> None:
    """Keys a root start made before they were given to the service's user (or any other user's
    keys) were "cannot be read or made (Permission denied); check the path": the start now says
    whose they are and the ``chown`` to run.  (Run as root without the rights to read any file,
    so the keys, ``nobody``'s and mode 600, are unreadable to it as root's are to ``git``.)"""
    import pwd

    nobody = pwd.getpwnam("nobody")
    root = tmp_path / "repos"
    config = _parsed_as_twistd("hgwire", "--root", str(root), "--ssh", LOOPBACK, "--http", LOOPBACK)
    config.loadedPlugins["hgwire"].makeService(config.subOptions)
    host_key, token_key = root / ".ssh_host_ed25519_key", root / ".lfs_token_key"
    for key in (host_key, token_key):
        os.chown(key, nobody.pw_uid, nobody.pw_gid)
    without_root_reads = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]
    command = [*without_root_reads, TWISTD, "-n", "--pidfile=", "hgwire", "--root", str(root), "--http", LOOPBACK]
    failed = subprocess.run([*command, "--ssh", LOOPBACK], capture_output=True, text=True, timeout=60, check=False,
                            cwd=tmp_path)
    assert failed.returncode != 0
    assert (f"host key {host_key} cannot be read by root (Permission denied): it is nobody's; give it to the "
            f"service's user (chown root {host_key}), keeping it mode 600") in failed.stderr, failed.stderr
    proc = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    seen = ""
    try:
        while "hgwire serves http" not in seen and (line := proc.stdout.readline()):
            seen += line
    finally:
        proc.terminate()
        proc.wait(15)
    assert (f"{token_key} cannot sign Git LFS tokens (Permission denied); this process signs its own, which other "
            f"processes and a restart do not take: give it to the service's user (chown root {token_key}), "
            "keeping it mode 600") in seen, seen
