"""The permission matrix with the real clients, in the spirit of Mercurial's test-http-permissions.t.

One server per backend for the whole module (git://, SSH and HTTP listeners,
``create_on_push``) and one ``--config`` policy:

- anonymous: reads what is not private; never writes (git:// has no login, so
  with a policy a git:// push is refused; HTTP answers 401 and git prompts);
- alice (``@dev``): reads everything but private repos she is not listed on,
  writes ``team/*``, creates nothing;
- carol (HTTP only): an authenticated user with no grants;
- root (``@admins``): writes and creates everywhere;
- ``refs/heads/main`` and the hg bookmark ``stable`` are protected: no
  force-push, no deletion; fast-forwards pass.

Each row is (who, transport, repository, access, allowed).  After the pushes the
server repositories are checked with ``git fsck --full`` and ``hg verify``.  The matrix's hg client
runs forked from hg's chg server (``tests.hg_chg``; what the server allows is the point here); the
tests with a server of their own run ``hg`` as a process.
"""

from __future__ import annotations

import base64
import http.client
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import bcrypt
import pytest
from twisted.logger import ILogObserver, LogEvent, globalLogPublisher

from backends.interfaces import HgRepository, Kind
from gateway.audit import AUDIT_NAMESPACE
from tests import hg_chg
from tests.conftest import (
    BACKENDS,
    LOOPBACK,
    VENV_BIN,
    Client,
    RunningServer,
    SshKeys,
    ssh_server_settings,
    start_server,
    stop_server,
)
from tests.integration.test_cli import start_twistd, stop_twistd

POLICY = """
anonymous_read = true
protected_refs = ["refs/heads/main"]
protected_bookmarks = ["stable"]

[groups]
admins = ["root"]
dev = ["alice"]

[[repo]]
pattern = "*"
write = ["@admins"]
create = ["@admins"]

[[repo]]
pattern = "team/*"
write = ["@dev"]

[[repo]]
pattern = "private/*"
read = ["@admins"]
"""

PASSWORDS = {"alice": "alice-pw", "carol": "carol-pw", "root": "root-pw"}
SSH_USERS = ("alice", "root")
GIT_REPOS = ("team/app.git", "other/x.git", "private/secret.git")
HG_REPOS = ("team/hgrepo", "other/hgx")


@dataclass
class Matrix:
    """The running server, its clients and how each user reaches it."""

    server: RunningServer
    client: Client
    keys: dict[str, Path]
    work: Path
    policy: Path
    audit: list[LogEvent]

    def ssh_command(self, user: str) -> str:
        return (f"/usr/bin/ssh -F /dev/null -p {self.server.port('ssh')} -i {self.keys[user]} "
                "-o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no "
                "-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR")

    def url(self, transport: str, who: str | None, name: str) -> str:
        host = "127.0.0.1"
        if transport == "git":
            return f"git://{host}:{self.server.port('git')}/{name}"
        if transport == "ssh":
            return f"ssh://{who}@{host}:{self.server.port('ssh')}/{name}"
        auth = f"{who}:{PASSWORDS[who]}@" if who else ""
        return f"http://{auth}{host}:{self.server.port('http')}/{name}"

    def git(self, transport: str, who: str | None, *args: str | Path, **kw: Any) -> subprocess.CompletedProcess[str]:
        env = {"GIT_SSH_COMMAND": self.ssh_command(who)} if transport == "ssh" and who else {}
        return self.client.git(*args, env=env, **kw)

    def hg(self, who: str, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        """hg's client against the server (clone, push), in a process forked from hg's chg server
        (``tests.hg_chg``): hg's own client code over the real ssh and HTTP, without its start-up.  A
        remote ``init`` stays a process: hg runs its ssh through ``ui.system``, which the chg client
        runs with the caller's own stderr, where the server's refusal would not be read."""
        words = ["--config", f"ui.ssh={self.ssh_command(who)}", *map(str, args)]
        if "init" in words:
            return self.client.hg(*words, check=check)
        return hg_chg.forked(os.path.join(VENV_BIN, "hg"), words, str(self.client.cwd), self.client.env,
                             check=check)

    def fresh(self, label: str) -> Path:
        path = self.work / label
        shutil.rmtree(path, ignore_errors=True)
        return path


def _ssh_key(base: Path, user: str) -> Path:
    key = base / f"{user}_key"
    subprocess.run(["/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", user, "-f", str(key)], check=True)
    return key


def _client(base: Path) -> Client:
    home = base / "home"
    home.mkdir()
    env = {
        "PATH": VENV_BIN + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home), "LANG": "C.UTF-8", "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0",
        "GIT_AUTHOR_NAME": "A", "GIT_AUTHOR_EMAIL": "a@example.com", "GIT_COMMITTER_NAME": "C",
        "GIT_COMMITTER_EMAIL": "c@example.com", "HGRCPATH": "", "HGPLAIN": "1", "HGUSER": "T <t@example.com>",
        "HGENCODING": "utf-8", "GIT_CONFIG_COUNT": "2", "GIT_CONFIG_KEY_0": "pack.threads", "GIT_CONFIG_VALUE_0": "1",
        "GIT_CONFIG_KEY_1": "maintenance.auto", "GIT_CONFIG_VALUE_1": "false",  # (no `git maintenance` a commit)
    }
    subprocess.run(["git", "config", "--global", "init.defaultBranch", "main"], env=env, check=True)
    return Client(env, base)


