"""A git repository hgwire makes (a push under ``--create-on-push``, the backend's ``create``) is
configured as ``git init --bare`` configures one: dulwich's init wrote ``core.logAllRefUpdates =
true``, so each push kept a reflog of every branch and of HEAD, where git's bare repository keeps
none, and those logs kept a rewritten history's old objects (a purged secret) from ``git gc``."""

from __future__ import annotations

from collections.abc import Callable

from backends.interfaces import Kind
from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_daemon import commit


def test_a_made_repository_has_git_init_s_config_and_keeps_no_reflog(
        make_server: Callable[..., RunningServer], client: Client) -> None:
    server = make_server("fs", git=[LOOPBACK], create_on_push=True)
    server.backend.create("made", Kind.GIT)
    twin = client.cwd / "twin.git"
    client.git("init", "-q", "--bare", "-b", "main", str(twin))
    work = client.cwd / "work"
    client.git("init", "-q", "-b", "main", str(work))
    commit(client, work, "secret.txt", "password\n", "first")
    commit(client, work, "f", "2\n", "second")
    for url in (server.git_url("made"), server.git_url("pushed"), str(twin)):
        client.git("push", "-q", url, "HEAD:main", "HEAD~1:refs/heads/side", "HEAD:refs/notes/commits", cwd=work)
        client.git("push", "-q", "-f", url, "HEAD~1:main", ":side", cwd=work)

    def local_config(name: str) -> str:
        return client.git("--git-dir", str(server.root / name), "config", "--local", "-l").stdout

    expected = client.git("--git-dir", str(twin), "config", "--local", "-l").stdout
    assert "logallrefupdates" not in expected
    for name in ("made.git", "pushed.git"):
        assert local_config(name) == expected
        assert not (server.root / name / "logs").exists(), "no reflog, as git's receive-pack keeps none here"
        client.git("--git-dir", str(server.root / name), "fsck", "--full")
    assert not (twin / "logs").exists()
