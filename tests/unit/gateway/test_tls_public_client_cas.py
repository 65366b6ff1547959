"""A ``clientCA=`` file that lets in the clients of the public CAs (the system's bundle, a file of
many CAs, a public root among one's own) is warned of at the start and on SIGHUP, in one sentence
that says what it means and what to write instead.  It was taken without a word, and the listener
then let in anyone with a certificate from any public CA."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

from gateway import tls
from gateway.tls import CLIENT_CA_HANDFUL, client_cas
from tests.unit.gateway.test_tls_client_ca import BASE, NOW, _certificate

INSTEAD = ("write clientCA= with a file of your own CA's certificates only (its root, and the intermediates that "
           "sign your clients' certificates if clients do not send them), then send hgwire a SIGHUP")
MEANING = "a certificate any of them issued to anyone who asked passes the TLS handshake, so clientCA= keeps no one out"


def _bundle(path: Path, *parts: Path) -> Path:
    path.write_bytes(b"\n".join(part.read_bytes() for part in parts))
    return path


@pytest.fixture
def public(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """A system bundle of its own: ten "public" roots (and the real system's not looked at)."""
    roots = tmp_path / "roots"
    roots.mkdir()
    certificates = [_certificate(roots, f"public {n}", ca=True) for n in range(CLIENT_CA_HANDFUL + 2)]
    bundle = _bundle(tmp_path / "ca-certificates.crt", *certificates)
    monkeypatch.setattr(tls, "system_bundles", lambda: [str(bundle)])
    return [bundle, *certificates]


def test_the_system_bundle_is_warned_of(public: list[Path], tmp_path: Path) -> None:
    bundle = public[0]
    link = tmp_path / "link.pem"
    link.symlink_to(bundle)
    for named in (bundle, link):
        certificates, warning = client_cas(f"{BASE}:clientCA={named}", NOW)
        assert len(certificates) == CLIENT_CA_HANDFUL + 2
        assert warning == (f"the clientCA= file {named} is the system's bundle of public CAs "
                           f"({CLIENT_CA_HANDFUL + 2} of them): {MEANING}; {INSTEAD}")


def test_a_copy_of_it_or_any_file_of_many_cas_is_warned_of(public: list[Path], tmp_path: Path) -> None:
    copy = _bundle(tmp_path / "copy.pem", public[0])
    assert client_cas(f"{BASE}:clientCA={copy}", NOW)[1] == (
        f"the clientCA= file {copy} holds {CLIENT_CA_HANDFUL + 2} CA certificates, {CLIENT_CA_HANDFUL + 2} of them "
        f"public CAs of the system's bundle: {MEANING}; {INSTEAD}")
    own = [_certificate(tmp_path, f"own {n}", ca=True) for n in range(CLIENT_CA_HANDFUL + 1)]
    many = _bundle(tmp_path / "many.pem", *own)
    assert client_cas(f"{BASE}:clientCA={many}", NOW)[1] == (
        f"the clientCA= file {many} holds {CLIENT_CA_HANDFUL + 1} CA certificates: {MEANING}; {INSTEAD}")
    handful = _bundle(tmp_path / "handful.pem", *own[:CLIENT_CA_HANDFUL])
    assert client_cas(f"{BASE}:clientCA={handful}", NOW)[1] is None


def test_a_public_root_beside_one_s_own_ca_is_warned_of(public: list[Path], tmp_path: Path) -> None:
    own = _certificate(tmp_path, "own", ca=True)
    mixed = _bundle(tmp_path / "mixed.pem", own, public[1])
    assert client_cas(f"{BASE}:clientCA={mixed}", NOW)[1] == (
        f"the clientCA= file {mixed} holds CN=public 0, a public CA of the system's bundle: a client certificate it "
        f"issued to anyone who asked passes the TLS handshake; {INSTEAD}")
    two = _bundle(tmp_path / "two.pem", public[1], own, public[2])
    assert "holds 2 public CAs (CN=public 0, CN=public 1) of the system's bundle" in str(
        client_cas(f"{BASE}:clientCA={two}", NOW)[1])
    assert client_cas(f"{BASE}:clientCA={own}", NOW)[1] is None


def test_the_real_system_bundle_is_found_and_warned_of() -> None:
    bundles = tls.system_bundles()
    if not bundles:
        pytest.skip("no system bundle of CAs here")
    assert os.path.isfile(bundles[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (a root's serial number that cryptography frowns on: not the operator's)
        warning = client_cas(f"{BASE}:clientCA={bundles[0]}")[1]
    assert warning is not None and warning.startswith(f"the clientCA= file {bundles[0]} is the system's bundle of "
                                                      "public CAs ("), warning
