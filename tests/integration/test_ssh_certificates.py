"""OpenSSH user certificates against ``cert-authority`` lines of ``--authorized-keys``, with the real
``ssh`` client and certificates made by ``ssh-keygen -s``: the certificate's principal is the user;
an untrusted, expired, host, wrongly named or restricted certificate is refused as sshd refuses it."""

# ruff: noqa: F811  (the setup fixture, imported from test_ssh_server, is each test's parameter)
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

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
