"""``[git] export_all = false``: git:// and HTTP serve only git repositories marked with
``git-daemon-export-ok``, as git daemon without ``--export-all`` and git http-backend without
``GIT_HTTP_EXPORT_ALL`` do; SSH logins are not concerned, as with git over ssh.

An unmarked repository must look exactly like one that does not exist (the same error, the same
status), so nobody learns which names are there.  Marking or unmarking takes effect at once.
"""

from __future__ import annotations

import http.client
import re
from collections.abc import Callable
from pathlib import Path

import bcrypt
import pytest

from backends.interfaces import Kind
from tests.conftest import LOOPBACK, Client, RunningServer, SshKeys, ssh_server_settings
from tests.integration.test_git_daemon import commit

POLICY = """
[git]
export_all = false

[[repo]]
pattern = "*"
write = ["*"]
create = ["*"]
"""


@pytest.fixture
def served(make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys,
           tmp_path: Path) -> RunningServer:
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"alice:{bcrypt.hashpw(b'pw', bcrypt.gensalt(rounds=4)).decode()}\n")
    server = make_server("fs", git=[LOOPBACK], http=[LOOPBACK], config_file=str(policy), htpasswd=str(htpasswd),
                         create_on_push=True, **ssh_server_settings(ssh_keys))
    work = client.cwd / "seed"
    client.git("init", "-q", "-b", "main", str(work))
    commit(client, work, "a.txt", "a\n", "a")
    for name in ("shown.git", "hidden.git"):
        server.backend.create(name, Kind.GIT)
        client.git("push", "-q", str(server.root / name), "main", cwd=work)
    (server.root / "shown.git" / "git-daemon-export-ok").touch()
    return server


def _urls(server: RunningServer, ssh_keys: SshKeys, name: str) -> dict[str, str]:
    http = server.url("http", name)
    return {"git": server.git_url(name), "http": http, "http-login": http.replace("http://", "http://alice:pw@"),
            "ssh": f"ssh://alice@127.0.0.1:{server.port('ssh')}/{name}"}


def _ls_remote(client: Client, ssh_keys: SshKeys, server: RunningServer, url: str) -> tuple[int, str, str]:
    result = client.git("ls-remote", url, check=False,
                        env={"GIT_SSH_COMMAND": ssh_keys.command(server.port("ssh"))})
    return result.returncode, result.stdout, result.stderr


