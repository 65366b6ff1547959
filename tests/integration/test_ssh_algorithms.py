"""The SSH algorithms against the real OpenSSH client: each cipher and MAC carries git and hg both ways.

For every cipher/MAC pair hgwire offers, the client is made to choose it
(``ssh -c``/``-o MACs=``, checked in ``ssh -v``'s own words) and then clones,
pushes (``git fsck --full`` of the server's repository, on disk and through a
mirror clone over the same algorithms) and runs hg's push and clone.  A rekey
every megabyte (``RekeyLimit=1M``) runs a few MB each way.  A client that
insists on CBC, 3DES, MD5, SHA-1 or a SHA-1 key exchange is refused, and the
server serves the next client.

The matrix runs on the fs backend (the backend never sees the cipher); the
default client runs on both.
"""

from __future__ import annotations

import random
import re
import subprocess
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from twisted.conch.ssh import connection
from twisted.logger import globalLogPublisher

from backends.interfaces import Kind
from gateway import ssh_transport
from tests.conftest import BACKENDS, Client, RunningServer, SshKeys, ssh_server_settings
from tests.integration.test_git_daemon import BINARY, NON_ASCII, assert_consistent, commit
from tests.integration.test_git_transports import TransportServer

ALGORITHMS: dict[str, tuple[str, ...]] = {
    "chacha20-poly1305": ("-c", "chacha20-poly1305@openssh.com"),
    "aes128-gcm": ("-c", "aes128-gcm@openssh.com"),
    "aes256-gcm": ("-c", "aes256-gcm@openssh.com"),
    "aes128-ctr-hmac-sha2-256-etm": ("-c", "aes128-ctr", "-o", "MACs=hmac-sha2-256-etm@openssh.com"),
    "aes256-ctr-hmac-sha2-512-etm": ("-c", "aes256-ctr", "-o", "MACs=hmac-sha2-512-etm@openssh.com"),
    "aes128-ctr-hmac-sha2-256": ("-c", "aes128-ctr", "-o", "MACs=hmac-sha2-256"),
    "chacha20-poly1305-zlib": ("-C", "-c", "chacha20-poly1305@openssh.com"),
}
"""ssh options that leave the client one choice."""

NEGOTIATED: dict[str, tuple[str, str, str]] = {
    "chacha20-poly1305": ("chacha20-poly1305@openssh.com", "<implicit>", "none"),
    "aes128-gcm": ("aes128-gcm@openssh.com", "<implicit>", "none"),
    "aes256-gcm": ("aes256-gcm@openssh.com", "<implicit>", "none"),
    "aes128-ctr-hmac-sha2-256-etm": ("aes128-ctr", "hmac-sha2-256-etm@openssh.com", "none"),
    "aes256-ctr-hmac-sha2-512-etm": ("aes256-ctr", "hmac-sha2-512-etm@openssh.com", "none"),
    "aes128-ctr-hmac-sha2-256": ("aes128-ctr", "hmac-sha2-256", "none"),
    "chacha20-poly1305-zlib": ("chacha20-poly1305@openssh.com", "<implicit>", "zlib@openssh.com"),
}
"""What ``ssh -v`` then reports for both directions (its ``kex: ... cipher: C MAC: M compression: Z``)."""

REFUSED: dict[str, tuple[tuple[str, ...], str]] = {
    "aes128-cbc": (("-c", "aes128-cbc"), "no matching cipher found"),
    "3des-cbc": (("-c", "3des-cbc"), "no matching cipher found"),
    "hmac-md5": (("-c", "aes128-ctr", "-o", "MACs=hmac-md5"), "no matching MAC found"),
    "hmac-sha1": (("-c", "aes128-ctr", "-o", "MACs=hmac-sha1"), "no matching MAC found"),
    "umac-with-ctr": (("-c", "aes128-ctr", "-o", "MACs=umac-64-etm@openssh.com"), "no matching MAC found"),
    "group14-sha1": (("-o", "KexAlgorithms=diffie-hellman-group14-sha1"), "no matching key exchange method found"),
    "group-exchange-sha1": (("-o", "KexAlgorithms=diffie-hellman-group-exchange-sha1"),
                            "no matching key exchange method found"),
}


