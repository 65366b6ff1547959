"""SSH logins that must be refused, and what a refusal leaves in the log, with the real ``ssh``."""

# ruff: noqa: F811  (the setup fixture, imported from test_ssh_server, is each test's parameter)

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from twisted.conch.ssh import keys
from twisted.cred.credentials import SSHPrivateKey
from twisted.cred.error import UnauthorizedLogin
from twisted.logger import formatEvent

from gateway.auth import AuthorizedKeys, Htpasswd
from gateway.policy import PolicyFile
from gateway.ssh import AuthorizedKeyChecker
from tests.conftest import LOOPBACK, RunningServer
from tests.integration.test_ssh_server import SshSetup, _keygen, setup  # noqa: F401 - a fixture

SAME_MTIME_NS = 1_700_000_000_123_456_789


def _line(public: Path) -> str:
    """An authorized_keys line for user alice; every ed25519 key gives one of the same length."""
    key_type, blob = public.read_text().split()[:2]
    return f'user="alice" {key_type} {blob}\n'


def _same_stamp_replace(path: Path, text: str, *, in_place: bool) -> None:
    """Give ``path`` the contents ``text`` (of its old size) and its old mtime, as ``cp -p``
    (``in_place``: the same inode) or a file moved over it (``mv``, tar, a Nix store) would."""
    if in_place:
        path.write_text(text)
    else:
        new = path.with_name(path.name + ".new")
        new.write_text(text)
        os.utime(new, ns=(SAME_MTIME_NS, SAME_MTIME_NS))
        os.replace(new, path)
    os.utime(path, ns=(SAME_MTIME_NS, SAME_MTIME_NS))


def test_a_key_removed_by_a_file_of_the_same_size_and_mtime_is_refused(setup: SshSetup, tmp_path: Path) -> None:
    """The keys file swapped for one of the same size and mtime (``mv``, ``cp -p``): the key it
    removed is refused at the next login, the key it added is accepted."""
    authorized = Path(setup.server.service.config.authorized_keys)
    alice, mallory = _line(tmp_path / "alice_key.pub"), _line(tmp_path / "mallory_key.pub")
    assert len(alice) == len(mallory)
    _same_stamp_replace(authorized, alice, in_place=True)
    assert setup.ssh("git-upload-pack 'app'", input=b"").returncode == 0
    for in_place in (False, True):
        _same_stamp_replace(authorized, mallory, in_place=in_place)
        refused = setup.ssh("git-upload-pack 'app'")
        assert refused.returncode == 255 and b"Permission denied (publickey)" in refused.stderr, in_place
        assert setup.ssh("git-upload-pack 'app'", key=setup.stranger_key).returncode == 0
        _same_stamp_replace(authorized, alice, in_place=in_place)
        assert setup.ssh("git-upload-pack 'app'", key=setup.stranger_key).returncode == 255
        assert setup.ssh("git-upload-pack 'app'").returncode == 0


def test_the_config_and_htpasswd_are_read_again_when_swapped_for_files_of_the_same_size_and_mtime(
        tmp_path: Path) -> None:
    config = tmp_path / "hgwire.toml"
    _same_stamp_replace(config, "anonymous_read = true\n", in_place=True)
    policy = PolicyFile(config)
    for in_place in (False, True):
        _same_stamp_replace(config, "anonymous_read = false", in_place=in_place)
        assert policy.refresh() and not policy.current.anonymous_read
        _same_stamp_replace(config, "anonymous_read = true\n", in_place=in_place)
        assert policy.refresh() and policy.current.anonymous_read
    htpasswd = tmp_path / "htpasswd"
    bob = "bob:$2b$04$" + "a" * 53 + "\n"
    eve = "eve:$2b$04$" + "a" * 53 + "\n"
    _same_stamp_replace(htpasswd, bob, in_place=True)
    users = Htpasswd(htpasswd)
    users.check("bob", "x")
    assert set(users._entries) == {"bob"}
    for in_place in (False, True):
        _same_stamp_replace(htpasswd, eve, in_place=in_place)
        users.check("eve", "x")
        assert set(users._entries) == {"eve"}
        _same_stamp_replace(htpasswd, bob, in_place=in_place)
        users.check("bob", "x")
        assert set(users._entries) == {"bob"}


def test_a_from_network_with_bits_set_past_its_length_lets_nobody_in(setup: SshSetup, tmp_path: Path) -> None:
    """``from="127.1.2.3/8"`` is not 127.0.0.0/8: sshd refuses the key from anywhere ("not from a
    permitted host"), as it does when such a network is negated; the line's problem is logged."""
    authorized = Path(setup.server.service.config.authorized_keys)
    public = (tmp_path / "alice_key.pub").read_text()
    for patterns in ("127.1.2.3/8", "!10.0.0.1/8,127.0.0.1"):
        authorized.write_text(f'from="{patterns}",user="alice" {public}')
        refused = setup.ssh("git-upload-pack 'app'")
        assert refused.returncode == 255 and b"Permission denied (publickey)" in refused.stderr, patterns
        skipped = [e for e in setup.events if "key skipped" in str(e.get("log_format", ""))]
        assert skipped and "bits set past its length" in str(skipped[-1]["reason"])
    authorized.write_text(f'from="127.0.0.0/8,!10.0.0.0/8",user="alice" {public}')
    assert setup.ssh("git-upload-pack 'app'").returncode == 0


