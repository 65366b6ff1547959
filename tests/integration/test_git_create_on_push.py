"""``--create-on-push``: a repository is made by a push under way, not by its advertisement.

A dry run, a probe of the advertisement (HTTP's ``GET info/refs?service=git-receive-pack``, a
git:// connection that goes away after it) and a client whose object format the new repository
would not have make nothing; a push makes the repository and lands in it.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import bcrypt
import pytest

from tests.conftest import BACKENDS, LOOPBACK, Client, RunningServer
from tests.integration.test_git_bad_input import request
from tests.integration.test_git_http import _commit, _raw, _url

AUTH = {"Authorization": "Basic YWxpY2U6czNjcmV0"}  # alice:s3cret


@pytest.fixture(params=BACKENDS)
def server(request: pytest.FixtureRequest, make_server: Callable[..., RunningServer], tmp_path: Path) -> RunningServer:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("alice:" + bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode() + "\n")
    return make_server(request.param, git=[LOOPBACK], http=[LOOPBACK], htpasswd=str(htpasswd), create_on_push=True)


def _source(client: Client) -> Path:
    work = client.cwd / "src"
    client.git("init", "-q", str(work))
    _commit(client, work, "a.txt", "a\n")
    return work


def test_a_dry_run_or_a_look_at_the_advertisement_makes_nothing(server: RunningServer, client: Client) -> None:
    work = _source(client)
    dry = client.git("push", "--dry-run", server.git_url("dry"), "main", cwd=work)
    assert "[new branch]" in dry.stderr, dry.stderr
    dry_http = client.git("push", "--dry-run", _url(server, "dry-http", "alice:s3cret"), "main", cwd=work)
    assert "[new branch]" in dry_http.stderr, dry_http.stderr
    status, _, body = _raw(server, "GET", "/probe.git/info/refs?service=git-receive-pack", headers=AUTH)
    assert status == 200 and b"capabilities^{}" in body, body
    with socket.create_connection(("127.0.0.1", server.port("git")), timeout=10) as sock:
        sock.sendall(request("git-receive-pack", "/gone.git"))
        assert b"capabilities^{}" in sock.recv(65536)
    for name in ("dry", "dry-http", "probe", "gone"):
        assert not server.backend.exists(name), name
    assert not list(server.backend.list())


@pytest.mark.parametrize("transport", ["git", "http"])
def test_a_push_makes_the_repository_it_lands_in(server: RunningServer, client: Client, transport: str) -> None:
    work = _source(client)
    url = server.git_url("made") if transport == "git" else _url(server, "made", "alice:s3cret")
    client.git("push", "-q", url, "main", cwd=work)
    assert server.backend.exists("made")
    clone = client.cwd / "clone"
    client.git("clone", "-q", server.git_url("made"), str(clone))
    assert (clone / "a.txt").read_text() == "a\n"
    client.git("fsck", "--full", cwd=clone)
    _commit(client, work, "b.txt", "b\n")
    client.git("push", "-q", url, "main", cwd=work)  # the next push finds it


def test_a_client_of_another_object_format_makes_nothing(
        make_server: Callable[..., RunningServer], client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """A SHA-1 client pushing where new repositories are SHA-256 is told so by git before any
    command is sent: nothing is made."""
    server = make_server("fs", git=[LOOPBACK], create_on_push=True)
    monkeypatch.setenv("GIT_DEFAULT_HASH", "sha256")
    work = _source(client)
    refused = client.git("push", server.git_url("other"), "main", cwd=work, check=False)
    assert refused.returncode != 0
    assert not server.backend.exists("other")


class WrappedFs:
    """A custom backend that hands everything to ``fs`` and has none of the optional methods."""

    def __init__(self, root: str) -> None:
        from backends.filesystem import FilesystemBackend

        self.inner = FilesystemBackend(root)

    def open(self, name: str) -> object:
        return self.inner.open(name)

    def create(self, name: str, kind: object) -> object:
        return self.inner.create(name, kind)  # type: ignore[arg-type]

    def exists(self, name: str) -> bool:
        return self.inner.exists(name)

    def list(self) -> object:
        return self.inner.list()


def test_a_backend_without_its_object_format_makes_what_git_init_would(
        make_server: Callable[..., RunningServer], client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """A backend with no ``new_git_object_format`` (one wrapping ``fs``) is taken to make what
    ``GIT_DEFAULT_HASH`` says, as ``fs`` does: a SHA-256 client's push makes its repository, a SHA-1
    client's makes nothing."""
    server = make_server("tests.integration.test_git_create_on_push:WrappedFs", git=[LOOPBACK], create_on_push=True)
    monkeypatch.setenv("GIT_DEFAULT_HASH", "sha256")
    refused = client.git("push", server.git_url("old"), "main", cwd=_source(client), check=False)
    assert refused.returncode != 0
    assert not (server.root / "old.git").exists()
    work = client.cwd / "sha256"
    client.git("init", "-q", "--object-format=sha256", "-b", "main", str(work))
    _commit(client, work, "a.txt", "a\n")
    client.git("push", "-q", server.git_url("new"), "main", cwd=work)
    client.git("--git-dir", str(server.root / "new.git"), "fsck", "--full")
    assert client.git("--git-dir", str(server.root / "new.git"), "rev-parse", "--show-object-format").stdout.strip() \
        == "sha256"
