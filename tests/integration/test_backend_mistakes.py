"""A custom backend's bugs as an operator and the clients meet them: a repository that ``open``
cannot give is "internal error" to its client in the client's protocol, one line of the log says
what the backend did wrong, and the other repositories go on being served."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from twisted.logger import formatEvent

from backends.filesystem import FilesystemBackend
from backends.interfaces import Kind, Repository
from tests.conftest import LOOPBACK, Client, RunningServer, log_events
from tests.integration.test_hg_http import raw


class MistakenBackend:
    """``fs``, but ``open`` of a name starting ``str`` returns a string, of one starting ``boom`` raises."""

    def __init__(self, root: str) -> None:
        self.inner = FilesystemBackend(root)

    def open(self, name: str) -> Repository:
        if name.startswith("str"):
            return "not a repository"  # type: ignore[return-value]
        if name.startswith("boom"):
            raise RuntimeError("the backend's store is unreachable")
        return self.inner.open(name)

    def create(self, name: str, kind: Kind) -> Repository:
        return self.inner.create(name, kind)

    def exists(self, name: str) -> bool:
        return self.inner.exists(name)

    def list(self) -> list[str]:
        return list(self.inner.list())


def _served(make_server: Callable[..., RunningServer], client: Client) -> RunningServer:
    server = make_server("tests.integration.test_backend_mistakes:MistakenBackend", git=[LOOPBACK], http=[LOOPBACK])
    for name in ("ok.git", "str.git", "boom.git"):
        client.git("init", "-q", "--bare", str(server.root / name))
    client.hg("init", str(server.root / "strhg"))
    return server


def test_open_returning_no_repository_is_told_as_the_backend_s_mistake(
        make_server: Callable[..., RunningServer], client: Client) -> None:
    server = _served(make_server, client)
    with log_events() as events:
        git = client.git("ls-remote", server.git_url("str.git"), check=False)
        http = client.git("ls-remote", server.url("http", "str.git"), check=False)
        hg = client.hg("identify", server.url("http", "strhg"), check=False)
        page = raw(server.port("http"), "GET", "/strhg/log", {"Accept": "text/html"})
    assert "fatal: remote error: internal error" in git.stderr, git.stderr
    assert "internal error" in http.stderr and "500" in http.stderr, http.stderr
    assert hg.returncode != 0 and "500" in hg.stderr, hg.stderr
    assert page.status == 500
    told = [str(e["log_failure"].value) for e in events if "log_failure" in e]
    assert told and all(t.startswith("the backend's open('str") and " returned str, not a repository" in t
                        for t in told), told
    assert len(told) == 4, told


def test_a_failing_open_leaves_the_other_repositories_served(make_server: Callable[..., RunningServer],
                                                            client: Client, tmp_path: Path) -> None:
    server = _served(make_server, client)
    with log_events() as events:
        boom = client.git("ls-remote", server.git_url("boom.git"), check=False)
        client.git("clone", "-q", server.git_url("ok.git"), str(tmp_path / "ok"))
        server.settled()  # (a git:// request's line comes when the server sees its connection close)
    assert "fatal: remote error: internal error" in boom.stderr, boom.stderr
    lines = [formatEvent(e) for e in events]
    assert any("boom.git" in line and "error: internal error" in line for line in lines), lines
