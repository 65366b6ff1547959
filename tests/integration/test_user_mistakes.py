"""What the real clients print for a user's mistake, the same on every transport.

One server per backend for the module (git://, SSH, HTTP; ``--config``; ``--create-on-push``):
alice may push everywhere and create ``new-*``, reads ``private/*``; bob reads what is not
private and writes nothing.  A wrong name, a refusal or a repository of the other kind reads as
one sentence, the same one over git://, SSH and HTTP, in each client's own words around it
(git's ``fatal:``, hg's ``abort:``).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
from twisted.logger import ILogObserver, LogEvent, globalLogPublisher

from backends.interfaces import Kind
from tests.conftest import BACKENDS, LOOPBACK, Client, RunningServer, start_server, stop_server
from tests.integration.test_permissions import _client, _ssh_key

POLICY = """
[[repo]]
pattern = "*"
write = ["alice"]

[[repo]]
pattern = "new-*"
create = ["alice"]

[[repo]]
pattern = "private/*"
read = ["alice"]
"""

USERS = ("alice", "bob")


@dataclass
class Mistakes:
    """The running server and how each user reaches it."""

    server: RunningServer
    client: Client
    keys: dict[str, Path]
    events: list[LogEvent]

    def ssh_command(self, user: str) -> str:
        return (f"/usr/bin/ssh -F /dev/null -p {self.server.port('ssh')} -i {self.keys[user]} "
                "-o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no "
                "-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR")

    def url(self, transport: str, name: str) -> str:
        scheme = {"git": "git://", "ssh": "ssh://git@", "http": "http://"}[transport]
        return f"{scheme}127.0.0.1:{self.server.port(transport)}/{name}"

    def git(self, transport: str, user: str, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        env = {"GIT_SSH_COMMAND": self.ssh_command(user)} if transport == "ssh" else {}
        return self.client.git(*args, env=env, check=False, **kw)

    def hg(self, user: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
        return self.client.hg("--config", f"ui.ssh={self.ssh_command(user)}", *args, check=False)

    def ssh(self, user: str, *command: str) -> subprocess.CompletedProcess[str]:
        argv = [*self.ssh_command(user).split(), "git@127.0.0.1", *command]
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)

    def mark(self) -> int:
        """Where the test's own events begin: after the lines of the earlier tests' sessions, which
        the server logs when it sees each close (``ssh_sessions``)."""
        self.server.settled()
        return len(self.events)

    def ssh_sessions(self, since: int) -> list[LogEvent]:
        """The SSH session log events after ``since`` (``mark``), once the server has seen every
        session close: it logs a session then, which may be after its client exited."""
        self.server.settled()
        return [e for e in self.events[since:] if e.get("log_namespace") == "gateway.ssh" and "outcome" in e]


@pytest.fixture(scope="module", params=BACKENDS)
def mistakes(request: pytest.FixtureRequest, reactor: Any,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mistakes]:
    base = tmp_path_factory.mktemp(f"mistakes-{request.param}")
    keys = {user: _ssh_key(base, user) for user in USERS}
    authorized = base / "authorized_keys"
    authorized.write_text("".join((base / f"{u}_key.pub").read_text() for u in USERS))
    policy = base / "hgwire.toml"
    policy.write_text(POLICY)
    server = start_server(reactor, request.param, base / "root", git=[LOOPBACK], ssh=[LOOPBACK],
                          http=[LOOPBACK], host_key=str(base / "host_key"), authorized_keys=str(authorized),
                          config_file=str(policy), create_on_push=True)
    for name in ("app.git", "private/secret.git"):
        server.backend.create(name, Kind.GIT)
    server.backend.create("hgapp", Kind.HG)
    events: list[LogEvent] = []
    observer = cast(ILogObserver, events.append)
    globalLogPublisher.addObserver(observer)
    try:
        yield Mistakes(server, _client(base), keys, events)
    finally:
        globalLogPublisher.removeObserver(observer)
        stop_server(reactor, server)


def _git_remote_error(m: Mistakes, name: str) -> str:
    """What git:// tells git of ``name``: the sentence after ``fatal: remote error: ``."""
    said = m.git("git", "bob", "ls-remote", m.url("git", name)).stderr
    assert said.startswith("fatal: remote error: "), said
    return said.removeprefix("fatal: remote error: ").splitlines()[0]


