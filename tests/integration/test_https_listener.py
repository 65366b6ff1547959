"""The ``ssl:`` HTTP listener's TLS as real clients meet it: ALPN and the certificate chain."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

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


def _certificate(subject: str, key: ec.EllipticCurvePrivateKey, issuer: str, issuer_key: ec.EllipticCurvePrivateKey,
                 ca: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False,
            decipher_only=False), critical=True)
    else:
        builder = (builder
                   .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                  critical=False)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False))
    return builder.sign(issuer_key, hashes.SHA256())


def _chain_files(base: Path) -> tuple[Path, Path, Path]:
    """A root CA, an intermediate it signed and a leaf for 127.0.0.1 the intermediate signed:
    (root.pem, key.pem, fullchain.pem), the last the leaf then the intermediate (Let's Encrypt's)."""
    root_key, middle_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    root = _certificate("hgwire test root", root_key, "hgwire test root", root_key, ca=True)
    middle = _certificate("hgwire test intermediate", middle_key, "hgwire test root", root_key, ca=True)
    leaf = _certificate("127.0.0.1", leaf_key, "hgwire test intermediate", middle_key, ca=False)
    paths = base / "root.pem", base / "leaf-key.pem", base / "fullchain.pem"
    paths[0].write_bytes(root.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))
    paths[2].write_bytes(leaf.public_bytes(serialization.Encoding.PEM) + middle.public_bytes(serialization.Encoding.PEM))
    return paths


def test_the_intermediates_after_the_leaf_in_cert_key_are_sent(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> None:
    """``certKey=fullchain.pem`` (the leaf, then its intermediate): only the leaf was sent, and git
    and hg, trusting only the root, could not verify it.  Now the chain follows the leaf, as
    lighttpd and ``hg serve`` send it."""
    root, key, fullchain = _chain_files(tmp_path)
    server = make_server("fs", http=[f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={fullchain}"])
    port = server.port("http")
    work = client.cwd / "src"
    client.git("init", "-q", "--bare", str(server.root / "g.git"))
    client.git("init", "-q", str(work))
    client.git("commit", "-q", "--allow-empty", "-m", "one", cwd=work)
    client.git("--git-dir", str(server.root / "g.git"), "fetch", "-q", str(work), "main:main")
    client.git("-c", f"http.sslCAInfo={root}", "clone", "-q", f"https://127.0.0.1:{port}/g.git",
               str(client.cwd / "g-clone"))
    client.hg("init", str(server.root / "h"))
    client.hg("clone", "-q", "--config", f"web.cacerts={root}", f"https://127.0.0.1:{port}/h",
              str(client.cwd / "h-clone"))


def _tls_server(make_server: Callable[..., RunningServer], tmp_path: Path, **settings: Any) -> tuple[RunningServer, Path]:
    """An ``ssl:`` HTTP listener of its own CA: the server and the CA's file."""
    from tests.integration.test_hg_http import _tls_files

    ca, key, cert = _tls_files(tmp_path)
    return make_server("memory", http=[f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"], **settings), ca


def _tls_connection(server: RunningServer, ca: Path) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=str(ca))
    raw = socket.create_connection(("127.0.0.1", server.port("http")), timeout=30)
    return context.wrap_socket(raw, server_hostname="127.0.0.1")


def _connections(server: RunningServer) -> int:
    """The connections the HTTP listener holds (its guard counts them until they are gone)."""
    return len(server.service.listener("http").factory.protocols)


def _until(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


def test_an_idle_tls_keep_alive_connection_does_not_hold_the_stop(
        make_server: Callable[..., RunningServer], reactor: Any, tmp_path: Path) -> None:
    """One HTTPS keep-alive connection left idle after its answer (a client keeping it for its next
    request) held the stop for the whole 30 s grace: its close waited for the client's TLS
    close_notify, which an idle client does not send.  It is closed once quiet, as a plain one."""
    server, ca = _tls_server(make_server, tmp_path, shutdown_grace=30)
    idle = _tls_connection(server, ca)
    idle.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert idle.recv(100).startswith(b"HTTP/1.1 200 ")
    stopped = threading.Event()
    reactor.callFromThread(lambda: server.service.stopService().addBoth(lambda _: stopped.set()))
    assert stopped.wait(15), "the stop waited for the idle TLS connection"
    assert _connections(server) == 0
    idle.close()


def test_a_tls_connection_hgwire_closes_for_a_timeout_is_gone_without_the_clients_close_notify(
        make_server: Callable[..., RunningServer], tmp_path: Path) -> None:
    """A request whose headers came too slowly (408) and a keep-alive connection idle past
    ``request_timeout`` after its answer were closed over TCP only when the client answered TLS's
    close_notify (it left 45 s later): 2.5 times as long as plain connections, each counted against
    ``max_connections_per_address`` meanwhile.  Now TCP closes them a short grace after."""
    from tests.integration.test_limits import policy_with

    server, ca = _tls_server(make_server, tmp_path, config_file=policy_with(tmp_path, "request_timeout = 1.0\n"))
    slow, idle = _tls_connection(server, ca), _tls_connection(server, ca)
    slow.sendall(b"GET / HTTP/1.1\r\n")
    idle.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert idle.recv(100).startswith(b"HTTP/1.1 200 ")
    assert slow.recv(100).startswith(b"HTTP/1.1 408 ")
    assert _until(lambda: _connections(server) == 0, 15), "TLS kept the connections for the client's close_notify"
    slow.close()
    idle.close()
