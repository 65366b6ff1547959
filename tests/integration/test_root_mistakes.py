"""A ROOT the service's user cannot read or write, as the operator reads it at the start, and a
repository it cannot read, as each transport logs it.

The service runs in a subprocess; as root it runs without the capabilities that let root read
and write any file (``setpriv``), so that the modes apply to it as to any other user.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Client
from tests.integration.test_cli import TWISTD, read_log, stop_twistd
from tests.integration.test_unreadable_repositories import TOLD, WITHOUT_ROOT_READS, _git_repository

WITHOUT_ROOT_RIGHTS = WITHOUT_ROOT_READS if os.geteuid() == 0 else []


def _start(root: Path, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([*WITHOUT_ROOT_RIGHTS, TWISTD, "-n", "--pidfile=", "hgwire", "--root", str(root), "--git",
                             "tcp:0:interface=127.0.0.1", "--http", "tcp:0:interface=127.0.0.1"], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _started(root: Path, cwd: Path) -> str:
    proc = _start(root, cwd)
    try:
        return "".join(read_log(proc, r"worker threads"))
    finally:
        stop_twistd(proc)


@pytest.mark.parametrize(("mode", "told"), [
    (0o000, ("cannot be read by the service's user (Permission denied): every repository is \"not found\" to "
             "clients; give that user read and search rights on it")),
    (0o555, ("is not writable by {user}, the service's user: pushes that create repositories and the Git LFS "
             "token key need it writable; give that user write rights on it (chmod u+wx {root})")),
])
def test_a_root_it_cannot_read_or_write_is_told_at_the_start(tmp_path: Path, mode: int, told: str) -> None:
    root = tmp_path / "root"
    root.mkdir()
    root.chmod(mode)
    try:
        seen = _started(root, tmp_path)
    finally:
        root.chmod(0o755)
    assert f"--root {root} {told.format(root=root, user=_user())}" in seen, seen
    assert (f"{root}/.lfs_token_key cannot sign Git LFS tokens (Permission denied); this process signs its own, "
            f"which other processes and a restart do not take: let the service's user write {root}, where it is "
            "made") in seen, seen
    assert "remove the file" not in seen, seen  # there is none: removing it was the wrong advice


def _user() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


def test_a_root_it_cannot_write_keeps_health_ok_and_says_what_to_do(tmp_path: Path, client: Client) -> None:
    """A ROOT the service's user may not write (root's, twistd run as another user) made /.health
    answer 503, "pushes that create files fail", so a load balancer took out a node whose clones and
    pushes into the repositories it has all work: only a new repository cannot be made there.  It
    is ``ok`` now, and the counts' reader is told which directory and what to do."""
    import http.client

    root = tmp_path / "root"
    root.mkdir()
    _git_repository(client, root, "app.git")
    root.chmod(0o555)
    proc = _start(root, tmp_path)
    try:
        urls = dict(re.findall(r"hgwire serves (\w+) at (\S+)/NAME", "".join(read_log(proc, r"worker threads"))))
        work = client.cwd / "work"
        client.git("clone", "-q", f"{urls['git']}/app.git", str(work))
        (work / "b.txt").write_text("b\n")
        client.git("add", "b.txt", cwd=work)
        client.git("commit", "-qm", "b", cwd=work)
        client.git("push", "-q", "origin", "HEAD", cwd=work)  # the repositories there take pushes
        host, port = urls["http"].removeprefix("http://").rsplit(":", 1)
        connection = http.client.HTTPConnection(host, int(port), timeout=20)
        connection.request("GET", "/.health")
        answer = connection.getresponse()
        status, lines = answer.status, answer.read().decode().splitlines()
        connection.close()
    finally:
        stop_twistd(proc)
        root.chmod(0o755)
    assert status == 200 and lines[0] == "ok", lines
    assert lines[1] == (f"note: the repositories' directory {root} is not writable by {_user()}, the service's "
                        "user, so no new repository can be made in it (the ones there are served and take "
                        "pushes); if repositories are to be made there, give that user write rights on it "
                        f"(chmod u+wx {root})"), lines


def test_a_usable_root_is_not_warned_of(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    seen = _started(root, tmp_path)
    assert "--root" not in seen and "Git LFS tokens" not in seen, seen


def test_an_unreadable_repository_is_a_warning_on_every_transport(tmp_path: Path, client: Client) -> None:
    """git:// logged it at info, HTTP at error: one problem, two levels.  Both warn now."""
    root = tmp_path / "root"
    root.mkdir()
    bare = _git_repository(client, root, "app.git")
    bare.chmod(0)
    proc = _start(root, tmp_path)
    try:
        urls = dict(re.findall(r"hgwire serves (\w+) at (\S+)/NAME", "".join(read_log(proc, r"worker threads"))))
        for url in (urls["git"], urls["http"]):
            refused = client.git("ls-remote", f"{url}/app.git", check=False)
            assert refused.returncode != 0 and f"repository app.git {TOLD}" in refused.stderr, refused.stderr
    finally:
        stop_twistd(proc)
        bare.chmod(0o755)
    assert proc.stdout is not None
    seen = proc.stdout.read()
    said = [line for line in seen.splitlines() if f"repository app.git {TOLD}" in line and "#info]" not in line]
    assert [re.search(r"\[(\S+)#(\w+)\]", line).groups() for line in said] == [  # type: ignore[union-attr]
        ("gateway.git_session", "warn"), ("gateway.git_http", "warn")], seen


def test_a_repository_root_will_not_take_is_warned_of_with_the_rights_it_needs(tmp_path: Path) -> None:
    """A push to a new name (``--create-on-push``) that ROOT's rights refused was warned of as
    ``(ROOT/.tmp-create-…: give the service's user read rights there)``: a directory that is not
    there, and the wrong right.  ``hg init`` over SSH so refused logged no warning at all, only its
    session's ``exit 255``.  Both now name ROOT and say write rights."""
    from bench.crash import Server, client_env

    class Refusing(Server):
        def argv(self) -> list[str]:
            return [*WITHOUT_ROOT_RIGHTS, *super().argv(), "--create-on-push"]

    root = tmp_path / "root"
    server = Refusing(tmp_path / "work", root)
    root.chmod(0o555)
    env = {**client_env(tmp_path / "home"), "GIT_SSH_COMMAND": server.ssh_command(), "GIT_SSH_VARIANT": "ssh"}
    work = tmp_path / "src"
    try:
        server.start()
        for args in (["init", "-q", str(work)], ["-C", str(work), "commit", "-q", "--allow-empty", "-m", "a"]):
            subprocess.run(["git", *args], env=env, check=True)
        pushed = subprocess.run(["git", "-C", str(work), "push", "-q", server.url("git", "new.git"), "HEAD:main"],
                                env=env, capture_output=True, text=True, check=False)
        made = subprocess.run([f"{os.path.dirname(TWISTD)}/hg", "init", "-e", server.ssh_command(),
                               server.url("ssh", "newhg")], env=env, capture_output=True, text=True, check=False)
    finally:
        server.stop()
        root.chmod(0o755)
    assert pushed.returncode != 0 and "could not create repository new.git" in pushed.stderr, pushed.stderr
    assert made.returncode != 0 and "could not create repository newhg" in made.stderr, made.stderr
    log = (server.work / "server-1.log").read_text()
    place = f"({root}: give the service's user write rights there)"
    assert ("git session on new.git: the server could not create repository new.git (Permission denied); tell "
            f"the server's operator {place}") in log, log
    assert ("hg init for newhg: the server could not create repository newhg (Permission denied); tell "
            f"the server's operator {place}") in log, log
    assert "read rights there" not in log, log
