"""The git commands dependency tools run against a git URL, as ``GIT_TRACE=1`` recorded them with
Go 1.19, pip 23.2, cargo 1.65 (``net.git-fetch-with-cli``) and npm 11, over HTTP and SSH, in
protocols v0 and v2; the tools themselves are not needed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import bcrypt
import pytest

from backends.interfaces import Kind
from tests.conftest import LOOPBACK, Client, RunningServer, SshKeys, ssh_server_settings
from tests.integration.test_git_daemon import commit

TRANSPORTS = [("http", "0"), ("http", "2"), ("ssh", "0"), ("ssh", "2")]


@pytest.fixture
def served(make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys,
           tmp_path: Path) -> RunningServer:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"alice:{bcrypt.hashpw(b'pw', bcrypt.gensalt(rounds=4)).decode()}\n")
    server = make_server("fs", http=[LOOPBACK], htpasswd=str(htpasswd), **ssh_server_settings(ssh_keys))
    server.backend.create("dep.git", Kind.GIT)
    return server


def _source(client: Client, server: RunningServer) -> tuple[Path, list[str]]:
    """A history of three commits (v1.0.0 and v1.1.0 tagged, the last on main alone) pushed to
    dep.git, and its commits, oldest first."""
    work = client.cwd / "src"
    client.git("init", "-q", "-b", "main", str(work))
    ids = [commit(client, work, "go.mod", "module example.test/dep\n", "one"),
           commit(client, work, "pkg/a.txt", "two\n", "two"),
           commit(client, work, "pkg/a.txt", "three\n", "three")]
    client.git("tag", "v1.0.0", ids[0], cwd=work)
    client.git("tag", "-a", "-m", "release", "v1.1.0", ids[1], cwd=work)
    client.git("push", "-q", str(server.root / "dep.git"), "main", "v1.0.0", "v1.1.0", cwd=work)
    return work, ids


def _remote(server: RunningServer, client: Client, ssh_keys: SshKeys, transport: str,
            version: str) -> tuple[str, Callable[..., str]]:
    url = server.url("http", "dep.git") if transport == "http" else \
        f"ssh://alice@127.0.0.1:{server.port('ssh')}/dep.git"
    env = {"GIT_SSH_COMMAND": ssh_keys.command(server.port("ssh"))}

    def git(*args: str | Path, cwd: Path | None = None) -> str:
        return client.git("-c", f"protocol.version={version}", *args, cwd=cwd, env=env).stdout

    return url, git


@pytest.mark.parametrize(("transport", "version"), TRANSPORTS)
def test_go_modules(served: RunningServer, client: Client, ssh_keys: SshKeys, transport: str, version: str) -> None:
    """``go get mod@v1.1.0``, ``@<commit>`` (one no ref names), then history for a pseudo-version."""
    _, ids = _source(client, served)
    url, git = _remote(served, client, ssh_keys, transport, version)
    cache = client.cwd / "vcs"
    git("init", "--bare", "-q", str(cache))
    git("remote", "add", "origin", "--", url, cwd=cache)
    assert "refs/tags/v1.1.0^{}" in git("ls-remote", "-q", "origin", cwd=cache)
    git("fetch", "-f", "--depth=1", "origin", "refs/tags/v1.1.0:refs/tags/v1.1.0", cwd=cache)
    assert git("cat-file", "blob", "v1.1.0:pkg/a.txt", cwd=cache) == "two\n"
    git("fetch", "-f", "--depth=1", "origin", ids[1], cwd=cache)  # main~1: not advertised
    git("fetch", "--unshallow", "-f", "origin", "refs/heads/*:refs/heads/*", "refs/tags/*:refs/tags/*", cwd=cache)
    assert git("rev-list", "main", cwd=cache).split() == ids[::-1]


@pytest.mark.parametrize(("transport", "version"), TRANSPORTS)
def test_pip(served: RunningServer, client: Client, ssh_keys: SshKeys, transport: str, version: str) -> None:
    """``pip install git+URL@v1.0.0#subdirectory=pkg``: a blobless clone, then the tag checked out
    (its blobs fetched on demand)."""
    _, ids = _source(client, served)
    url, git = _remote(served, client, ssh_keys, transport, version)
    checkout = client.cwd / "pip-src"
    git("clone", "--filter=blob:none", "--quiet", url, str(checkout))
    assert git("show-ref", "v1.1.0", cwd=checkout).split()[1] == "refs/tags/v1.1.0"
    git("checkout", "-q", "v1.1.0", cwd=checkout)
    assert git("rev-parse", "HEAD", cwd=checkout).strip() == ids[1]
    assert (checkout / "pkg" / "a.txt").read_text() == "two\n"
    git("checkout", "-q", ids[0], cwd=checkout)  # @<commit>
    assert not (checkout / "pkg").exists()


@pytest.mark.parametrize(("transport", "version"), TRANSPORTS)
def test_cargo_with_the_git_cli(served: RunningServer, client: Client, ssh_keys: SshKeys, transport: str,
                                version: str) -> None:
    """``cargo generate-lockfile`` with ``net.git-fetch-with-cli``, then ``cargo update`` after a push."""
    work, ids = _source(client, served)
    url, git = _remote(served, client, ssh_keys, transport, version)
    db = client.cwd / "cargo-db"
    git("init", "--bare", "-q", str(db))

    def fetch() -> None:
        git("fetch", "--tags", "--force", "--update-head-ok", url, "+refs/heads/*:refs/remotes/origin/*",
            "+HEAD:refs/remotes/origin/HEAD", cwd=db)

    fetch()
    assert git("rev-parse", "refs/remotes/origin/main", "refs/tags/v1.0.0", cwd=db).split() == [ids[2], ids[0]]
    newer = commit(client, work, "pkg/a.txt", "four\n", "four")
    client.git("push", "-q", str(served.root / "dep.git"), "main", cwd=work)
    fetch()
    assert git("rev-parse", "refs/remotes/origin/HEAD", cwd=db).strip() == newer


@pytest.mark.parametrize(("transport", "version"), TRANSPORTS)
def test_npm(served: RunningServer, client: Client, ssh_keys: SshKeys, transport: str, version: str) -> None:
    """``npm install git+URL#semver:^1.0``: the tags listed, then a clone of the one chosen."""
    _, ids = _source(client, served)
    url, git = _remote(served, client, ssh_keys, transport, version)
    listed = git("ls-remote", url)
    assert f"{ids[1]}\trefs/tags/v1.1.0^{{}}" in listed
    checkout = client.cwd / "npm-clone"
    git("clone", "-q", "-b", "v1.1.0", url, str(checkout), "--recurse-submodules")
    assert git("rev-parse", "HEAD", cwd=checkout).strip() == ids[1]
