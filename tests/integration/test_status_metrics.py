"""``GET /.metrics`` (Prometheus' text format) and who reads it and ``/.health``'s counts
(``[http] status_from``), against the service and the real git client.

There was no metrics page (``/.metrics`` was a hidden name's 404), and ``/.health`` told anyone
who reached a listener its connection counts and, when failing, the repositories' directory.
"""

from __future__ import annotations

import http.client
import os
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import bcrypt

from tests.conftest import LOOPBACK, Client, RunningServer, SshKeys, log_events, ssh_server_settings

SAMPLE = re.compile(r'^([a-z_]+)(?:\{([^}]*)\})? (\S+)$')


def _get(server: RunningServer, path: str, headers: dict[str, str] | None = None,
         method: str = "GET") -> tuple[int, dict[str, str], str]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port("http"), timeout=20)
    try:
        connection.request(method, path, headers=headers or {})
        answer = connection.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read().decode()
    finally:
        connection.close()


def _samples(text: str) -> dict[str, float]:
    """``name{labels}`` → value of every sample line; each family's HELP and TYPE checked."""
    found: dict[str, float] = {}
    typed: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge")
            typed.add(name)
            continue
        if line.startswith("# HELP "):
            continue
        match = SAMPLE.match(line)
        assert match, line
        assert match.group(1) in typed, line
        found[f"{match.group(1)}{{{match.group(2) or ''}}}"] = float(match.group(3))
    return found


def _metrics(server: RunningServer) -> dict[str, float]:
    status, headers, body = _get(server, "/.metrics")
    assert status == 200, body
    assert headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert body.endswith("\n")
    return _samples(body)


def _policy(tmp_path: Path, text: str) -> str:
    path = tmp_path / "hgwire.toml"
    path.write_text('[[repo]]\npattern = "*"\nwrite = ["alice"]\ncreate = ["alice"]\n\n' + text)
    return str(path)