@pytest.fixture
def failures() -> Iterator[list[dict[str, Any]]]:
    """Every failure the service logs while the test runs (an exception in the transport lands here)."""
    seen: list[dict[str, Any]] = []

    def observe(event: dict[str, Any]) -> None:
        if "log_failure" in event:
            seen.append(event)

    globalLogPublisher.addObserver(observe)
    yield seen
    globalLogPublisher.removeObserver(observe)


class Ssh:
    """One SSH listener and the client's ssh command line with chosen options."""

    def __init__(self, server: RunningServer, client: Client, keys: SshKeys) -> None:
        self.server = server
        self.client = client
        self.port = server.port("ssh")
        self.base = keys.command(self.port).replace(" -o LogLevel=ERROR", "")

    def command(self, *options: str, log_level: str = "ERROR") -> str:
        return " ".join((self.base, "-o", f"LogLevel={log_level}", *options))

    def use(self, *options: str, log_level: str = "ERROR") -> TransportServer:
        """git through ssh with ``options`` from now on; the server as the git:// helpers expect it."""
        self.client.env["GIT_SSH_COMMAND"] = self.command(*options, log_level=log_level)
        return TransportServer(self.server, lambda name: f"ssh://git@127.0.0.1:{self.port}/{name}.git")

    def hg(self, options: tuple[str, ...], *args: str | Path) -> subprocess.CompletedProcess[str]:
        return self.client.hg("--config", f"ui.ssh={self.command(*options)}", *args)

    def hg_url(self, name: str) -> str:
        return f"ssh://alice@127.0.0.1:{self.port}/{name}"

    def negotiated(self, *options: str) -> str:
        """``ssh -vvv``'s account of a session with ``options`` (all of stderr)."""
        argv = self.command(*options, log_level="DEBUG3").split()
        result = subprocess.run([*argv, "git@127.0.0.1", "git-upload-pack 'none.git'"], input=b"",
                                capture_output=True, timeout=60, check=False)
        return result.stderr.decode("utf-8", "replace")


def make_ssh(make_server: Callable[..., RunningServer], backend: str, client: Client, keys: SshKeys) -> Ssh:
    return Ssh(make_server(backend, **ssh_server_settings(keys)), client, keys)


@pytest.fixture
def ssh(make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys) -> Ssh:
    return make_ssh(make_server, "fs", client, ssh_keys)


def kex_lines(log: str) -> list[tuple[str, str, str]]:
    return re.findall(r"kex: (?:server->client|client->server) cipher: (\S+) MAC: (\S+) compression: (\S+)", log)


@pytest.mark.parametrize("algorithm", list(ALGORITHMS))
def test_git_and_hg_both_ways(ssh: Ssh, client: Client, algorithm: str, tmp_path: Path,
                              failures: list[dict[str, Any]]) -> None:
    options = ALGORITHMS[algorithm]
    assert kex_lines(ssh.negotiated(*options)) == [NEGOTIATED[algorithm]] * 2

    server = ssh.use(*options)
    ssh.server.backend.create("proj", Kind.GIT)
    work = client.cwd / "work"
    client.git("clone", "-q", server.git_url("proj"), str(work))
    commit(client, work, "README", "hello\n", "first")
    commit(client, work, "data.bin", BINARY + random.Random(7).randbytes(300_000), "many packets' worth")
    commit(client, work, NON_ASCII, "ünï\n", "non-ascii")
    client.git("push", "-q", "origin", "main", cwd=work)
    assert_consistent(server, client, "proj")  # git fsck --full on disk, and of a mirror clone through ssh
    other = client.cwd / "other"
    client.git("clone", "-q", server.git_url("proj"), str(other))
    assert (other / "data.bin").read_bytes() == (work / "data.bin").read_bytes()
    assert client.git("rev-parse", "HEAD", cwd=other).stdout == client.git("rev-parse", "HEAD", cwd=work).stdout

    local = tmp_path / "hg-local"
    client.hg("init", str(local))
    (local / "data.bin").write_bytes(random.Random(8).randbytes(200_000))
    client.hg("commit", "-q", "-A", "-R", str(local), "-m", "binary")
    ssh.server.backend.create("hgproj", Kind.HG)
    ssh.hg(options, "push", "-q", "-R", str(local), ssh.hg_url("hgproj"))
    cloned = tmp_path / "hg-clone"
    ssh.hg(options, "clone", "-q", ssh.hg_url("hgproj"), str(cloned))
    assert (cloned / "data.bin").read_bytes() == (local / "data.bin").read_bytes()
    assert client.hg("log", "-R", str(cloned), "-T", "{node}").stdout == \
        client.hg("log", "-R", str(local), "-T", "{node}").stdout
    assert failures == []


