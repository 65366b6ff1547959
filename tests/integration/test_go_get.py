"""``GET /PATH?go-get=1``: the ``go-import`` page the ``go`` command reads for an import path
without a VCS suffix (``gateway.go_get``), for the readable repositories only."""

from __future__ import annotations

import http.client
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import bcrypt
import pytest

from backends.interfaces import Kind
from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_daemon import commit

POLICY = """
[[repo]]
pattern = "*"
write = ["alice"]

[[repo]]
pattern = "private/*"
read = ["alice"]
"""
LOGIN = "Basic YWxpY2U6cHc="  # alice:pw
GO_IMPORT = re.compile(rb'<meta name="go-import" content="([^"]*)">')


@pytest.fixture
def served(make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> RunningServer:
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"alice:{bcrypt.hashpw(b'pw', bcrypt.gensalt(rounds=4)).decode()}\n")
    server = make_server("fs", http=[LOOPBACK], config_file=str(policy), htpasswd=str(htpasswd))
    work = client.cwd / "mod"
    client.git("init", "-q", "-b", "main", str(work))
    commit(client, work, "go.mod", "module example.test/team/app\n\ngo 1.19\n", "module")
    commit(client, work, "sub/pkg/pkg.go", "package pkg\n\nfunc V() string { return \"v1\" }\n", "pkg")
    client.git("tag", "v1.0.0", cwd=work)
    for name in ("team/app.git", "private/app.git", "team/closed.git"):
        server.backend.create(name, Kind.GIT)
        client.git("push", "-q", str(server.root / name), "main", "v1.0.0", cwd=work)
    client.git("--git-dir", str(server.root / "team/closed.git"), "config", "http.uploadpack", "false")
    client.hg("init", str(server.root / "team" / "hgapp"))
    client.hg("init", str(server.root / "team" / "hgalice"))
    (server.root / "team" / "hgalice" / ".hg" / "hgrc").write_text("[web]\nallow_read = alice\n")
    return server


def _get(server: RunningServer, path: str, headers: dict[str, str] | None = None,
         method: str = "GET") -> tuple[int, str, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port("http"), timeout=30)
    try:
        conn.request(method, path, headers={"Host": "go.example.test", **(headers or {})})
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type") or "", response.read()
    finally:
        conn.close()


@pytest.mark.parametrize("path", ["/team/app", "/team/app/", "/team/app/sub/pkg", "/team/app.git/sub"])
def test_a_git_repository_and_its_packages_name_it(served: RunningServer, path: str) -> None:
    status, content_type, body = _get(served, path + "?go-get=1")
    assert (status, content_type) == (200, "text/html; charset=utf-8")
    named = "team/app.git" if ".git" in path else "team/app"
    assert GO_IMPORT.findall(body) == [f"go.example.test/{named} git http://go.example.test/team/app.git".encode()]


def test_an_hg_repository_is_named_for_hg(served: RunningServer, client: Client) -> None:
    status, _, body = _get(served, "/team/hgapp/x/y?go-get=1")
    assert status == 200
    assert GO_IMPORT.findall(body) == [b"go.example.test/team/hgapp hg http://go.example.test/team/hgapp"]
    client.hg("identify", "--", _reached(served, body))  # what the go command runs first with that URL


def _reached(server: RunningServer, page: bytes) -> str:
    """The repository URL of a go-import page, at the test server's address."""
    url: str = GO_IMPORT.findall(page)[0].decode().split()[2]
    return url.replace("go.example.test", f"127.0.0.1:{server.port('http')}")


def test_the_git_commands_the_go_command_runs_fetch_from_the_url_given(served: RunningServer, client: Client) -> None:
    _, _, body = _get(served, "/team/app/sub/pkg?go-get=1")
    url = _reached(served, body)
    cache = client.cwd / "vcs"  # as the go command's module cache holds a repository: bare, then fetched by tag
    client.git("init", "-q", "--bare", str(cache))
    client.git("remote", "add", "origin", "--", url, cwd=cache)
    listed = client.git("ls-remote", "-q", "origin", cwd=cache).stdout
    assert "refs/tags/v1.0.0" in listed
    client.git("fetch", "-f", "--depth=1", "origin", "refs/tags/v1.0.0:refs/tags/v1.0.0", cwd=cache)
    assert client.git("cat-file", "blob", "v1.0.0:go.mod", cwd=cache).stdout.startswith("module example.test/team/app")


