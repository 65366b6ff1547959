"""An ``http://`` URL at an HTTPS (``ssl:``) listener: answered in plain HTTP, saying what the port
speaks, as nginx answers it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Client, RunningServer, log_events

pytest.importorskip("OpenSSL", reason="ssl: endpoints need pyOpenSSL (twisted[tls])")

TOLD = ("this port speaks HTTPS, not plain HTTP: use an https:// URL for it, or the server's plain HTTP port "
        "for http://")


def test_an_http_url_at_the_https_port_is_told_what_the_port_speaks(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> None:
    """git said "fatal: unable to access …: Empty reply from server" and hg "abort: error: bad HTTP
    status line: ''" (the TLS layer dropped a request that was no handshake); now both show the
    400's sentence, and HTTPS on the port is served as before."""
    from twisted.logger import formatEvent

    from tests.integration.test_hg_http import _tls_files

    ca, key, cert = _tls_files(tmp_path)
    server = make_server("fs", http=[f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"])
    port = server.port("http")
    with log_events() as events:
        git = client.git("ls-remote", f"http://127.0.0.1:{port}/r.git", check=False, timeout=20)
        hg = client.hg("identify", f"http://127.0.0.1:{port}/r", check=False, timeout=20)
    assert git.returncode == 128 and f"remote: {TOLD}; nothing was done" in git.stderr.splitlines(), git.stderr
    assert hg.returncode == 255 and f"abort: HTTP Error 400: {TOLD}" in hg.stderr.splitlines(), hg.stderr
    logged = [m for e in list(events) if "plain HTTP on the HTTPS listener" in (m := formatEvent(e))]
    assert len(logged) == 2 and "(the client used http:// for an https:// port)" in logged[0], logged
    curl = client.run("curl", "-sS", "--cacert", ca, "-o", "/dev/null", "-w", "%{http_code}",
                      f"https://127.0.0.1:{port}/", check=False)
    assert curl.stdout == "200", curl.stderr