def _seed(m: Matrix) -> None:
    """Every repository exists with one commit on main (git) or default + bookmark stable (hg)."""
    for name in (*GIT_REPOS, *HG_REPOS):
        m.server.backend.create(name, Kind.GIT if name.endswith(".git") else Kind.HG)
    src = m.fresh("seed-git")
    m.client.git("init", "-q", str(src))
    _git_commit(m, src, "seed")
    for name in GIT_REPOS:
        m.git("ssh", "root", "push", "-q", m.url("ssh", "root", name), "main", cwd=src)
    hg_src = m.fresh("seed-hg")
    m.client.hg("init", str(hg_src))
    _hg_commit(m, hg_src, "seed")
    m.client.hg("bookmark", "-R", str(hg_src), "stable")
    for name in HG_REPOS:
        m.hg("root", "push", "-q", "-B", "stable", "-R", str(hg_src), m.url("ssh", "root", name))


@pytest.fixture(scope="module", params=BACKENDS)
def matrix(request: pytest.FixtureRequest, reactor: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Matrix]:
    base = tmp_path_factory.mktemp(f"permissions-{request.param}")
    keys = {user: _ssh_key(base, user) for user in SSH_USERS}
    authorized = base / "authorized_keys"
    authorized.write_text("".join((base / f"{u}_key.pub").read_text() for u in SSH_USERS))
    htpasswd = base / "htpasswd"
    htpasswd.write_text("".join(f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(rounds=4)).decode()}\n"
                                for u, p in PASSWORDS.items()))
    policy = base / "hgwire.toml"
    policy.write_text(POLICY)
    server = start_server(reactor, request.param, base / "root", git=[LOOPBACK], ssh=[LOOPBACK],
                          http=[LOOPBACK], host_key=str(base / "host_key"), authorized_keys=str(authorized),
                          htpasswd=str(htpasswd), config_file=str(policy), create_on_push=True,
                          allow_push_over_http=True)
    work = base / "work"
    work.mkdir()
    m = Matrix(server, _client(base), keys, work, policy, [])

    def observe(event: LogEvent) -> None:
        if event.get("log_namespace") == AUDIT_NAMESPACE:
            m.audit.append(event)

    observer = cast(ILogObserver, observe)
    globalLogPublisher.addObserver(observer)
    _seed(m)
    yield m
    globalLogPublisher.removeObserver(observer)
    stop_server(reactor, server)


def _audited(m: Matrix, **fields: Any) -> list[LogEvent]:
    return [e for e in m.audit if all(e.get(k) == v for k, v in fields.items())]


def _git_commit(m: Matrix, work: Path, text: str) -> str:
    (work / "file.txt").write_text(text + "\n")
    m.client.git("add", "file.txt", cwd=work)
    m.client.git("commit", "-qm", text, cwd=work)
    return m.client.git("rev-parse", "HEAD", cwd=work).stdout.strip()


def _hg_commit(m: Matrix, repo: Path, text: str) -> None:
    (repo / "file.txt").write_text(text + "\n")
    m.client.hg("commit", "-q", "-A", "-R", str(repo), "-m", text)


# --- git: read / write / create × transports ----------------------------------------------------

GIT_READS = [
    (None, "git", "team/app.git", True),
    (None, "http", "team/app.git", True),
    (None, "git", "private/secret.git", False),
    (None, "http", "private/secret.git", False),
    ("alice", "ssh", "team/app.git", True),
    ("alice", "ssh", "private/secret.git", False),
    ("carol", "http", "team/app.git", True),
    ("carol", "http", "private/secret.git", False),
    ("root", "ssh", "private/secret.git", True),
    ("root", "http", "private/secret.git", True),
]


