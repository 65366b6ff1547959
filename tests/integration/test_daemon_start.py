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