def test_a_key_whose_line_was_skipped_says_so_in_the_refused_login_line(setup: SshSetup, tmp_path: Path) -> None:
    """An hg-ssh line with absolute paths is skipped when read; each login with its key says why, not
    "unknown key", so that the operator reading the login log finds the line to mend."""
    authorized = Path(setup.server.service.config.authorized_keys)
    public = (tmp_path / "alice_key.pub").read_text()
    authorized.write_text(f'command="/usr/bin/hg-ssh /srv/hg/a /srv/hg/b" {public}')
    assert setup.ssh("git-upload-pack 'app'").returncode == 255
    (event,) = _refusals(setup, 1)
    alice = _fingerprint(tmp_path / "alice_key.pub")
    line = FAIL2BAN.match(formatEvent(event))
    assert line is not None and line["host"] == "127.0.0.1", formatEvent(event)
    assert line["why"] == (f"ssh-ed25519 {alice} (its authorized_keys line 1 was skipped: command= runs hg-ssh "
                           "with the absolute path '/srv/hg/a': name the repository as it is named under --root)")


def _rsa_key(tmp_path: Path, name: str) -> Path:
    key = tmp_path / name
    subprocess.run(["/usr/bin/ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-C", "ronald", "-f", str(key)],
                   check=True)
    return key


