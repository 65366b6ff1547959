"""A backend that says up front that a repository takes no push (its optional ``refuses_push()``,
a read-only mirror's reason): git over git://, SSH and HTTP is refused before receive-pack is
advertised and hg before ``unbundle`` takes the bundle, as ``--read-only`` refuses them, with the
backend's reason; the client sends no pack, nothing lands, and fetches go on.  Before, such a
backend could refuse only once the client had sent its whole pack (``begin_pack``,
``update_refs``, ``transaction``)."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from backends.filesystem import FilesystemBackend
from backends.interfaces import Kind, Repository
from protocols.errors import ReadOnly
from tests.conftest import LOOPBACK, Client, RunningServer, SshKeys, ssh_server_settings

PASSWORD = "correct horse"
REASON = "{name} is a read-only mirror; push to the primary instead"


class _Mirrored:
    def __init__(self, inner: Any, reached: list[str]) -> None:
        self._inner = inner
        self._reached = reached

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._inner, attr)

    def refuses_push(self) -> str | None:
        return REASON.format(name=self._inner.name)

    def begin_pack(self) -> Any:
        self._reached.append("begin_pack")
        raise ReadOnly(REASON.format(name=self._inner.name))

    def update_refs(self, updates: Any, atomic: bool, **kwargs: Any) -> Any:
        self._reached.append("update_refs")
        raise ReadOnly(REASON.format(name=self._inner.name))

    def transaction(self, *args: Any, **kwargs: Any) -> Any:
        self._reached.append("transaction")
        raise ReadOnly(REASON.format(name=self._inner.name))


class Mirror:
    """``fs``, with every repository a read-only mirror."""

    def __init__(self, root: str) -> None:
        self.inner = FilesystemBackend(root)
        self.reached: list[str] = []
        """What of a push reached the repositories' write methods (nothing, when it is refused up front)."""
        self.opened: list[str] = []

    def open(self, name: str) -> Repository:
        self.opened.append(name)
        return _Mirrored(self.inner.open(name), self.reached)

    def create(self, name: str, kind: Kind) -> Repository:
        raise ReadOnly("this server is a mirror and creates no repository")

    def exists(self, name: str) -> bool:
        return self.inner.exists(name)

    def list(self) -> list[str]:
        return list(self.inner.list())


def _server(make_server: Callable[..., RunningServer], client: Client, keys: SshKeys, tmp: Path,
            allow_push_over_http: bool = True) -> RunningServer:
    htpasswd = tmp / "htpasswd"
    htpasswd.write_text("alice:" + bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode() + "\n")
    return make_server("tests.integration.test_backend_refuses_push:Mirror", git=[LOOPBACK], http=[LOOPBACK],
                       htpasswd=str(htpasswd), allow_push_over_http=allow_push_over_http,
                       **ssh_server_settings(keys))


def _git_urls(server: RunningServer, keys: SshKeys, client: Client) -> dict[str, str]:
    client.env["GIT_SSH_COMMAND"] = keys.command(server.port("ssh"))
    auth = "alice:" + urllib.parse.quote(PASSWORD)
    return {"git": server.git_url("app.git"),
            "ssh": f"ssh://git@127.0.0.1:{server.port('ssh')}/app.git",
            "http": f"http://{auth}@127.0.0.1:{server.port('http')}/app.git"}


GIT_TOLD = {
    "git": "fatal: remote error: app.git is a read-only mirror; push to the primary instead",
    "ssh": "fatal: app.git is a read-only mirror; push to the primary instead",
    "http": "remote: app.git is a read-only mirror; push to the primary instead",
}


@pytest.mark.parametrize("transport", list(GIT_TOLD))
@pytest.mark.parametrize("refspec", ["main:main", "main:refs/heads/other", ":main"])
def test_a_git_push_to_a_mirror_is_refused_before_the_pack(make_server: Callable[..., RunningServer], client: Client,
                                                           ssh_keys: SshKeys, tmp_path: Path, transport: str,
                                                           refspec: str) -> None:
    server = _server(make_server, client, ssh_keys, tmp_path)
    bare = server.root / "app.git"
    client.git("init", "-q", "--bare", "-b", "main", str(bare))
    work = tmp_path / "work"
    client.git("init", "-q", "-b", "main", str(work))
    (work / "f").write_text("one\n")
    client.git("add", "f", cwd=work)
    client.git("commit", "-qm", "one", cwd=work)
    client.git("push", "-q", str(bare), "main", cwd=work)  # (on disk: the backend is not asked)
    (work / "f").write_text("two\n")
    client.git("commit", "-qam", "two", cwd=work)
    before = client.git("--git-dir", str(bare), "for-each-ref").stdout
    url = _git_urls(server, ssh_keys, client)[transport]
    pushed = client.git("push", "--progress", url, refspec, cwd=work, check=False)
    assert pushed.returncode != 0
    assert GIT_TOLD[transport] in pushed.stderr.splitlines(), pushed.stderr
    assert "Writing objects" not in pushed.stderr, pushed.stderr  # no pack was sent
    assert server.backend.reached == [], server.backend.reached  # type: ignore[attr-defined]
    assert client.git("--git-dir", str(bare), "for-each-ref").stdout == before
    listed = client.git("ls-remote", url, cwd=work)  # reads are served as before
    assert before.split()[0] in listed.stdout


