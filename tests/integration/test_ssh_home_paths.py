"""SSH URLs written from the account's home, as users of a git or hg account on sshd write them.

Over sshd a path without a leading ``/`` is the login's home directory's, so ``host:app.git``,
``host:~/app.git``, ``ssh://host/~/app.git`` and ``host:./app.git`` are one repository (git
expands ``~/`` itself, hg through its ``-R``).  hgwire's root stands where that home was for
``host:app.git``; the ``~/`` and ``./`` spellings were refused ("~user paths … are not served
here", "contains a '.' segment") where sshd served them.  Another user's home stays refused.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import LOOPBACK, Client, RunningServer, SshKeys

SPELLINGS = ["ssh://git@127.0.0.1:{port}/~/app.git", "git@127.0.0.1:~/app.git", "git@127.0.0.1:./app.git",
             "ssh://git@127.0.0.1:{port}/./app.git"]


def _served(make_server: Callable[..., RunningServer], client: Client, keys: SshKeys, tmp_path: Path
            ) -> tuple[RunningServer, int]:
    server = make_server("fs", ssh=[LOOPBACK], host_key=str(keys.host_key), authorized_keys=str(keys.authorized_keys),
                         create_on_push=True)
    port = server.port("ssh")
    client.env["GIT_SSH_COMMAND"] = keys.command(port)  # it gives -p: the scp-like URLs carry no port
    source = tmp_path / "source"
    client.git("init", "-q", source)
    (source / "README").write_text("hello\n")
    client.git("add", "README", cwd=source)
    client.git("commit", "-qm", "first", cwd=source)
    client.git("clone", "-q", "--bare", source, server.root / "app.git")
    return server, port


def test_git_clones_and_pushes_through_home_relative_ssh_urls(make_server: Callable[..., RunningServer],
                                                                 client: Client, ssh_keys: SshKeys,
                                                                 tmp_path: Path) -> None:
    server, port = _served(make_server, client, ssh_keys, tmp_path)
    tip = client.git("rev-parse", "HEAD", cwd=tmp_path / "source").stdout.strip()
    for index, spelling in enumerate(SPELLINGS):
        url = spelling.format(port=port)
        for version in ("0", "2"):
            work = tmp_path / f"clone-{index}-v{version}"
            client.git("-c", f"protocol.version={version}", "clone", "-q", url, work)
            assert client.git("rev-parse", "HEAD", cwd=work).stdout.strip() == tip
            client.git("commit", "-q", "--allow-empty", "-m", f"{index} v{version}", cwd=work)
            client.git("-c", f"protocol.version={version}", "push", "-q", "origin", "HEAD:main", cwd=work)
            tip = client.git("rev-parse", "HEAD", cwd=work).stdout.strip()
            assert subprocess.run(["git", "-C", server.root / "app.git", "rev-parse", "main"], capture_output=True,
                                  text=True, check=True).stdout.strip() == tip


def test_hg_reaches_home_relative_ssh_urls(make_server: Callable[..., RunningServer], client: Client,
                                           ssh_keys: SshKeys, tmp_path: Path) -> None:
    server, port = _served(make_server, client, ssh_keys, tmp_path)
    repo = server.root / "hgapp"
    client.hg("init", repo)
    (repo / "a").write_text("a\n")
    client.hg("commit", "-q", "-A", "-m", "a", "-R", repo)
    node = client.hg("id", "-i", "-r", "tip", "-R", repo).stdout.strip()
    ssh = f"ui.ssh={ssh_keys.command(port)}"
    for path in ("~/hgapp", "./hgapp"):
        said = client.hg("--config", ssh, "id", "-r", "tip", f"ssh://alice@127.0.0.1:{port}/{path}")
        assert said.stdout.strip() == node


def test_another_users_home_and_a_way_out_stay_refused(make_server: Callable[..., RunningServer], client: Client,
                                                      ssh_keys: SshKeys, tmp_path: Path) -> None:
    _server, port = _served(make_server, client, ssh_keys, tmp_path)
    refusals = {
        f"ssh://git@127.0.0.1:{port}/~alice/app.git": "fatal: ~alice names a home directory, and this server serves",
        "git@127.0.0.1:~/../app.git": "contains a '..' segment",
        "git@127.0.0.1:~/-app.git": "starts with '-'",
        "git@127.0.0.1:~": "no repository is named",
        "git@127.0.0.1:~/nope.git": "repository nope.git not found",
    }
    for url, words in refusals.items():
        result = client.git("ls-remote", url, check=False)
        assert result.returncode == 128 and words in result.stderr, (url, result.stderr)


@pytest.mark.skipif(shutil.which("git-lfs") is None, reason="the git-lfs client is not installed (make test installs it)")
def test_git_lfs_reaches_home_relative_ssh_urls(make_server: Callable[..., RunningServer], client: Client,
                                                ssh_keys: SshKeys, tmp_path: Path) -> None:
    """git-lfs sends the path bare (``git-lfs-transfer ~/app.git upload``, ``/~/app.git`` for an
    ``ssh://`` URL), where a leading ``~`` is a home to sh: it was refused as shell syntax ("batch
    request: hgwire: command uses shell syntax '~'"), so such a push failed and a clone's checkout."""
    _server, port = _served(make_server, client, ssh_keys, tmp_path)
    client.git("lfs", "install", "--skip-repo")
    data = os.urandom(100_000)
    for index, url in enumerate(["git@127.0.0.1:~/app.git", f"ssh://git@127.0.0.1:{port}/~/app.git"]):
        work = tmp_path / f"lfs-{index}"
        client.git("clone", "-q", url, work)
        client.git("lfs", "track", "*.bin", cwd=work)
        (work / f"{index}.bin").write_bytes(data[index:])
        client.git("add", ".gitattributes", f"{index}.bin", cwd=work)
        client.git("commit", "-q", "-m", f"media {index}", cwd=work)
        client.git("push", "-q", "origin", "HEAD:main", cwd=work)
        clone = tmp_path / f"lfs-clone-{index}"
        client.git("clone", "-q", url, clone)
        assert (clone / f"{index}.bin").read_bytes() == data[index:]
