"""``ssl:…:clientCA=FILE``: an HTTPS listener that requires a client certificate its operator's CA
signed, met by the real git (``http.sslCert``/``http.sslKey``) and hg (``[auth] x.cert``/``x.key``).

Before, hgwire's ``ssl:`` listeners asked no client for a certificate and refused the option at
the start ("let a TLS proxy in front check them")."""

from __future__ import annotations

import datetime
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bcrypt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.conftest import VENV_BIN, Client, RunningServer, log_events

pytest.importorskip("OpenSSL", reason="ssl: endpoints need pyOpenSSL (twisted[tls])")

PASSWORD = "s3cret-pass"


def _name(**fields: str) -> x509.Name:
    oids = {"O": NameOID.ORGANIZATION_NAME, "CN": NameOID.COMMON_NAME}
    return x509.Name([x509.NameAttribute(oids[key], value) for key, value in fields.items()])


def _ca(base: Path, name: str) -> tuple[Path, ec.EllipticCurvePrivateKey, x509.Name]:
    """A CA of its own, its certificate in ``base/NAME.pem``: (path, key, name)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(O="Example", CN=name)
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    path = base / f"{name}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path, key, subject


def _client(base: Path, user: str, ca: tuple[Path, ec.EllipticCurvePrivateKey, x509.Name]) -> tuple[Path, Path]:
    """A client certificate for ``user`` the CA ``ca`` signed: (cert.pem, key.pem)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name(O="Example", CN=user)).issuer_name(ca[2])
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca[1], hashes.SHA256()))
    paths = base / f"{user}.pem", base / f"{user}.key"
    paths[0].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