def push_and_clone_logged(ssh: Ssh, client: Client, tmp_path: Path, options: tuple[str, ...], size: int
                          ) -> tuple[str, str]:
    """A git push of ``size`` incompressible bytes, then a clone of it, through ssh with ``options``
    (``ssh -v`` logging): the client's log of each.  The clone must match, the repository be whole."""
    log = tmp_path / "ssh.log"
    server = ssh.use(*options, "-E", str(log), log_level="DEBUG1")
    ssh.server.backend.create("big", Kind.GIT)
    work = client.cwd / "work"
    client.git("init", "-q", str(work))
    commit(client, work, "blob.bin", random.Random(size).randbytes(size), "bytes that do not compress")
    client.git("push", "-q", server.git_url("big"), "HEAD:main", cwd=work)
    pushed = log.read_text()
    log.unlink()
    clone = client.cwd / "clone"
    client.git("clone", "-q", server.git_url("big"), str(clone))
    assert (clone / "blob.bin").read_bytes() == (work / "blob.bin").read_bytes()
    assert_consistent(server, client, "big")
    return pushed, log.read_text()


@pytest.mark.parametrize("algorithm", ["chacha20-poly1305", "aes256-gcm", "aes128-ctr-hmac-sha2-256-etm",
                                       "aes128-ctr-hmac-sha2-256", "chacha20-poly1305-zlib"])
def test_a_rekey_every_megabyte_mid_push_and_mid_clone(ssh: Ssh, client: Client, algorithm: str,
                                                       tmp_path: Path, failures: list[dict[str, Any]]) -> None:
    options = (*ALGORITHMS[algorithm], "-o", "RekeyLimit=1M")
    pushed, cloned = push_and_clone_logged(ssh, client, tmp_path, options, 4_000_000)
    assert pushed.count("SSH2_MSG_NEWKEYS received") >= 3, pushed  # the first key exchange and rekeys
    assert cloned.count("SSH2_MSG_NEWKEYS received") >= 3, cloned
    assert failures == []


def server_started(log: str) -> int:
    """Key exchanges the server started, in ``ssh -v``'s words: the server's KEXINIT came first
    (the client's own rekeys send theirs first, and the first exchange has both at once)."""
    told = re.findall(r"SSH2_MSG_KEXINIT (sent|received)", log)
    return sum(1 for first, then in zip(told[::2], told[1::2], strict=False) if (first, then) == ("received", "sent"))


@pytest.mark.parametrize("algorithm", ["chacha20-poly1305", "aes128-ctr-hmac-sha2-256"])
def test_the_server_rekeys_a_client_that_does_not(ssh: Ssh, client: Client, algorithm: str, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  failures: list[dict[str, Any]]) -> None:
    """As sshd: past ``REKEY_BYTES`` either way the server starts a key exchange itself (here every
    quarter megabyte; OpenSSH's client would wait for a gigabyte), mid-push and mid-clone, and nothing
    is lost.  (A pushing client may send up to its window, 2 MiB once a loaded host's round trips
    are slow, before it answers a KEXINIT: at every megabyte, 3 MB made only one exchange then.)"""
    monkeypatch.setattr(ssh_transport, "REKEY_BYTES", 1 << 18)
    pushed, cloned = push_and_clone_logged(ssh, client, tmp_path, ALGORITHMS[algorithm], 3_000_000)
    for log in (pushed, cloned):
        assert server_started(log) >= 2, log
        assert log.count("SSH2_MSG_KEXINIT received") == log.count("SSH2_MSG_NEWKEYS received"), log
    assert failures == []