def test_git_reads(matrix: Matrix) -> None:
    for who, transport, name, allowed in GIT_READS:
        result = matrix.git(transport, who, "ls-remote", matrix.url(transport, who, name), check=False)
        assert (result.returncode == 0) is allowed, (who, transport, name, result.stderr)
        if allowed:
            assert "refs/heads/main" in result.stdout
    refused = matrix.git("git", None, "ls-remote", matrix.url("git", None, "private/secret.git"), check=False)
    assert "needs an authenticated user" in refused.stderr
    denied = matrix.git("ssh", "alice", "ls-remote", matrix.url("ssh", "alice", "private/secret.git"), check=False)
    assert "alice may not read private/secret.git" in denied.stderr


GIT_WRITES = [
    (None, "git", "team/app.git", False, "push over SSH or HTTP"),
    (None, "http", "team/app.git", False, "could not read Username"),  # 401: git goes for credentials
    ("carol", "http", "team/app.git", False, "403"),
    ("alice", "ssh", "other/x.git", False, "alice may not push to other/x.git"),
    ("alice", "ssh", "team/app.git", True, ""),
    ("alice", "http", "team/app.git", True, ""),
    ("root", "http", "other/x.git", True, ""),
    ("root", "ssh", "private/secret.git", True, ""),
]


def test_git_writes(matrix: Matrix) -> None:
    for i, (who, transport, name, allowed, message) in enumerate(GIT_WRITES):
        work = matrix.fresh(f"git-write-{i}")
        matrix.git("ssh", "root", "clone", "-q", matrix.url("ssh", "root", name), str(work))
        _git_commit(matrix, work, f"write {i}")
        result = matrix.git(transport, who, "push", matrix.url(transport, who, name), f"HEAD:refs/heads/topic-{i}",
                            cwd=work, check=False)
        assert (result.returncode == 0) is allowed, (who, transport, name, result.stderr)
        assert message in result.stderr
        if allowed:  # one audit event per write, from the session that made it
            (event,) = [e for e in _audited(matrix, user=who, repo=name, outcome="ok")
                        if e["changes"][0]["name"] == f"refs/heads/topic-{i}"]
            assert event["proto"] == {"ssh": "git-ssh", "http": "git-http"}[transport]
            assert event["peer"].startswith("127.0.0.1:")


GIT_CREATES = [
    ("alice", "ssh", "team/new-a.git", False, "repository team/new-a.git does not exist, and alice may not create it"),
    ("alice", "http", "team/new-b.git", False, "remote: repository team/new-b.git does not exist, and alice may not"),
    (None, "git", "team/new-c.git", False, "push over SSH or HTTP"),
    ("root", "ssh", "team/new-d.git", True, ""),
    ("root", "http", "team/new-e.git", True, ""),
]


def test_git_creates_on_push(matrix: Matrix) -> None:
    work = matrix.fresh("git-create")
    matrix.client.git("init", "-q", str(work))
    _git_commit(matrix, work, "create")
    for who, transport, name, allowed, message in GIT_CREATES:
        result = matrix.git(transport, who, "push", matrix.url(transport, who, name), "main", cwd=work, check=False)
        assert (result.returncode == 0) is allowed, (who, transport, name, result.stderr)
        assert message in result.stderr
        assert matrix.server.backend.exists(name) is allowed


def test_git_protected_main(matrix: Matrix) -> None:
    """Force-push and deletion of refs/heads/main are refused over SSH and HTTP; a fast-forward lands."""
    for transport in ("ssh", "http"):
        url = matrix.url(transport, "alice", "team/app.git")
        work = matrix.fresh(f"protected-{transport}")
        matrix.git(transport, "alice", "clone", "-q", url, str(work))
        forward = _git_commit(matrix, work, f"fast-forward over {transport}")
        matrix.git(transport, "alice", "push", "-q", url, "main", cwd=work)

        matrix.client.git("reset", "-q", "--hard", "HEAD~1", cwd=work)
        rewritten = _git_commit(matrix, work, f"rewritten over {transport}")
        forced = matrix.git(transport, "alice", "push", "--force", url, "main", cwd=work, check=False)
        assert forced.returncode != 0
        assert "protected branch: force-push (non-fast-forward) is not allowed" in forced.stderr
        bare = matrix.server.root / "team" / "app.git"  # every ref refused: the push's quarantine goes
        assert not list((bare / "objects").glob("tmp_objdir-incoming-*"))
        assert matrix.client.git("--git-dir", str(bare), "cat-file", "-e", rewritten, check=False).returncode != 0

        deleted = matrix.git(transport, "alice", "push", url, ":main", cwd=work, check=False)
        assert deleted.returncode != 0 and "protected branch: deletion is not allowed" in deleted.stderr

        # an unprotected branch in the same push still moves (no --atomic)
        mixed = matrix.git(transport, "alice", "push", "--force", url, "main", f"HEAD:refs/heads/side-{transport}",
                           cwd=work, check=False)
        assert mixed.returncode != 0 and f"side-{transport}" in mixed.stderr and "[new branch]" in mixed.stderr
        remote = matrix.git(transport, "alice", "ls-remote", url, "refs/heads/main").stdout.split()[0]
        assert remote == forward
        assert _audited(matrix, user="alice", repo="team/app.git", outcome="1 refused")