class Setup:
    """A server whose ``ssl:`` listener requires certificates of the clients' CA; alice's
    certificate is that CA's, mallory's another CA's."""

    def __init__(self, make_server: Callable[..., RunningServer], client: Client, tmp_path: Path,
                 **settings: Any) -> None:
        from tests.integration.test_hg_http import _tls_files

        pki = tmp_path / "pki"
        pki.mkdir()
        self.server_ca, key, cert = _tls_files(pki)  # the server's own CA: another than the clients'
        clients_ca = _ca(pki, "clients CA")
        self.client_ca = clients_ca[0]
        self.alice = _client(pki, "alice", clients_ca)
        self.mallory = _client(pki, "mallory", _ca(pki, "other CA"))
        htpasswd = tmp_path / "htpasswd"
        htpasswd.write_text(f"alice:{bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()}\n")
        self.endpoint = f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}:clientCA={self.client_ca}"
        self.server = make_server("fs", http=[self.endpoint], htpasswd=str(htpasswd), **settings)
        self.client = client
        self.base = f"https://127.0.0.1:{self.server.port('http')}"

    def git(self, certificate: tuple[Path, Path] | None, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        mine = ["-c", f"http.sslCert={certificate[0]}", "-c", f"http.sslKey={certificate[1]}"] if certificate else []
        return self.client.git("-c", f"http.sslCAInfo={self.server_ca}", *mine, *args,
                               env={"GIT_SSL_CAINFO": str(self.server_ca)}, **kw)

    def hg(self, certificate: tuple[Path, Path] | None, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        mine = (["--config", f"auth.x.prefix={self.base}", "--config", f"auth.x.cert={certificate[0]}",
                 "--config", f"auth.x.key={certificate[1]}"] if certificate else [])
        return self.client.run(f"{VENV_BIN}/hg", "--config", f"web.cacerts={self.server_ca}", *mine, *args, **kw)


@pytest.fixture
def setup(make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> Setup:
    return Setup(make_server, client, tmp_path)


def _git_history(setup: Setup) -> None:
    work = setup.client.cwd / "src"
    setup.client.git("init", "-q", "--bare", str(setup.server.root / "g.git"))
    setup.client.git("init", "-q", str(work))
    setup.client.git("commit", "-q", "--allow-empty", "-m", "one", cwd=work)
    setup.client.git("--git-dir", str(setup.server.root / "g.git"), "fetch", "-q", str(work), "main:main")


def test_git_with_its_ca_s_certificate_clones_and_without_one_fails_at_the_handshake(setup: Setup) -> None:
    _git_history(setup)
    url = f"{setup.base}/g.git"
    with log_events() as events:
        setup.git(setup.alice, "clone", "-q", url, str(setup.client.cwd / "good"))
        # (6 tries each: a connection closed at once after the alert made git say "getpeername() failed with
        # errno 107" or "Send failure: Broken pipe" about half of the time)
        refused = [setup.git(certificate, "ls-remote", url, check=False) for certificate in (None, setup.mallory) * 6]
    for result in refused:
        assert result.returncode == 128, result.stderr
        assert "GnuTLS recv error (-12): A TLS fatal alert has been received." in result.stderr, result.stderr
    access = [e for e in events if e.get("log_namespace") == "gateway.http.access"]
    assert access and {e["client_certificate"] for e in access} == {"CN=alice,O=Example"}, access
    assert all(e["access_line"].endswith(' client certificate "CN=alice,O=Example"') for e in access), access
    said = [str(e.get("log_format", "")).format(**e) for e in events if str(e.get("log_format", "")).startswith("TLS")]
    assert any("presented no client certificate" in line for line in said), said
    assert any("the client certificate CN=mallory,O=Example: its issuer is not among the clientCA= certificates"
               in line for line in said), said


def test_a_certificate_names_no_user_the_push_still_needs_a_password(setup: Setup) -> None:
    """The certificate lets the client reach the server; --htpasswd still says who may push."""
    _git_history(setup)
    work = setup.client.cwd / "src"
    setup.client.git("commit", "-q", "--allow-empty", "-m", "two", cwd=work)
    anonymous = setup.git(setup.alice, "-C", str(work), "push", f"{setup.base}/g.git", "main", check=False)
    assert anonymous.returncode != 0 and "could not read Username" in anonymous.stderr, anonymous.stderr
    with_password = f"https://alice:{PASSWORD}@{setup.base.removeprefix('https://')}/g.git"
    setup.git(setup.alice, "-C", str(work), "push", "-q", with_password, "main")


def test_hg_with_its_ca_s_certificate_clones_and_without_one_fails_at_the_handshake(setup: Setup) -> None:
    setup.client.hg("init", str(setup.server.root / "h"))
    url = f"{setup.base}/h"
    with log_events() as events:
        setup.hg(setup.alice, "clone", "-q", url, str(setup.client.cwd / "good"))
    assert {e["client_certificate"] for e in events if e.get("log_namespace") == "gateway.http.access"} == \
        {"CN=alice,O=Example"}
    none = setup.hg(None, "id", url, check=False)
    assert none.returncode == 255 and "tlsv13 alert certificate required" in none.stderr, none.stderr
    foreign = setup.hg(setup.mallory, "id", url, check=False)
    assert foreign.returncode == 255 and "tlsv1 alert unknown ca" in foreign.stderr, foreign.stderr


def test_a_sighup_reads_the_client_ca_file_again(setup: Setup, tmp_path: Path, reactor: Any) -> None:
    """The clients' CA is read again with the certificate and key (``reload_tls``): after the file
    names another CA, that CA's clients get in and the first one's are refused."""
    from twisted.internet.threads import blockingCallFromThread

    _git_history(setup)
    url = f"{setup.base}/g.git"
    setup.git(setup.alice, "ls-remote", url)
    setup.client_ca.write_bytes((tmp_path / "pki" / "other CA.pem").read_bytes())
    blockingCallFromThread(reactor, setup.server.service.listener("http").reload_tls)
    setup.git(setup.mallory, "ls-remote", url)
    assert setup.git(setup.alice, "ls-remote", url, check=False).returncode == 128
    setup.client_ca.write_text("not a certificate\n")
    with log_events() as events:
        blockingCallFromThread(reactor, setup.server.service.listener("http").reload_tls)
    said = [str(e.get("log_format", "")).format(**e) for e in events if "read again" in str(e.get("log_format"))]
    assert said and "holds no PEM certificate" in said[0] and "goes on with the ones it had" in said[0], said
    setup.git(setup.mallory, "ls-remote", url)


def test_clients_behind_the_proxy_header_are_checked_too(make_server: Callable[..., RunningServer], client: Client,
                                                          tmp_path: Path) -> None:
    """``haproxy:ssl:…:clientCA=`` (TLS passed through by a TCP proxy): the same check after the header."""
    import socket
    import ssl

    from tests.integration.test_hg_http import _tls_files

    pki = tmp_path / "pki"
    pki.mkdir()
    server_ca, key, cert = _tls_files(pki)
    ca = _ca(pki, "clients CA")
    alice = _client(pki, "alice", ca)
    endpoint = f"haproxy:ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}:clientCA={ca[0]}"
    server = make_server("memory", http=[endpoint])

    def status(certificate: tuple[Path, Path] | None) -> str:
        context = ssl.create_default_context(cafile=str(server_ca))
        if certificate:
            context.load_cert_chain(str(certificate[0]), str(certificate[1]))
        with socket.create_connection(("127.0.0.1", server.port("http")), timeout=30) as raw:
            raw.sendall(b"PROXY TCP4 192.0.2.7 127.0.0.1 5555 443\r\n")
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return tls.recv(100).decode("latin-1").split("\r\n")[0]

    assert status(alice).startswith("HTTP/1.1 200")
    with pytest.raises(ssl.SSLError, match="certificate required"):
        status(None)


def test_client_ca_mistakes_stop_the_start_with_one_line_each(tmp_path: Path) -> None:
    """As the key's and the certificate's: exit status 1, and one line for each listener."""
    from tests.integration.test_hg_http import _tls_files

    _, key, cert = _tls_files(tmp_path)
    leaf = cert  # the server's own certificate: neither a CA's nor self-signed
    base = f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"
    told = {
        f"{base}:clientCA={tmp_path / 'none.pem'}": f"the clientCA= file {tmp_path / 'none.pem'} cannot be read (No "
                                                    "such file or directory); check that clientCA= names a file of",
        f"{base}:clientCA={key}": f"the clientCA= file {key} holds no PEM certificate; check that clientCA= names",
        f"{base}:clientCA={leaf}": f"certificate 1 of the clientCA= file {leaf} (CN=127.0.0.1) is neither a CA's nor",
        f"{base}:caCertsDir={tmp_path}": "ssl: has no option caCertsDir=; to require client certificates signed by "
                                         "your CA, write clientCA=FILE",
    }
    listeners = [arg for endpoint in told for arg in ("--http", endpoint)]
    result = subprocess.run([f"{VENV_BIN}/twistd", "-n", "--pidfile", "", "hgwire", "--root", str(tmp_path / "repos"),
                             *listeners], capture_output=True, text=True, timeout=60, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    for endpoint, words in told.items():
        assert f"cannot listen on {endpoint}: {words}" in output, (endpoint, output)
    assert "Traceback" not in output and "hgwire serves" not in output, output


def test_a_client_ca_file_of_public_cas_is_warned_of_at_start_and_on_sighup(
        make_server: Callable[..., RunningServer], tmp_path: Path, reactor: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """``clientCA=`` naming the system's bundle (here one of the test's own, as the system's) lets in
    anyone a public CA gave a certificate: said at the start and on each SIGHUP, the listener serving."""
    from twisted.internet.threads import blockingCallFromThread

    from gateway import tls

    pki = tmp_path / "pki"
    pki.mkdir()
    bundle = tmp_path / "ca-certificates.crt"
    bundle.write_bytes(b"".join(_ca(pki, f"public {n}")[0].read_bytes() for n in range(tls.CLIENT_CA_HANDFUL + 1)))
    monkeypatch.setattr(tls, "system_bundles", lambda: [str(bundle)])
    words = f"the clientCA= file {bundle} is the system's bundle of public CAs ({tls.CLIENT_CA_HANDFUL + 1} of them)"

    def warned(events: list[dict[str, Any]]) -> list[str]:
        return [str(e["log_format"]).format(**e) for e in events
                if e.get("log_level") is not None and e["log_level"].name == "warn" and "clientCA=" in str(e.get("warning"))]

    from tests.integration.test_hg_http import _tls_files

    _, key, cert = _tls_files(pki)
    endpoint = f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}:clientCA={bundle}"
    with log_events() as events:
        server = make_server("memory", http=[endpoint])
    said = warned(events)
    assert len(said) == 1 and words in said[0] and "keeps no one out" in said[0], said
    with log_events() as events:
        blockingCallFromThread(reactor, server.service.listener("http").reload_tls)
    said = warned(events)
    assert len(said) == 1 and words in said[0], said