@pytest.mark.parametrize("algorithm", ["chacha20-poly1305", "aes128-ctr-hmac-sha2-256"])
def test_a_rekey_due_at_the_sessions_last_packet_is_finished_before_it(
        ssh: Ssh, client: Client, algorithm: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        failures: list[dict[str, Any]]) -> None:
    """As sshd: when the packet about to go out would cross ``REKEY_BYTES``, the key exchange starts
    before it and the packet waits for the new keys.  Here each session's CHANNEL_CLOSE, its last
    packet, is made the one that crosses (where a loaded host's packet sizes can put it): a KEXINIT
    sent after it was one the exiting client answered and never finished."""
    monkeypatch.setattr(ssh_transport, "REKEY_BYTES", 1 << 40)
    send = ssh_transport.AlgorithmTransport.sendPacket
    crossed: weakref.WeakSet[ssh_transport.AlgorithmTransport] = weakref.WeakSet()

    def the_close_crosses_the_limit(transport: ssh_transport.AlgorithmTransport, message: int,
                                    payload: bytes) -> None:
        if message == connection.MSG_CHANNEL_CLOSE and transport not in crossed:  # not when sent after NEWKEYS
            crossed.add(transport)
            transport._since_keys = ssh_transport.REKEY_BYTES - len(payload)
        send(transport, message, payload)

    monkeypatch.setattr(ssh_transport.AlgorithmTransport, "sendPacket", the_close_crosses_the_limit)
    pushed, cloned = push_and_clone_logged(ssh, client, tmp_path, ALGORITHMS[algorithm], 200_000)
    for log in (pushed, cloned):
        assert server_started(log) >= 1, log
        assert log.count("SSH2_MSG_KEXINIT received") == log.count("SSH2_MSG_NEWKEYS received"), log
    assert failures == []


@pytest.mark.parametrize("refusal", list(REFUSED))
def test_weak_algorithms_are_refused_and_the_next_client_is_served(ssh: Ssh, client: Client, refusal: str) -> None:
    options, message = REFUSED[refusal]
    ssh.server.backend.create("proj", Kind.GIT)
    server = ssh.use(*options, log_level="INFO")  # where ssh says why it gives up
    refused = client.git("ls-remote", server.git_url("proj"), check=False)
    assert refused.returncode != 0
    assert message in refused.stderr
    ssh.use()
    assert client.git("ls-remote", server.git_url("proj")).returncode == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_default_client_gets_chacha20_poly1305_and_strict_kex(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, backend: str) -> None:
    ssh = make_ssh(make_server, backend, client, ssh_keys)
    log = ssh.negotiated()
    assert "kex: server->client cipher: chacha20-poly1305@openssh.com MAC: <implicit>" in log
    assert "kex: client->server cipher: chacha20-poly1305@openssh.com MAC: <implicit>" in log
    assert "will use strict KEX ordering" in log
    ssh.server.backend.create("proj", Kind.GIT)
    server = ssh.use()
    work = client.cwd / "work"
    client.git("clone", "-q", server.git_url("proj"), str(work))
    commit(client, work, "README", "hello\n", "first")
    client.git("push", "-q", "origin", "main", cwd=work)
    assert_consistent(server, client, "proj")


@pytest.mark.parametrize("macs", ["umac-64-etm@openssh.com", "hmac-md5"])
def test_an_aead_cipher_needs_no_mac_in_common(ssh: Ssh, client: Client, macs: str) -> None:
    """As with sshd: a client whose MACs hgwire has none of still gets chacha20-poly1305, whose MAC
    is implicit (with a non-AEAD cipher, the same MACs are refused above)."""
    assert kex_lines(ssh.negotiated("-o", f"MACs={macs}")) == [NEGOTIATED["chacha20-poly1305"]] * 2
    ssh.server.backend.create("proj", Kind.GIT)
    server = ssh.use("-o", f"MACs={macs}")
    assert client.git("ls-remote", server.git_url("proj")).returncode == 0
