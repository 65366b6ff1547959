"""A refusal's hint names no repository whose own ``[web]`` settings keep the client from reading it
over HTTP (``allow_read``/``deny_read``) or from its index (``hidden``): ``hg id http://HOST/team``
named ``team/closed`` whose hgrc lets only alice read it, and ``Team/Closed`` was told "did you mean
team/closed?", names the index and hgweb never show that user."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import LOOPBACK, Client, RunningServer


@pytest.fixture
def web_read(make_server: Callable[..., RunningServer], client: Client) -> RunningServer:
    server = make_server("fs", http=[LOOPBACK])
    for name, web in (("team/open", ""), ("team/closed", "allow_read = alice\n"), ("team/denied", "deny_read = *\n"),
                      ("team/hidden", "hidden = true\n")):
        client.hg("init", str(server.root / name))
        if web:
            (server.root / name / ".hg" / "hgrc").write_text("[web]\n" + web)
    return server


def _said(client: Client, url: str) -> str:
    said = client.hg("id", url, check=False)
    assert said.returncode != 0, said.stdout
    return said.stderr


def test_a_folder_names_only_what_its_settings_let_the_user_read(web_read: RunningServer, client: Client) -> None:
    said = _said(client, f"http://127.0.0.1:{web_read.port('http')}/team")
    assert "but a folder of them; name one, such as team/open\n" in said, said
    assert "closed" not in said and "denied" not in said and "hidden" not in said, said


@pytest.mark.parametrize("path", ["Team/Closed", "TEAM/DENIED", "team/Hidden"])
def test_a_case_twin_its_settings_refuse_is_not_named(web_read: RunningServer, client: Client, path: str) -> None:
    said = _said(client, f"http://127.0.0.1:{web_read.port('http')}/{path}")
    assert f"HTTP Error 404: repository {path} not found\n" in said, said
    assert "did you mean" not in said, said


def test_a_case_twin_the_user_may_read_is_still_named(web_read: RunningServer, client: Client) -> None:
    said = _said(client, f"http://127.0.0.1:{web_read.port('http')}/Team/Open")
    assert "did you mean team/open?" in said, said


@pytest.fixture
def unexported(make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> RunningServer:
    policy = tmp_path / "policy.toml"
    policy.write_text("anonymous_read = true\n[git]\nexport_all = false\n")
    server = make_server("fs", http=[LOOPBACK], config_file=str(policy))
    for name in ("team/kept.git", "team/shown.git", "team/off.git"):
        subprocess.run(["git", "init", "-q", "--bare", str(server.root / name)], check=True)
    (server.root / "team" / "shown.git" / "git-daemon-export-ok").write_text("")
    (server.root / "team" / "off.git" / "git-daemon-export-ok").write_text("")
    subprocess.run(["git", "--git-dir", str(server.root / "team" / "off.git"), "config", "http.uploadpack", "false"],
                   check=True)
    client.hg("init", str(server.root / "team" / "hgrepo"))
    return server


def test_an_hg_client_is_not_told_of_unexported_git_repositories(unexported: RunningServer, client: Client) -> None:
    """The index lists only exported git repositories, and git clients over HTTP are told of none: an
    hg client asking for the folder was told of ``team/kept.git`` too, which no one may clone."""
    base = f"http://127.0.0.1:{unexported.port('http')}"
    said = _said(client, f"{base}/team")
    assert "but a folder of them; name one, such as team/hgrepo, team/shown.git\n" in said, said
    said = _said(client, f"{base}/Team/Kept.git")
    assert "HTTP Error 404: repository Team/Kept.git not found\n" in said, said