def _http_status(server: RunningServer, path: str, method: str = "GET", body: bytes | None = None,
                 headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port("http"), timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.mark.parametrize("transport", ["git", "http"])
def test_an_unmarked_repository_looks_missing(served: RunningServer, client: Client, ssh_keys: SshKeys,
                                              transport: str) -> None:
    code, out, _ = _ls_remote(client, ssh_keys, served, _urls(served, ssh_keys, "shown.git")[transport])
    assert code == 0 and "refs/heads/main" in out

    hidden = _ls_remote(client, ssh_keys, served, _urls(served, ssh_keys, "hidden.git")[transport])
    missing = _ls_remote(client, ssh_keys, served, _urls(served, ssh_keys, "absent.git")[transport])
    assert hidden[0] != 0 and not hidden[1]
    assert hidden[0] == missing[0]
    assert hidden[2].replace("hidden", "NAME") == missing[2].replace("absent", "NAME")
    assert "not found" in hidden[2]


def test_an_unmarked_repository_is_missing_from_every_http_url(served: RunningServer) -> None:
    lfs = {"Accept": "application/vnd.git-lfs+json", "Content-Type": "application/vnd.git-lfs+json"}
    batch = b'{"operation":"download","objects":[]}'
    requests = (
        ("/{}.git/info/refs?service=git-upload-pack", "GET", None, {}),
        ("/{}.git/info/refs?service=git-receive-pack", "GET", None, {}),
        ("/{}.git/git-upload-pack", "POST", b"0000", {"Content-Type": "application/x-git-upload-pack-request"}),
        ("/{}.git", "GET", None, {}),
        ("/{}.git/info/lfs/objects/batch", "POST", batch, lfs))
    for path, method, body, headers in requests:
        hidden = _http_status(served, path.format("hidden"), method, body, headers)
        absent = _http_status(served, path.format("absent"), method, body, headers)
        assert hidden[0] in (401, 404) or b"not found" in hidden[1], (path, hidden)
        assert (hidden[0], hidden[1].replace(b"hidden", b"NAME")) == (absent[0], absent[1].replace(b"absent", b"NAME"))
    shown, _ = _http_status(served, "/shown.git/info/lfs/objects/batch", "POST", batch, lfs)
    assert shown == 200
    page, text = _http_status(served, "/shown.git")
    assert page == 200 and b"git clone" in text


def test_ssh_serves_every_repository(served: RunningServer, client: Client, ssh_keys: SshKeys,
                                     tmp_path: Path) -> None:
    code, out, err = _ls_remote(client, ssh_keys, served, _urls(served, ssh_keys, "hidden.git")["ssh"])
    assert code == 0 and "refs/heads/main" in out, err


def test_marking_and_unmarking_take_effect_at_once(served: RunningServer, client: Client,
                                                   ssh_keys: SshKeys) -> None:
    marker = served.root / "hidden.git" / "git-daemon-export-ok"
    for transport in ("git", "http"):
        url = _urls(served, ssh_keys, "hidden.git")[transport]
        marker.touch()
        assert _ls_remote(client, ssh_keys, served, url)[0] == 0
        marker.unlink()
        assert _ls_remote(client, ssh_keys, served, url)[0] != 0


def _state(client: Client, git_dir: Path) -> tuple[str, list[str]]:
    refs = client.git("--git-dir", str(git_dir), "for-each-ref").stdout
    return refs, sorted(str(p.relative_to(git_dir)) for p in (git_dir / "objects").rglob("*"))


def test_a_push_to_an_unmarked_repository_changes_nothing(served: RunningServer, client: Client,
                                                         ssh_keys: SshKeys) -> None:
    work = client.cwd / "pusher"
    client.git("clone", "-q", str(served.root / "shown.git"), str(work))
    commit(client, work, "b.txt", "b\n", "b")
    hidden = served.root / "hidden.git"
    before = _state(client, hidden)
    for transport in ("git", "http", "http-login"):
        pushed = client.git("push", _urls(served, ssh_keys, "hidden.git")[transport], "HEAD:main", cwd=work,
                            check=False)
        absent = client.git("push", _urls(served, ssh_keys, "absent.git")[transport], "HEAD:main", cwd=work,
                            check=False)
        assert pushed.returncode != 0 and pushed.returncode == absent.returncode
        assert pushed.stderr.replace("hidden", "NAME") == absent.stderr.replace("absent", "NAME")
    assert _state(client, hidden) == before
    assert not (served.root / "absent.git").exists()
    client.git("push", "-q", _urls(served, ssh_keys, "shown.git")["http-login"], "HEAD:main", cwd=work)
    client.git("--git-dir", str(served.root / "shown.git"), "fsck", "--full", "--strict")
    assert client.git("--git-dir", str(served.root / "shown.git"), "rev-parse", "main").stdout == \
        client.git("rev-parse", "HEAD", cwd=work).stdout


def test_a_push_cannot_create_a_repository_it_could_not_serve(served: RunningServer, client: Client,
                                                             ssh_keys: SshKeys) -> None:
    work = client.cwd / "creator"
    client.git("clone", "-q", str(served.root / "shown.git"), str(work))
    result = client.git("push", _urls(served, ssh_keys, "made-here.git")["http-login"], "HEAD:main", cwd=work,
                        check=False)
    assert result.returncode != 0 and re.search(r"not found", result.stderr), result.stderr
    assert not (served.root / "made-here.git").exists()
    # over SSH the login decides, as before
    client.git("push", "-q", _urls(served, ssh_keys, "made-there.git")["ssh"], "HEAD:main", cwd=work,
               env={"GIT_SSH_COMMAND": ssh_keys.command(served.port("ssh"))})
    client.git("--git-dir", str(served.root / "made-there.git"), "fsck", "--full", "--strict")
