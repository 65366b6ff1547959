"""The SSH front door against the real OpenSSH client.

A trivial echo session stands in for the git/hg services (registered in
``EXEC_SESSIONS`` by this test only), so these tests exercise exactly the SSH
server: keys, refusals, exec parsing, env, flow control and exit statuses.
"""

from __future__ import annotations

import os
import stat
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from twisted.logger import globalLogPublisher

from backends.interfaces import Kind
from gateway import ssh as gateway_ssh
from gateway.channel import Channel, SessionContext
from tests.conftest import LOOPBACK, RunningServer


class EchoSession:
    """Greets with what it was told, echoes stdin (pausing input now and then), exits 0 at EOF."""

    def __init__(self, ctx: SessionContext, channel: Channel) -> None:
        from twisted.internet import reactor

        self._reactor: Any = reactor
        self._channel = channel
        self._chunks = 0
        greeting = f"hello {ctx.user} {ctx.repo_name} {ctx.transport} v{ctx.protocol_version}"
        extra = " ".join(f"{k}={v}" for k, v in sorted(ctx.extra.items()))
        channel.write(f"{greeting} {extra}\n".encode())

    def data_received(self, data: bytes) -> None:
        self._channel.write(data)
        self._chunks += 1
        if self._chunks % 3 == 0:  # exercise inbound backpressure
            self._channel.pause_input()
            self._reactor.callLater(0.001, self._channel.resume_input)

    def eof_received(self) -> None:
        self._channel.write_stderr(b"bye\n")
        self._channel.finish(0)

    def connection_lost(self) -> None:
        pass


class ExitSession:
    """Ends at once with a message on stderr and exit status 1."""

    def __init__(self, ctx: SessionContext, channel: Channel) -> None:
        channel.write_stderr(b"test: nothing served here\n")
        channel.finish(1)

    def data_received(self, data: bytes) -> None:
        pass

    def eof_received(self) -> None:
        pass

    def connection_lost(self) -> None:
        pass


