"""``/.metrics`` counts a connection the stop cut once ``--shutdown-grace`` was over as an error of
kind ``shutdown``: it was counted ``client_gone``, so an alert on clients leaving mid-transfer
fired at every restart that cut a slow clone, though no client had left.  An hg file or archive
downloaded over HTTP, and a Git LFS download, so cut (or left by its client) counted nothing at all."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import bcrypt

from gateway import metrics
from tests.conftest import LOOPBACK, Client, log_events, start_server, stop_server
from tests.integration.test_git_client_gone import _big_repository


def _wait(what: str, ready: Any) -> None:
    deadline = time.monotonic() + 30
    while not ready():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def _errors(transport: str) -> Counter[str]:
    with metrics._lock:
        return Counter({kind: n for (t, kind), n in metrics.ERRORS.items() if t == transport})


def test_clones_cut_at_the_grace_s_end_count_as_shutdown_not_client_gone(
        reactor: Any, client: Client, tmp_path: Path) -> None:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("alice:" + bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode() + "\n")
    server = start_server(reactor, "fs", tmp_path / "root", git=[LOOPBACK], http=[LOOPBACK],
                          htpasswd=str(htpasswd), shutdown_grace=0)
    stopped = False
    try:
        _big_repository(client, server.root / "big.git")
        hg_repo = server.root / "r"
        client.hg("init", str(hg_repo))
        (hg_repo / "big").write_bytes(os.urandom(8_000_000))
        client.hg("commit", "-q", "-A", "-m", "big", "-u", "t", cwd=hg_repo)
        head = subprocess.run(["git", "-C", str(server.root / "big.git"), "rev-parse", "HEAD"], check=True,
                              capture_output=True, text=True).stdout.strip()
        body = f"0032want {head}\n00000009done\n".encode()
        git = socket.create_connection(("127.0.0.1", server.port("git")), timeout=30)
        request = b"git-upload-pack /big.git\0host=x\0"
        git.sendall(b"%04x" % (len(request) + 4) + request + body)
        web = socket.create_connection(("127.0.0.1", server.port("http")), timeout=30)
        web.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        auth = base64.b64encode(b"alice:pw").decode()
        web.sendall((f"POST /big.git/git-upload-pack HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\n"
                     "Content-Type: application/x-git-upload-pack-request\r\n"
                     f"Content-Length: {len(body)}\r\n\r\n").encode() + body)
        page = socket.create_connection(("127.0.0.1", server.port("http")), timeout=30)
        page.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        page.sendall(b"GET /r/raw-file/tip/big HTTP/1.1\r\nHost: x\r\n\r\n")
        assert git.recv(4) and web.recv(100) and page.recv(100)  # each answers; no client reads on
        before = {t: _errors(t) for t in ("git", "http")}
        with log_events() as events:
            stop_server(reactor, server)
            stopped = True
            _wait("both lines logged", lambda: sum("cut at shutdown" in str(e.get("outcome")) for e in events) >= 3)
        after = {t: _errors(t) for t in ("git", "http")}
        for transport, cut in (("git", 1), ("http", 2)):
            assert after[transport]["shutdown"] - before[transport]["shutdown"] == cut, (transport, before, after)
            assert after[transport]["client_gone"] == before[transport]["client_gone"], (transport, before, after)
        for sock in (git, web, page):
            sock.close()
    finally:
        if not stopped:
            stop_server(reactor, server)
    assert os.path.isdir(server.root / "big.git")