@pytest.mark.parametrize("name", ["../app.git", "-app.git", "a/.hidden/r.git"])
def test_a_bad_name_reads_the_same_over_ssh_as_over_git_daemon(mistakes: Mistakes, name: str) -> None:
    """git over SSH says it as git's own ``fatal:`` line, with the name as written (no leading
    ``/``), in git://'s sentence; hg over SSH as ``remote: abort:`` (exit 255 on the server)."""
    sentence = _git_remote_error(mistakes, name)
    assert sentence.startswith("repository name "), sentence
    over_ssh = mistakes.git("ssh", "bob", "ls-remote", mistakes.url("ssh", name))
    assert over_ssh.returncode != 0
    assert over_ssh.stderr.splitlines()[0] == f"fatal: {sentence}", over_ssh.stderr
    hg_name = name.removesuffix(".git")
    hg_said = mistakes.hg("bob", "identify", mistakes.url("ssh", hg_name))
    assert f"remote: abort: {sentence.replace(name, hg_name)}" in hg_said.stderr.splitlines(), hg_said.stderr
    raw = mistakes.ssh("bob", "hg", "-R", f"'{hg_name}'", "serve", "--stdio")
    assert (raw.returncode, raw.stderr) == (255, f"abort: {sentence.replace(name, hg_name)}\n")


def test_a_user_path_is_told_so_in_the_words_of_each_transport(mistakes: Mistakes) -> None:
    """``~alice/r.git``: a home directory to git daemon (``--user-path``), to sshd (the account's), to
    a web server (``UserDir``); each client is told what serves such paths where it came from and
    how to name a repository there (git://'s sentence, git daemon's option, was told everywhere)."""
    def sentence(server_note: str, example: str) -> str:
        return (f"~alice names a home directory{server_note}, and this server serves none: name the repository "
                f"by its path under the server's root, as in {example}")

    assert _git_remote_error(mistakes, "~alice/r.git") == sentence(" (git daemon's --user-path)",
                                                                    "git://HOST/team/project.git")
    over_ssh = mistakes.git("ssh", "bob", "ls-remote", mistakes.url("ssh", "~alice/r.git"))
    assert over_ssh.stderr.splitlines()[0] == f"fatal: {sentence('', 'ssh://HOST/team/project.git')}", over_ssh
    hg_ssh = mistakes.hg("bob", "identify", mistakes.url("ssh", "~alice/r"))
    assert f"remote: abort: {sentence('', 'ssh://HOST/team/project')}" in hg_ssh.stderr.splitlines(), hg_ssh
    http = sentence(" (a web server's UserDir)", "http(s)://HOST/team/project")
    over_http = mistakes.git("http", "bob", "ls-remote", mistakes.url("http", "~alice/r.git"))
    assert f"remote: {http}" in over_http.stderr.splitlines(), over_http.stderr
    hg_said = mistakes.client.hg("identify", mistakes.url("http", "~alice/r"), check=False)
    assert http in hg_said.stderr, hg_said.stderr


def test_a_permission_refusal_over_ssh_is_the_client_s_own_error(mistakes: Mistakes) -> None:
    """Not ``hgwire: …`` (which git printed as it was, and hg as ``remote: hgwire: …``)."""
    git_said = mistakes.git("ssh", "bob", "ls-remote", mistakes.url("ssh", "private/secret.git"))
    assert git_said.stderr.splitlines()[0].startswith("fatal: bob may not read private/secret.git; "), git_said.stderr
    hg_said = mistakes.hg("bob", "identify", mistakes.url("ssh", "private/secret.git"))
    assert hg_said.stderr.splitlines()[0].startswith("remote: abort: bob may not read private/secret.git; "), \
        hg_said.stderr
    raw = mistakes.ssh("bob", "git-upload-pack", "'/private/secret.git'")
    assert raw.returncode == 128 and raw.stderr.startswith("fatal: bob may not read"), raw


def test_ssh_logs_say_why_and_which_name(mistakes: Mistakes) -> None:
    """An operator reads traversal attempts and permission refusals in the SSH log line, as in
    git://'s and HTTP's: the name asked for and the reason (it said ``- …: refused``)."""
    from twisted.logger import formatEvent

    since = mistakes.mark()
    mistakes.git("ssh", "bob", "ls-remote", mistakes.url("ssh", "../../etc/passwd"))
    mistakes.git("ssh", "bob", "ls-remote", mistakes.url("ssh", "private/secret.git"))
    mistakes.hg("bob", "identify", mistakes.url("ssh", "-hgapp"))
    traversal, private, option = mistakes.ssh_sessions(since)
    assert (traversal["proto"], traversal["service"], traversal["repo"], traversal["user"]) == \
        ("git-ssh", "git-upload-pack", "../../etc/passwd", "bob")
    assert traversal["outcome"] == "refused: repository name '../../etc/passwd' contains a '..' segment"
    assert private["repo"] == "private/secret.git"
    assert private["outcome"].startswith("refused: bob may not read private/secret.git; ")
    assert (option["proto"], option["service"], option["repo"]) == ("hg-ssh", "hg-serve", "-hgapp")
    assert option["outcome"] == "refused: repository name '-hgapp' starts with '-'"
    line = formatEvent(traversal)
    assert line.startswith("git-ssh git-upload-pack ../../etc/passwd user=bob peer=127.0.0.1:"), line
    assert ": refused: repository name '../../etc/passwd' contains a '..' segment in " in line, line