@dataclass
class SshSetup:
    server: RunningServer
    key: Path
    stranger_key: Path
    host_key: Path
    events: list[dict[str, Any]]

    def ssh_argv(self, *args: str, key: Path | None = None, options: tuple[str, ...] = ()) -> list[str]:
        return [
            "/usr/bin/ssh", "-F", "/dev/null", "-p", str(self.server.port("ssh")),
            "-i", str(key or self.key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
            *options, "git@127.0.0.1", *args,
        ]

    def ssh(self, *args: str, key: Path | None = None, input: bytes = b"", options: tuple[str, ...] = ()
            ) -> subprocess.CompletedProcess[bytes]:
        argv = self.ssh_argv(*args, key=key, options=options)
        return subprocess.run(argv, input=input, capture_output=True, timeout=60, check=False)


def _keygen(path: Path, comment: str) -> Path:
    subprocess.run(["/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
                   check=True)
    return path


@pytest.fixture
def setup(make_server: Callable[..., RunningServer], tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[SshSetup]:
    for kind in ("git-upload-pack", "git-receive-pack", "hg-serve"):
        monkeypatch.setitem(gateway_ssh.EXEC_SESSIONS, kind, EchoSession)
    monkeypatch.setattr(gateway_ssh, "register_sessions", lambda: None)
    monkeypatch.delitem(gateway_ssh.EXEC_SESSIONS, "git-upload-archive", raising=False)
    key = _keygen(tmp_path / "alice_key", "alice@laptop")
    stranger = _keygen(tmp_path / "mallory_key", "mallory")
    authorized = tmp_path / "authorized_keys"
    authorized.write_text('user="alice" ' + (tmp_path / "alice_key.pub").read_text())
    host_key = tmp_path / "keys" / "host_key"
    events: list[dict[str, Any]] = []
    observer = events.append
    globalLogPublisher.addObserver(observer)
    server = make_server("memory", ssh=[LOOPBACK], host_key=str(host_key), authorized_keys=str(authorized))
    try:
        yield SshSetup(server, key, stranger, host_key, events)
    finally:
        globalLogPublisher.removeObserver(observer)


def _assert_echo_works(setup: SshSetup) -> None:
    result = setup.ssh("git-upload-pack '/team/app.git'", input=b"ping")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"hello alice team/app.git git-ssh v0 \nping"
    assert result.stderr == b"bye\n"


def test_host_key_generated_private(setup: SshSetup) -> None:
    assert stat.S_IMODE(os.stat(setup.host_key).st_mode) == 0o600
    assert b"OPENSSH PRIVATE KEY" in setup.host_key.read_bytes()


def test_exec_reaches_the_session(setup: SshSetup) -> None:
    _assert_echo_works(setup)


def test_session_is_logged_once(setup: SshSetup) -> None:
    _assert_echo_works(setup)
    setup.ssh("ls")
    deadline = time.monotonic() + 10
    while True:  # the server logs when it sees the channel close, maybe after the client exited
        sessions = [e for e in setup.events if e.get("log_namespace") == "gateway.ssh" and "outcome" in e]
        outcomes = [(e["proto"], e["service"], e["repo"], e["user"], e["outcome"]) for e in sessions]
        if len(outcomes) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert ("git-ssh", "git-upload-pack", "team/app.git", "alice", "ok") in outcomes
    unknown = "refused: unknown command 'ls'; only git's and hg's own commands run here; 'info' lists the " \
        "repositories you may use"
    assert ("ssh", "-", "-", "alice", unknown) in outcomes
    assert all(isinstance(e["elapsed_ms"], int) and e["peer"].startswith("127.0.0.1:") for e in sessions)
    echo_round_trip = next(e["round_trip_ms"] for e in sessions if e["outcome"] == "ok")
    assert 0 <= echo_round_trip < 10_000  # what sized the channel's windows, for an operator to read
    refused = next(e for e in sessions if e["outcome"].startswith("refused"))
    assert refused["round_trip_ms"] is not None  # "ls" was an exec too
    echo = next(e for e in sessions if e["outcome"] == "ok")
    assert (echo["bytes_in"], echo["bytes_out"]) == (4, len(b"hello alice team/app.git git-ssh v0 \nping"))


def test_hg_serve_route(setup: SshSetup) -> None:
    result = setup.ssh("hg -R team/app serve --stdio --hidden", input=b"hello\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"hello alice team/app hg-ssh v0 hidden=1\nhello\n"


def test_large_transfer_both_ways(setup: SshSetup) -> None:
    payload = os.urandom(3 * 1024 * 1024)
    result = setup.ssh("git-upload-pack 'big.git'", input=payload)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split(b"\n", 1)[1] == payload


def test_a_slow_reader_gets_everything_under_the_in_flight_bound(setup: SshSetup) -> None:
    # The server keeps only part of OpenSSH's window in flight (``in_flight_bound``): the
    # client's window adjusts must keep coming while its reader lags behind the link.
    payload = os.urandom(3 * 1024 * 1024)
    argv = setup.ssh_argv("git-upload-pack 'big.git'")
    with subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as proc:
        stdin, stdout = proc.stdin, proc.stdout
        assert stdin is not None and stdout is not None

        def send() -> None:
            stdin.write(payload)
            stdin.close()

        writer = threading.Thread(target=send)
        writer.start()
        received = bytearray()
        deadline = time.monotonic() + 60
        while chunk := os.read(stdout.fileno(), 48 * 1024):
            received += chunk
            time.sleep(0.002)
            assert time.monotonic() < deadline, f"stalled after {len(received)} bytes"
        writer.join()
        assert proc.wait(timeout=30) == 0
    assert bytes(received).split(b"\n", 1)[1] == payload


def test_git_protocol_env_accepted(setup: SshSetup) -> None:
    result = setup.ssh("git-upload-pack '/r.git'", options=("-o", "SetEnv=GIT_PROTOCOL=version=2"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"hello alice r.git git-ssh v2 git_protocol=version=2\n"


def test_other_env_ignored(setup: SshSetup) -> None:
    result = setup.ssh("git-upload-pack '/r.git'",
                       options=("-o", "SetEnv=LD_PRELOAD=/tmp/x.so LANG=C.UTF-8 LC_ALL=C FOO=bar"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"hello alice r.git git-ssh v0 \n"
    # the locale, which a stock OpenSSH client sends every time, is refused without a log line
    refused = [e["reason"] for e in setup.events if "refused SSH env" in str(e.get("log_format", ""))]
    assert refused == ["environment variable 'LD_PRELOAD' is not accepted",
                       "environment variable 'FOO' is not accepted"]


@pytest.mark.parametrize(
    ("command", "message", "status"),
    [  # a git or hg command refused in its client's words (git's die(), hg's abort), anything else as hgwire's
        ("ls", b"hgwire: unknown command 'ls'", 1),
        ("sh -c 'git-upload-pack /r.git'", b"hgwire: unknown command 'sh'", 1),
        ("git-upload-pack '../x'", b"fatal: repository name '../x' contains a '..' segment", 128),
        ("git-upload-pack '/../x'", b"fatal: repository name '../x' contains a '..' segment", 128),
        ("git-upload-pack '--help'", b"fatal: repository name '--help' starts with '-'", 128),
        ("git-upload-pack '/r.git'; rm -rf /", b"fatal: command uses shell syntax ';'", 128),
        ("ls '/r.git'; rm -rf /", b"hgwire: command uses shell syntax ';'", 1),
        ("hg -R --debugger serve --stdio", b"abort: repository name '--debugger' starts with '-'", 255),
        ("git-upload-archive '/r.git'", b"fatal: git-upload-archive is not available on this server yet", 128),
        # refused before the command is read whole: still in the words of the client its first word names
        ("git-upload-pack '/" + "a" * 5000 + "'",
         b"fatal: the command is longer than 4096 bytes: name the repository by a shorter path", 128),
        ("/usr/bin/git upload-pack '/" + "a" * 5000 + "'", b"fatal: the command is longer than 4096 bytes", 128),
        ("hg -R " + "a" * 5000 + " serve --stdio", b"abort: the command is longer than 4096 bytes", 255),
        ("chg -R r serve --stdio --debugger", b"abort: unsupported arguments to 'hg'", 255),
        ("ls " + "a" * 5000, b"hgwire: the command is longer than 4096 bytes", 1),
    ],
)
def test_refused_commands(setup: SshSetup, command: str, message: bytes, status: int) -> None:
    result = setup.ssh(command)
    assert result.returncode == status
    assert result.stdout == b""
    assert result.stderr.startswith(message), result.stderr
    assert result.stderr.count(b"\n") == 1
    _assert_echo_works(setup)


def test_read_only_refuses_receive_pack_at_the_door(make_server: Callable[..., RunningServer],
                                                    setup: SshSetup) -> None:
    authorized = setup.key.with_name("authorized_keys")
    read_only = make_server("memory", ssh=[LOOPBACK], host_key=str(setup.host_key),
                            authorized_keys=str(authorized), read_only=True)
    ro = SshSetup(read_only, setup.key, setup.stranger_key, setup.host_key, [])
    result = ro.ssh("git-receive-pack '/r.git'")
    assert result.returncode == 128
    assert result.stderr == b"fatal: this server is read-only; pushes and repository creation are refused\n"
    assert ro.ssh("git-upload-pack '/r.git'").returncode == 0


def test_unknown_key_refused(setup: SshSetup) -> None:
    result = setup.ssh("git-upload-pack '/r.git'", key=setup.stranger_key)
    assert result.returncode == 255
    assert b"Permission denied (publickey)" in result.stderr
    _assert_echo_works(setup)


def test_a_key_s_from_option_is_matched_against_the_client_address(setup: SshSetup, tmp_path: Path) -> None:
    """As sshd: ``from=`` lets the key in only from the addresses it names (here 127.0.0.5, where
    ``ssh -b`` binds), else ``Permission denied`` as for an unknown key."""
    authorized = Path(setup.server.service.config.authorized_keys)
    public = (tmp_path / "alice_key.pub").read_text()
    authorized.write_text(f'from="127.0.0.5,!127.0.0.6",user="alice" {public}')
    os.utime(authorized, ns=(1, 10**18))
    bound = setup.ssh("git-upload-pack '/team/app.git'", input=b"ping", options=("-b", "127.0.0.5"))
    assert bound.returncode == 0, bound.stderr
    assert bound.stdout.startswith(b"hello alice team/app.git")
    for elsewhere in ((), ("-b", "127.0.0.6")):
        refused = setup.ssh("git-upload-pack '/team/app.git'", options=elsewhere)
        assert refused.returncode == 255 and b"Permission denied (publickey)" in refused.stderr
    warnings = [e for e in setup.events if "does not allow" in str(e.get("log_format", ""))]
    assert warnings and warnings[-1]["user"] == "alice"


def test_the_authorized_keys_gitolite_wrote_log_in_as_its_users(setup: SshSetup, tmp_path: Path) -> None:
    """An operator moving from gitolite points ``--authorized-keys`` at the file gitolite wrote: each
    key logs in as the user its ``gitolite-shell`` command names (not its comment), an scp-style
    ``git@host:app`` path included; a key forced to run anything else stays out."""
    authorized = Path(setup.server.service.config.authorized_keys)
    alice = (tmp_path / "alice_key.pub").read_text().split()
    mallory = (tmp_path / "mallory_key.pub").read_text().split()
    authorized.write_text(
        "# gitolite start\n"
        f'command="/home/git/gitolite/src/gitolite-shell carol",no-port-forwarding,no-X11-forwarding,'
        f"no-agent-forwarding,no-pty {alice[0]} {alice[1]} alice@laptop\n"
        f'command="/usr/local/bin/backup-script",no-pty {mallory[0]} {mallory[1]} mallory\n'
        "# gitolite end\n")
    os.utime(authorized, ns=(1, 10**18))
    result = setup.ssh("git-upload-pack 'app'", input=b"ping")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(b"hello carol app git-ssh")
    refused = setup.ssh("git-upload-pack 'app'", key=setup.stranger_key)
    assert refused.returncode == 255 and b"Permission denied (publickey)" in refused.stderr
    skipped = [e for e in setup.events if "key skipped" in str(e.get("log_format", ""))]
    assert skipped and "backup-script" in str(skipped[-1]["reason"])


def test_password_login_not_offered(setup: SshSetup) -> None:
    result = setup.ssh(
        "git-upload-pack '/r.git'",
        options=("-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password,keyboard-interactive"),
    )
    assert result.returncode == 255
    assert b"Permission denied (publickey)." in result.stderr  # the only method the server offers
    _assert_echo_works(setup)


def test_a_shell_request_gets_a_greeting_not_a_shell(make_server: Callable[..., RunningServer],
                                                   tmp_path: Path) -> None:
    """``ssh -T git@host``, how people test their key on a git host: who the key logged in as and
    the repositories they may read (W: push), exit status 0; nothing typed is run."""
    key = _keygen(tmp_path / "alice_key", "alice@laptop")
    authorized = tmp_path / "authorized_keys"
    authorized.write_text('user="alice" ' + (tmp_path / "alice_key.pub").read_text())
    policy = tmp_path / "policy.toml"
    policy.write_text('anonymous_read = false\n[[repo]]\npattern = "team/*"\nwrite = ["alice"]\n'
                      '[[repo]]\npattern = "private/*"\nread = ["bob"]\n')
    server = make_server("fs", ssh=[LOOPBACK], host_key=str(tmp_path / "host_key"),
                         authorized_keys=str(authorized), config_file=str(policy))
    server.backend.create("team/app", Kind.GIT)
    server.backend.create("docs", Kind.HG)
    server.backend.create("private/plans", Kind.GIT)
    setup = SshSetup(server, key, key, tmp_path / "host_key", [])
    result = setup.ssh(options=("-T",), input=b"echo hi\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().splitlines() == [
        "hello alice, this is hgwire: it serves git and Mercurial repositories and gives no shell.",
        "",
        "You may read (R) and push to (W):",
        " R    docs",
        " R W  team/app.git",
    ], "nothing typed was run, nothing bob's is named"
    info = setup.ssh("info")  # what gitolite's users run for the same list
    assert (info.returncode, info.stdout) == (0, result.stdout)


def test_pty_refused(setup: SshSetup) -> None:
    result = setup.ssh("git-upload-pack '/r.git'", options=("-tt",))
    assert b"PTY allocation request failed" in result.stderr


def test_subsystem_refused(setup: SshSetup) -> None:
    result = setup.ssh("sftp", options=("-s",))
    assert result.returncode != 0


def test_remote_port_forwarding_refused(setup: SshSetup) -> None:
    result = setup.ssh("git-upload-pack '/r.git'",
                       options=("-o", "ExitOnForwardFailure=yes", "-R", "0:127.0.0.1:9", "-o", "LogLevel=INFO"))
    assert result.returncode == 255
    assert b"forwarding failed" in result.stderr


def test_local_port_forwarding_refused(setup: SshSetup) -> None:
    result = setup.ssh("-W", "127.0.0.1:9", options=("-o", "LogLevel=INFO"))
    assert result.returncode == 255
    assert b"forwarding failed" in result.stderr
    said = [e for e in setup.events if "only sessions are served" in str(e.get("log_format", ""))]
    assert said and said[-1]["channel_type"] == "direct-tcpip"
    assert not [e for e in setup.events if e.get("log_failure") is not None], "no traceback logged"


# --- real git over SSH, through the git sessions ----------------------------------------------

@pytest.mark.parametrize("backend", ["memory", "fs"])
def test_git_over_ssh(make_server: Callable[..., RunningServer], tmp_path: Path, backend: str) -> None:
    from tests.conftest import Client

    gateway_ssh.register_sessions()
    key = _keygen(tmp_path / "git_key", "bob")
    authorized = tmp_path / "authorized_keys_git"
    authorized.write_text((tmp_path / "git_key.pub").read_text())
    server = make_server(backend, ssh=[LOOPBACK], host_key=str(tmp_path / "hk"), authorized_keys=str(authorized),
                         create_on_push=True)
    home = tmp_path / "home"
    home.mkdir()
    ssh_command = (f"/usr/bin/ssh -F /dev/null -p {server.port('ssh')} -i {key} -o IdentitiesOnly=yes "
                   "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR")
    client = Client({"PATH": os.environ["PATH"], "HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1",
                     "GIT_SSH_COMMAND": ssh_command, "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@b",
                     "GIT_COMMITTER_NAME": "a", "GIT_COMMITTER_EMAIL": "a@b"}, tmp_path)
    url = "ssh://git@127.0.0.1/team/app.git"
    work = tmp_path / "src"
    client.git("init", "-q", "-b", "main", str(work))
    (work / "a.txt").write_text("hello\n")
    client.git("add", "a.txt", cwd=work)
    client.git("commit", "-qm", "one", cwd=work)
    head = client.git("rev-parse", "HEAD", cwd=work).stdout.strip()
    client.git("push", url, "main", cwd=work)
    for version in ("0", "2"):
        clone = tmp_path / f"clone{version}"
        result = client.git("-c", f"protocol.version={version}", "clone", "-q", url, str(clone),
                            env={"GIT_TRACE_PACKET": "1"})
        assert client.git("rev-parse", "HEAD", cwd=clone).stdout.strip() == head
        assert ("< version 2" in result.stderr) == (version == "2")  # GIT_PROTOCOL reached the session
    refused = client.git("ls-remote", "ssh://git@127.0.0.1/../etc", check=False)
    assert refused.returncode != 0
    assert "fatal: repository name '../etc' contains a '..' segment" in refused.stderr
    assert client.git("ls-remote", url).stdout.split()[0] == head


def test_auth_attempts_are_bounded(setup: SshSetup, tmp_path: Path) -> None:
    strangers = [_keygen(tmp_path / f"stranger{i}", f"s{i}") for i in range(8)]
    identities = [arg for key in strangers[1:] for arg in ("-i", str(key))]
    result = setup.ssh("git-upload-pack '/r.git'", key=strangers[0], options=(*identities, "-o", "LogLevel=INFO"))
    assert result.returncode == 255
    assert b"too many bad auths" in result.stderr or b"Too many authentication failures" in result.stderr
    _assert_echo_works(setup)


def _session_events(setup: SshSetup, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while True:
        sessions = [e for e in setup.events if e.get("log_namespace") == "gateway.ssh" and "outcome" in e]
        if len(sessions) >= count or time.monotonic() > deadline:
            return sessions
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("args", "service", "repo"),
    [
        (("id", "ssh://git@127.0.0.1:{port}/team/app"), "hg-serve", "team/app"),
        (("id", "ssh://git@127.0.0.1:{port}/my%20repo's"), "hg-serve", "my repo's"),
        (("init", "{tmp}/local", "&&", "-R", "{tmp}/local", "pull", "--remote-hidden", "ssh://git@127.0.0.1:{port}/r"),
         "hg-serve", "r"),
        (("init", "ssh://git@127.0.0.1:{port}/new/repo"), "hg-init", "new/repo"),
    ],
)
def test_real_hg_client_commands_are_parsed(setup: SshSetup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            args: tuple[str, ...], service: str, repo: str) -> None:
    """What hg's sshpeer sends reaches the hg routes (served here by a session that just exits)."""
    from tests.conftest import VENV_BIN

    monkeypatch.setitem(gateway_ssh.EXEC_SESSIONS, "hg-serve", ExitSession)
    monkeypatch.setitem(gateway_ssh.EXEC_SESSIONS, "hg-init", ExitSession)
    ssh = (f"/usr/bin/ssh -F /dev/null -i {setup.key} -o IdentitiesOnly=yes -o BatchMode=yes "
           "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR")
    hg = [os.path.join(VENV_BIN, "hg"), "--config", f"ui.ssh={ssh}"]
    words = [a.format(port=setup.server.port("ssh"), tmp=tmp_path) for a in args]
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "HGRCPATH": "", "HGPLAIN": "1"}
    while words:  # "&&" separates hg invocations
        end = words.index("&&") if "&&" in words else len(words)
        subprocess.run([*hg, *words[:end]], env=env, capture_output=True, timeout=30, check=False,
                       stdin=subprocess.DEVNULL)
        words = words[end + 1:]
    events = _session_events(setup, 1)
    assert [(e["service"], e["repo"], e["user"]) for e in events] == [(service, repo, "alice")]


@pytest.mark.parametrize("key_type", ["rsa", "ecdsa", "ed25519"])
def test_existing_host_keys_are_used_as_given(tmp_path: Path, key_type: str) -> None:
    path = tmp_path / f"host_{key_type}"
    subprocess.run(["/usr/bin/ssh-keygen", "-q", "-t", key_type, "-N", "", "-f", str(path)], check=True)
    before = path.read_bytes()
    key = gateway_ssh.load_host_key(path)
    assert not key.isPublic()
    assert key.public().toString("openssh").split()[:2] == (tmp_path / f"host_{key_type}.pub").read_bytes().split()[:2]
    assert path.read_bytes() == before


def test_generated_host_key_is_reused(tmp_path: Path) -> None:
    path = tmp_path / "dir" / "host"
    first = gateway_ssh.load_host_key(path)
    assert gateway_ssh.load_host_key(path).fingerprint() == first.fingerprint()
    assert first.type() == "Ed25519"


def _clear_packet(payload: bytes) -> bytes:
    """An SSH binary packet before any key exchange: no cipher, no MAC."""
    padding = 8 - (len(payload) + 5) % 8
    padding += 8 if padding < 4 else 0
    return struct.pack(">IB", len(payload) + padding + 1, padding) + payload + b"\0" * padding


@pytest.mark.parametrize("payload", [
    b"\x14" + b"\0" * 10,                   # a KEXINIT cut short
    b"\x1e\x00\x00",                        # a key exchange message before any KEXINIT
    b"\x01",                                # a disconnect cut short
    b"\x04",                                # a debug message cut short
    b"\x05\x00\x00",                        # a service request cut short
], ids=["kexinit-short", "kexdh-first", "disconnect-short", "debug-short", "service-short"])
def test_a_malformed_message_before_login_is_one_log_line_not_a_traceback(setup: SshSetup, payload: bytes) -> None:
    """Conch's parsers fail on such messages; an "Unhandled Error" traceback for each let anyone
    who can connect fill the log (300 connections: 440 KB)."""
    import socket

    with socket.create_connection(("127.0.0.1", setup.server.port("ssh")), timeout=10) as sock:
        sock.sendall(b"SSH-2.0-x\r\n")
        sock.recv(1000)
        sock.sendall(_clear_packet(payload))
        while sock.recv(65536):
            pass
    tracebacks = [e for e in setup.events if e.get("log_failure") is not None or e.get("isError")]
    assert not tracebacks, [e.get("log_format") or e.get("log_text") for e in tracebacks]
    _assert_echo_works(setup)


def test_sessions_past_the_limit_of_one_connection_are_refused_with_one_line(setup: SshSetup, tmp_path: Path) -> None:
    """An OpenSSH ControlMaster carries every session of a user's commands: past
    ``MAX_SESSIONS_PER_CONNECTION`` one is refused (OpenSSH then opens a connection of its own for
    it, as against sshd's MaxSessions), with one log line (it was a critical failure with its
    traceback for each)."""
    control = tmp_path / "cm"
    master_options = ("-o", "ControlMaster=yes", "-o", f"ControlPath={control}", "-N")
    master = subprocess.Popen(setup.ssh_argv(options=master_options), stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    held: list[subprocess.Popen[bytes]] = []
    try:
        deadline = time.monotonic() + 20
        while not control.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        shared = ("-o", "ControlMaster=no", "-o", f"ControlPath={control}")
        for _ in range(gateway_ssh.MAX_SESSIONS_PER_CONNECTION + 2):
            session = subprocess.Popen(setup.ssh_argv("git-upload-pack '/team/app.git'", options=shared),
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            assert session.stdout is not None and session.stdout.readline().startswith(b"hello alice")
            held.append(session)
    finally:
        for session in held:
            session.kill()
            session.wait()
        master.kill()
        master.wait()
    refused = [e for e in setup.events if "refused an SSH session" in str(e.get("log_format", ""))]
    assert refused, "the sessions past the limit went to the master and were refused"
    assert not [e for e in setup.events if e.get("log_failure") is not None], "no traceback logged"