@pytest.mark.parametrize("how", ["authorized-key", "certificate"])
def test_an_rsa_key_logs_in_with_sha2_and_never_with_sha1(setup: SshSetup, tmp_path: Path, how: str) -> None:
    """As OpenSSH's sshd since 8.8: ``ssh-rsa`` (SHA-1) signatures are refused, an RSA key or
    certificate logs in with rsa-sha2-256/512 (what every OpenSSH client since 7.2 signs with)."""
    authorized = Path(setup.server.service.config.authorized_keys)
    key = _rsa_key(tmp_path, "rsa_user")
    if how == "authorized-key":
        authorized.write_text((tmp_path / "rsa_user.pub").read_text())
        sha1, sha2 = ("ssh-rsa",), ("rsa-sha2-256", "rsa-sha2-512")
        extra: tuple[str, ...] = ()
    else:
        ca = tmp_path / "ca"
        subprocess.run(["/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(ca)], check=True)
        authorized.write_text("cert-authority " + (tmp_path / "ca.pub").read_text())
        subprocess.run(["/usr/bin/ssh-keygen", "-q", "-s", str(ca), "-I", "ronald-id", "-n", "ronald", f"{key}.pub"],
                       check=True, capture_output=True)
        # (the key's own algorithm too, or ssh reads the certificate as a private key; the key alone is not trusted)
        sha1 = ("ssh-rsa-cert-v01@openssh.com,ssh-rsa",)
        sha2 = ("rsa-sha2-256-cert-v01@openssh.com,rsa-sha2-256", "rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-512")
        extra = ("-o", f"CertificateFile={key}-cert.pub")
    for algorithm in sha1:
        refused = setup.ssh("git-upload-pack 'app'", key=key, options=(*extra, "-o", f"PubkeyAcceptedAlgorithms={algorithm}"))
        assert refused.returncode == 255 and b"Permission denied (publickey)" in refused.stderr, algorithm
    for algorithm in (*sha2, None):
        chosen = () if algorithm is None else ("-o", f"PubkeyAcceptedAlgorithms={algorithm}")
        done = setup.ssh("git-upload-pack 'app'", key=key, options=(*extra, *chosen))
        assert done.returncode == 0 and done.stdout.startswith(b"hello ronald app"), (algorithm, done.stderr)


def test_an_ssh_rsa_signature_is_refused_even_from_a_client_that_ignores_server_sig_algs(tmp_path: Path) -> None:
    key = keys.Key.fromFile(str(_rsa_key(tmp_path, "rsa_user")))
    (tmp_path / "authorized_keys").write_text((tmp_path / "rsa_user.pub").read_text())
    checker = AuthorizedKeyChecker(AuthorizedKeys(tmp_path / "authorized_keys"))
    blob, data = key.public().blob(), b"what a client signs"
    login = ("ronald", None)
    for algorithm in (b"rsa-sha2-256", b"rsa-sha2-512"):
        signed = SSHPrivateKey(b"git", algorithm, blob, data, key.sign(data, signatureType=algorithm))
        assert checker._verify(login, signed) == b"ronald"
    sha1 = key.sign(data, signatureType=b"ssh-rsa")
    for algorithm in (b"ssh-rsa", b"rsa-sha2-256"):
        with pytest.raises(UnauthorizedLogin, match="SHA-1"):
            checker._verify(login, SSHPrivateKey(b"git", algorithm, blob, data, sha1))
    with pytest.raises(UnauthorizedLogin, match="SHA-1"):  # the query, before a signature
        checker._verify(login, SSHPrivateKey(b"git", b"ssh-rsa", blob, None, None))


FAIL2BAN = re.compile(r"^SSH login refused from (?P<host>[0-9a-f.:]+) port (?P<port>\d+) for user (?P<user>.*?): (?P<why>.+)$")
"""What a fail2ban filter matches (README "SSH"): the address first, before anything the client chose."""


def _refusals(setup: SshSetup, count: int) -> list[dict[str, Any]]:
    """The refusal lines logged so far, waiting (a little) for ``count`` of them."""
    deadline = time.monotonic() + 10
    while True:
        found = [e for e in setup.events if str(e.get("log_format", "")).startswith("SSH login refused from")]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def _fingerprint(public: Path) -> str:
    shown = subprocess.run(["/usr/bin/ssh-keygen", "-l", "-E", "sha256", "-f", str(public)], capture_output=True,
                           text=True, check=True).stdout
    return shown.split()[1]


def test_a_refused_login_is_one_log_line_with_who_where_which_key_and_why(setup: SshSetup, tmp_path: Path) -> None:
    authorized = Path(setup.server.service.config.authorized_keys)
    alice = (tmp_path / "alice_key.pub").read_text()
    assert setup.ssh("git-upload-pack 'app'", input=b"").returncode == 0
    assert _refusals(setup, 0) == []  # a login is no refusal

    refused = setup.ssh("git-upload-pack 'app'", key=setup.stranger_key)
    assert refused.returncode == 255
    (event,) = _refusals(setup, 1)
    line = FAIL2BAN.match(formatEvent(event))
    assert line is not None, formatEvent(event)
    assert (line["host"], line["user"]) == ("127.0.0.1", "git") and int(line["port"]) > 0
    mallory = _fingerprint(tmp_path / "mallory_key.pub")
    assert event["refused"] == [{"type": "ssh-ed25519", "fingerprint": mallory, "reason": "unknown key"}]
    assert line["why"] == f"ssh-ed25519 {mallory} (unknown key)" and not event["too_many_attempts"]

    authorized.write_text(f'from="10.0.0.0/8",user="alice" {alice}expiry-time="20000101",user="alice" {alice}')
    setup.ssh("git-upload-pack 'app'")
    assert _refusals(setup, 2)[-1]["refused"][0]["reason"] == "not from a permitted host"
    authorized.write_text(f'expiry-time="20000101",user="alice" {alice}')
    setup.ssh("git-upload-pack 'app'")
    assert _refusals(setup, 3)[-1]["refused"][0]["reason"] == "expired"


def test_too_many_attempts_are_said_in_the_one_line(setup: SshSetup, tmp_path: Path) -> None:
    strangers = [_keygen(tmp_path / f"stranger{i}", f"s{i}") for i in range(8)]
    identities = [arg for key in strangers[1:] for arg in ("-i", str(key))]
    assert setup.ssh("git-upload-pack 'app'", key=strangers[0], options=tuple(identities)).returncode == 255
    (event,) = _refusals(setup, 1)
    assert event["too_many_attempts"] and len(event["refused"]) == 6
    assert FAIL2BAN.match(formatEvent(event))["why"].startswith("too many authentication attempts; ssh-ed25519 SHA256:")
    assert [key["fingerprint"] for key in event["refused"]] == \
        [_fingerprint(Path(f"{key}.pub")) for key in strangers[:6]]


def test_log_lines_print_what_the_client_sent_as_text_not_python_bytes(setup: SshSetup) -> None:
    result = setup.ssh("git-upload-pack 'app'", options=("-tt",))
    assert b"PTY allocation request failed" in result.stderr
    refused = [e for e in setup.events if "refused SSH channel request" in str(e.get("log_format", ""))]
    assert refused and formatEvent(refused[0]) == "refused SSH channel request pty-req"


def test_an_rsa_host_key_is_offered_with_sha2_signatures_only(setup: SshSetup, tmp_path: Path,
                                                               make_server: Callable[..., RunningServer]) -> None:
    host_key = _rsa_key(tmp_path, "rsa_host")
    server = make_server("memory", ssh=[LOOPBACK], host_key=str(host_key),
                         authorized_keys=setup.server.service.config.authorized_keys)
    rsa_setup = SshSetup(server, setup.key, setup.stranger_key, host_key, setup.events)
    for algorithm in ("rsa-sha2-512", "rsa-sha2-256"):
        done = rsa_setup.ssh("git-upload-pack 'app'", input=b"", options=("-o", f"HostKeyAlgorithms={algorithm}"))
        assert done.returncode == 0, (algorithm, done.stderr)
    argv = rsa_setup.ssh_argv("git-upload-pack 'app'", options=("-o", "HostKeyAlgorithms=ssh-rsa"))
    argv[argv.index("LogLevel=ERROR")] = "LogLevel=INFO"  # ssh says why at INFO
    refused = subprocess.run(argv, capture_output=True, timeout=60, check=False)
    assert refused.returncode == 255 and b"no matching host key type found" in refused.stderr, refused.stderr
