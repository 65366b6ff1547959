"""``git clone host:2222/app.git``: an scp-like URL has no port, so git asks the SSH server on port
22 for the path ``2222/app.git``, and hgwire answered "repository 2222/app.git not found", as sshd's
git answers "'2222/app.git' does not appear to be a git repository".  The refusal now adds the URL
the user meant, ``ssh://HOST:2222/app.git``; an ``ssh://`` URL's path, hg's, and a repository whose
first folder is a number are left as they were."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import LOOPBACK, Client, RunningServer, SshKeys

HINT = ("repository 2222/app.git not found; an scp-like URL takes no port (HOST:2222/app.git names the path "
        "2222/app.git): to reach port 2222, write ssh://HOST:2222/app.git")


@pytest.mark.parametrize("version", ["0", "2"])
def test_an_scp_like_url_with_a_port_is_told_the_ssh_url(make_server: Callable[..., RunningServer], client: Client,
                                                          ssh_keys: SshKeys, tmp_path: Path, version: str) -> None:
    server = make_server("fs", ssh=[LOOPBACK], host_key=str(ssh_keys.host_key),
                         authorized_keys=str(ssh_keys.authorized_keys))
    port = server.port("ssh")
    client.env["GIT_SSH_COMMAND"] = ssh_keys.command(port)  # (it gives -p)
    source = tmp_path / "source"
    client.git("init", "-q", "-b", "main", source)
    client.git("commit", "-q", "--allow-empty", "-m", "first", cwd=source)
    (server.root / "2024").mkdir()
    client.git("clone", "-q", "--bare", source, server.root / "2024" / "app.git")
    v = ("-c", f"protocol.version={version}")

    cloned = client.git(*v, "clone", "git@127.0.0.1:2222/app.git", tmp_path / "c1", check=False)
    pushed = client.git(*v, "push", "git@127.0.0.1:2222/app.git", "main", cwd=source, check=False)
    archived = client.git(*v, "archive", "--remote=git@127.0.0.1:2222/app.git", "HEAD", check=False)
    for done in (cloned, pushed, archived):
        assert done.returncode != 0 and HINT in done.stderr, done.stderr

    spelled = client.git(*v, "ls-remote", f"ssh://git@127.0.0.1:{port}/2222/app.git", check=False)
    assert spelled.returncode != 0 and "repository 2222/app.git not found\n" in spelled.stderr, spelled.stderr
    served = client.git(*v, "ls-remote", "git@127.0.0.1:2024/app.git")  # (a folder named by a number)
    assert "refs/heads/main" in served.stdout
    hg = client.hg("--config", f"ui.ssh={ssh_keys.command(port)}", "id", f"ssh://git@127.0.0.1:{port}/2222/app",
                   check=False)
    assert hg.returncode != 0 and "scp-like" not in hg.stderr + hg.stdout, hg.stderr


def test_create_on_push_makes_no_repository_named_by_the_port(make_server: Callable[..., RunningServer],
                                                               client: Client, ssh_keys: SshKeys,
                                                               tmp_path: Path) -> None:
    """Under ``--create-on-push``, ``git push host:2222/app.git`` made a repository ``2222/app.git``
    (the user meant port 2222): it is refused with the same hint, and nothing is made; the path
    written as an ``ssh://`` URL's makes it."""
    server = make_server("fs", ssh=[LOOPBACK], host_key=str(ssh_keys.host_key),
                         authorized_keys=str(ssh_keys.authorized_keys), create_on_push=True)
    port = server.port("ssh")
    client.env["GIT_SSH_COMMAND"] = ssh_keys.command(port)
    source = tmp_path / "source"
    client.git("init", "-q", "-b", "main", source)
    client.git("commit", "-q", "--allow-empty", "-m", "first", cwd=source)

    pushed = client.git("push", "git@127.0.0.1:2222/app.git", "main", cwd=source, check=False)
    assert pushed.returncode != 0 and HINT in pushed.stderr, pushed.stderr
    assert not server.backend.exists("2222/app.git") and not (server.root / "2222").exists()

    client.git("push", "-q", f"ssh://git@127.0.0.1:{port}/2222/app.git", "main", cwd=source)
    assert server.backend.exists("2222/app.git")
    client.git("--git-dir", str(server.root / "2222" / "app.git"), "fsck", "--full")
