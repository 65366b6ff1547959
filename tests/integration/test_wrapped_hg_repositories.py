"""A custom backend that wraps the engine's Mercurial repositories (a read-only mirror refusing
pushes in ``transaction``, as the README's *Writing a backend* shows): the wire protocol works
through the wrapper; the web pages, archives and raw files, made from the engine's repositories
only, read the one a wrapper gives as ``__wrapped__`` (they were refused with "archives and raw
files come from …", on every page), and without it say which pages and what to do."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from backends.filesystem import FilesystemBackend
from backends.interfaces import Kind, Repository
from protocols.errors import ReadOnly
from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_hg_archive import _commit
from tests.integration.test_hg_http import HgHttp, htpasswd, raw  # noqa: F401 (the fixture)


class _ReadOnlyHg:
    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._inner, attr)

    def transaction(self, *args: Any, **kwargs: Any) -> Any:
        raise ReadOnly(f"{self._inner.name} is a read-only mirror; push to the primary server instead")


class _Exposed(_ReadOnlyHg):
    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.__wrapped__ = inner


class _Mirror:
    wrap: Callable[[Any], Any] = _ReadOnlyHg

    def __init__(self, root: str) -> None:
        self.inner = FilesystemBackend(root)

    def open(self, name: str) -> Repository:
        repo = self.inner.open(name)
        return self.wrap(repo) if repo.kind is Kind.HG else repo

    def create(self, name: str, kind: Kind) -> Repository:
        raise ReadOnly("this mirror makes no repositories")

    def exists(self, name: str) -> bool:
        return self.inner.exists(name)

    def list(self) -> list[str]:
        return list(self.inner.list())


class ExposedMirror(_Mirror):
    wrap = _Exposed


class OpaqueMirror(_Mirror):
    pass


def _served(make_server: Callable[..., RunningServer], client: Client, backend: str, **settings: Any) -> RunningServer:
    server = make_server(f"tests.integration.test_wrapped_hg_repositories:{backend}", http=[LOOPBACK], **settings)
    repo = server.root / "mirrored"
    client.hg("init", str(repo))
    _commit(client, repo, "the mirrored change", {"a.txt": b"hello\n"}, 1_700_000_000)
    return server


def test_pages_of_a_wrapped_repository_read_what_it_wraps(make_server: Callable[..., RunningServer],
                                                          client: Client, htpasswd: Path) -> None:  # noqa: F811
    server = _served(make_server, client, "ExposedMirror", htpasswd=str(htpasswd), allow_push_over_http=True)
    for page in ("/mirrored/log", "/mirrored/rev/tip", "/mirrored/raw-file/tip/a.txt", "/mirrored/json-log"):
        answer = raw(server.port("http"), "GET", page, {"Accept": "text/html"})
        assert answer.status == 200, (page, answer.status, answer.body[:200])
    assert b"the mirrored change" in raw(server.port("http"), "GET", "/mirrored/log", {"Accept": "text/html"}).body
    url = f"http://127.0.0.1:{server.port('http')}/mirrored"
    client.hg("clone", "-q", url, "copy")
    _commit(client, client.cwd / "copy", "refused", {"b.txt": b"x\n"}, 1_700_000_100)
    pushed = client.hg("push", "-R", "copy", HgHttp(server, client).push_url("mirrored"), check=False)
    assert pushed.returncode != 0
    assert "remote: mirrored is a read-only mirror; push to the primary server instead" in pushed.stderr, pushed.stderr
    assert "abort: push failed on remote" in pushed.stderr, pushed.stderr


def test_pages_of_an_opaque_wrapper_say_which_and_what_to_do(make_server: Callable[..., RunningServer],
                                                            client: Client) -> None:
    server = _served(make_server, client, "OpaqueMirror")
    answer = raw(server.port("http"), "GET", "/mirrored/log", {"Accept": "text/html"})
    assert answer.status == 403
    assert (b"the web pages, archives and raw files of mirrored are not served: they come from repositories of "
            b"hgwire's own Mercurial engine only; clone it to read it") in answer.body
    client.hg("clone", "-q", f"http://127.0.0.1:{server.port('http')}/mirrored", "copy")  # the wire protocol works
