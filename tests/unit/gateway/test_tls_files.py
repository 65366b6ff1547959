"""The ``ssl:`` listener's files checked before Twisted reads them (``gateway.tls.check_files``)."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.tls import TLSFilesError, check_files

NOW = datetime.datetime(2026, 12, 6, 12, 0, tzinfo=datetime.UTC)


def _certificate(key: ec.EllipticCurvePrivateKey, name: str, days: tuple[float, float] = (-1, 90),
                 issuer_key: ec.EllipticCurvePrivateKey | None = None) -> bytes:
    """A PEM certificate for ``key``, valid from ``days[0]`` to ``days[1]`` days from ``NOW``."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW + datetime.timedelta(days=days[0]))
            .not_valid_after(NOW + datetime.timedelta(days=days[1]))
            .sign(issuer_key or key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey, fmt: serialization.PrivateFormat = serialization.PrivateFormat.PKCS8,
             password: bytes | None = None) -> bytes:
    encryption = (serialization.BestAvailableEncryption(password) if password
                  else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, fmt, encryption)


def _pair(tmp_path: Path, days: tuple[float, float] = (-1, 90)) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    key_file, cert_file = tmp_path / "key.pem", tmp_path / "cert.pem"
    key_file.write_bytes(_key_pem(key))
    cert_file.write_bytes(_certificate(key, "127.0.0.1", days))
    return key_file, cert_file


def test_a_good_pair_passes_quietly(tmp_path: Path) -> None:
    key, cert = _pair(tmp_path)
    assert check_files(f"ssl:0:privateKey={key}:certKey={cert}", NOW) is None


@pytest.mark.parametrize("fmt", [serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL])
def test_an_encrypted_key_is_named_with_the_command_that_decrypts_it(
        tmp_path: Path, fmt: serialization.PrivateFormat) -> None:
    """OpenSSL prompted "Enter PEM pass phrase:" twice on stderr, then failed with 9 tuples."""
    key, cert = _pair(tmp_path)
    key.write_bytes(_key_pem(ec.generate_private_key(ec.SECP256R1()), fmt, b"secret"))
    with pytest.raises(TLSFilesError) as caught:
        check_files(f"ssl:0:privateKey={key}:certKey={cert}", NOW)
    assert caught.value.reason == f"the private key in {key} is encrypted with a passphrase"
    assert caught.value.advice.startswith(f"hgwire needs it without one: openssl pkey -in {key} -out NEWKEY")


@pytest.mark.parametrize(("days", "said"), [
    ((-90, -2), "expired on 2026-12-04 12:00 UTC: clients refuse it"),
    ((3, 90), "is not valid until 2026-12-09 12:00 UTC"),
    ((-80, 10), "expires on 2026-12-16 12:00 UTC, in 10 days: renew it"),
    ((-80, 1.5), "expires on 2026-12-08 00:00 UTC, in 1 day: renew it"),
    ((-80, 0.25), "expires on 2026-12-06 18:00 UTC, in 6 hours: renew it"),
    ((-80, 0.01), "UTC, in less than an hour: renew it"),
])
def test_a_certificate_out_of_its_dates_or_near_its_end_is_warned_of(
        tmp_path: Path, days: tuple[float, float], said: str) -> None:
    """An expired certificate started silently."""
    key, cert = _pair(tmp_path, days)
    warning = check_files(f"ssl:0:privateKey={key}:certKey={cert}", NOW)
    assert warning is not None and warning.startswith(f"the certificate in {cert} ") and said in warning, warning


def test_a_chain_with_the_intermediate_first_says_which_comes_first(tmp_path: Path) -> None:
    """Intermediate, then leaf: "the private key does not belong to the certificate" sent the
    operator looking for another key."""
    middle_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    key, cert = tmp_path / "key.pem", tmp_path / "chain.pem"
    key.write_bytes(_key_pem(leaf_key))
    cert.write_bytes(_certificate(middle_key, "intermediate") + _certificate(leaf_key, "127.0.0.1", issuer_key=middle_key))
    with pytest.raises(TLSFilesError) as caught:
        check_files(f"ssl:0:privateKey={key}:certKey={cert}", NOW)
    assert caught.value.reason == f"the private key belongs to certificate 2 of {cert}, not to the first"
    assert caught.value.advice.startswith("the first certificate in certKey= must be the server's own, followed by")
    cert.write_bytes(_certificate(ec.generate_private_key(ec.SECP256R1()), "another"))
    assert check_files(f"ssl:0:privateKey={key}:certKey={cert}", NOW) is None  # another pair: Twisted says so


def test_cert_key_without_private_key_says_private_key_is_missing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Twisted then reads the key from ./server.pem, and said only "No such file or directory
    (…/server.pem)", a name the operator never gave."""
    monkeypatch.chdir(tmp_path)
    key, cert = _pair(tmp_path)
    with pytest.raises(TLSFilesError) as caught:
        check_files(f"ssl:0:certKey={cert}", NOW)
    assert caught.value.reason.startswith("certKey= is given without privateKey=, so the key would be read from "
                                          "server.pem")
    assert caught.value.advice.startswith("add privateKey=KEY")
    combined = tmp_path / "combined.pem"
    combined.write_bytes(key.read_bytes() + cert.read_bytes())
    assert check_files(f"ssl:0:privateKey={combined}", NOW) is None  # key and certificate in one file
