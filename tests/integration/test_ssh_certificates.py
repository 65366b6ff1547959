"""OpenSSH user certificates against ``cert-authority`` lines of ``--authorized-keys``, with the real
``ssh`` client and certificates made by ``ssh-keygen -s``: the certificate's principal is the user;
an untrusted, expired, host, wrongly named or restricted certificate is refused as sshd refuses it."""

# ruff: noqa: F811  (the setup fixture, imported from test_ssh_server, is each test's parameter)
from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from twisted.logger import globalLogPublisher

from backends.interfaces import Kind
from tests.conftest import LOOPBACK, Client, SshKeys
from tests.integration.test_ssh_server import SshSetup, _keygen, setup  # noqa: F401 - a fixture

ECHO = "git-upload-pack '/team/app.git'"


def _trust(setup: SshSetup, line: str) -> None:
    authorized = Path(setup.server.service.config.authorized_keys)
    authorized.write_text(authorized.read_text() + line)
    os.utime(authorized, ns=(1, 10**18))  # re-read: the size may not change


def _certified(tmp_path: Path, ca: Path, name: str, *signing: str) -> Path:
    """A new key, ``name``, with a certificate ``ssh-keygen -s ca`` made with ``signing``."""
    key = _keygen(tmp_path / name, name)
    subprocess.run(["/usr/bin/ssh-keygen", "-q", "-s", str(ca), "-I", f"{name}-id", *signing, f"{key}.pub"],
                   check=True, capture_output=True)
    return key


def _login(setup: SshSetup, key: Path) -> subprocess.CompletedProcess[bytes]:
    return setup.ssh(ECHO, key=key, input=b"ping", options=("-o", f"CertificateFile={key}-cert.pub"))


def test_a_certificate_logs_in_as_its_principal(setup: SshSetup, tmp_path: Path) -> None:
    ca = _keygen(tmp_path / "ca", "the-ca")
    _trust(setup, "cert-authority " + (tmp_path / "ca.pub").read_text())
    carol = _certified(tmp_path, ca, "carol_key", "-n", "carol", "-V", "-5m:+1h")
    done = _login(setup, carol)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(b"hello carol team/app.git")
    alone = setup.ssh(ECHO, key=ca)  # the authority's own key logs nobody in
    assert alone.returncode == 255 and b"Permission denied (publickey)" in alone.stderr


def test_an_rsa_authority_and_its_principals_option(setup: SshSetup, tmp_path: Path) -> None:
    ca = tmp_path / "rsa_ca"
    subprocess.run(["/usr/bin/ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", str(ca)], check=True)
    _trust(setup, 'cert-authority,principals="dave,erin" ' + (tmp_path / "rsa_ca.pub").read_text())
    dave = _certified(tmp_path, ca, "dave_key", "-n", "someone,dave")
    done = _login(setup, dave)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(b"hello dave team/app.git"), "the first principal the line allows"
    frank = _certified(tmp_path, ca, "frank_key", "-n", "frank")
    assert _login(setup, frank).returncode == 255


def test_a_principal_beyond_ascii_is_the_user_however_composed(setup: SshSetup, tmp_path: Path) -> None:
    """``ssh-keygen -n josé``: the user josé (it was refused as not a plain name), whichever form the
    certificate and the line's ``principals=`` write it in."""
    ca = _keygen(tmp_path / "ca", "the-ca")
    _trust(setup, 'cert-authority,principals="josé" ' + (tmp_path / "ca.pub").read_text())
    jose = _certified(tmp_path, ca, "jose_key", "-n", "jose\u0301")
    done = _login(setup, jose)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("hello josé team/app.git".encode()), done.stdout


@pytest.mark.parametrize("how", ["authorized-key", "certificate"])
def test_an_rsa_user_key_logs_in_beside_an_ed25519_host_key(setup: SshSetup, tmp_path: Path, how: str) -> None:
    """``server-sig-algs`` names the RSA signatures whatever the host keys are: it named the host
    keys' only, and an OpenSSH client with just an ed25519 host key to talk to never offered an RSA
    key or certificate ("no mutual signature algorithm")."""
    key = tmp_path / "rsa_user"
    subprocess.run(["/usr/bin/ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-C", "ronald", "-f", str(key)],
                   check=True)
    if how == "authorized-key":
        _trust(setup, (tmp_path / "rsa_user.pub").read_text())
        done = setup.ssh(ECHO, key=key)
    else:
        ca = _keygen(tmp_path / "ca", "the-ca")
        _trust(setup, "cert-authority " + (tmp_path / "ca.pub").read_text())
        subprocess.run(["/usr/bin/ssh-keygen", "-q", "-s", str(ca), "-I", "ronald-id", "-n", "ronald", f"{key}.pub"],
                       check=True, capture_output=True)
        done = _login(setup, key)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(b"hello ronald team/app.git")


