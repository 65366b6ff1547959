"""OpenSSH certificates, read from what ``ssh-keygen -s`` writes; anything else refused cleanly."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.auth import KeyLineError, parse_key_line
from protocols import ssh_cert
from protocols.ssh_cert import CertificateError


def _cert(tmp_path: Path, *signing: str) -> bytes:
    for name in ("ca", "user"):
        subprocess.run(["/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f",
                        str(tmp_path / name)], check=True)
    subprocess.run(["/usr/bin/ssh-keygen", "-q", "-s", str(tmp_path / "ca"), "-I", "the id", *signing,
                    str(tmp_path / "user.pub")], check=True, capture_output=True)
    return base64.b64decode((tmp_path / "user-cert.pub").read_text().split()[1])


def test_a_certificate_reads_as_ssh_keygen_made_it(tmp_path: Path) -> None:
    blob = _cert(tmp_path, "-n", "alice,bob", "-V", "20260101:20270101", "-O", "source-address=10.0.0.0/8",
                 "-z", "42")
    assert ssh_cert.is_certificate(blob)
    cert = ssh_cert.parse(blob)
    user_key = base64.b64decode((tmp_path / "user.pub").read_text().split()[1])
    ca_key = base64.b64decode((tmp_path / "ca.pub").read_text().split()[1])
    assert (cert.key_type, cert.key_blob, cert.ca_blob) == (b"ssh-ed25519", user_key, ca_key)
    assert (cert.serial, cert.cert_type, cert.key_id, cert.principals) == (42, ssh_cert.USER_CERT, "the id",
                                                                           ("alice", "bob"))
    assert ssh_cert.source_addresses(cert) == ("10.0.0.0/8",)
    assert ssh_cert.critical_refusal(cert) is None
    assert blob.startswith(cert.signed) and len(cert.signed) < len(blob)
    assert not ssh_cert.is_certificate(user_key)


def test_what_hgwire_cannot_honour_is_named(tmp_path: Path) -> None:
    cert = ssh_cert.parse(_cert(tmp_path, "-n", "a", "-O", "force-command=/bin/true"))
    assert "force-command cannot be honoured" in (ssh_cert.critical_refusal(cert) or "")


@pytest.mark.parametrize("cut", [1, 10, 60, 100])
def test_a_truncated_or_padded_certificate_is_refused(tmp_path: Path, cut: int) -> None:
    blob = _cert(tmp_path, "-n", "a")
    with pytest.raises(CertificateError, match="truncated"):
        ssh_cert.parse(blob[:-cut])
    with pytest.raises(CertificateError, match="after the certificate"):
        ssh_cert.parse(blob + b"\0" * cut)


@given(st.binary(max_size=600))
def test_any_blob_is_read_or_refused(data: bytes) -> None:
    for blob in (data, b"\0\0\0\x20ssh-ed25519-cert-v01@openssh.com" + data):
        try:
            ssh_cert.parse(blob)
        except CertificateError:
            pass


def test_cert_authority_lines_of_authorized_keys(tmp_path: Path) -> None:
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGmyWzY1m8c4dGZJ7k7wXZ7HdG5uIQJq+Qh8YqWm0XyZ the-ca"
    line = parse_key_line('cert-authority,principals="alice,bob" ' + key)
    assert line is not None and line.ca and line.principals == ("alice", "bob") and line.user == ""
    for bad in ('principals="alice" ' + key, 'cert-authority,user="x" ' + key, 'cert-authority,principals="" ' + key):
        with pytest.raises(KeyLineError):
            parse_key_line(bad)
