"""The SSH host key's fingerprint at the start: what a user compares at ssh's first-connection
prompt ("ED25519 key fingerprint is SHA256:…"), which the log did not give (sshd's install prints
it with ``ssh-keygen -A``; an operator had to know to run ``ssh-keygen -lf``)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

from tests.conftest import RunningServer, SshKeys, log_events, ssh_server_settings


def test_the_start_logs_each_host_key_s_fingerprint(make_server: Callable[..., RunningServer],
                                                    ssh_keys: SshKeys) -> None:
    from twisted.logger import formatEvent

    with log_events() as events:
        make_server("memory", **ssh_server_settings(ssh_keys))
    listed = subprocess.run(["ssh-keygen", "-lf", str(ssh_keys.host_key)], capture_output=True, text=True,
                            check=True).stdout.split()
    logged = [m for e in list(events) if (m := formatEvent(e)).startswith("SSH host key ")]
    assert logged == [(f"SSH host key {ssh_keys.host_key}: {listed[1]} (ssh-ed25519), the fingerprint ssh shows "
                       "at a client's first connection")], (logged, listed)
