"""The foundation's git scenarios over SSH and smart HTTP, with protocol v0 and the client default (v2).

The scenarios are the git:// ones of ``test_git_daemon``; only the URL (and how
the client authenticates) changes.  The backend does not change with the
transport, but each runs on both backends (fs adds ``git fsck`` on disk).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from backends.interfaces import Kind
from tests.conftest import BACKENDS, LOOPBACK, Client, RunningServer, SshKeys, ssh_server_settings
from tests.integration.test_git_daemon import PROTOCOLS
from tests.integration.test_git_daemon import test_clone_push_fetch_cycle as clone_push_fetch_cycle
from tests.integration.test_git_daemon import test_deepen_since_and_not as deepen_since_and_not
from tests.integration.test_git_daemon import test_shallow_clone_then_deepen as shallow_clone_then_deepen
from tests.integration.test_git_v2 import test_partial_clone_fetches_missing_blobs_lazily as partial_clone

PASSWORD = "correct horse"


@dataclass
class TransportServer:
    """A running server seen through one transport: ``git_url`` gives that transport's URL."""

    running: RunningServer
    url_of: Callable[[str], str]

    def git_url(self, name: str) -> str:
        return self.url_of(name)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.running, name)


def _ssh(make_server: Callable[..., RunningServer], backend: str, client: Client, keys: SshKeys, tmp: Path
         ) -> TransportServer:
    server = make_server(backend, **ssh_server_settings(keys))
    port = server.port("ssh")
    client.env["GIT_SSH_COMMAND"] = keys.command(port)
    return TransportServer(server, lambda name: f"ssh://git@127.0.0.1:{port}/{name}.git")


def _http(make_server: Callable[..., RunningServer], backend: str, client: Client, keys: SshKeys, tmp: Path
          ) -> TransportServer:
    htpasswd = tmp / "htpasswd"
    htpasswd.write_text("alice:" + bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode() + "\n")
    server = make_server(backend, http=[LOOPBACK], htpasswd=str(htpasswd))
    port = server.port("http")
    return TransportServer(server, lambda name: f"http://alice:{PASSWORD.replace(' ', '%20')}@127.0.0.1:{port}/{name}.git")


TRANSPORTS = {"ssh": _ssh, "http": _http}


@pytest.fixture(params=[(t, b) for t in TRANSPORTS for b in BACKENDS], ids=lambda p: "-".join(p))
def transport_server(request: pytest.FixtureRequest, make_server: Callable[..., RunningServer], client: Client,
                     ssh_keys: SshKeys, tmp_path: Path) -> TransportServer:
    transport, backend = request.param
    return TRANSPORTS[transport](make_server, backend, client, ssh_keys, tmp_path)


@pytest.mark.parametrize("proto", list(PROTOCOLS))
def test_clone_push_fetch_cycle(transport_server: TransportServer, client: Client, proto: str) -> None:
    clone_push_fetch_cycle(transport_server, client, proto)  # type: ignore[arg-type]


@pytest.mark.parametrize("proto", list(PROTOCOLS))
def test_shallow_clone_then_deepen(transport_server: TransportServer, client: Client, proto: str) -> None:
    shallow_clone_then_deepen(transport_server, client, proto)  # type: ignore[arg-type]


@pytest.mark.parametrize("proto", list(PROTOCOLS))
def test_deepen_since_and_not(transport_server: TransportServer, client: Client, proto: str) -> None:
    deepen_since_and_not(transport_server, client, proto)  # type: ignore[arg-type]


def test_partial_clone_fetches_missing_blobs_lazily(transport_server: TransportServer, client: Client) -> None:
    partial_clone(transport_server, client)  # type: ignore[arg-type]


GIT_OVER_SSHD_AFTERWORD = ["fatal: Could not read from remote repository.", "",
                           "Please make sure you have the correct access rights", "and the repository exists."]
"""What the git client adds when its ssh program ends before the server's first word."""


