"""User names beyond ASCII (``bøb``, ``josé``), as lighttpd and Apache take them from an htpasswd
file and git sends them in Basic auth (UTF-8, percent-encoded in a URL), and as the SSH keys file
names them: they log in, the rules grant them by name (written composed or not), a git hook reads
them as ``REMOTE_USER`` in UTF-8, the audit log names them; a client sending Latin-1 is refused and
the log says why."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import bcrypt
from twisted.logger import formatEvent

from backends.interfaces import Kind
from gateway import audit
from tests.conftest import LOOPBACK, Client, RunningServer, SshKeys, log_events
from tests.integration.test_git_daemon import commit

POLICY = """
[groups]
devs = ["jose\u0301"]

[[repo]]
pattern = "*"
write = ["bøb", "@devs"]
"""


def _hash(password: bytes) -> str:
    return bcrypt.hashpw(password, bcrypt.gensalt(rounds=4)).decode()


def _server(make_server: Callable[..., RunningServer], tmp_path: Path) -> RunningServer:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"bøb:{_hash(b'pw')}\njosé:{_hash(b'pj')}\nАлиса:{_hash(b'pa')}\n", encoding="utf-8")
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY, encoding="utf-8")
    return make_server("fs", http=[LOOPBACK], htpasswd=str(htpasswd), config_file=str(policy))


def _with(url: str, credentials: str) -> str:
    return url.replace("http://", f"http://{credentials}@")


def test_git_pushes_as_a_user_named_beyond_ascii(make_server: Callable[..., RunningServer], client: Client,
                                                 tmp_path: Path) -> None:
    server = _server(make_server, tmp_path)
    server.backend.create("r", Kind.GIT)
    url = server.url("http", "r")
    seen = tmp_path / "remote_user"
    hook = server.root / "r.git" / "hooks" / "post-receive"
    hook.write_text(f"#!/bin/sh\nprintf '%s' \"$REMOTE_USER\" > {seen}\n")
    hook.chmod(0o755)
    work = client.cwd / "w"
    client.git("init", "-q", str(work))
    commit(client, work, "a.txt", "a\n", "a")
    with log_events() as events:
        client.git("push", "-q", _with(url, "b%C3%B8b:pw"), "HEAD:refs/heads/main", cwd=work)
        assert seen.read_bytes() == "bøb".encode()
        commit(client, work, "b.txt", "b\n", "b")
        client.git("push", "-q", _with(url, "jose%CC%81:pj"), "HEAD:refs/heads/main", cwd=work)  # decomposed
        assert seen.read_bytes() == "josé".encode()  # composed, UTF-8
        commit(client, work, "c.txt", "c\n", "c")
        client.git("push", "-q", _with(url, "b%C3%B8b:pw"), "HEAD:refs/heads/main", cwd=work)
        assert seen.read_bytes() == "bøb".encode()
        refused = client.git("push", _with(url, "%D0%90%D0%BB%D0%B8%D1%81%D0%B0:pa"), "HEAD:refs/heads/other", cwd=work, check=False)
        latin1 = client.git("push", _with(url, "b%F8b:pw"), "HEAD:refs/heads/other", cwd=work, check=False)
    assert refused.returncode != 0 and "Алиса may not push to r;" in refused.stderr, refused.stderr
    assert latin1.returncode != 0 and "Authentication failed" in latin1.stderr, latin1.stderr
    pushes = [e for e in events if e.get("log_namespace") == audit.AUDIT_NAMESPACE]
    assert [e["user"] for e in pushes] == ["bøb", "josé", "bøb"], pushes
    lines = [formatEvent(e) for e in events]
    assert any("not UTF-8" in line for line in lines), lines
    access = [e for e in events if e.get("log_namespace") == "gateway.http.access"]
    assert {e["user"] for e in access} == {None, "bøb", "josé", "Алиса"}, access  # None: the 401 before a password
    pushed = [e["access_line"] for e in access if e["user"] == "bøb" and e["method"] == "POST"]
    assert pushed and all(line.startswith('"127.0.0.1" - bøb [') for line in pushed), pushed


def test_hg_and_git_push_over_ssh_as_a_key_s_user_named_beyond_ascii(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, tmp_path: Path) -> None:
    """The keys file names the user (``user="josé"``, here decomposed); hg over HTTP cannot send such a
    name (hg 7.2's client fails with UnicodeDecodeError before it connects, to any server)."""
    keys = tmp_path / "authorized_keys"
    keys.write_text(f'user="jose\u0301" {ssh_keys.authorized_keys.read_text()}', encoding="utf-8")
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY, encoding="utf-8")
    server = make_server("fs", ssh=[LOOPBACK], host_key=str(ssh_keys.host_key), authorized_keys=str(keys),
                         config_file=str(policy))
    port = server.port("ssh")
    repo = server.root / "h"
    client.hg("init", str(repo))
    hg_seen = tmp_path / "hg_remote_user"
    (repo / ".hg" / "hgrc").write_text(f"[hooks]\nchangegroup.x = printf '%s' \"$REMOTE_USER\" > {hg_seen}\n")
    server.backend.create("g", Kind.GIT)
    seen = tmp_path / "remote_user"
    hook = server.root / "g.git" / "hooks" / "post-receive"
    hook.write_text(f"#!/bin/sh\nprintf '%s' \"$REMOTE_USER\" > {seen}\n")
    hook.chmod(0o755)
    work = client.cwd / "hw"
    client.hg("init", str(work))
    (work / "a").write_text("a\n")
    client.hg("commit", "-qAm", "a", cwd=work)
    gwork = client.cwd / "gw"
    client.git("init", "-q", str(gwork))
    commit(client, gwork, "a.txt", "a\n", "a")
    with log_events() as events:
        client.hg("push", "-q", "--config", f"ui.ssh={ssh_keys.command(port)}", f"ssh://x@127.0.0.1:{port}/h",
                  cwd=work)
        client.git("push", "-q", f"ssh://x@127.0.0.1:{port}/g", "HEAD:refs/heads/main", cwd=gwork,
                   env={"GIT_SSH_COMMAND": ssh_keys.command(port)})
    assert seen.read_bytes() == "josé".encode()
    assert hg_seen.read_bytes() == "josé".encode()  # as hgweb's hooks under a web server (hg serve tells none)
    pushes = [e for e in events if e.get("log_namespace") == audit.AUDIT_NAMESPACE]
    assert [(e["user"], e["proto"]) for e in pushes] == [("josé", "hg-ssh"), ("josé", "git-ssh")], pushes


def test_an_hg_push_over_http_tells_its_hooks_the_user(make_server: Callable[..., RunningServer], client: Client,
                                                       tmp_path: Path) -> None:
    """``REMOTE_USER``, as hgweb run as a CGI (lighttpd's mod_cgi, Apache) tells a pushlog hook."""
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"ana:{_hash(b'pa')}\n", encoding="utf-8")
    server = make_server("fs", http=[LOOPBACK], htpasswd=str(htpasswd), allow_push_over_http=True)
    repo = server.root / "h"
    client.hg("init", str(repo))
    seen = tmp_path / "remote_user"
    (repo / ".hg" / "hgrc").write_text(f"[hooks]\nchangegroup.x = printf '%s' \"$REMOTE_USER\" > {seen}\n"
                                       "[web]\nallow-push = *\n")
    work = client.cwd / "hw"
    client.hg("init", str(work))
    (work / "a").write_text("a\n")
    client.hg("commit", "-qAm", "a", cwd=work)
    client.hg("push", "-q", _with(server.url("http", "h"), "ana:pa"), cwd=work)
    assert seen.read_bytes() == b"ana"