@pytest.mark.parametrize(("signing", "why"), [
    (("-n", "carol", "-V", "-2h:-1h"), "not valid now"),
    (("-n", "carol", "-h"), None),  # a host certificate: ssh does not even offer it
    (("-n", "carol", "-O", "force-command=/bin/true"), "force-command cannot be honoured"),
    (("-n", "carol", "-O", "source-address=10.0.0.0/8"), "source-address does not allow"),
    (("-V", "-5m:+1h"), "no principal"),
])
def test_certificates_sshd_would_refuse_are_refused(setup: SshSetup, tmp_path: Path, signing: tuple[str, ...],
                                                   why: str | None) -> None:
    ca = _keygen(tmp_path / "ca", "the-ca")
    _trust(setup, "cert-authority " + (tmp_path / "ca.pub").read_text())
    refused = _login(setup, _certified(tmp_path, ca, "carol_key", *signing))
    assert refused.returncode == 255 and b"Permission denied (publickey)" in refused.stderr
    said = [str(e.get("reason", "")) for e in setup.events if "SSH certificate" in str(e.get("log_format", ""))]
    assert why is None or any(why in reason for reason in said), said
    nearby = _login(setup, _certified(tmp_path, ca, "near_key", "-n", "carol", "-O", "source-address=127.0.0.0/8"))
    assert nearby.returncode == 0, nearby.stderr


def test_a_certificate_of_an_authority_not_trusted_is_refused(setup: SshSetup, tmp_path: Path) -> None:
    trusted = _keygen(tmp_path / "ca", "the-ca")
    _trust(setup, "cert-authority " + (tmp_path / "ca.pub").read_text())
    other = _keygen(tmp_path / "other_ca", "other")
    assert _login(setup, _certified(tmp_path, other, "carol_key", "-n", "carol")).returncode == 255
    assert _login(setup, _certified(tmp_path, trusted, "carol2_key", "-n", "carol")).returncode == 0


def _known_hosts_client(keys: SshKeys, port: int, known_hosts: Path) -> str:
    """The ssh command of ``keys``' user, checking the server's host key against ``known_hosts``."""
    return (f"/usr/bin/ssh -F /dev/null -p {port} -i {keys.key} -o IdentitiesOnly=yes -o BatchMode=yes "
            f"-o StrictHostKeyChecking=yes -o UserKnownHostsFile={known_hosts} -o LogLevel=ERROR")


def _sign_host_key(public: Path, ca: Path) -> None:
    """``ssh-keygen -s CA -h``: a host certificate for 127.0.0.1, valid for the next hour."""
    subprocess.run(["/usr/bin/ssh-keygen", "-q", "-s", str(ca), "-h", "-I", "hgwire-host", "-n", "127.0.0.1",
                    "-V", "-5m:+1h", str(public)], check=True, capture_output=True)


def _host_key_server(make_server: Any, ssh_keys: SshKeys, host_key: Path | list[str]) -> tuple[int, str]:
    """A server with ``host_key`` (or keys; and the certificate beside each) and a repository
    ``app``: its SSH port and the repository's URL."""
    keys = host_key if isinstance(host_key, list) else str(host_key)
    server = make_server("fs", ssh=[LOOPBACK], host_key=keys, authorized_keys=str(ssh_keys.authorized_keys))
    server.backend.create("app", Kind.GIT)
    port = server.port("ssh")
    return port, f"ssh://git@127.0.0.1:{port}/app.git"


