"""The policy's deny lists with the real clients over every transport: ``deny_read`` keeps the
interns (and anonymous requests; on ``archive/*``, everyone) from reading, pushing and creating
whatever ``team/*`` grants them, answered as a name the rules refuse that nothing is at;
``deny_write`` keeps them from pushing, not from reading.  One server (git://, SSH, HTTP) for the
module."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from backends.interfaces import Kind
from tests.conftest import LOOPBACK, VENV_BIN, Client, RunningServer, start_server, stop_server
from tests.integration.test_cli import start_twistd, stop_twistd

POLICY = """
anonymous_read = true

[groups]
dev = ["alice", "ivan"]
interns = ["ivan"]

[[repo]]
pattern = "team/*"
write = ["@dev"]

[[repo]]
pattern = "team/*secret*"
deny_read = ["@interns"]                # (and anonymous requests: one may be ivan's)

[[repo]]
pattern = "team/*frozen*"
deny_write = ["@interns"]

[[repo]]
pattern = "archive/*"
deny_read = ["*"]

[[repo]]
pattern = "attic/*"
deny_read = ["*"]
"""

USERS = ("alice", "ivan")
PASSWORDS = {user: f"{user}-pw" for user in USERS}
GIT_REPOS = ("team/app.git", "team/secret.git", "team/frozen.git", "archive/old.git")
HG_REPOS = ("team/hgapp", "team/hgsecret", "team/hgfrozen", "archive/hgold")


@dataclass
class Served:
    server: RunningServer
    client: Client
    keys: dict[str, Path]
    work: Path

    def ssh_command(self, user: str) -> str:
        return (f"/usr/bin/ssh -F /dev/null -p {self.server.port('ssh')} -i {self.keys[user]} "
                "-o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no "
                "-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR")

    def url(self, transport: str, who: str | None, name: str) -> str:
        if transport == "git":
            return f"git://127.0.0.1:{self.server.port('git')}/{name}"
        if transport == "ssh":
            return f"ssh://{who}@127.0.0.1:{self.server.port('ssh')}/{name}"
        auth = f"{who}:{PASSWORDS[who]}@" if who else ""
        return f"http://{auth}127.0.0.1:{self.server.port('http')}/{name}"

    def git(self, transport: str, who: str | None, *args: str | Path, **kw: Any) -> subprocess.CompletedProcess[str]:
        env = {"GIT_SSH_COMMAND": self.ssh_command(who)} if transport == "ssh" and who else {}
        return self.client.git(*args, env=env, **kw)

    def hg(self, who: str, *args: str | Path, **kw: Any) -> subprocess.CompletedProcess[str]:
        return self.client.hg("--config", f"ui.ssh={self.ssh_command(who)}", *args, **kw)

    def fresh(self, label: str) -> Path:
        path = self.work / label
        shutil.rmtree(path, ignore_errors=True)
        return path

    def get(self, path: str, who: str | None = None, accept: str = "text/html") -> tuple[int, bytes]:
        headers = {"Accept": accept}
        if who:
            headers["Authorization"] = "Basic " + base64.b64encode(f"{who}:{PASSWORDS[who]}".encode()).decode()
        connection = http.client.HTTPConnection("127.0.0.1", self.server.port("http"), timeout=30)
        try:
            connection.request("GET", path, headers=headers)
            answer = connection.getresponse()
            return answer.status, answer.read()
        finally:
            connection.close()


def _client(base: Path) -> Client:
    home = base / "home"
    home.mkdir()
    env = {
        "PATH": VENV_BIN + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home), "LANG": "C.UTF-8", "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0",
        "GIT_AUTHOR_NAME": "A", "GIT_AUTHOR_EMAIL": "a@example.com", "GIT_COMMITTER_NAME": "C",
        "GIT_COMMITTER_EMAIL": "c@example.com", "HGRCPATH": "", "HGPLAIN": "1", "HGUSER": "T <t@example.com>",
        "HGENCODING": "utf-8",
    }
    subprocess.run(["git", "config", "--global", "init.defaultBranch", "main"], env=env, check=True)
    return Client(env, base)


def _git_commit(client: Client, work: Path, text: str) -> None:
    (work / "file.txt").write_text(text + "\n")
    client.git("add", "file.txt", cwd=work)
    client.git("commit", "-qm", text, cwd=work)


def _hg_commit(client: Client, repo: Path, text: str) -> None:
    (repo / "file.txt").write_text(text + "\n")
    client.hg("commit", "-q", "-A", "-R", str(repo), "-m", text)


@pytest.fixture(scope="module")
def served(reactor: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    base = tmp_path_factory.mktemp("deny-lists")
    keys = {}
    for user in USERS:
        keys[user] = base / f"{user}_key"
        subprocess.run(["/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", user, "-f", str(keys[user])],
                       check=True)
    authorized = base / "authorized_keys"
    authorized.write_text("".join((base / f"{u}_key.pub").read_text() for u in USERS))
    htpasswd = base / "htpasswd"
    htpasswd.write_text("".join(f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(rounds=4)).decode()}\n"
                                for u, p in PASSWORDS.items()))
    policy = base / "hgwire.toml"
    policy.write_text(POLICY)
    server = start_server(reactor, "fs", base / "root", git=[LOOPBACK], ssh=[LOOPBACK], http=[LOOPBACK],
                          host_key=str(base / "host_key"), authorized_keys=str(authorized), htpasswd=str(htpasswd),
                          config_file=str(policy), allow_push_over_http=True)
    work = base / "work"
    work.mkdir()
    s = Served(server, _client(base), keys, work)
    src = s.fresh("seed-git")  # seeded through the files: nobody here may write archive/*
    s.client.git("init", "-q", str(src))
    _git_commit(s.client, src, "seed")
    for name in GIT_REPOS:
        server.backend.create(name, Kind.GIT)
        s.client.git("push", "-q", str(server.root / name), "main", cwd=src)
    hg_src = s.fresh("seed-hg")
    s.client.hg("init", str(hg_src))
    _hg_commit(s.client, hg_src, "seed")
    for name in HG_REPOS:
        server.backend.create(name, Kind.HG)
        s.client.hg("push", "-q", "-R", str(hg_src), str(server.root / name))
    yield s
    stop_server(reactor, server)


def _alike(first: str, second: str, name: str, other: str) -> None:
    """Two answers the same once each names its own repository."""
    assert first.replace(name, "NAME") == second.replace(other, "NAME"), (first, second)


# --- git:// -------------------------------------------------------------------------------------------


def test_git_daemon_a_repository_everyone_is_denied_answers_as_one_not_there(served: Served) -> None:
    s = served
    assert "refs/heads/main" in s.git("git", None, "ls-remote", s.url("git", None, "team/frozen.git")).stdout
    denied = s.git("git", None, "ls-remote", s.url("git", None, "archive/old.git"), check=False)
    ghost = s.git("git", None, "ls-remote", s.url("git", None, "archive/ghost.git"), check=False)
    assert denied.returncode != 0 and "reading archive/old.git needs an authenticated user" in denied.stderr
    _alike(denied.stderr, ghost.stderr, "archive/old.git", "archive/ghost.git")
    unlogged = s.git("git", None, "ls-remote", s.url("git", None, "team/secret.git"), check=False)  # ivan, maybe
    assert unlogged.returncode != 0 and "reading team/secret.git needs an authenticated user" in unlogged.stderr
    _alike(unlogged.stderr, s.git("git", None, "ls-remote", s.url("git", None, "team/topsecret.git"),
                                  check=False).stderr, "team/secret.git", "team/topsecret.git")
    cloned = s.git("git", None, "clone", "-q", s.url("git", None, "archive/old.git"), str(s.fresh("c")), check=False)
    assert cloned.returncode != 0 and not (s.work / "c" / ".git").exists()
    folder = s.git("git", None, "ls-remote", s.url("git", None, "archive"), check=False).stderr
    _alike(folder, s.git("git", None, "ls-remote", s.url("git", None, "attic"), check=False).stderr,
           "archive", "attic")  # the folder (it is there) as one the same rule covers that is not


# --- SSH: git, hg, the greeting -----------------------------------------------------------------------


def test_ssh_git_and_hg_deny_reading_and_pushing(served: Served) -> None:
    s = served
    for name, ghost in (("team/secret.git", "team/topsecret.git"), ("archive/old.git", "archive/ghost.git")):
        denied = s.git("ssh", "ivan", "ls-remote", s.url("ssh", "ivan", name), check=False)
        assert denied.returncode != 0 and f"ivan may not read {name}" in denied.stderr, denied.stderr
        _alike(denied.stderr, s.git("ssh", "ivan", "ls-remote", s.url("ssh", "ivan", ghost), check=False).stderr,
               name, ghost)
    assert "refs/heads/main" in s.git("ssh", "alice", "ls-remote", s.url("ssh", "alice", "team/secret.git")).stdout
    denied_hg = s.hg("ivan", "id", s.url("ssh", "ivan", "team/hgsecret"), check=False)
    assert denied_hg.returncode != 0 and "ivan may not read team/hgsecret" in denied_hg.stderr, denied_hg.stderr
    _alike(denied_hg.stderr, s.hg("ivan", "id", s.url("ssh", "ivan", "team/hgtopsecret"), check=False).stderr,
           "team/hgsecret", "team/hgtopsecret")
    s.hg("alice", "id", s.url("ssh", "alice", "team/hgsecret"))

    work = s.fresh("ssh-frozen")  # deny_write: ivan clones, may not push; alice may
    s.git("ssh", "ivan", "clone", "-q", s.url("ssh", "ivan", "team/frozen.git"), str(work))
    _git_commit(s.client, work, "ivan over ssh")
    pushed = s.git("ssh", "ivan", "push", s.url("ssh", "ivan", "team/frozen.git"), "HEAD:refs/heads/ivan",
                   cwd=work, check=False)
    assert pushed.returncode != 0 and "ivan may not push to team/frozen.git" in pushed.stderr, pushed.stderr
    s.git("ssh", "alice", "push", "-q", s.url("ssh", "alice", "team/frozen.git"), "HEAD:refs/heads/alice", cwd=work)
    s.git("ssh", "ivan", "push", "-q", s.url("ssh", "ivan", "team/app.git"), "HEAD:refs/heads/ivan", cwd=work)
    hg_work = s.fresh("ssh-hgfrozen")
    s.hg("ivan", "clone", "-q", s.url("ssh", "ivan", "team/hgfrozen"), str(hg_work))
    _hg_commit(s.client, hg_work, "ivan over ssh")
    refused = s.hg("ivan", "push", "-R", str(hg_work), s.url("ssh", "ivan", "team/hgfrozen"), check=False)
    assert refused.returncode != 0 and "ivan may not push to team/hgfrozen" in refused.stdout + refused.stderr
    assert "ivan over ssh" not in s.client.hg("log", "-R", str(s.server.root / "team/hgfrozen")).stdout
    created = s.hg("ivan", "init", s.url("ssh", "ivan", "team/newsecret"), check=False)
    assert created.returncode != 0 and not s.server.backend.exists("team/newsecret")


def _greeting(s: Served, user: str, *command: str) -> str:
    return s.client.run(*s.ssh_command(user).split(), *(() if command else ("-T",)), f"{user}@127.0.0.1",
                        *command, check=False).stdout


def test_ssh_greeting_and_info_list_what_the_deny_lists_leave(served: Served) -> None:
    ivan = _greeting(served, "ivan")
    assert " R W  team/app.git" in ivan and " R W  team/hgapp" in ivan
    assert " R    team/frozen.git" in ivan and " R    team/hgfrozen" in ivan
    assert "secret" not in ivan and "archive" not in ivan, ivan
    alice = _greeting(served, "alice")
    assert " R W  team/secret.git" in alice and " R W  team/frozen.git" in alice and "archive" not in alice
    assert "There is no repository you may read that matches 'secret'" in _greeting(served, "ivan", "info", "secret")
    assert " R W  team/hgsecret" in _greeting(served, "alice", "info", "secret")


# --- HTTP: git and hg ---------------------------------------------------------------------------------


def test_http_git_denies_reading_and_pushing(served: Served) -> None:
    s = served
    for who, name, ghost in (("ivan", "team/secret.git", "team/topsecret.git"),
                             ("alice", "archive/old.git", "archive/ghost.git"),
                             (None, "archive/old.git", "archive/ghost.git")):
        denied = s.git("http", who, "ls-remote", s.url("http", who, name), check=False)
        assert denied.returncode != 0, (who, name)
        _alike(denied.stderr, s.git("http", who, "ls-remote", s.url("http", who, ghost), check=False).stderr,
               name, ghost)
    assert "403" in s.git("http", "ivan", "ls-remote", s.url("http", "ivan", "team/secret.git"), check=False).stderr
    work = s.fresh("http-frozen")
    s.git("http", "ivan", "clone", "-q", s.url("http", "ivan", "team/frozen.git"), str(work))
    _git_commit(s.client, work, "ivan over http")
    pushed = s.git("http", "ivan", "push", s.url("http", "ivan", "team/frozen.git"), "HEAD:refs/heads/ivan-http",
                   cwd=work, check=False)
    assert pushed.returncode != 0 and "403" in pushed.stderr, pushed.stderr
    s.git("http", "alice", "push", "-q", s.url("http", "alice", "team/frozen.git"), "HEAD:refs/heads/alice-http",
          cwd=work)
    heads = s.client.git("--git-dir", str(s.server.root / "team/frozen.git"), "for-each-ref", "--format=%(refname)")
    assert "refs/heads/alice-http" in heads.stdout and "ivan-http" not in heads.stdout


def test_http_hg_denies_reading_and_pushing(served: Served) -> None:
    s = served
    for who, name, ghost in (("ivan", "team/hgsecret", "team/hgtopsecret"),
                             ("alice", "archive/hgold", "archive/hgghost")):
        denied = s.hg(who, "id", s.url("http", who, name), check=False)
        assert denied.returncode != 0 and "403" in denied.stderr, denied.stderr
        _alike(denied.stderr, s.hg(who, "id", s.url("http", who, ghost), check=False).stderr, name, ghost)
    s.hg("alice", "id", s.url("http", "alice", "team/hgsecret"))
    work = s.fresh("http-hgfrozen")
    s.hg("ivan", "clone", "-q", s.url("http", "ivan", "team/hgfrozen"), str(work))
    _hg_commit(s.client, work, "ivan over http")
    refused = s.hg("ivan", "push", "-R", str(work), s.url("http", "ivan", "team/hgfrozen"), check=False)
    assert refused.returncode != 0, refused.stdout + refused.stderr
    assert "ivan over http" not in s.client.hg("log", "-R", str(s.server.root / "team/hgfrozen")).stdout
    s.hg("alice", "push", "-q", "-R", str(work), s.url("http", "alice", "team/hgfrozen"))


# --- Git LFS ------------------------------------------------------------------------------------------


def _batch(s: Served, who: str, name: str, operation: str, oid: str, size: int) -> tuple[int, bytes]:
    body = json.dumps({"operation": operation, "objects": [{"oid": oid, "size": size}]}).encode()
    connection = http.client.HTTPConnection("127.0.0.1", s.server.port("http"), timeout=30)
    try:
        connection.request("POST", f"/{name}/info/lfs/objects/batch", body=body, headers={
            "Accept": "application/vnd.git-lfs+json", "Content-Type": "application/vnd.git-lfs+json",
            "Authorization": "Basic " + base64.b64encode(f"{who}:{PASSWORDS[who]}".encode()).decode()})
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


@pytest.mark.skipif(shutil.which("git-lfs") is None, reason="the git-lfs client is not installed")
def test_git_lfs_follows_the_deny_lists(served: Served) -> None:
    s = served
    data = os.urandom(100_000)
    oid = hashlib.sha256(data).hexdigest()
    s.client.git("lfs", "install", "--skip-repo")
    work = s.fresh("lfs")
    s.git("http", "alice", "clone", "-q", s.url("http", "alice", "team/frozen.git"), str(work))
    s.client.git("lfs", "track", "*.bin", cwd=work)
    (work / "video.bin").write_bytes(data)
    s.client.git("add", ".gitattributes", "video.bin", cwd=work)
    s.client.git("commit", "-qm", "media", cwd=work)
    s.git("http", "alice", "push", "-q", "origin", "HEAD:refs/heads/media", cwd=work)
    s.git("http", "alice", "push", "-q", s.url("http", "alice", "team/secret.git"), "HEAD:refs/heads/media", cwd=work)

    clone = s.fresh("lfs-ivan")  # deny_write leaves reading: ivan's clone downloads the object
    s.git("http", "ivan", "clone", "-q", "-b", "media", s.url("http", "ivan", "team/frozen.git"), str(clone))
    assert (clone / "video.bin").read_bytes() == data
    more = os.urandom(50_000)
    (clone / "more.bin").write_bytes(more)
    s.client.git("add", "more.bin", cwd=clone)
    s.client.git("commit", "-qm", "more", cwd=clone)
    pushed = s.git("http", "ivan", "push", "origin", "HEAD:refs/heads/ivan-lfs", cwd=clone, check=False)
    assert pushed.returncode != 0, pushed.stderr
    more_oid = hashlib.sha256(more).hexdigest()
    assert not (s.server.root / "team/frozen.git/lfs/objects" / more_oid[:2] / more_oid[2:4] / more_oid).exists()
    assert _batch(s, "ivan", "team/frozen.git", "upload", more_oid, len(more))[0] == 403
    assert _batch(s, "ivan", "team/frozen.git", "download", oid, len(data))[0] == 200

    denied = _batch(s, "ivan", "team/secret.git", "download", oid, len(data))  # there, and denied
    ghost = _batch(s, "ivan", "team/topsecret.git", "download", oid, len(data))
    assert denied[0] == ghost[0] == 403
    _alike(denied[1].decode(), ghost[1].decode(), "team/secret.git", "team/topsecret.git")
    assert _batch(s, "alice", "team/secret.git", "download", oid, len(data))[0] == 200


# --- the web pages and the index ----------------------------------------------------------------------


def test_the_index_and_pages_leave_out_what_is_denied(served: Served) -> None:
    s = served
    status, ivan = s.get("/", "ivan")
    assert status == 200 and b"team/app.git" in ivan and b"team/hgfrozen" in ivan
    assert b"secret" not in ivan and b"archive" not in ivan, ivan
    status, alice = s.get("/", "alice")
    assert b"team/secret.git" in alice and b"team/hgsecret" in alice and b"archive" not in alice
    status, anonymous = s.get("/?style=json", None, "application/json")
    assert status == 200 and b"team/hgapp" in anonymous and b"secret" not in anonymous and b"archive" not in anonymous
    status, team = s.get("/team/", "alice")
    assert status == 200 and b"team/hgsecret" in team
    for who in ("ivan", None):
        for name, ghost in (("archive/", "attic/"), ("archive/hgold", "archive/hgghost"),
                            ("archive/old.git", "archive/ghost.git")):
            denied, same = s.get(f"/{name}", who), s.get(f"/{ghost}", who)
            assert denied[0] in (401, 403, 404) and denied[0] == same[0], (who, name, denied)
            _alike(denied[1].decode(), same[1].decode(), name.strip("/"), ghost.strip("/"))
    for path in ("/team/hgsecret", "/team/hgsecret/log", "/team/secret.git", "/team/hgsecret?cmd=capabilities"):
        denied, same = s.get(path, "ivan"), s.get(path.replace("secret", "topsecret"), "ivan")
        assert denied[0] == 403 and same[0] == 403, (path, denied)
        _alike(denied[1].decode(), same[1].decode(), "team/hgsecret" if "hg" in path else "team/secret.git",
               "team/hgtopsecret" if "hg" in path else "team/topsecret.git")
        assert s.get(path, "alice")[0] == 200, path


# --- a deny list read again on SIGHUP ----------------------------------------------------------------


def test_a_deny_list_added_takes_effect_on_sighup(tmp_path: Path) -> None:
    policy = tmp_path / "hgwire.toml"
    policy.write_text('anonymous_read = true\n[[repo]]\npattern = "archive/*"\ndeny_read = []\n')
    root = tmp_path / "root"
    subprocess.run(["git", "init", "-q", "--bare", str(root / "archive" / "old.git")], check=True)
    proc, url = start_twistd(["--root", str(root), "--git", "tcp:0:interface=127.0.0.1", "--config", str(policy)],
                             tmp_path)
    try:
        repo_url = url.replace("NAME.git", "archive/old.git")
        env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(tmp_path)}

        def readable() -> bool:
            return subprocess.run(["git", "ls-remote", repo_url], env=env, capture_output=True, timeout=60,
                                  check=False).returncode == 0

        assert readable()
        policy.write_text(policy.read_text().replace("deny_read = []", 'deny_read = ["anonymous"]'))
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while readable():
            assert time.monotonic() < deadline, "the deny list did not take effect on SIGHUP"
            time.sleep(0.3)
    finally:
        stop_twistd(proc)