def test_metrics_count_clones_pushes_bytes_and_logins_without_names(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> None:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("alice:" + bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode() + "\n")
    server = make_server("fs", http=[LOOPBACK], git=[LOOPBACK], htpasswd=str(htpasswd), create_on_push=True,
                         config_file=_policy(tmp_path, ""))
    before = _metrics(server)
    work = client.cwd / "src"
    client.git("init", "-q", str(work))
    (work / "a.txt").write_text(os.urandom(8000).hex())  # (a pack of some 9 KB)
    client.git("add", "a.txt", cwd=work)
    client.git("commit", "-qm", "a", cwd=work)
    http_url = f"http://127.0.0.1:{server.port('http')}/secret-project.git"
    wrong = client.git("push", http_url.replace("//", "//alice:nope@"), "main", cwd=work, check=False)
    assert wrong.returncode != 0
    client.git("push", http_url.replace("//", "//alice:s3cret@"), "main", cwd=work)
    client.git("clone", "-q", server.git_url("secret-project"), str(client.cwd / "clone"))
    missing = client.git("ls-remote", server.git_url("nothing-here"), check=False)
    assert missing.returncode != 0
    server.settled()  # (a git:// request is counted when the server sees its connection close)

    with log_events() as events:
        status, _, body = _get(server, "/.metrics")
    assert status == 200
    assert not [e for e in events if e.get("log_namespace") == "gateway.http.access"]  # a scrape writes no line
    after = _samples(body)

    def grew(key: str) -> float:
        return after.get(key, 0) - before.get(key, 0)

    assert grew('hgwire_requests_total{transport="git",service="git-upload-pack"}') == 2
    assert grew('hgwire_requests_total{transport="http",service="git-receive-pack"}') >= 1
    assert grew('hgwire_requests_total{transport="http",service="git-info-refs"}') >= 2
    assert grew('hgwire_errors_total{transport="git",kind="not_found"}') == 1
    assert grew('hgwire_pushes_total{transport="http",result="accepted"}') == 1
    assert grew('hgwire_pushes_total{transport="http",result="refused"}') == 0
    assert grew('hgwire_auth_failures_total{transport="http"}') >= 1
    assert grew('hgwire_sent_bytes_total{transport="git"}') > 8000  # the pack
    assert grew('hgwire_received_bytes_total{transport="http"}') > 8000  # the pushed pack
    assert grew('hgwire_connections_total{transport="git"}') == 2
    assert after['hgwire_open_connections{transport="http"}'] == 1  # (the scrape's own)
    assert after['hgwire_requests_in_progress{transport="http",service="metrics"}'] == 1  # (the scrape)
    assert after['hgwire_requests_in_progress{transport="git",service="git-upload-pack"}'] == 0
    assert after['hgwire_requests_in_progress{transport="http",service="git-receive-pack"}'] == 0
    assert after["hgwire_workers{}"] == 8
    assert after["process_start_time_seconds{}"] > 1.6e9
    assert after["process_cpu_seconds_total{}"] > 0 and after["process_resident_memory_bytes{}"] > 10 << 20
    assert 0 < after["process_open_fds{}"] < after["process_max_fds{}"]
    assert "secret-project" not in body and "nothing-here" not in body and "alice" not in body
    assert _get(server, "/.metrics", method="HEAD")[0] == 200
    assert _get(server, "/.metrics", method="POST")[0] == 405


def test_status_from_elsewhere_gets_the_bare_state_and_no_metrics(
        make_server: Callable[..., RunningServer], tmp_path: Path) -> None:
    server = make_server("fs", http=[LOOPBACK], config_file=_policy(tmp_path, '[http]\nstatus_from = ["10.0.0.0/8"]\n'))
    status, _, body = _get(server, "/.health")
    assert (status, body) == (200, "ok\n")  # what a load balancer's probe reads; no counts
    hidden = _get(server, "/.elsewhere")
    for method in ("GET", "HEAD", "POST"):
        status, _, body = _get(server, "/.metrics", method=method)
        assert status == 404
        if method == "GET":  # the answer of a name nothing is at
            assert body == hidden[2].replace(".elsewhere", ".metrics")


def test_health_counts_and_metrics_by_default_for_this_host_only(
        make_server: Callable[..., RunningServer], tmp_path: Path) -> None:
    plain = make_server("fs", http=[LOOPBACK])  # no --config file: this host's clients read everything
    assert _get(plain, "/.health")[2].startswith("ok\nconnections: ")
    assert _get(plain, "/.metrics")[0] == 200
    # a reverse proxy on this host forwards anyone's request from 127.0.0.1: not this host's own
    assert _get(plain, "/.health", {"X-Forwarded-For": "203.0.113.7"})[2] == "ok\n"
    assert _get(plain, "/.metrics", {"X-Real-IP": "203.0.113.7"})[0] == 404

    proxied = make_server("fs", http=[LOOPBACK],
                          config_file=_policy(tmp_path, '[http]\ntrusted_proxies = ["127.0.0.1"]\n'))
    assert _get(proxied, "/.health", {"X-Forwarded-For": "203.0.113.7"})[2] == "ok\n"
    assert _get(proxied, "/.metrics", {"X-Forwarded-For": "203.0.113.7"})[0] == 404
    assert _get(proxied, "/.health", {"X-Forwarded-For": "::1"})[2].startswith("ok\nconnections: ")
    assert _get(proxied, "/.metrics")[0] == 200


def test_metrics_count_ssh_sessions_and_refused_logins(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, tmp_path: Path) -> None:
    server = make_server("fs", http=[LOOPBACK], **ssh_server_settings(ssh_keys))
    subprocess.run(["git", "init", "-q", "--bare", str(server.root / "app.git")], check=True)
    before = _metrics(server)
    ssh = ssh_keys.command(server.port("ssh"))
    url = f"ssh://alice@127.0.0.1:{server.port('ssh')}/app.git"
    client.git("ls-remote", url, env={"GIT_SSH_COMMAND": ssh})
    stranger = tmp_path / "stranger_key"
    subprocess.run(["/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    refused = client.git("ls-remote", url, env={"GIT_SSH_COMMAND": ssh.replace(str(ssh_keys.key), str(stranger))},
                         check=False)
    assert refused.returncode != 0
    deadline = time.monotonic() + 10  # (the refused connection's line comes once it is closed)
    while True:
        after = _metrics(server)
        if after.get('hgwire_auth_failures_total{transport="ssh"}', 0) > before['hgwire_auth_failures_total{transport="ssh"}'] \
                or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert after['hgwire_auth_failures_total{transport="ssh"}'] - before['hgwire_auth_failures_total{transport="ssh"}'] == 1
    key = 'hgwire_requests_total{transport="ssh",service="git-upload-pack"}'
    assert after[key] - before.get(key, 0) == 1
    assert after['hgwire_sent_bytes_total{transport="ssh"}'] > before['hgwire_sent_bytes_total{transport="ssh"}']