@pytest.mark.parametrize("key_type", ["ed25519", "rsa", "ecdsa"])
def test_a_host_certificate_beside_the_host_key_lets_clients_trust_the_ca(
        make_server: Any, client: Client, ssh_keys: SshKeys, tmp_path: Path, key_type: str) -> None:
    """``ssh-keygen -s CA -h host_key.pub`` writes ``host_key-cert.pub``; found beside the host key it
    is offered, and a client whose known_hosts trusts the CA (``@cert-authority``) connects without
    knowing the host key, as with sshd's HostCertificate; one that trusts another CA is refused."""
    (tmp_path / "host").mkdir()
    host_key = tmp_path / "host" / f"ssh_host_{key_type}_key"
    subprocess.run(["/usr/bin/ssh-keygen", "-q", "-t", key_type, "-N", "", "-f", str(host_key)], check=True)
    public = host_key.with_name(host_key.name + ".pub")
    ca = _keygen(tmp_path / "host_ca", "the-host-ca")
    other_ca = _keygen(tmp_path / "other_ca", "another-ca")
    _sign_host_key(public, ca)
    assert host_key.with_name(host_key.name + "-cert.pub").exists()
    port, url = _host_key_server(make_server, ssh_keys, host_key)

    trusting = tmp_path / "known_hosts"
    trusting.write_text(f"@cert-authority [127.0.0.1]:{port} " + (tmp_path / "host_ca.pub").read_text())
    done = client.git("ls-remote", url, env={"GIT_SSH_COMMAND": _known_hosts_client(ssh_keys, port, trusting)},
                      check=False)
    assert done.returncode == 0, done.stderr

    stranger = tmp_path / "known_hosts_other"
    stranger.write_text(f"@cert-authority [127.0.0.1]:{port} " + (tmp_path / "other_ca.pub").read_text())
    refused = client.git("ls-remote", url, env={"GIT_SSH_COMMAND": _known_hosts_client(ssh_keys, port, stranger)},
                         check=False)
    assert refused.returncode != 0 and "Host key verification failed" in refused.stderr, refused.stderr
    assert other_ca.exists()

    plain = tmp_path / "known_hosts_plain"  # a client that knows the plain key still connects
    plain.write_text(f"[127.0.0.1]:{port} " + public.read_text())
    done = client.git("ls-remote", url, env={"GIT_SSH_COMMAND": _known_hosts_client(ssh_keys, port, plain)},
                      check=False)
    assert done.returncode == 0, done.stderr


def test_a_host_certificate_named_by_host_cert_is_offered_from_where_it_is(
        make_server: Any, client: Client, ssh_keys: SshKeys, tmp_path: Path) -> None:
    """``--host-cert FILE``, as sshd's ``HostCertificate``: the certificate kept elsewhere than beside
    the key (a directory the renewal tool writes) is offered; named but missing, it is said at start
    and offered once it is there."""
    host_key = _keygen(tmp_path / "ssh_host_ed25519_key", "host")
    ca = _keygen(tmp_path / "host_ca", "the-host-ca")
    _sign_host_key(host_key.with_name(host_key.name + ".pub"), ca)
    (tmp_path / "certs").mkdir()
    cert = tmp_path / "certs" / "host.cert"
    (tmp_path / "ssh_host_ed25519_key-cert.pub").rename(cert)
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    try:
        server = make_server("fs", ssh=[LOOPBACK], host_key=str(host_key), host_cert=str(cert),
                             authorized_keys=str(ssh_keys.authorized_keys))
        missing = make_server("fs", ssh=[LOOPBACK], host_key=str(host_key), host_cert=str(tmp_path / "nowhere"),
                              authorized_keys=str(ssh_keys.authorized_keys))
    finally:
        globalLogPublisher.removeObserver(events.append)
    server.backend.create("app", Kind.GIT)
    port = server.port("ssh")
    trusting = tmp_path / "known_hosts"
    trusting.write_text(f"@cert-authority [127.0.0.1]:{port} " + (tmp_path / "host_ca.pub").read_text())
    done = client.git("ls-remote", f"ssh://git@127.0.0.1:{port}/app.git",
                      env={"GIT_SSH_COMMAND": _known_hosts_client(ssh_keys, port, trusting)}, check=False)
    assert done.returncode == 0, done.stderr
    assert any("does not exist; it is offered once it does" in str(e.get("log_format")) for e in events)
    missing_port = missing.port("ssh")
    trusting.write_text(f"@cert-authority [127.0.0.1]:{missing_port} " + (tmp_path / "host_ca.pub").read_text())
    refused = client.git("ls-remote", f"ssh://git@127.0.0.1:{missing_port}/app.git",
                         env={"GIT_SSH_COMMAND": _known_hosts_client(ssh_keys, missing_port, trusting)}, check=False)
    assert refused.returncode != 0 and "Host key verification failed" in refused.stderr, refused.stderr