def test_head_answers_the_status_alone(served: RunningServer) -> None:
    assert _get(served, "/team/app?go-get=1", method="HEAD")[::2] == (200, b"")


def test_what_a_reader_may_not_read_answers_as_nothing_there(served: RunningServer) -> None:
    absent = _get(served, "/team/absent/pkg?go-get=1")
    closed = _get(served, "/team/closed/pkg?go-get=1")  # http.uploadpack = false: no clone over HTTP
    assert absent[0] == closed[0] == 404
    assert absent[2].replace(b"absent", b"NAME") == closed[2].replace(b"closed", b"NAME")
    assert not GO_IMPORT.search(closed[2])
    private = _get(served, "/private/app/sub?go-get=1")
    elsewhere = _get(served, "/private/absent/sub?go-get=1")
    assert private[0] == elsewhere[0] == 401
    assert private[2].replace(b"app", b"NAME") == elsewhere[2].replace(b"absent", b"NAME")
    assert not GO_IMPORT.search(private[2])


def test_a_login_reads_a_private_repository(served: RunningServer) -> None:
    status, _, body = _get(served, "/private/app/sub?go-get=1", {"Authorization": LOGIN})
    assert status == 200
    assert GO_IMPORT.findall(body) == [b"go.example.test/private/app git http://go.example.test/private/app.git"]
    wrong = _get(served, "/private/app/sub?go-get=1", {"Authorization": "Basic YWxpY2U6bm8="})
    assert wrong[0] == 401 and not GO_IMPORT.search(wrong[2])


def test_other_queries_keep_the_repository_page(served: RunningServer) -> None:
    status, _, body = _get(served, "/team/app?go-get=0")
    assert status == 200 and b"git clone" in body and not GO_IMPORT.search(body)


@pytest.mark.skipif(shutil.which("go") is None, reason="the go command is not installed")
def test_the_go_command_fetches_a_package_by_its_import_path(served: RunningServer, client: Client,
                                                             tmp_path: Path) -> None:
    # A module path holds no port: the go command and git reach the server as an HTTP proxy
    # (hgwire serves an absolute request target as its path), so example.test is its Host.
    proxy = f"http://127.0.0.1:{served.port('http')}"
    env = {"GOPATH": str(tmp_path / "gopath"), "GOCACHE": str(tmp_path / "gocache"), "GOPROXY": "direct",
           "GOPRIVATE": "example.test", "GOINSECURE": "example.test", "GOFLAGS": "-modcacherw",
           "GOTOOLCHAIN": "local", "GO111MODULE": "on", "HTTP_PROXY": proxy, "http_proxy": proxy,
           "HTTPS_PROXY": "", "https_proxy": "", "NO_PROXY": "", "no_proxy": ""}
    result = client.run("go", "mod", "download", "-json", "example.test/team/app@v1.0.0", env=env, check=False,
                        timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    downloaded = json.loads(result.stdout)
    assert downloaded["Version"] == "v1.0.0"
    assert (Path(downloaded["Dir"]) / "sub" / "pkg" / "pkg.go").exists()


def test_an_hg_repository_whose_web_read_list_wants_a_login_asks_for_it(served: RunningServer) -> None:
    status, _, body = _get(served, "/team/hgalice/x?go-get=1")
    assert status == 401 and not GO_IMPORT.search(body)
    status, _, body = _get(served, "/team/hgalice/x?go-get=1", {"Authorization": LOGIN})
    assert status == 200
    assert GO_IMPORT.findall(body) == [b"go.example.test/team/hgalice hg http://go.example.test/team/hgalice"]


def test_the_public_url_names_the_import_path_and_the_repository(make_server: Callable[..., RunningServer],
                                                                  client: Client, tmp_path: Path) -> None:
    policy = tmp_path / "public.toml"
    policy.write_text('[http]\npublic_url = "https://git.example.com/scm"\n')
    server = make_server("fs", http=[LOOPBACK], config_file=str(policy))
    server.backend.create("team/app.git", Kind.GIT)
    status, _, body = _get(server, "/team/app/sub?go-get=1")
    assert status == 200
    assert GO_IMPORT.findall(body) == [b"git.example.com/scm/team/app git https://git.example.com/scm/team/app.git"]