def test_git_protected_main_through_a_symbolic_ref(matrix: Matrix) -> None:
    """A symbolic ref to a protected branch (an alias left by a rename) is checked as its target:
    no force-push through it; a fast-forward through it lands and the audit names both refs."""
    matrix.server.backend.open("team/app.git").dulwich_repo.refs.set_symbolic_ref(
        b"refs/heads/old-main", b"refs/heads/main")
    url = matrix.url("http", "alice", "team/app.git")
    work = matrix.fresh("protected-alias")
    matrix.git("http", "alice", "clone", "-q", url, str(work))
    forward = _git_commit(matrix, work, "forward through the alias")
    matrix.git("http", "alice", "push", "-q", url, "HEAD:refs/heads/old-main", cwd=work)
    assert matrix.git("http", "alice", "ls-remote", url, "refs/heads/main").stdout.split()[0] == forward
    matrix.client.git("reset", "-q", "--hard", "HEAD~1", cwd=work)
    _git_commit(matrix, work, "rewritten through the alias")
    forced = matrix.git("http", "alice", "push", "--force", url, "HEAD:refs/heads/old-main", cwd=work, check=False)
    assert forced.returncode != 0
    assert "protected branch: force-push (non-fast-forward) is not allowed" in forced.stderr, forced.stderr
    assert matrix.git("http", "alice", "ls-remote", url, "refs/heads/main").stdout.split()[0] == forward
    names = [c["name"] for e in _audited(matrix, user="alice", repo="team/app.git") for c in e["changes"]]
    assert "refs/heads/old-main -> refs/heads/main" in names


# --- hg over SSH and HTTP ---------------------------------------------------------------------------

def _hg_url(m: Matrix, transport: str, who: str | None, name: str) -> str:
    return m.url(transport, who, name)


@pytest.mark.parametrize("transport", ["ssh", "http"])
def test_hg_read_write_create(matrix: Matrix, transport: str) -> None:
    clone = matrix.fresh(f"hg-{transport}-other")
    matrix.hg("alice", "clone", "-q", _hg_url(matrix, transport, "alice", "other/hgx"), str(clone))
    _hg_commit(matrix, clone, f"over {transport}")
    for who in ("alice", "root"):
        pushed = matrix.hg(who, "push", "-R", str(clone), _hg_url(matrix, transport, who, "other/hgx"), check=False)
        assert (pushed.returncode == 0) is (who == "root"), (who, pushed.stdout, pushed.stderr)
        if who == "alice":
            assert "alice may not push to other/hgx" in pushed.stdout + pushed.stderr
    (event,) = _audited(matrix, user="root", repo="other/hgx", proto=f"hg-{transport}")[-1:]
    assert event["outcome"] == "ok" and event["changes"][0]["name"] == "heads"
    names = [change["name"] for change in event["changes"]]
    assert len(names) == len(set(names)), names  # each change said once (the phase was said twice)
    team = matrix.fresh(f"hg-{transport}-team")
    matrix.hg("alice", "clone", "-q", _hg_url(matrix, transport, "alice", "team/hgrepo"), str(team))
    _hg_commit(matrix, team, f"team work over {transport}")
    matrix.hg("alice", "push", "-q", "-R", str(team), _hg_url(matrix, transport, "alice", "team/hgrepo"))
    if transport == "ssh":
        refused = matrix.hg("alice", "init", _hg_url(matrix, "ssh", "alice", "team/hg-new"), check=False)
        assert refused.returncode != 0 and "alice may not create team/hg-new" in refused.stderr
        matrix.hg("root", "init", _hg_url(matrix, "ssh", "root", "team/hg-new"))
        assert matrix.server.backend.exists("team/hg-new")