@pytest.mark.parametrize("proto", list(PROTOCOLS))
def test_a_missing_repository_over_ssh_is_told_once(make_server: Callable[..., RunningServer], client: Client,
                                                    ssh_keys: SshKeys, tmp_path: Path, proto: str) -> None:
    """As git over sshd (and GitHub): the refusal is one ``fatal:`` line on stderr, then the
    client's own words; no ``ERR`` line besides it, which the client printed a second time."""
    server = _ssh(make_server, "fs", client, ssh_keys, tmp_path)
    work = client.cwd / "pusher"
    client.git("init", "-q", work)
    client.git("commit", "-q", "--allow-empty", "-m", "one", cwd=work)
    url = server.git_url("nope")
    for args, cwd in ((["clone", url, "c"], client.cwd), (["ls-remote", url], client.cwd),
                      (["push", url, "HEAD:refs/heads/main"], work)):
        result = client.git(*PROTOCOLS[proto], *args, cwd=cwd, check=False)
        lines = [line for line in result.stderr.splitlines() if not line.startswith("Cloning into")]
        told = "fatal: repository nope.git not found" + (  # (a push is told it made nothing: --create-on-push)
            "; a push makes no repository on this server: check the name, or ask the server's operator to create it"
            if args[0] == "push" else "")
        assert result.returncode == 128 and lines == [told, *GIT_OVER_SSHD_AFTERWORD], (args, result.stderr)
    assert not (server.root / "nope.git").exists()


def test_a_push_to_a_missing_name_says_it_makes_none(make_server: Callable[..., RunningServer],
                                                     client: Client) -> None:
    """Without ``--create-on-push`` a push to a missing name read "repository new.git not found"
    alone, which did not say that pushing would not make it; a mistyped name is told the one meant
    instead."""
    server = make_server("fs", git=[LOOPBACK])
    client.git("init", "-q", "--bare", str(server.root / "app.git"))
    work = client.cwd / "pusher"
    client.git("init", "-q", work)
    client.git("commit", "-q", "--allow-empty", "-m", "one", cwd=work)
    base = f"git://127.0.0.1:{server.port('git')}"
    pushed = client.git("push", f"{base}/new.git", "HEAD:refs/heads/main", cwd=work, check=False)
    assert pushed.returncode == 128 and pushed.stderr.splitlines() == [(
        "fatal: remote error: repository new.git not found; a push makes no repository on this server: check the "
        "name, or ask the server's operator to create it")], pushed.stderr
    pushed = client.git("push", f"{base}/apq.git", "HEAD:refs/heads/main", cwd=work, check=False)
    assert pushed.stderr.splitlines() == ["fatal: remote error: repository apq.git not found; did you mean app.git?"]
    assert not (server.root / "new.git").exists() and not (server.root / "apq.git").exists()


def test_a_second_git_suffix_reaches_no_repository(make_server: Callable[..., RunningServer], client: Client,
                                                  ssh_keys: SshKeys) -> None:
    """git daemon and git over ssh find NAME, NAME/.git, NAME.git or NAME.git/.git; hgwire also
    ``NAME.git`` for a repository stored as ``NAME`` (its clone URLs end in ``.git``), but
    ``app.git.git`` reached ``app.git``; now not, on every transport.  A Mercurial repository's
    names are as they were."""
    server = make_server("fs", git=[LOOPBACK], http=[LOOPBACK], **ssh_server_settings(ssh_keys))
    client.git("init", "-q", "--bare", str(server.root / "app.git"))
    client.git("init", "-q", str(server.root / "work"))
    server.backend.create("hgrepo", Kind.HG)
    client.env["GIT_SSH_COMMAND"] = ssh_keys.command(server.port("ssh"))
    bases = {"git": f"git://127.0.0.1:{server.port('git')}", "ssh": f"ssh://git@127.0.0.1:{server.port('ssh')}",
             "http": f"http://127.0.0.1:{server.port('http')}"}
    for transport, base in bases.items():
        for name in ("app", "app.git", "work", "work.git"):
            assert client.git("ls-remote", f"{base}/{name}").returncode == 0, (transport, name)
        for name in ("app.git.git", "app.git.git.git"):
            refused = client.git("ls-remote", f"{base}/{name}", check=False)
            assert refused.returncode != 0 and f"repository {name} not found" in refused.stderr, (transport, refused)
    hg = [f"http://127.0.0.1:{server.port('http')}/hgrepo", f"ssh://git@127.0.0.1:{server.port('ssh')}/hgrepo"]
    for url in hg + [url + ".git" for url in hg]:
        assert client.hg("id", "--ssh", ssh_keys.command(server.port("ssh")), url).stdout.strip() == "000000000000"
