"""A git client naming a folder of repositories (``git ls-remote git://host/team``) or a repository
in the wrong case (``Team/App.git`` for ``team/app.git``) is told what to ask for instead, naming
only repositories it may read: it was "team is not a git or Mercurial repository" and "repository
Team/App.git not found" (git daemon says "access denied or repository not exported" to both)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import LOOPBACK, Client, RunningServer


@pytest.fixture
def hinted(make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> RunningServer:
    policy = tmp_path / "policy.toml"
    policy.write_text('anonymous_read = true\n[[repo]]\npattern = "private/*"\nread = ["alice"]\n')
    server = make_server("fs", git=[LOOPBACK], http=[LOOPBACK], config_file=str(policy))
    for name in ("team/app.git", "team/lib.git", "private/secret.git", "team/zz.git", "team/more/deep.git"):
        subprocess.run(["git", "init", "-q", "--bare", str(server.root / name)], check=True)
    client.hg("init", str(server.root / "team" / "hgrepo"))
    return server


def _refusal(client: Client, url: str) -> str:
    listed = client.git("ls-remote", url, check=False)
    assert listed.returncode != 0, listed.stdout
    return listed.stderr.strip()


@pytest.mark.parametrize(("path", "said"), [
    ("team", ("fatal: remote error: team is not a git or Mercurial repository but a folder of them; name one, "
             "such as team/app.git, team/lib.git, team/more/deep.git and more")),
    ("Team/App.git", ("fatal: remote error: repository Team/App.git not found; names are case-sensitive: "
                     "did you mean team/app.git?")),
    ("TEAM/LIB", ("fatal: remote error: repository TEAM/LIB not found; names are case-sensitive: "
                 "did you mean team/lib.git?")),
    ("Private/Secret.git", "fatal: remote error: repository Private/Secret.git not found"),  # (alice's: not named)
    ("team/nope.git", "fatal: remote error: repository team/nope.git not found"),
    ("team/apps.git", "fatal: remote error: repository team/apps.git not found; did you mean team/app.git?"),
    ("team/Lbi", "fatal: remote error: repository team/Lbi not found; did you mean team/lib.git?"),  # (swapped)
    ("team/abc", "fatal: remote error: repository team/abc not found"),  # (near none)
    ("team/more/dep.git", "fatal: remote error: repository team/more/dep.git not found; did you mean team/more/deep.git?"),
    ("private/secrt.git", ("fatal: remote error: reading private/secrt.git needs an authenticated user; log in with "
                           "an SSH key or HTTP password")),  # (alice's: not named)
])
def test_git_daemon_tells_what_to_ask_for_instead(hinted: RunningServer, client: Client, path: str,
                                                  said: str) -> None:
    assert _refusal(client, f"git://127.0.0.1:{hinted.port('git')}/{path}") == said


def test_git_over_http_says_the_same(hinted: RunningServer, client: Client) -> None:
    said = _refusal(client, f"http://127.0.0.1:{hinted.port('http')}/Team/App.git")
    assert "remote: repository Team/App.git not found; names are case-sensitive: did you mean team/app.git?" in said
    assert _refusal(client, f"http://127.0.0.1:{hinted.port('http')}/PRIVATE/SECRET").splitlines()[0] == (
        "remote: repository PRIVATE/SECRET not found")


def test_hg_over_http_is_told_the_same(hinted: RunningServer, client: Client) -> None:
    base = f"http://127.0.0.1:{hinted.port('http')}"
    said = client.hg("id", f"{base}/Team/HgRepo", check=False)
    assert said.returncode != 0
    assert ("abort: HTTP Error 404: repository Team/HgRepo not found; names are case-sensitive: did you mean "
            "team/hgrepo?") in said.stderr, said.stderr
    said = client.hg("id", f"{base}/team", check=False)
    assert ("abort: HTTP Error 404: team is not a git or Mercurial repository but a folder of them; name one, "
            "such as team/hgrepo, team/app.git, team/lib.git and more") in said.stderr, said.stderr
    assert "secret" not in client.hg("id", f"{base}/PRIVATE/SECRET", check=False).stderr
    said = client.hg("id", f"{base}/team/hgrep", check=False)
    assert "abort: HTTP Error 404: repository team/hgrep not found; did you mean team/hgrepo?" in said.stderr, said.stderr