def test_hg_protected_bookmark(matrix: Matrix) -> None:
    """The bookmark ``stable`` moves forward, but is not moved backwards (HTTP) or deleted (SSH)."""
    url = _hg_url(matrix, "ssh", "alice", "team/hgrepo")
    http_url = _hg_url(matrix, "http", "alice", "team/hgrepo")
    work = matrix.fresh("hg-bookmark")
    matrix.hg("alice", "clone", "-q", url, str(work))
    matrix.client.hg("update", "-q", "-R", str(work), "stable")
    _hg_commit(matrix, work, "stable moves forward")
    before = _remote_bookmark(matrix, "team/hgrepo")
    matrix.hg("alice", "push", "-q", "-R", str(work), "-B", "stable", url)
    moved = _remote_bookmark(matrix, "team/hgrepo")
    assert moved != before

    matrix.client.hg("bookmark", "-q", "-R", str(work), "-f", "-r", "stable~1", "stable")
    backwards = matrix.hg("alice", "push", "-R", str(work), "-B", "stable", http_url, check=False)
    assert backwards.returncode != 0
    assert 'bookmark "stable" is protected' in backwards.stdout + backwards.stderr

    matrix.client.hg("bookmark", "-q", "-R", str(work), "-d", "stable")
    deleted = matrix.hg("alice", "push", "-R", str(work), "-B", "stable", url, check=False)
    assert "deletion is not allowed" in deleted.stdout + deleted.stderr
    assert _remote_bookmark(matrix, "team/hgrepo") == moved


def _batch_pushkey(m: Matrix, who: str | None, name: str, bookmark: str, node: str) -> int:
    """POST ``?cmd=batch`` whose only sub-command is a ``pushkey`` (a write): the HTTP status."""
    cmds = f"pushkey namespace=bookmarks,key={bookmark},old=,new={node}"
    headers = {"Authorization": "Basic " + base64.b64encode(f"{who}:{PASSWORDS[who]}".encode()).decode()} if who else {}
    conn = http.client.HTTPConnection("127.0.0.1", m.server.port("http"), timeout=30)
    try:
        conn.request("POST", f"/{name}?" + urllib.parse.urlencode({"cmd": "batch", "cmds": cmds}), body=b"",
                     headers={**headers, "Content-Type": "application/mercurial-0.1"})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


@pytest.mark.parametrize(("who", "name", "status"),
                         [(None, "other/hgx", 401), ("carol", "other/hgx", 403), ("alice", "team/hgrepo", 200)])
def test_hg_http_batch_checks_each_sub_command(matrix: Matrix, who: str | None, name: str, status: int) -> None:
    """CVE-2018-1000132: a write hidden in ``batch`` needs write permission like the command itself."""
    assert _batch_pushkey(matrix, who, name, f"sneaky-{who}", _remote_bookmark(matrix, name)) == status
    assert (f"sneaky-{who}".encode() in _bookmarks(matrix, name)) is (status == 200)


def _bookmarks(m: Matrix, name: str) -> dict[bytes, bytes]:
    """The server's bookmarks of ``name`` as its ``listkeys`` answers them (``hg debugpushkey``'s), read
    in the backend: the pushes are the real clients', this only looks."""
    return dict(cast(HgRepository, m.server.backend.open(name)).listkeys(b"bookmarks"))


def _remote_bookmark(m: Matrix, name: str) -> str:
    return _bookmarks(m, name).get(b"stable", b"").decode()


# --- the file changes under a running server -------------------------------------------------------


def test_policy_reload_without_restart_and_broken_file_keeps_rules(matrix: Matrix) -> None:
    url = matrix.url("http", "carol", "team/app.git")
    work = matrix.fresh("reload")
    matrix.git("http", "carol", "clone", "-q", url, str(work))
    _git_commit(matrix, work, "carol")
    push = ["push", "-q", url, "HEAD:refs/heads/carol"]
    assert matrix.git("http", "carol", *push, cwd=work, check=False).returncode != 0
    read: list[str] = []  # what the server's timer made of each new version of the file

    def observe(event: LogEvent) -> None:
        said = str(event.get("log_format", ""))
        if event.get("path") == str(matrix.policy) and said.startswith(("keeping the last good rules",
                                                                       "{path}: new rules in force")):
            read.append("kept" if said.startswith("keeping") else "new")

    observer = cast(ILogObserver, observe)
    globalLogPublisher.addObserver(observer)
    try:  # each check waits for the server to read the file (its timer), then pushes once
        _rewrite(matrix.policy, POLICY.replace('write = ["@dev"]', 'write = ["@dev", "carol"]'))
        _eventually(lambda: read == ["new"], message="the new policy was not read", pause=0.05)
        matrix.git("http", "carol", *push, cwd=work)
        _rewrite(matrix.policy, "[[repo]\nbroken")
        _eventually(lambda: read == ["new", "kept"], message="the broken file was not read", pause=0.05)  # ignored
        _git_commit(matrix, work, "carol again")
        matrix.git("http", "carol", *push, cwd=work)
    finally:
        _rewrite(matrix.policy, POLICY)
        if read:  # the module's rules back in force for the tests after this one
            seen = len(read)
            _eventually(lambda: read[seen:] == ["new"], message="the module's policy was not read again",
                        pause=0.05)
        globalLogPublisher.removeObserver(observer)
    assert matrix.git("http", "carol", *push, cwd=work, check=False).returncode != 0