def test_host_keys_of_each_type_are_all_offered(
        make_server: Any, client: Client, ssh_keys: SshKeys, tmp_path: Path) -> None:
    """``--host-key`` repeated, as sshd's ``HostKey`` lines: an operator moving the SSH front door
    from sshd keeps ``/etc/ssh/ssh_host_*_key``, and a client whose known_hosts holds only the
    ECDSA or only the RSA key (what it recorded years ago) connects, checking it strictly; a
    certificate beside one of them is offered for that one (with one offered, OpenSSH's client
    prefers it to a plain key of another type, as with sshd: such clients trust the CA)."""
    (tmp_path / "etc").mkdir()
    paths = {}
    for key_type in ("ed25519", "ecdsa", "rsa"):
        paths[key_type] = tmp_path / "etc" / f"ssh_host_{key_type}_key"
        subprocess.run(["/usr/bin/ssh-keygen", "-q", "-t", key_type, "-N", "", "-f", str(paths[key_type])],
                       check=True)
    port, url = _host_key_server(make_server, ssh_keys, [str(p) for p in paths.values()])
    for key_type, path in paths.items():
        known = tmp_path / f"known_hosts_{key_type}"
        known.write_text(f"[127.0.0.1]:{port} " + path.with_name(path.name + ".pub").read_text())
        done = client.git("ls-remote", url, env={"GIT_SSH_COMMAND": _known_hosts_client(ssh_keys, port, known)},
                          check=False)
        assert done.returncode == 0, (key_type, done.stderr)
    ca = _keygen(tmp_path / "host_ca", "the-host-ca")
    _sign_host_key(paths["ecdsa"].with_name(paths["ecdsa"].name + ".pub"), ca)
    port, url = _host_key_server(make_server, ssh_keys, [str(p) for p in paths.values()])
    trusting = tmp_path / "known_hosts_ca"
    trusting.write_text(f"@cert-authority [127.0.0.1]:{port} " + (tmp_path / "host_ca.pub").read_text())
    done = client.git("ls-remote", url, env={"GIT_SSH_COMMAND": _known_hosts_client(ssh_keys, port, trusting)},
                      check=False)
    assert done.returncode == 0, done.stderr


def test_a_certificate_for_another_key_or_a_user_is_not_offered(tmp_path: Path) -> None:
    from twisted.conch.ssh import keys as conch_keys

    from gateway.ssh import load_host_certificate

    host_key = _keygen(tmp_path / "ssh_host_ed25519_key", "host")
    key = conch_keys.Key.fromFile(str(host_key))
    assert load_host_certificate(host_key, key) is None  # none there
    ca = _keygen(tmp_path / "ca", "ca")
    other = _keygen(tmp_path / "other", "other")
    subprocess.run(["/usr/bin/ssh-keygen", "-q", "-s", str(ca), "-h", "-I", "x", f"{other}.pub"], check=True)
    (tmp_path / "ssh_host_ed25519_key-cert.pub").write_bytes((tmp_path / "other-cert.pub").read_bytes())
    assert load_host_certificate(host_key, key) is None  # another key's
    other_key = conch_keys.Key.fromFile(str(other))
    from gateway.ssh import HostCertificateFile

    offered_for_other = HostCertificateFile(host_key, [key, other_key]).current  # one of several host keys'
    assert offered_for_other is not None
    assert other_key.public().verify(offered_for_other.sign(b"exchange hash"), b"exchange hash"), "signed by that key"
    public = tmp_path / "ssh_host_ed25519_key.pub"
    subprocess.run(["/usr/bin/ssh-keygen", "-q", "-s", str(ca), "-I", "x", "-n", "u", str(public)], check=True)
    assert load_host_certificate(host_key, key) is None  # a user certificate
    subprocess.run(["/usr/bin/ssh-keygen", "-q", "-s", str(ca), "-h", "-I", "x", "-V", "-2h:-1h", str(public)],
                   check=True)
    assert load_host_certificate(host_key, key) is None  # expired
    subprocess.run(["/usr/bin/ssh-keygen", "-q", "-s", str(ca), "-h", "-I", "x", str(public)], check=True)
    offered = load_host_certificate(host_key, key)
    assert offered is not None and offered.cert_type == b"ssh-ed25519-cert-v01@openssh.com"
    (tmp_path / "ssh_host_ed25519_key-cert.pub").write_text("ssh-ed25519-cert-v01@openssh.com !!!\n")
    assert load_host_certificate(host_key, key) is None  # not a certificate at all


