"""``ssl:…:clientCA=FILE:clientCRL=FILE``: the revocation lists of an operator's small CA, so that a
certificate it revoked is refused at the handshake with the words git and hg show for a refused
certificate (as lighttpd's ``ssl.ca-crl-file`` refuses it), read again on SIGHUP; and
``clientCertificate=optional``, which lets in a client without a certificate.

Before, no revocation list was read (a revoked certificate got in until its CA was replaced) and a
certificate was required of every client or of none."""

from __future__ import annotations

import datetime
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.conftest import VENV_BIN, Client, RunningServer, log_events
from tests.integration.test_https_client_certificates import _ca, _client

pytest.importorskip("OpenSSL", reason="ssl: endpoints need pyOpenSSL (twisted[tls])")

CA = tuple[Path, ec.EllipticCurvePrivateKey, x509.Name]


def _crl(path: Path, ca: CA, revoked: Sequence[Path], *, out_of_date: bool = False,
         encoding: serialization.Encoding = serialization.Encoding.PEM) -> None:
    """``ca``'s revocation list of the certificates in ``revoked`` (their PEM files), in ``path``."""
    now = datetime.datetime.now(datetime.UTC)
    last = now - datetime.timedelta(days=10 if out_of_date else 0, hours=1)
    builder = (x509.CertificateRevocationListBuilder().issuer_name(ca[2]).last_update(last)
               .next_update(last + datetime.timedelta(days=7)))
    for cert_path in revoked:
        serial = x509.load_pem_x509_certificate(cert_path.read_bytes()).serial_number
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(last).build())
    path.write_bytes(builder.sign(ca[1], hashes.SHA256()).public_bytes(encoding))


class Setup:
    """A listener that requires (or, ``optional``, asks for) certificates of the clients' CA, whose
    list revokes mallory's; alice's is good."""

    def __init__(self, make_server: Callable[..., RunningServer], client: Client, tmp_path: Path,
                 optional: bool = False) -> None:
        from tests.integration.test_hg_http import _tls_files

        pki = tmp_path / "pki"
        pki.mkdir()
        self.server_ca, key, cert = _tls_files(pki)
        self.ca = _ca(pki, "clients CA")
        self.alice = _client(pki, "alice", self.ca)
        self.mallory = _client(pki, "mallory", self.ca)
        self.crl = pki / "clients.crl"
        _crl(self.crl, self.ca, [self.mallory[0]])
        mode = ":clientCertificate=optional" if optional else ""
        endpoint = f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}:clientCA={self.ca[0]}" \
                   f":clientCRL={self.crl}{mode}"
        self.server = make_server("fs", http=[endpoint])
        self.client = client
        self.base = f"https://127.0.0.1:{self.server.port('http')}"
        self.client.git("init", "-q", "--bare", str(self.server.root / "g.git"))
        self.client.hg("init", str(self.server.root / "h"))

    def git(self, certificate: tuple[Path, Path] | None) -> subprocess.CompletedProcess[str]:
        mine = {"GIT_SSL_CERT": str(certificate[0]), "GIT_SSL_KEY": str(certificate[1])} if certificate else {}
        return self.client.git("ls-remote", f"{self.base}/g.git", check=False,
                               env={"GIT_SSL_CAINFO": str(self.server_ca), **mine})

    def hg(self, certificate: tuple[Path, Path] | None) -> subprocess.CompletedProcess[str]:
        mine = (["--config", f"auth.x.prefix={self.base}", "--config", f"auth.x.cert={certificate[0]}",
                 "--config", f"auth.x.key={certificate[1]}"] if certificate else [])
        return self.client.run(f"{VENV_BIN}/hg", "--config", f"web.cacerts={self.server_ca}", *mine, "id",
                               f"{self.base}/h", check=False)


def _said(events: list[dict[str, Any]]) -> list[str]:
    return [str(e.get("log_format", "")).format(**e) for e in events if str(e.get("log_format", "")).startswith("TLS")]


REFUSED_BY_GIT = "GnuTLS recv error (-12): A TLS fatal alert has been received."


