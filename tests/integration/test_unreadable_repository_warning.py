"""A repository the service's user may not read (copied in as root, a directory made 0700): every
transport refuses it and logs a warning, "repository app.git cannot be read by the server
(Permission denied)", which named no directory, so the operator looked for the one to fix; the
warning now names it and says what to do.  The client is told the reason only."""

from __future__ import annotations

import http.client
import os
from typing import Any

import pytest

from backends.interfaces import Kind
from tests.conftest import LOOPBACK, Client
from tests.integration.test_disk_refusal_warning import _warnings
from tests.integration.test_git_daemon import commit


def _get(port: int, path: str) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        connection.request("GET", path)
        answer = connection.getresponse()
        return answer.status, answer.read().decode("utf-8", "replace")
    finally:
        connection.close()


def test_the_warning_names_the_directory_the_service_may_not_read(
        make_server: Any, client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    server = make_server("fs", git=[LOOPBACK], http=[LOOPBACK])
    server.backend.create("locked.git", Kind.GIT)
    server.backend.create("hglocked", Kind.HG)
    objects, dot_hg = server.root / "locked.git" / "objects", server.root / "hglocked" / ".hg"
    real_access = os.access

    def access(path: Any, mode: int, *args: Any, **kwargs: Any) -> bool:
        return str(path) not in (str(objects), str(dot_hg)) and real_access(path, mode, *args, **kwargs)

    work = client.cwd / "work"
    client.git("init", "-q", str(work))
    commit(client, work, "a.txt", "a\n", "a")
    port = server.port("http")
    with _warnings() as warned, monkeypatch.context() as patched:
        patched.setattr(os, "access", access)
        refused = client.git("ls-remote", server.git_url("locked"), check=False)
        pushed = client.git("push", server.git_url("locked"), "HEAD:main", cwd=work, check=False)
        git_http = _get(port, "/locked.git/info/refs?service=git-upload-pack")
        hg_http = _get(port, "/hglocked?cmd=capabilities")
        server.settled()
    assert "cannot be read by the server (Permission denied)" in refused.stderr, refused.stderr
    assert str(objects) not in refused.stderr  # the client is not shown the server's paths
    assert pushed.returncode != 0 and "cannot be read by the server" in pushed.stderr, pushed.stderr
    assert git_http[0] == 500 and str(objects) not in git_http[1]
    assert hg_http[0] == 500 and str(dot_hg) not in hg_http[1]
    git_told = f"({objects}: give the service's user read rights there)"
    hg_told = f"({dot_hg}: give the service's user read rights there)"
    assert [w for w in warned if "locked.git" in w and w.endswith(git_told)] and \
        len([w for w in warned if w.startswith(("git session on locked.git", "git-http on locked.git"))]) == 3, warned
    assert all(w.endswith(git_told) for w in warned if "locked.git" in w), warned  # a push's too: no write is told
    assert [w for w in warned if w.startswith("hg-http capabilities on hglocked") and w.endswith(hg_told)], warned
