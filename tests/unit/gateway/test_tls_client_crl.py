"""``clientCRL=`` of an ``ssl:`` listener: taken out of what Twisted reads with ``clientCA=``, and
its lists checked at the start (and on SIGHUP) against the ``clientCA=`` CAs (``gateway.tls.client_crls``)."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.tls import TLSFilesError, client_checks, client_crls, client_files, own_options

NOW = datetime.datetime(2026, 12, 6, 12, 0, tzinfo=datetime.UTC)
BASE = "ssl:8443:privateKey=k.pem:certKey=c.pem"
Key = ec.EllipticCurvePrivateKey


def test_hgwire_s_own_options_are_taken_out_of_what_twisted_reads() -> None:
    description = rf"{BASE}:clientCA=ca.pem:clientCRL=C\:\\crl.pem:clientCertificate=optional"
    assert own_options(description) == (BASE, {"clientCA": "ca.pem", "clientCRL": r"C:\crl.pem",
                                               "clientCertificate": "optional"})
    assert client_files(description) == ["ca.pem", r"C:\crl.pem"]
    assert own_options(BASE) == (BASE, {})


def _ca(name: str, signer: tuple[x509.Certificate, Key] | None = None) -> tuple[x509.Certificate, Key]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer, signing = (signer[0].subject, signer[1]) if signer else (subject, key)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(NOW - datetime.timedelta(days=1))
            .not_valid_after(NOW + datetime.timedelta(days=90))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(signing, hashes.SHA256()))
    return cert, key


def _crl(ca: tuple[x509.Certificate, Key], last: datetime.datetime) -> bytes:
    return (x509.CertificateRevocationListBuilder().issuer_name(ca[0].subject).last_update(last)
            .next_update(last + datetime.timedelta(days=7)).sign(ca[1], hashes.SHA256())
            .public_bytes(serialization.Encoding.PEM))


def test_a_list_for_each_ca_that_signs_clients_passes_without_a_word(tmp_path: Path) -> None:
    """A root that signed the intermediate in the file signs CAs, not clients: it needs no list."""
    root = _ca("root")
    issuing = _ca("issuing", root)
    cas_file, crl_file = tmp_path / "cas.pem", tmp_path / "crl.pem"
    cas_file.write_bytes(b"".join(c[0].public_bytes(serialization.Encoding.PEM) for c in (root, issuing)))
    crl_file.write_bytes(_crl(issuing, NOW - datetime.timedelta(hours=1)))
    checks, warning = client_checks(f"{BASE}:clientCA={cas_file}:clientCRL={crl_file}", NOW)
    assert warning is None and len(checks.cas) == 2 and len(checks.crls) == 1 and checks.required
    crl_file.write_bytes(_crl(root, NOW - datetime.timedelta(hours=1)))  # the root's list only
    warning = client_crls(f"{BASE}:clientCRL={crl_file}", checks.cas, NOW)[1]
    assert warning == (f"the clientCRL= file {crl_file} has no revocation list of CN=issuing (in the clientCA= file): "
                       "the client certificates it signs are refused, as their revocation cannot be checked; add its "
                       "list to the file, then send hgwire a SIGHUP")
    crl_file.write_bytes(_crl(issuing, NOW + datetime.timedelta(hours=1)))
    warning = client_crls(f"{BASE}:clientCRL={crl_file}", checks.cas, NOW)[1]
    assert warning is not None and "is not valid until 2026-12-06 13:00 UTC" in warning, warning


def test_a_list_without_its_ca_or_a_mode_without_a_ca_is_refused(tmp_path: Path) -> None:
    ca = _ca("ca")
    crl_file = tmp_path / "crl.pem"
    crl_file.write_bytes(_crl(ca, NOW))
    with pytest.raises(TLSFilesError, match="clientCRL= is given without clientCA="):
        client_checks(f"{BASE}:clientCRL={crl_file}", NOW)
    with pytest.raises(TLSFilesError, match="clientCertificate= is given without clientCA="):
        client_checks(f"{BASE}:clientCertificate=optional", NOW)
    with pytest.raises(TLSFilesError, match="clientCRL= names no file"):
        client_crls(f"{BASE}:clientCRL=", [ca[0]], NOW)


def test_a_client_crl_file_the_service_s_user_cannot_read_is_warned_of_at_start(monkeypatch: pytest.MonkeyPatch,
                                                                                 tmp_path: Path) -> None:
    """As the clientCA= file: under ``twistd --uid`` a SIGHUP could not read a fresh list."""
    import os

    from backends import load_backend
    from gateway.config import ServiceConfig
    from gateway.service import unreadable_files

    crl = tmp_path / "clients.crl"
    crl.write_bytes(_crl(_ca("ca"), NOW))
    (tmp_path / "ca.pem").write_text("")
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: str(path) != str(crl) and real_access(path, mode))
    endpoint = f"ssl:0:privateKey={tmp_path / 'k.pem'}:certKey={tmp_path / 'c.pem'}:clientCA={tmp_path / 'ca.pem'}" \
               f":clientCRL={crl}"
    config = ServiceConfig(backend=load_backend("memory", str(tmp_path)), root=str(tmp_path), http=[endpoint])
    assert unreadable_files(config) == [
        (f"{crl} of {endpoint}", "a SIGHUP cannot read a fresh revocation list (the one in use stays)")]
