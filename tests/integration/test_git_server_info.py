"""``receive.updateServerInfo``: after a push, ``info/refs`` and ``objects/info/packs`` are written as
git's ``update-server-info`` writes them, so another web server can serve the repository to clients
of git's dumb HTTP protocol (a real ``git clone`` over such a server reads them here)."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from backends.interfaces import Kind
from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_daemon import commit


@pytest.fixture
def static_server(tmp_path: Path) -> Iterator[Callable[[Path], str]]:
    """A plain web server for a directory (what an operator puts in front of it for dumb clients)."""
    started: list[http.server.ThreadingHTTPServer] = []

    def serve(directory: Path) -> str:
        handler = functools.partial(_Quiet, directory=str(directory))
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        started.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}"

    yield serve
    for httpd in started:
        httpd.shutdown()
        httpd.server_close()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_push_writes_what_update_server_info_writes(make_server: Callable[..., RunningServer], client: Client,
                                                     static_server: Callable[[Path], str]) -> None:
    server = make_server("fs", git=[LOOPBACK])
    server.backend.create("r", Kind.GIT)
    git_dir = server.root / "r.git"
    url = server.git_url("r")
    work = client.cwd / "work"
    client.git("clone", "-q", url, str(work))
    commit(client, work, "a.txt", "a\n", "a")
    client.git("push", "-q", "origin", "HEAD:main", cwd=work)
    assert not (git_dir / "info" / "refs").exists()  # not asked for: not written, as by git
    client.git("--git-dir", str(git_dir), "config", "receive.updateServerInfo", "true")
    commit(client, work, "b.txt", "b\n", "b")
    client.git("tag", "-a", "-m", "annotated", "v1", cwd=work)
    client.git("tag", "light", "HEAD~1", cwd=work)
    client.git("tag", "-a", "-m", "of a tag", "v1-again", "v1", cwd=work)
    client.git("push", "-q", "origin", "HEAD:main", "HEAD:refs/heads/topic", "--tags", cwd=work)
    twin = client.cwd / "twin.git"
    shutil.copytree(git_dir, twin)
    (twin / "info" / "refs").unlink()
    (twin / "objects" / "info" / "packs").unlink()
    client.git("--git-dir", str(twin), "update-server-info")
    assert (git_dir / "info" / "refs").read_bytes() == (twin / "info" / "refs").read_bytes()
    ours = (git_dir / "objects" / "info" / "packs").read_text()
    theirs = (twin / "objects" / "info" / "packs").read_text()
    assert sorted(ours.splitlines()) == sorted(theirs.splitlines()) and ours.endswith(".pack\n\n")
    assert ours.count("P pack-") == 2

    dumb = static_server(server.root)  # a dumb client reads the files another web server serves
    copy = client.cwd / "dumb-copy"
    client.git("clone", "-q", f"{dumb}/r.git", str(copy))
    assert (copy / "b.txt").read_text() == "b\n"
    assert client.git("rev-parse", "v1^{commit}", cwd=copy).stdout == client.git("rev-parse", "main", cwd=work).stdout

    client.git("push", "-q", "origin", ":refs/heads/topic", cwd=work)  # a delete rewrites info/refs too
    assert b"refs/heads/topic" not in (git_dir / "info" / "refs").read_bytes()
    client.git("--git-dir", str(git_dir), "fsck", "--full")