def _rewrite(path: Path, text: str) -> None:
    path.write_text(text)
    status = path.stat()
    os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns + 1_000_000_000))


def _eventually(check: Any, timeout: float = 30.0, message: str = "the new policy did not take effect",
                pause: float = 0.3) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, message
        time.sleep(pause)


def test_every_repository_verifies_after_the_pushes(matrix: Matrix) -> None:
    """``git fsck --full`` and ``hg verify`` on the server's copies (fs) or on fresh clones (memory)."""
    m = matrix
    for name in GIT_REPOS:
        if m.server.backend_name == "fs":
            m.client.git("fsck", "--full", cwd=m.server.root / name)
        else:
            check = m.fresh("fsck")
            m.git("ssh", "root", "clone", "-q", "--mirror", m.url("ssh", "root", name), str(check))
            m.client.git("fsck", "--full", cwd=check)
    for name in HG_REPOS:
        if m.server.backend_name == "fs":
            m.client.hg("verify", "-q", "-R", str(m.server.root / name))
        else:
            check = m.fresh("hg-verify")
            m.hg("root", "clone", "-q", "-U", m.url("ssh", "root", name), str(check))
            m.client.hg("verify", "-q", "-R", str(check))


def test_twistd_refuses_a_broken_config_and_rereads_on_sighup(tmp_path: Path) -> None:
    """Under twistd: a broken file stops start-up with its key named; SIGHUP re-reads an unchanged-looking file."""
    policy = tmp_path / "hgwire.toml"
    policy.write_text("anonymous_read = true\n[[repo]]\npattern = \"*\"\nwrit = []\n")
    root = tmp_path / "root"
    args = ["--root", str(root), "--git", "tcp:0:interface=127.0.0.1", "--config", str(policy)]
    broken = subprocess.run([f"{VENV_BIN}/twistd", "-n", "--pidfile=", "hgwire", *args], capture_output=True,
                            text=True, timeout=60, check=False)
    assert broken.returncode != 0 and "repo[0].writ: unknown key" in broken.stdout + broken.stderr

    policy.write_text("anonymous_read = true \n")
    subprocess.run(["git", "init", "-q", "--bare", str(root / "r.git")], check=True)
    proc, url = start_twistd(args, tmp_path)
    try:
        repo_url = url.replace("NAME.git", "r.git")
        env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(tmp_path)}
        assert _ls_remote_ok(repo_url, env)
        stamp = policy.stat()
        with open(policy, "r+") as f:  # same inode, size and mtime: only SIGHUP can notice
            f.write("anonymous_read = false\n")
        os.utime(policy, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
        proc.send_signal(signal.SIGHUP)
        _eventually(lambda: not _ls_remote_ok(repo_url, env))
    finally:
        stop_twistd(proc)


def _ls_remote_ok(url: str, env: dict[str, str]) -> bool:
    return subprocess.run(["git", "ls-remote", url], env=env, capture_output=True, timeout=60, check=False).returncode == 0


def test_with_rules_an_alias_in_root_does_not_get_around_them(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> None:
    """``private/*`` readable by bob only: a symbolic link in ROOT to it (``pub -> private``) does
    not serve it under another name's rules."""
    policy = tmp_path / "alias-policy.toml"
    policy.write_text('anonymous_read = true\n[[repo]]\npattern = "private/*"\nread = ["bob"]\n')
    server = make_server("fs", git=[LOOPBACK], config_file=str(policy))
    subprocess.run(["git", "init", "-q", "--bare", str(server.root / "private" / "p.git")], check=True)
    os.symlink(server.root / "private", server.root / "pub")
    refused = client.git("ls-remote", server.git_url("private/p"), check=False)
    assert refused.returncode != 0 and "needs an authenticated user" in refused.stderr
    aliased = client.git("ls-remote", server.git_url("pub/p"), check=False)
    assert aliased.returncode != 0 and "leads through a symbolic link" in aliased.stderr, aliased.stderr


def test_with_rules_a_backend_wrapping_fs_serves_no_alias_either(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's example backend (it wraps ``fs``, serving ``public/*``) under rules: a link
    ``public/alias.git -> secret.git`` does not serve the protected repository to anyone."""
    from tests.unit.backends.test_readme_example import _example_source

    (tmp_path / "wrapping_backend.py").write_text(_example_source())
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "wrapping_backend", raising=False)
    policy = tmp_path / "wrapped-policy.toml"
    policy.write_text('anonymous_read = true\n[[repo]]\npattern = "secret*"\nread = ["bob"]\n')
    server = make_server("wrapping_backend:make_backend", git=[LOOPBACK], config_file=str(policy))
    subprocess.run(["git", "init", "-q", "--bare", str(server.root / "public" / "secret.git")], check=True)
    subprocess.run(["git", "init", "-q", "--bare", str(server.root / "public" / "open.git")], check=True)
    os.symlink(server.root / "public" / "secret.git", server.root / "public" / "alias.git")
    client.git("ls-remote", server.git_url("open"))
    refused = client.git("ls-remote", server.git_url("secret"), check=False)
    assert refused.returncode != 0 and "needs an authenticated user" in refused.stderr
    aliased = client.git("ls-remote", server.git_url("alias"), check=False)
    assert aliased.returncode != 0 and "leads through a symbolic link" in aliased.stderr, aliased.stderr


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_rule_for_a_git_repository_holds_under_either_of_its_names(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path, backend: str) -> None:
    """A rule naming ``secret.git`` holds for a request naming ``secret`` (git clients may say
    either), over git:// and HTTP, its protected refs too; a rule for ``notes.git`` does not reach
    the Mercurial repository ``notes``."""
    policy = tmp_path / "suffix-policy.toml"
    policy.write_text('anonymous_read = true\n'
                      '[[repo]]\npattern = "secret.git"\nread = ["alice"]\n'
                      '[[repo]]\npattern = "open.git"\nwrite = ["*"]\n'
                      'protected_refs = [{ pattern = "refs/heads/main", no_direct_push = true }]\n'
                      '[[repo]]\npattern = "notes.git"\nread = ["alice"]\n')
    server = make_server(backend, git=[LOOPBACK], http=[LOOPBACK], config_file=str(policy),
                         htpasswd=str(_htpasswd(tmp_path)), allow_push_over_http=True)
    for name in ("secret", "open"):
        server.backend.create(name + ".git", Kind.GIT)
    server.backend.create("notes", Kind.HG)
    for url in (server.git_url("secret"), server.git_url("secret.git"),
                f"http://127.0.0.1:{server.port('http')}/secret", f"http://127.0.0.1:{server.port('http')}/secret.git"):
        refused = client.git("ls-remote", url, check=False)  # HTTP: 401, git asks for a user name
        said = "reading secret" if url.startswith("git:") else "could not read Username"
        assert refused.returncode != 0 and said in refused.stderr, (url, refused.stderr)
    client.git("ls-remote", f"http://alice:{PASSWORDS['alice']}@127.0.0.1:{server.port('http')}/secret")
    work = client.cwd / "open"
    client.git("init", "-q", str(work))
    (work / "f").write_text("f\n")
    client.git("add", "f", cwd=work)
    client.git("commit", "-qm", "f", cwd=work)
    pushed = client.git("push", f"http://alice:{PASSWORDS['alice']}@127.0.0.1:{server.port('http')}/open", "main",
                        cwd=work, check=False)
    assert pushed.returncode != 0 and "direct pushes are not allowed" in pushed.stderr, pushed.stderr
    client.hg("id", f"http://127.0.0.1:{server.port('http')}/notes")  # anonymous: notes.git's rule is not its


def _htpasswd(base: Path) -> Path:
    path = base / "htpasswd-suffix"
    path.write_text("".join(f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(rounds=4)).decode()}\n"
                            for u, p in PASSWORDS.items()))
    return path


def test_a_name_inside_a_private_repository_answers_as_one_nothing_is_at(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> None:
    """``secret.git`` readable by alice only: ``secret.git/x`` (which no rule covers) was answered
    "repository name 'secret.git/x' lies inside repository 'secret.git'" over every transport, where
    ``nothere.git/x`` is "not found", telling anyone that the private repository exists; both are
    now "repository NAME not found", as git daemon answers both."""
    policy = tmp_path / "inside-policy.toml"
    policy.write_text('anonymous_read = true\n[[repo]]\npattern = "secret.git"\nread = ["alice"]\n')
    server = make_server("fs", git=[LOOPBACK], http=[LOOPBACK], config_file=str(policy))
    server.backend.create("secret.git", Kind.GIT)
    for name in ("secret.git/x", "secret.git/refs/heads", "nothere.git/x"):
        for url in (server.git_url(name), f"http://127.0.0.1:{server.port('http')}/{name}"):
            refused = client.git("ls-remote", url, check=False)
            assert refused.returncode != 0, url
            assert "secret.git'" not in refused.stderr and "lies inside" not in refused.stderr, refused.stderr
            assert f"repository {name.removesuffix('.git')}" in refused.stderr or f"repository {name}" in refused.stderr, \
                refused.stderr
        page = http.client.HTTPConnection("127.0.0.1", server.port("http"), timeout=30)
        page.request("GET", f"/{name}/log")
        answer = page.getresponse()
        assert (answer.status, answer.read()) == (404, f"repository {name} not found\n".encode()), name
        page.close()


def test_a_directory_holding_only_repositories_one_may_not_read_is_not_found(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, tmp_path: Path) -> None:
    """A read list on ``*/plans`` (a glob that first matches at a later segment) and only
    ``team/plans.git`` in ``team``: ``team`` was "team is not a git or Mercurial repository" to
    those the list keeps out, where ``nothere`` is "not found", telling them ``team`` exists; it
    is now answered byte for byte as ``nothere`` over git://, SSH, HTTP (git, hg, the pages).  A
    directory holding a repository they may read (``other``) is still "not a … repository"."""
    policy = tmp_path / "later-glob-policy.toml"
    policy.write_text('anonymous_read = true\n[[repo]]\npattern = "*/plans"\nread = ["root"]\n')
    server = make_server("fs", git=[LOOPBACK], http=[LOOPBACK], config_file=str(policy),
                         htpasswd=str(_htpasswd(tmp_path)), **ssh_server_settings(ssh_keys))
    server.backend.create("team/plans.git", Kind.GIT)
    server.backend.create("other/app.git", Kind.GIT)
    client.env["GIT_SSH_COMMAND"] = ssh_keys.command(server.port("ssh"))
    http_base = f"127.0.0.1:{server.port('http')}"

    def told(name: str) -> list[str]:
        said = []
        for url in (server.git_url(name), f"ssh://git@127.0.0.1:{server.port('ssh')}/{name}",
                    f"http://{http_base}/{name}", f"http://carol:{PASSWORDS['carol']}@{http_base}/{name}"):
            said.append(client.git("ls-remote", url, check=False).stderr)
        said.append(client.hg("id", f"http://carol:{PASSWORDS['carol']}@{http_base}/{name}", check=False).stderr)
        for path in (f"/{name}", f"/{name}/log", f"/{name}?cmd=capabilities"):
            page = http.client.HTTPConnection("127.0.0.1", server.port("http"), timeout=30)
            page.request("GET", path)
            answer = page.getresponse()
            said.append(f"{answer.status} {answer.read()!r}")
            page.close()
        return [line.replace(name, "NAME") for line in said]

    assert told("team") == told("tean"), "a directory of private repositories answers as a name nothing is at"
    assert told("team.git") == told("tean.git")
    assert "other is not a git or Mercurial repository" in client.git("ls-remote", server.git_url("other"),
                                                                      check=False).stderr


def test_a_directory_of_private_repositories_answers_as_one_that_is_not_there(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> None:
    """Read lists on ``private/*`` and ``vault/*`` (``vault`` holds nothing) and on ``sub/plans``:
    ``private`` and ``sub`` were "not a git or Mercurial repository" where ``vault`` was "not
    found", telling anyone kept out which of them exist; all are now refused alike, and alice,
    who may read them, is still told what ``private`` is."""
    policy = tmp_path / "directory-policy.toml"
    policy.write_text('anonymous_read = true\n'
                      '[[repo]]\npattern = "private/*"\nread = ["alice"]\n'
                      '[[repo]]\npattern = "vault/*"\nread = ["alice"]\n'
                      '[[repo]]\npattern = "sub/plans"\nread = ["alice"]\n')
    server = make_server("fs", git=[LOOPBACK], http=[LOOPBACK], config_file=str(policy),
                         htpasswd=str(_htpasswd(tmp_path)))
    server.backend.create("private/p.git", Kind.GIT)
    server.backend.create("sub/plans", Kind.HG)
    for name in ("private", "vault", "sub"):
        refused = client.git("ls-remote", server.git_url(name), check=False)
        assert refused.returncode != 0 and f"reading {name}.git needs an authenticated user" in refused.stderr, \
            refused.stderr
        page = http.client.HTTPConnection("127.0.0.1", server.port("http"), timeout=30)
        page.request("GET", f"/{name}/log", headers={"Authorization": "Basic " + base64.b64encode(
            f"carol:{PASSWORDS['carol']}".encode()).decode()})
        answer = page.getresponse()
        assert (answer.status, answer.read()) == (403, f"carol may not read {name}; ask the server's operator "
                                                       "for read access\n".encode()), name
        page.close()
    page = http.client.HTTPConnection("127.0.0.1", server.port("http"), timeout=30)
    page.request("GET", "/private/log", headers={"Authorization": "Basic " + base64.b64encode(
        f"alice:{PASSWORDS['alice']}".encode()).decode()})
    answer = page.getresponse()
    assert answer.status == 404 and b"private is not a git or Mercurial repository" in answer.read()
    page.close()
