"""Connection limits with real clients and raw sockets: too many, too idle, too slow (issue 8 item 2)."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from backends.interfaces import Kind
from tests.conftest import Client, RunningServer, SshKeys, ssh_server_settings

LOOP = "tcp:0:interface=127.0.0.1"


def policy_with(tmp_path: Path, limits: str) -> str:
    path = tmp_path / "policy.toml"
    path.write_text("anonymous_read = true\n[limits]\n" + limits)
    return str(path)


@contextmanager
def open_sockets(port: int, count: int) -> Iterator[list[socket.socket]]:
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=10))
                 for _ in range(count)]
        time.sleep(0.2)  # let the server register them
        yield socks


def recv_all(sock: socket.socket, limit: float = 10.0) -> bytes:
    sock.settimeout(limit)
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


def eventually(check: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


def test_git_daemon_tells_a_git_client_over_the_per_address_limit(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> None:
    server = make_server("memory", git=[LOOP],
                         config_file=policy_with(tmp_path, "max_connections_per_address = 2\n"))
    server.backend.create("r", Kind.GIT)
    url = server.git_url("r")
    with open_sockets(server.port("git"), 2):
        refused = client.git("ls-remote", url, check=False)
        assert refused.returncode != 0
        assert "connections from your address are open, the limit" in refused.stderr
    # the slots are free again once the idle sockets close
    assert eventually(lambda: client.git("ls-remote", url, check=False).returncode == 0)


def test_http_answers_503_over_the_total_limit_and_serves_again_after(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> None:
    server = make_server("fs", http=[LOOP], config_file=policy_with(tmp_path, "max_connections = 1\n"))
    server.backend.create("r", Kind.GIT)
    port = server.port("http")
    with open_sockets(port, 1):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as extra:
            answer = recv_all(extra)
        assert answer.startswith(b"HTTP/1.1 503 ")
        assert b"open connections, its limit" in answer
        refused = client.git("ls-remote", server.url("http", "r"), check=False)
        assert refused.returncode != 0 and "503" in refused.stderr
    assert eventually(lambda: client.git("ls-remote", server.url("http", "r"), check=False).returncode == 0)


def test_ssh_refuses_over_the_limit_with_a_line_and_serves_again_after(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path, ssh_keys: SshKeys) -> None:
    settings: dict[str, Any] = ssh_server_settings(ssh_keys)
    server = make_server("memory", **settings,
                         config_file=policy_with(tmp_path, "max_connections_per_address = 1\n"))
    server.backend.create("r", Kind.GIT)
    port = server.port("ssh")
    client.env["GIT_SSH_COMMAND"] = ssh_keys.command(port)
    url = f"ssh://git@127.0.0.1:{port}/r"
    with open_sockets(port, 1) as (held,):
        assert held.recv(100).startswith(b"SSH-2.0-")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as extra:
            answer = recv_all(extra)
        assert answer.startswith(b"hgwire: 1 connections from your address are open")
        refused = client.git("ls-remote", url, check=False)  # OpenSSH prints the disconnect message
        assert refused.returncode != 0 and "1 connections from your address are open" in refused.stderr, refused.stderr
    assert eventually(lambda: client.git("ls-remote", url, check=False).returncode == 0)


def test_ssh_drops_a_connection_that_drips_its_version_line_past_the_login_grace(
        make_server: Callable[..., RunningServer], ssh_keys: SshKeys, monkeypatch: Any) -> None:
    import subprocess

    import gateway.ssh

    monkeypatch.setattr(gateway.ssh, "LOGIN_GRACE_SECONDS", 3.0)
    server = make_server("memory", **ssh_server_settings(ssh_keys))
    server.backend.create("r", Kind.GIT)
    port = server.port("ssh")
    # a session that logs in in time (while the other connection drips) outlives the grace time: the
    # two overlap, the test waiting the grace time once, not twice
    with subprocess.Popen([*ssh_keys.command(port).split(), "git@127.0.0.1", "git-upload-pack 'r'"],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as ssh:
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            try:
                for byte in b"SSH-2.0-" + b"x" * 60:  # one byte every 0.2 s: never idle, never a whole line
                    sock.sendall(bytes([byte]))
                    time.sleep(0.2)
            except (BrokenPipeError, ConnectionResetError):
                pass
            recv_all(sock)
        assert time.monotonic() - started < 8
        time.sleep(max(0.0, started + 5 - time.monotonic()))
        out, err = ssh.communicate(b"0000", timeout=30)
    assert ssh.returncode == 0, err
    assert out.endswith(b"0000")


def test_ssh_closes_a_connection_not_logged_in_at_the_login_grace_with_a_disconnect_message(
        make_server: Callable[..., RunningServer], ssh_keys: SshKeys, monkeypatch: Any) -> None:
    """A client still not logged in when the login grace time ends reads a disconnect message that
    says why, then the end of the stream (OpenSSH prints "Received disconnect …"), as sshd closes
    it; it was reset ("Connection reset by …")."""
    import struct

    import gateway.ssh

    monkeypatch.setattr(gateway.ssh, "LOGIN_GRACE_SECONDS", 1.0)
    server = make_server("memory", **ssh_server_settings(ssh_keys))
    with socket.create_connection(("127.0.0.1", server.port("ssh")), timeout=10) as sock:
        sock.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")  # and then nothing: no key exchange, no login
        sock.settimeout(10)
        received = b""
        while chunk := sock.recv(65536):  # a ConnectionResetError fails the test
            received += chunk
    version, _, packets = received.partition(b"\r\n")
    assert version.startswith(b"SSH-2.0-")
    kinds = []
    while packets:  # unencrypted binary packets (RFC 4253 section 6): length, padding length, payload
        length, padding = struct.unpack(">IB", packets[:5])
        kinds.append((packets[5], packets[6:4 + length - padding]))
        packets = packets[4 + length:]
    assert [kind for kind, _ in kinds] == [20, 1]  # KEXINIT, then DISCONNECT
    reason, size = struct.unpack(">II", kinds[1][1][:8])
    assert reason == 11  # SSH_DISCONNECT_BY_APPLICATION
    assert kinds[1][1][8:8 + size] == b"not logged in within 1 s (the server's login grace time); connect again"


def test_an_idle_http_connection_is_closed(
        make_server: Callable[..., RunningServer], tmp_path: Path) -> None:
    server = make_server("memory", http=[LOOP], config_file=policy_with(tmp_path, "idle_timeout = 1.0\n"))
    with socket.create_connection(("127.0.0.1", server.port("http")), timeout=10) as sock:
        sock.sendall(b"GET /nothing-here?cmd=capabilities HTTP/1.1\r\nHost: x\r\n\r\n")
        started = time.monotonic()
        answer = recv_all(sock)  # the answer, then the close when the connection sat idle
        assert answer.startswith(b"HTTP/1.1 404 ")
        assert time.monotonic() - started < 8


def test_slow_http_headers_get_408_even_when_dripped(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> None:
    server = make_server("memory", http=[LOOP], config_file=policy_with(tmp_path, "request_timeout = 1.0\n"))
    server.backend.create("r", Kind.GIT)
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port("http")), timeout=10) as sock:
        sock.sendall(b"GET /r.git/info/refs HTTP/1.1\r\n")
        try:
            for _ in range(30):  # one header byte every 0.2 s: never idle, never done
                sock.sendall(b"X")
                time.sleep(0.2)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = recv_all(sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert time.monotonic() - started < 6.5
    # a client that sends its request in time is served
    assert client.git("ls-remote", server.url("http", "r"), check=False).returncode == 0


def test_http_body_limits_come_from_the_policy_file(
        make_server: Callable[..., RunningServer], tmp_path: Path) -> None:
    import gzip

    server = make_server("memory", http=[LOOP], config_file=policy_with(
        tmp_path, "max_request_body = 4000\nmax_decompressed = 100000\n"))
    server.backend.create("r", Kind.GIT)
    port = server.port("http")
    head = (b"POST /r.git/git-upload-pack HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/x-git-upload-pack-request\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + b"Content-Length: 5000\r\n\r\n")
        answer = recv_all(sock)
    assert answer.startswith(b"HTTP/1.1 413 Request Entity Too Large\r\n"), answer[:200]  # one phrase, every 413
    assert b"larger than 4000 bytes" in answer

    bomb = gzip.compress(b"0" * 1_000_000)  # ~1 KB that inflates to 1 MB
    assert len(bomb) < 4000
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + b"Content-Encoding: gzip\r\nConnection: close\r\n"
                     + f"Content-Length: {len(bomb)}\r\n\r\n".encode() + bomb)
        answer = recv_all(sock)
    assert answer.startswith(b"HTTP/1.1 413 Request Entity Too Large\r\n"), answer[:300]
    assert b"larger than 100000 bytes" in answer


def test_a_body_over_the_bound_on_a_tls_listener_is_refused_once(
        make_server: Callable[..., RunningServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Over TLS the connection closes once the client has sent what it was sending (or after
    ``REFUSED_LINGER``): the rest of the body is dropped quietly (it logged the refusal for every
    chunk, then failed on it with a traceback)."""
    import ssl

    import gateway.http

    monkeypatch.setattr(gateway.http, "REFUSED_LINGER", 1.0)

    from twisted.logger import globalLogPublisher

    pytest.importorskip("OpenSSL", reason="ssl: endpoints need pyOpenSSL (twisted[tls])")
    from tests.integration.test_hg_http import _tls_files

    ca, key, cert = _tls_files(tmp_path)
    server = make_server("memory", http=[f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"],
                         config_file=policy_with(tmp_path, "max_request_body = 100000\n"))
    server.backend.create("r", Kind.GIT)
    events: list[dict[str, Any]] = []

    def observe(event: dict[str, Any]) -> None:
        if "413" in str(event.get("log_format", "")) or event.get("log_failure") is not None:
            events.append(event)

    globalLogPublisher.addObserver(observe)  # type: ignore[arg-type]
    try:
        context = ssl.create_default_context(cafile=str(ca))
        for framing in (b"Content-Length: 1500000\r\n", b"Transfer-Encoding: chunked\r\n"):
            with socket.create_connection(("127.0.0.1", server.port("http")), timeout=20) as raw_sock, \
                    context.wrap_socket(raw_sock, server_hostname="127.0.0.1") as sock:
                sock.sendall(b"POST /r.git/git-upload-pack HTTP/1.1\r\nHost: x\r\n"
                             b"Content-Type: application/x-git-upload-pack-request\r\n" + framing + b"\r\n")
                chunk = b"0" * 16384
                try:
                    for _ in range(1_500_000 // len(chunk) + 1):
                        sock.sendall(b"4000\r\n" + chunk + b"\r\n" if b"chunked" in framing else chunk)
                    if b"chunked" in framing:
                        sock.sendall(b"0\r\n\r\n")
                except OSError:
                    pass
                answer = recv_all(sock)
            assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
        time.sleep(0.5)
    finally:
        globalLogPublisher.removeObserver(observe)  # type: ignore[arg-type]
    assert [e.get("log_failure") for e in events] == [None, None], [e.get("log_format") for e in events]


def test_a_fetch_naming_more_wants_than_the_bound_gets_a_clear_error(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> None:
    server = make_server("fs", git=[LOOP], config_file=policy_with(tmp_path, "max_wants = 1\n"))
    server.backend.create("r", Kind.GIT)
    work = tmp_path / "w"
    client.git("init", "-q", "-b", "main", str(work))
    client.git("commit", "-q", "--allow-empty", "-m", "one", cwd=work)
    client.git("branch", "side", cwd=work)
    client.git("commit", "-q", "--allow-empty", "-m", "two", cwd=work)
    git_dir = server.root / "r.git"
    client.git("push", "-q", str(git_dir), "main", "side", cwd=work)
    for version in ("0", "2"):
        refused = client.git("-c", f"protocol.version={version}", "clone", "-q", server.git_url("r"),
                             str(tmp_path / f"c{version}"), check=False)
        assert refused.returncode != 0 and "more than 1 wants" in refused.stderr, refused.stderr
        single = client.git("-c", f"protocol.version={version}", "clone", "-q", "--single-branch",
                            "-b", "main", server.git_url("r"), str(tmp_path / f"s{version}"), check=False)
        assert single.returncode == 0, single.stderr


def test_push_bounds_from_the_policy_file_refuse_with_a_clear_error_and_change_nothing(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path, ssh_keys: SshKeys) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('[[repo]]\npattern = "*"\nwrite = ["*"]\n[limits]\nmax_refs = 1\nmax_fulltext = 4096\n')
    server = make_server("fs", **ssh_server_settings(ssh_keys), config_file=str(policy))
    server.backend.create("r", Kind.GIT)
    port = server.port("ssh")
    client.env["GIT_SSH_COMMAND"] = ssh_keys.command(port)
    work = tmp_path / "w"
    client.git("init", "-q", "-b", "main", str(work))
    client.git("commit", "-q", "--allow-empty", "-m", "one", cwd=work)
    client.git("branch", "side", cwd=work)
    url = f"ssh://git@127.0.0.1:{port}/r"
    two = client.git("push", "-q", url, "main", "side", cwd=work, check=False)
    assert two.returncode != 0 and "more than 1 ref updates" in two.stderr, two.stderr
    assert "push the refs in parts, or ask the server's operator to raise max_refs under [limits]" in two.stderr
    assert client.git("push", "-q", url, "main", cwd=work, check=False).returncode == 0
    (work / "big.bin").write_bytes(bytes(range(256)) * 64)  # a 16 KiB blob: over max_fulltext
    client.git("add", "big.bin", cwd=work)
    client.git("commit", "-q", "-m", "big", cwd=work)
    git_dir = server.root / "r.git"
    before = sorted(p.name for p in (git_dir / "objects" / "pack").iterdir())
    big = client.git("push", "-q", url, "main", cwd=work, check=False)
    assert big.returncode != 0 and "exceeds the limit of 4096" in big.stderr, big.stderr
    assert sorted(p.name for p in (git_dir / "objects" / "pack").iterdir()) == before
    client.git("--git-dir", str(git_dir), "fsck", "--full")


@pytest.mark.parametrize("limit, value, size, said", [
    ("max_fulltext", 4096, 16384, "over the 4096-byte limit"),
    ("max_delta_result", 4096, 16384, "over the 4096-byte limit for rebuilt texts"),
    # a text of megabytes is taken whole as it came (no delta applied): the same limit holds
    ("max_delta_result", 1 << 20, 2 << 20, "over the 1048576-byte limit for rebuilt texts")])
def test_an_hg_push_over_a_size_limit_is_refused_and_the_repository_is_unchanged(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path, ssh_keys: SshKeys,
        limit: str, value: int, size: int, said: str) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(f'[[repo]]\npattern = "*"\nwrite = ["*"]\n[limits]\n{limit} = {value}\n')
    server = make_server("fs", **ssh_server_settings(ssh_keys), config_file=str(policy))
    server.backend.create("h", Kind.HG)
    url = f"ssh://alice@127.0.0.1:{server.port('ssh')}/h"
    ssh = ["--config", f"ui.ssh={ssh_keys.command(server.port('ssh'))}"]
    work = tmp_path / "hw"
    client.hg("init", str(work))
    (work / "small.txt").write_text("small\n")
    client.hg("commit", "-q", "-A", "-m", "small", "-u", "t <t@example.com>", cwd=work)
    assert client.hg(*ssh, "push", "-q", url, cwd=work, check=False).returncode == 0
    (work / "big.bin").write_bytes(bytes(range(256)) * (size // 256))  # stored and sent whole
    client.hg("commit", "-q", "-A", "-m", "big", "-u", "t <t@example.com>", cwd=work)
    store = server.root / "h" / ".hg" / "store"
    before = {p.relative_to(store): p.read_bytes() for p in store.rglob("*") if p.is_file()}
    refused = client.hg(*ssh, "push", url, cwd=work, check=False)
    assert refused.returncode != 0 and said in refused.stdout + refused.stderr, refused
    after = {p.relative_to(store): p.read_bytes() for p in store.rglob("*") if p.is_file()}
    assert after == before
    client.hg("verify", "-q", "-R", str(server.root / "h"))


def test_a_connection_older_than_connection_timeout_is_closed(
        make_server: Callable[..., RunningServer], tmp_path: Path) -> None:
    server = make_server("memory", http=[LOOP], config_file=policy_with(tmp_path, "connection_timeout = 1.5\n"))
    with socket.create_connection(("127.0.0.1", server.port("http")), timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /")  # a request still arriving: neither idle nor late (request_timeout is 30 s)
        assert recv_all(sock) == b""
        assert 1.0 < time.monotonic() - started < 8.0


def test_an_idle_ssh_connection_is_told_why_it_is_closed(
        make_server: Callable[..., RunningServer], tmp_path: Path, ssh_keys: SshKeys) -> None:
    """The SSH client gets a disconnect message it prints (it said "client_loop: send disconnect:
    Broken pipe"), and exits then."""
    import subprocess

    server = make_server("memory", **ssh_server_settings(ssh_keys), config_file=policy_with(tmp_path, "idle_timeout = 1\n"))
    server.backend.create("r", Kind.GIT)
    command = ssh_keys.command(server.port("ssh")).split()
    started = time.monotonic()
    quiet = subprocess.Popen([*command, "git@127.0.0.1", "git-upload-pack 'r'"], stdin=subprocess.PIPE,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert quiet.stderr is not None
        stderr = quiet.stderr.read()  # to its end, stdin kept open: the client sends nothing
        quiet.wait(timeout=30)
    finally:
        quiet.kill()
    assert quiet.returncode == 255 and time.monotonic() - started < 10
    assert b"the connection was idle for 1 s (the server's idle_timeout); connect again" in stderr, stderr


@pytest.mark.parametrize(("kind", "command", "request_bytes"), [
    (Kind.GIT, "git-upload-pack 'r'", b""),
    (Kind.HG, "hg -R r serve --stdio", b"hello\n"),
])
def test_an_ssh_session_whose_client_only_sends_keepalives_is_closed_when_idle(
        make_server: Callable[..., RunningServer], tmp_path: Path, ssh_keys: SshKeys, kind: Kind, command: str,
        request_bytes: bytes) -> None:
    """OpenSSH's ``ServerAliveInterval`` (300 s under ``BatchMode`` in Debian's ssh) asks the server for
    a reply while the session does nothing: a stalled clone whose output nobody read was never idle
    past 300 s, and was never closed at the default idle_timeout of 600 s.  Only a session's own
    traffic keeps it open."""
    server = make_server("memory", **ssh_server_settings(ssh_keys), config_file=policy_with(tmp_path, "idle_timeout = 2\n"))
    server.backend.create("r", kind)
    ssh = [*ssh_keys.command(server.port("ssh")).split(), "-o", "ServerAliveInterval=1"]
    started = time.monotonic()
    quiet = subprocess.Popen([*ssh, "git@127.0.0.1", command], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    try:
        assert quiet.stdin is not None and quiet.stderr is not None
        quiet.stdin.write(request_bytes)
        quiet.stdin.flush()  # then nothing more, stdin kept open: only the client's keepalives go out
        quiet.wait(timeout=12)
        stderr = quiet.stderr.read()
    except subprocess.TimeoutExpired:
        pytest.fail("the session was still open 12 s into an idle_timeout of 2 s")
    finally:
        quiet.kill()
    assert quiet.returncode == 255 and time.monotonic() - started < 12
    assert b"the connection was idle for 2 s (the server's idle_timeout); connect again" in stderr, stderr


def test_one_user_s_operations_are_bounded_over_every_listener(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path, ssh_keys: SshKeys) -> None:
    """``max_sessions_per_user``: alice's SSH session counts against her HTTP requests too; each
    refusal says why in the client's own protocol; anonymous clients are not hers; a slot frees."""
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"alice:{bcrypt.hashpw(b'pw', bcrypt.gensalt(rounds=4)).decode()}\n")
    server = make_server("memory", **ssh_server_settings(ssh_keys), http=[LOOP], htpasswd=str(htpasswd),
                         config_file=policy_with(tmp_path, "max_sessions_per_user = 1\n"
                                                 '[[repo]]\npattern = "private"\nread = ["alice"]\n'
                                                 '[[repo]]\npattern = "private-hg"\nread = ["alice"]\n'))
    server.backend.create("r", Kind.GIT)
    server.backend.create("private", Kind.GIT)  # over HTTP, git sends alice's password only when asked
    server.backend.create("private-hg", Kind.HG)
    port, http_port = server.port("ssh"), server.port("http")
    client.env["GIT_SSH_COMMAND"] = ssh_keys.command(port)
    ssh_url, http_url = f"ssh://git@127.0.0.1:{port}/r", f"http://alice:pw@127.0.0.1:{http_port}/private"
    held = subprocess.Popen([*ssh_keys.command(port).split(), "git@127.0.0.1", "git-upload-pack 'r'"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert held.stdout is not None and held.stdout.read(4)  # her first operation is under way
        why = "alice has 1 operations under way, the most one user may have at once"
        over_ssh = client.git("ls-remote", ssh_url, check=False)
        assert over_ssh.returncode != 0 and why in over_ssh.stderr, over_ssh.stderr
        over_http = client.git("ls-remote", http_url, check=False)
        assert over_http.returncode != 0 and why in over_http.stderr and "429" in over_http.stderr, over_http.stderr
        over_hg = client.hg("identify", f"http://alice:pw@127.0.0.1:{http_port}/private-hg", check=False)
        assert over_hg.returncode != 0 and f"abort: HTTP Error 429: {why}" in over_hg.stderr, over_hg.stderr
        client.git("ls-remote", f"http://127.0.0.1:{http_port}/r")  # anonymous: not alice's
    finally:
        held.kill()
        held.communicate()
    assert eventually(lambda: client.git("ls-remote", ssh_url, check=False).returncode == 0)
    client.git("ls-remote", http_url)


def test_requests_per_minute_bound_each_user_and_each_anonymous_address_over_every_listener(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path, ssh_keys: SshKeys) -> None:
    """``requests_per_minute``: alice's SSH sessions and HTTP requests draw on one allowance,
    anonymous clients of an address (git://, HTTP) on another; each refusal says when to retry in
    the client's own protocol (HTTP: 429 with ``Retry-After``), and the allowance comes back."""
    import urllib.error
    import urllib.request

    from gateway.limits import RequestRates

    now = [1000.0]
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"alice:{bcrypt.hashpw(b'pw', bcrypt.gensalt(rounds=4)).decode()}\n")
    server = make_server("memory", **ssh_server_settings(ssh_keys), http=[LOOP], git=[LOOP], htpasswd=str(htpasswd),
                         request_rates=RequestRates(clock=lambda: now[0]),
                         config_file=policy_with(tmp_path, "requests_per_minute = 3\n"
                                                 '[[repo]]\npattern = "private"\nread = ["alice"]\n'))
    server.backend.create("r", Kind.GIT)
    server.backend.create("private", Kind.GIT)
    server.backend.create("h", Kind.HG)
    port, http_port = server.port("ssh"), server.port("http")
    client.env["GIT_SSH_COMMAND"] = ssh_keys.command(port)
    ssh_url, http_url = f"ssh://git@127.0.0.1:{port}/r", f"http://alice:pw@127.0.0.1:{http_port}/private"

    client.git("ls-remote", ssh_url)  # one session
    client.git("-c", "protocol.version=2", "ls-remote", http_url)  # two requests (refs, then ls-refs)
    why = "alice started more than 3 git/hg operations in a minute, the most this server allows; retry in 20 seconds"
    over_ssh = client.git("ls-remote", ssh_url, check=False)
    assert over_ssh.returncode != 0 and why in over_ssh.stderr, over_ssh.stderr
    over_http = client.git("ls-remote", http_url, check=False)
    assert over_http.returncode != 0 and "429" in over_http.stderr and why in over_http.stderr, over_http.stderr

    for _ in range(3):  # anonymous clients of 127.0.0.1 have their own allowance, not alice's
        client.git("ls-remote", server.git_url("r"))
    over_git = client.git("ls-remote", server.git_url("r"), check=False)
    assert over_git.returncode != 0, over_git
    assert "anonymous clients of 127.0.0.1 started more than 3 git/hg operations in a minute" in over_git.stderr
    with pytest.raises(urllib.error.HTTPError) as refused:  # the same allowance over HTTP
        urllib.request.urlopen(f"http://127.0.0.1:{http_port}/r/info/refs?service=git-upload-pack", timeout=10)
    assert refused.value.code == 429 and refused.value.headers["Retry-After"] == "20"
    assert refused.value.reason == "Too Many Requests"
    over_hg = client.hg("identify", f"http://127.0.0.1:{http_port}/h", check=False)
    assert over_hg.returncode != 0, over_hg
    assert ("abort: HTTP Error 429: anonymous clients of 127.0.0.1 started more than 3 git/hg operations in a "
            "minute, the most this server allows; retry in 20 seconds") in over_hg.stderr, over_hg.stderr

    now[0] += 20  # a third of a minute: one more operation each
    client.git("ls-remote", ssh_url)
    client.git("ls-remote", server.git_url("r"))
    assert client.git("ls-remote", ssh_url, check=False).returncode != 0


def test_an_hg_client_over_the_per_address_limit_is_told_why(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> None:
    """hg prints a refused HTTP request's status and reason phrase, not its body: the phrase is the
    message (it was "Service Unavailable", which said nothing of the limit or what to do)."""
    server = make_server("memory", http=[LOOP],
                         config_file=policy_with(tmp_path, "max_connections_per_address = 2\n"))
    server.backend.create("r", Kind.HG)
    url = server.url("http", "r")
    with open_sockets(server.port("http"), 2):
        refused = client.hg("identify", url, check=False)
        assert refused.returncode != 0
        assert ("HTTP Error 503: 2 connections from your address are open, the limit; close some or try again later"
                in refused.stderr), refused.stderr
        refused_git = client.git("ls-remote", url, check=False)
        assert "connections from your address are open, the limit" in refused_git.stderr
    assert eventually(lambda: client.hg("identify", url, check=False).returncode == 0)