def test_a_revoked_certificate_is_refused_at_the_handshake_and_a_sighup_reads_the_list_again(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path, reactor: Any) -> None:
    from twisted.internet.threads import blockingCallFromThread

    setup = Setup(make_server, client, tmp_path)
    assert setup.git(setup.alice).returncode == 0
    assert setup.hg(setup.alice).returncode == 0
    with log_events() as events:
        git = setup.git(setup.mallory)
        hg = setup.hg(setup.mallory)
    assert git.returncode == 128 and REFUSED_BY_GIT in git.stderr, git.stderr
    assert hg.returncode == 255 and "sslv3 alert certificate revoked" in hg.stderr, hg.stderr  # as lighttpd's
    assert any("the client certificate CN=mallory,O=Example: it is revoked (the clientCRL= file lists it)" in line
               for line in _said(events)), _said(events)

    _crl(setup.crl, setup.ca, [setup.mallory[0], setup.alice[0]], encoding=serialization.Encoding.DER)  # DER too
    blockingCallFromThread(reactor, setup.server.service.listener("http").reload_tls)
    refused = setup.hg(setup.alice)
    assert refused.returncode == 255 and "certificate revoked" in refused.stderr, refused.stderr

    _crl(setup.crl, setup.ca, [], out_of_date=True)  # OpenSSL refuses every client of an out-of-date list
    with log_events() as events:
        blockingCallFromThread(reactor, setup.server.service.listener("http").reload_tls)
        stale = setup.hg(setup.alice)
    assert stale.returncode == 255 and "certificate expired" in stale.stderr, stale.stderr
    warned = [str(e.get("log_format", "")).format(**e) for e in events]
    assert any("the revocation list of CN=clients CA,O=Example in the clientCRL= file" in line
               and "is out of date since" in line for line in warned), warned
    assert any("the revocation list of its CA in the clientCRL= file is out of date" in line
               for line in _said(events)), _said(events)

    _crl(setup.crl, setup.ca, [])
    blockingCallFromThread(reactor, setup.server.service.listener("http").reload_tls)
    assert setup.git(setup.mallory).returncode == 0  # no longer listed
    setup.crl.write_text("not a list\n")
    with log_events() as events:
        blockingCallFromThread(reactor, setup.server.service.listener("http").reload_tls)
    said = [str(e.get("log_format", "")).format(**e) for e in events if "read again" in str(e.get("log_format"))]
    assert said and "holds no revocation list" in said[0] and "goes on with the ones it had" in said[0], said
    assert setup.git(setup.mallory).returncode == 0


def test_an_optional_client_certificate_lets_in_a_client_without_one(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> None:
    setup = Setup(make_server, client, tmp_path, optional=True)
    with log_events() as events:
        assert setup.git(None).returncode == 0
        assert setup.hg(None).returncode == 0
        assert setup.git(setup.alice).returncode == 0
    access = [e for e in events if e.get("log_namespace") == "gateway.http.access"]
    assert {e["client_certificate"] for e in access} == {None, "CN=alice,O=Example"}, access
    revoked = setup.hg(setup.mallory)  # one presented is checked all the same
    assert revoked.returncode == 255 and "certificate revoked" in revoked.stderr, revoked.stderr


def test_revocation_mistakes_stop_the_start_with_one_line_each(tmp_path: Path) -> None:
    from tests.integration.test_hg_http import _tls_files

    _, key, cert = _tls_files(tmp_path)
    ca = _ca(tmp_path, "clients CA")
    other = _ca(tmp_path, "other CA")
    foreign = tmp_path / "other.crl"
    _crl(foreign, other, [])
    base = f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"
    told = {
        f"{base}:clientCRL={foreign}": "clientCRL= is given without clientCA=; add clientCA=FILE",
        f"{base}:clientCA={ca[0]}:clientCRL={foreign}": f"revocation list 1 of the clientCRL= file {foreign} (of "
                                                        "CN=other CA,O=Example) is not signed by a CA of the clientCA= "
                                                        "file; put in clientCRL=",
        f"{base}:clientCA={ca[0]}:clientCRL={key}": f"the clientCRL= file {key} holds no revocation list; check",
        f"{base}:clientCA={ca[0]}:clientCertificate=maybe": "clientCertificate=maybe is neither required nor optional",
        f"{base}:clientCA={ca[0]}:crl={foreign}": "ssl: has no option crl=; to refuse the client certificates your "
                                                  "CA revoked, write clientCRL=FILE",
    }
    listeners = [arg for endpoint in told for arg in ("--http", endpoint)]
    result = subprocess.run([f"{VENV_BIN}/twistd", "-n", "--pidfile", "", "hgwire", "--root", str(tmp_path / "repos"),
                             *listeners], capture_output=True, text=True, timeout=60, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    for endpoint, words in told.items():
        assert f"cannot listen on {endpoint}: {words}" in output, (endpoint, output)
    assert "Traceback" not in output and "hgwire serves" not in output, output
