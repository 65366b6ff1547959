"""``clientCA=`` of an ``ssl:`` listener: read apart from what Twisted reads, and its file checked
at the start (and on SIGHUP) with one sentence for each mistake (``gateway.tls.client_cas``)."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.tls import TLSFilesError, client_cas, split_client_ca, twisted_description

NOW = datetime.datetime(2026, 12, 6, 12, 0, tzinfo=datetime.UTC)
BASE = "ssl:8443:privateKey=k.pem:certKey=c.pem"


@pytest.mark.parametrize(("description", "twisted", "path"), [
    (BASE, BASE, None),
    (f"{BASE}:clientCA=/etc/hgwire/ca.pem", BASE, "/etc/hgwire/ca.pem"),
    (r"ssl:8443:clientCA=C\:\\ca.pem:privateKey=k.pem", "ssl:8443:privateKey=k.pem", r"C:\ca.pem"),
    (r"ssl:8443:interface=\:\:1:clientCA=ca.pem:privateKey=k.pem", r"ssl:8443:interface=\:\:1:privateKey=k.pem",
     "ca.pem"),
    (f"{BASE}:clientCA=", BASE, ""),
])
def test_client_ca_is_taken_out_of_what_twisted_reads(description: str, twisted: str, path: str | None) -> None:
    """Twisted's ``ssl:`` endpoint has no such option: ``serverFromString`` refused it."""
    assert split_client_ca(description) == (twisted, path)
    assert twisted_description(description) == twisted


def _certificate(base: Path, name: str, *, ca: bool | None, self_signed: bool = True,
                 days: tuple[float, float] = (-1, 90)) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer = subject if self_signed else x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "someone else")])
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(NOW + datetime.timedelta(days=days[0]))
               .not_valid_after(NOW + datetime.timedelta(days=days[1])))
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    path = base / f"{name}.pem"
    path.write_bytes(builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
    return path


def test_a_file_of_ca_certificates_passes_and_gives_them_all(tmp_path: Path) -> None:
    one, two = _certificate(tmp_path, "one", ca=True), _certificate(tmp_path, "two", ca=True)
    both = tmp_path / "both.pem"
    both.write_bytes(one.read_bytes() + b"\n" + two.read_bytes())
    certificates, warning = client_cas(f"{BASE}:clientCA={both}", NOW)
    assert [c.subject.rfc4514_string() for c in certificates] == ["CN=one", "CN=two"] and warning is None
    assert client_cas(BASE, NOW) == ([], None)


def test_a_client_s_own_self_signed_certificate_may_be_trusted_as_it_is(tmp_path: Path) -> None:
    own = _certificate(tmp_path, "alice", ca=False)
    assert len(client_cas(f"{BASE}:clientCA={own}", NOW)[0]) == 1


def test_an_expired_ca_is_warned_of(tmp_path: Path) -> None:
    old = _certificate(tmp_path, "old", ca=True, days=(-30, -2))
    assert client_cas(f"{BASE}:clientCA={old}", NOW)[1] == (
        f"the CA certificate CN=old in the clientCA= file {old} expired on 2026-12-04 12:00 UTC: the clients it "
        "signed are refused; put the CA's renewed certificate in the file, then send hgwire a SIGHUP")


WHAT = "a file of the PEM certificates of the CAs that sign your clients' certificates"


def test_each_mistake_is_one_sentence_with_what_to_do(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"\x30\x82\x01\x0a" + bytes(200))  # DER, or anything but PEM
    broken = tmp_path / "broken.pem"
    broken.write_bytes(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    leaf = _certificate(tmp_path, "server", ca=False, self_signed=False)
    told = {
        "": ("clientCA= names no file", f"write clientCA=FILE, {WHAT}"),
        str(tmp_path / "missing.pem"): (
            f"the clientCA= file {tmp_path / 'missing.pem'} cannot be read (No such file or directory)",
            f"check that clientCA= names {WHAT}, and that hgwire's user may read it"),
        str(tmp_path): (f"the clientCA= file {tmp_path} cannot be read (Is a directory)",
                        f"name {WHAT} (cat a directory's certificates into one file)"),
        str(garbage): (f"the clientCA= file {garbage} holds no PEM certificate",
                       f"check that clientCA= names {WHAT} (-----BEGIN CERTIFICATE-----)"),
        str(broken): (f"certificate 1 of the clientCA= file {broken} cannot be read", f"check that clientCA= names {WHAT}"),
        str(leaf): (
            (f"certificate 1 of the clientCA= file {leaf} (CN=server) is neither a CA's nor self-signed, so no "
             "client's certificate can be checked against it"),
            ("put the certificate of the CA that signs your clients' certificates in that file, not a client's or the "
             "server's own")),
    }
    for path, (reason, advice) in told.items():
        with pytest.raises(TLSFilesError) as caught:
            client_cas(f"{BASE}:clientCA={path}", NOW)
        assert (caught.value.reason, caught.value.advice) == (reason, advice)


def test_a_client_ca_file_the_service_s_user_cannot_read_is_warned_of_at_start(monkeypatch: pytest.MonkeyPatch,
                                                                                tmp_path: Path) -> None:
    """Under ``twistd --uid``, read as root at the start, then not on SIGHUP: said at the start."""
    import os

    from backends import load_backend
    from gateway.config import ServiceConfig
    from gateway.service import unreadable_files

    ca = _certificate(tmp_path, "ca", ca=True)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: str(path) != str(ca) and real_access(path, mode))
    endpoint = f"ssl:0:privateKey={tmp_path / 'k.pem'}:certKey={tmp_path / 'c.pem'}:clientCA={ca}"
    config = ServiceConfig(backend=load_backend("memory", str(tmp_path)), root=str(tmp_path), http=[endpoint])
    assert unreadable_files(config) == [
        (f"{ca} of {endpoint}", "a SIGHUP cannot read a renewed certificate (the one in use serves on)")]
