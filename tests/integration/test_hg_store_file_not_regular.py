"""A served hg repository whose ``.hg/store/requires`` (a file hg writes itself) is a FIFO: the
worker opening it waited for a writer for ever.  hgwire refuses that repository at once, over HTTP
and SSH, with one sentence for the client and the log, and serves the others."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable

from twisted.logger import formatEvent

from tests.conftest import LOOPBACK, Client, RunningServer, SshKeys, log_events, ssh_server_settings


def test_a_store_requires_fifo_is_refused_and_the_others_served(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys) -> None:
    server = make_server("fs", http=[LOOPBACK], **ssh_server_settings(ssh_keys))
    for name in ("fifo", "fine"):
        client.hg("init", str(server.root / name))
    requires = server.root / "fifo" / ".hg" / "store" / "requires"
    requires.unlink()
    os.mkfifo(requires)
    says = ("the repository's .hg/store/requires is a FIFO, where hgwire reads only regular files, so it does not "
            "serve the repository; tell the server's operator")
    stop = threading.Event()

    def writer() -> None:  # (code that still waits on the open gets an empty file, rather than hanging)
        while not stop.is_set():
            with contextlib.suppress(OSError), open(requires, "wb"):
                pass

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    ssh = ("--config", f"ui.ssh={ssh_keys.command(server.port('ssh'))}")
    ssh_url = f"ssh://alice@127.0.0.1:{server.port('ssh')}/"
    try:
        with log_events() as events:
            over_http = client.hg("id", "-r", "null", server.url("http", "fifo"), check=False, timeout=60)
            over_ssh = client.hg(*ssh, "id", "-r", "null", ssh_url + "fifo", check=False, timeout=60)
            server.settled()
    finally:
        stop.set()
        while thread.is_alive():
            fd = os.open(requires, os.O_RDONLY | os.O_NONBLOCK)
            thread.join(timeout=0.05)
            os.close(fd)
    assert over_http.returncode != 0 and says in over_http.stderr, over_http.stderr
    assert str(requires.parent.parent.parent) not in over_http.stderr + over_ssh.stderr, "where the server keeps it"
    assert over_ssh.returncode != 0 and f"remote: abort: {says}" in over_ssh.stderr, over_ssh.stderr
    logged = [formatEvent(event) for event in events]
    assert sum(says in line for line in logged) >= 2, "the operator's log names each refusal"

    assert client.hg("id", "-r", "null", server.url("http", "fine")).stdout.strip() == "000000000000"
    assert client.hg(*ssh, "id", "-r", "null", ssh_url + "fine").stdout.strip() == "000000000000"