def test_info_takes_a_pattern_as_gitolite_s_does(mistakes: Mistakes) -> None:
    """``ssh git@host info PATTERN`` lists the repositories it matches (it said "unknown command
    'info'; … 'info' lists the repositories you may use")."""
    def listed(user: str, *command: str) -> list[str]:
        result = mistakes.ssh(user, *command)
        assert result.returncode == 0, result.stderr
        # (the memory backend lists a git repository without its .git)
        return [line.split()[-1].removesuffix(".git") for line in result.stdout.splitlines() if line.startswith(" R")]

    assert listed("alice", "info") == ["app", "hgapp", "private/secret"]
    assert listed("alice", "info", "private") == ["private/secret"]
    assert listed("alice", "info", "app") == ["app", "hgapp"]
    assert listed("alice", "info", "'h*'") == ["hgapp"]
    nothing = mistakes.ssh("bob", "info", "private")
    assert nothing.returncode == 0
    assert nothing.stdout.splitlines()[-1] == "There is no repository you may read that matches 'private'."
    for extra in (("info", "a", "b"), ("info", "-lc")):
        refused = mistakes.ssh("alice", *extra)
        assert (refused.returncode, refused.stderr) == (
            1, "hgwire: 'info' takes one pattern at most and no options; usage: info [PATTERN]\n"), extra


def test_a_push_to_a_mistyped_name_says_it_does_not_exist(mistakes: Mistakes, tmp_path: Path) -> None:
    """Under ``--config`` and ``--create-on-push``, a push to a name that is not there, by a user
    who may not create it, says so (it said "bob may not push to typo.git; ask … for write access",
    and alice "may not create"); ``hg init`` of a repository that is there says it exists (it said
    "alice may not create hgapp").  A name the user may not read is refused in the words that do
    not tell whether it exists."""
    work = tmp_path / "work"
    mistakes.client.git("init", "-q", str(work))
    mistakes.client.git("commit", "-q", "--allow-empty", "-m", "one", cwd=work)
    for user, transport in (("alice", "ssh"), ("bob", "ssh")):
        pushed = mistakes.git(transport, user, "push", mistakes.url(transport, "typo.git"), "HEAD:main", cwd=work)
        assert pushed.returncode != 0
        assert pushed.stderr.splitlines()[0] == (
            f"fatal: repository typo.git does not exist, and {user} may not create it; check the name, or ask "
            "the server's operator to create it"), pushed.stderr
    for name in ("private/secret.git", "private/typo.git"):
        hidden = mistakes.git("ssh", "bob", "push", mistakes.url("ssh", name), "HEAD:main", cwd=work)
        assert hidden.stderr.splitlines()[0].startswith(f"fatal: bob may not push to {name}; "), hidden.stderr
    assert not mistakes.server.backend.exists("typo.git")
    made = mistakes.hg("alice", "init", mistakes.url("ssh", "hgapp"))
    assert made.returncode != 0 and "abort: repository hgapp already exists" in made.stderr, made.stderr
    hidden_hg = mistakes.hg("bob", "init", mistakes.url("ssh", "private/secret.git"))
    assert "bob may not create private/secret.git" in hidden_hg.stderr, hidden_hg.stderr


def test_a_repository_of_the_other_kind_says_which_and_what_to_use(mistakes: Mistakes) -> None:
    """A git URL to an hg repository, an hg URL to a git one: one sentence naming the kind and the
    command, on every transport (it said "'hgapp' is not a git repository" and "repository app is
    not a Mercurial repository")."""
    to_hg = "hgapp is a Mercurial repository, not a Git one; use hg for it (hg clone, hg pull, hg push)"
    expected = {"git": f"fatal: remote error: {to_hg}", "ssh": f"fatal: {to_hg}", "http": f"remote: {to_hg}"}
    for transport, line in expected.items():
        said = mistakes.git(transport, "alice", "ls-remote", mistakes.url(transport, "hgapp"))
        assert said.returncode != 0 and line in said.stderr.splitlines(), (transport, said.stderr)
    to_git = "app is a Git repository, not a Mercurial one; use git for it (git clone, git fetch, git push)"
    over_ssh = mistakes.hg("alice", "identify", mistakes.url("ssh", "app"))
    assert f"remote: abort: {to_git}" in over_ssh.stderr.splitlines(), over_ssh.stderr
    over_http = mistakes.client.hg("identify", mistakes.url("http", "app"), check=False)
    assert f"abort: HTTP Error 404: {to_git}" in over_http.stderr.splitlines(), over_http.stderr
