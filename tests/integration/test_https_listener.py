"""The ``ssl:`` HTTP listener's TLS as real clients meet it: ALPN and the certificate chain."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Client, RunningServer

pytest.importorskip("OpenSSL", reason="ssl: endpoints need pyOpenSSL (twisted[tls])")


def test_clients_that_do_not_offer_http_1_1_over_alpn_are_served(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> None:
    """``curl --http1.0`` offers only ``http/1.0`` over ALPN and an HTTP/2 client only ``h2``: their
    handshakes failed with an "internal error" alert.  Now no protocol is chosen and they go on over
    HTTP/1.x, as with lighttpd and ``hg serve``."""
    from tests.integration.test_hg_http import _tls_files

    ca, key, cert = _tls_files(tmp_path)
    server = make_server("fs", http=[f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"])
    port = server.port("http")
    curl = client.run("curl", "-sS", "--http1.0", "--cacert", ca, "-o", "/dev/null", "-w", "%{http_code}",
                      f"https://127.0.0.1:{port}/", check=False)
    assert curl.returncode == 0 and curl.stdout == "200", curl.stderr
    request = b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"
    s_client = client.run("openssl", "s_client", "-quiet", "-alpn", "h2", "-CAfile", ca, "-verify_return_error",
                          "-connect", f"127.0.0.1:{port}", input=request, check=False, timeout=30)
    assert s_client.stdout.startswith("HTTP/1.0 200 ") or s_client.stdout.startswith("HTTP/1.1 200 "), \
        (s_client.stdout[:200], s_client.stderr)
    both = client.run("curl", "-sS", "--http1.1", "--cacert", ca, "-o", "/dev/null", "-w", "%{http_code}",
                      f"https://127.0.0.1:{port}/", check=False)
    assert both.stdout == "200", both.stderr  # http/1.1 offered: chosen