HG_TOLD = {
    "ssh": "remote: p is a read-only mirror; push to the primary instead",
    "http": "abort: HTTP Error 403: p is a read-only mirror; push to the primary instead",
}


@pytest.mark.parametrize("transport", list(HG_TOLD))
def test_an_hg_push_to_a_mirror_is_refused_before_the_bundle(make_server: Callable[..., RunningServer],
                                                             client: Client, ssh_keys: SshKeys, tmp_path: Path,
                                                             transport: str) -> None:
    server = _server(make_server, client, ssh_keys, tmp_path)
    repo = server.root / "p"
    client.hg("init", str(repo))
    (repo / "a").write_text("one\n")
    client.hg("commit", "-q", "-A", "-R", str(repo), "-m", "one", "-u", "t")
    urls = {"ssh": f"ssh://alice@127.0.0.1:{server.port('ssh')}/p",
            "http": f"http://alice:{urllib.parse.quote(PASSWORD)}@127.0.0.1:{server.port('http')}/p"}
    ssh = ("--config", f"ui.ssh={ssh_keys.command(server.port('ssh'))}")
    work = tmp_path / "work"
    client.hg(*ssh, "clone", "-q", urls[transport], str(work))
    (work / "a").write_text("two\n")
    client.hg("commit", "-q", "-R", str(work), "-m", "two", "-u", "t")
    pushed = client.hg(*ssh, "push", "-R", str(work), urls[transport], check=False)
    assert pushed.returncode != 0
    assert HG_TOLD[transport] in (pushed.stdout + pushed.stderr).splitlines(), (pushed.stdout, pushed.stderr)
    assert server.backend.reached == [], server.backend.reached  # type: ignore[attr-defined]
    assert client.hg("log", "-R", str(repo), "-T", "{desc}\n").stdout == "one\n"
    client.hg(*ssh, "pull", "-q", "-R", str(work), urls[transport])  # reads are served as before


def test_git_lfs_uploads_to_a_mirror_are_refused(make_server: Callable[..., RunningServer], client: Client,
                                                ssh_keys: SshKeys, tmp_path: Path) -> None:
    """git-lfs's pre-push hook uploads before the push: the mirror refuses it there, as the push."""
    from tests.integration.test_git_lfs import _batch

    server = _server(make_server, client, ssh_keys, tmp_path)
    client.git("init", "-q", "--bare", str(server.root / "media.git"))
    batch = f"http://127.0.0.1:{server.port('http')}/media.git/info/lfs/objects/batch"
    status, answer = _batch(batch, {"operation": "upload", "objects": [{"oid": "a" * 64, "size": 3}]})
    assert status == 403 and answer["message"] == "media.git is a read-only mirror; push to the primary instead", answer
    status, _ = _batch(batch, {"operation": "download", "objects": [{"oid": "a" * 64, "size": 3}]})
    assert status == 200


def test_an_hg_lfs_upload_over_plain_http_to_a_mirror_is_told_it_is_a_mirror(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, tmp_path: Path) -> None:
    """Without ``--allow-push-over-http`` an LFS upload to a Mercurial mirror was told "use
    https://", where the mirror refuses it too: the mirror's reason comes first now."""
    from tests.integration.test_git_lfs import _batch

    server = _server(make_server, client, ssh_keys, tmp_path, allow_push_over_http=False)
    repo = server.root / "p"
    client.hg("init", str(repo))
    (repo / ".hg" / "hgrc").write_text("[extensions]\nlfs =\n")
    batch = f"http://127.0.0.1:{server.port('http')}/p/.git/info/lfs/objects/batch"
    status, answer = _batch(batch, {"operation": "upload", "objects": [{"oid": "a" * 64, "size": 3}]})
    assert status == 403 and answer["message"] == "p is a read-only mirror; push to the primary instead", answer
    status, _ = _batch(batch, {"operation": "download", "objects": [{"oid": "a" * 64, "size": 3}]})
    assert status == 200


def test_the_ssh_greeting_shows_no_w_for_a_mirror(make_server: Callable[..., RunningServer], client: Client,
                                                  ssh_keys: SshKeys, tmp_path: Path) -> None:
    """``ssh git@host`` listed a mirror's repositories ``R W``, though every push to them is refused:
    they are ``R`` only now, each opened once for its ``refuses_push`` and the answer kept, so that
    the next login opens none."""
    server = _server(make_server, client, ssh_keys, tmp_path)
    client.git("init", "-q", "--bare", "-b", "main", str(server.root / "app.git"))
    ssh = [*ssh_keys.command(server.port("ssh")).split(), "git@127.0.0.1", "info"]
    listed = [client.run(*ssh).stdout.splitlines() for _ in range(2)]
    assert listed[0][-1] == " R    app.git", listed[0]
    assert listed[1] == listed[0]
    assert server.backend.opened == ["app.git"], server.backend.opened  # type: ignore[attr-defined]