def test_the_host_certificate_file_is_looked_at_again(tmp_path: Path) -> None:
    """Renewed, expired, not yet valid, gone: what is offered follows the file and the time."""
    import time

    from twisted.conch.ssh import keys as conch_keys

    from gateway.ssh import HostCertificateFile

    host_key = _keygen(tmp_path / "ssh_host_ed25519_key", "host")
    key = conch_keys.Key.fromFile(str(host_key))
    public = tmp_path / "ssh_host_ed25519_key.pub"
    ca = _keygen(tmp_path / "ca", "ca")
    watched = HostCertificateFile(host_key, key)
    assert watched.current is None and not watched.refresh()

    def sign(identity: str, validity: str) -> None:
        subprocess.run(["/usr/bin/ssh-keygen", "-q", "-s", str(ca), "-h", "-I", identity, "-V", validity, str(public)],
                       check=True)

    sign("first", "-5m:+1h")
    assert watched.refresh() and watched.current is not None
    first = watched.current.blob()
    assert not watched.refresh(), "the same file: nothing read again"
    assert watched.refresh(now=time.time() + 2 * 3600) and watched.current is None, "expired"
    assert watched.refresh() and watched.current is not None and watched.current.blob() == first
    sign("renewed", "-5m:+2h")
    assert watched.refresh() and watched.current is not None and watched.current.blob() != first
    sign("later", "+1h:+3h")
    assert watched.refresh() and watched.current is None, "not valid yet"
    assert watched.refresh(now=time.time() + 3600 + 60) and watched.current is not None
    (tmp_path / "ssh_host_ed25519_key-cert.pub").unlink()
    assert watched.refresh() and watched.current is None


def test_a_renewed_host_certificate_is_offered_without_a_restart(
        make_server: Any, client: Client, ssh_keys: SshKeys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The host certificate re-signed by a new CA (a renewal, a CA rotation): the next connections
    get the new one, as clients that trust only the new CA see; it removed, the plain key alone."""
    import gateway.ssh

    monkeypatch.setattr(gateway.ssh, "HOST_CERT_CHECK_SECONDS", 0.0)
    (tmp_path / "host").mkdir()
    host_key = _keygen(tmp_path / "host" / "ssh_host_ed25519_key", "host")
    public = host_key.with_name(host_key.name + ".pub")
    old_ca, new_ca = _keygen(tmp_path / "old_ca", "old-ca"), _keygen(tmp_path / "new_ca", "new-ca")
    _sign_host_key(public, old_ca)
    port, url = _host_key_server(make_server, ssh_keys, host_key)
    trusting_new = tmp_path / "known_hosts"
    trusting_new.write_text(f"@cert-authority [127.0.0.1]:{port} " + (tmp_path / "new_ca.pub").read_text())

    def ls_remote(known_hosts: Path) -> subprocess.CompletedProcess[str]:
        env = {"GIT_SSH_COMMAND": _known_hosts_client(ssh_keys, port, known_hosts)}
        return client.git("ls-remote", url, env=env, check=False)

    refused = ls_remote(trusting_new)
    assert refused.returncode != 0 and "Host key verification failed" in refused.stderr, refused.stderr
    _sign_host_key(public, new_ca)
    outcomes = [ls_remote(trusting_new).returncode for _ in range(5)]  # the first may still get the old one
    assert outcomes[-1] == 0 and outcomes.count(0) >= 4, outcomes
    host_key.with_name(host_key.name + "-cert.pub").unlink()
    outcomes = [ls_remote(trusting_new).returncode for _ in range(5)]
    assert outcomes[-1] != 0 and outcomes.count(0) <= 1, outcomes
    plain = tmp_path / "known_hosts_plain"
    plain.write_text(f"[127.0.0.1]:{port} " + public.read_text())
    assert ls_remote(plain).returncode == 0


def test_a_host_certificate_past_its_end_is_not_offered_to_the_next_connection(
        make_server: Any, client: Client, ssh_keys: SshKeys, tmp_path: Path) -> None:
    """The file is looked at every ``HOST_CERT_CHECK_SECONDS``; a certificate whose validity ended
    meanwhile is dropped as the next connection comes, not offered to it (a client that trusts only
    the CA gets "Host key verification failed" either way, but from the plain key)."""
    import time

    (tmp_path / "host").mkdir()
    host_key = _keygen(tmp_path / "host" / "ssh_host_ed25519_key", "host")
    public = host_key.with_name(host_key.name + ".pub")
    ca = _keygen(tmp_path / "ca", "ca")
    subprocess.run(["/usr/bin/ssh-keygen", "-q", "-s", str(ca), "-h", "-I", "short", "-V", "-5m:+4s", str(public)],
                   check=True)
    ends = time.time() + 4
    port, url = _host_key_server(make_server, ssh_keys, host_key)
    known = tmp_path / "known_hosts"
    known.write_text(f"@cert-authority [127.0.0.1]:{port} " + (tmp_path / "ca.pub").read_text())

    def offered() -> str:
        command = _known_hosts_client(ssh_keys, port, known).replace("LogLevel=ERROR", "LogLevel=DEBUG1")
        done = client.git("ls-remote", url, env={"GIT_SSH_COMMAND": command}, check=False)
        return "certificate" if "Server host certificate:" in done.stderr else "key"

    assert offered() == "certificate"
    time.sleep(max(0.0, ends - time.time()) + 1.2)
    assert offered() == "key"
