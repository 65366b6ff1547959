"""``hg pull --remote-hidden`` (hg 6.5+: ``serve --stdio --hidden`` over SSH, ``access-hidden=1`` over
HTTP) asks for the server's hidden changesets.  hgwire serves them to nobody: as ``hg serve`` by
default (``[experimental] server.allow-hidden-access`` unset), the request is ignored, in its words
on SSH ("remote: ignoring request to access hidden changeset by unauthorized user: …") and in the
server's log on HTTP, and a hidden changeset asked by id is "filtered"; where the hgrc names users
allowed, the client is told this server does not honour it."""

# ruff: noqa: F811  (the htpasswd fixture, imported from test_hg_http, is each test's parameter)
from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import VENV_BIN, Client, RunningServer, SshKeys, log_events
from tests.integration.test_hg_http import htpasswd  # noqa: F401 - a fixture
from tests.integration.test_hg_obsolescence import EVOLVE, FAKE_SSH, SERVER_HGRC, _setup

IGNORED = "ignoring request to access hidden changeset by unauthorized user: "


def _with_hidden(client: Client, repo: Path) -> str:
    """Two changesets in ``repo``, the second amended on the server: its old version is hidden."""
    for name in "ab":
        (repo / name).write_text(f"{name}\n")
        client.hg("commit", "-q", "-A", "-R", str(repo), "-m", name)
    hidden = client.hg("log", "-R", str(repo), "-r", ".", "-T", "{node}").stdout
    (repo / "b").write_text("b again\n")
    client.hg(*EVOLVE, "commit", "-q", "--amend", "-R", str(repo), "-m", "b amended")
    return hidden


def _lines(done: object) -> list[str]:
    return [line for line in (done.stdout + done.stderr).splitlines()  # type: ignore[attr-defined]
            if line.startswith(("remote:", "abort:"))]


@pytest.mark.parametrize("kind", ["ssh", "http"])
def test_remote_hidden_is_ignored_as_hg_serve_ignores_it(kind: str, make_server: Callable[..., RunningServer],
                                                         client: Client, ssh_keys: SshKeys, htpasswd: Path,
                                                         tmp_path: Path) -> None:
    peer, url, repo = _setup(kind, make_server, client, ssh_keys, htpasswd)
    hidden = _with_hidden(client, repo)
    reference = tmp_path / "reference"
    shutil.copytree(repo, reference)
    fake, remote = tmp_path / "fake-ssh", tmp_path / "remote-hg"
    fake.write_text(FAKE_SSH)
    remote.write_text(f'#!/bin/sh\nHGRCPATH= exec {VENV_BIN}/hg "$@"\n')
    for script in (fake, remote):
        script.chmod(0o755)
    client.hg("init", str(tmp_path / "c0"))
    theirs = client.hg(*EVOLVE, "--config", f"ui.ssh={fake}", "--config", f"ui.remotecmd={remote}", "pull",
                       "--remote-hidden", "-r", hidden, "-R", str(tmp_path / "c0"), f"ssh://ref/{reference}",
                       check=False)

    with log_events() as events:
        client.hg("init", str(tmp_path / "c1"))
        ours = peer.hg(*EVOLVE, "pull", "--remote-hidden", "-r", hidden, "-R", str(tmp_path / "c1"), url("evo"),
                       check=False)
    assert ours.returncode == theirs.returncode != 0
    if kind == "ssh":
        assert _lines(ours) == [f"remote: {IGNORED}alice", *_lines(theirs)[1:]], (_lines(ours), _lines(theirs))
        assert _lines(theirs)[0].startswith(f"remote: {IGNORED}")
    else:  # hgweb warns in its own log, not to the client
        assert _lines(ours) == _lines(theirs)[1:]
        assert any(IGNORED in str(e.get("outcome")) for e in events)
    client.hg("init", str(tmp_path / "c2"))
    pulled = peer.hg(*EVOLVE, "pull", "--remote-hidden", "-R", str(tmp_path / "c2"), url("evo"))
    assert hidden not in client.hg(*EVOLVE, "log", "--hidden", "-R", str(tmp_path / "c2"), "-T", "{node}\n").stdout
    assert "added 2 changesets" in pulled.stdout + pulled.stderr


def test_an_hgrc_that_allows_hidden_access_is_told_it_is_not_honoured(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, htpasswd: Path,
        tmp_path: Path) -> None:
    peer, url, repo = _setup("ssh", make_server, client, ssh_keys, htpasswd,
                             SERVER_HGRC + "server.allow-hidden-access = alice\n")
    hidden = _with_hidden(client, repo)
    client.hg("init", str(tmp_path / "c"))
    refused = peer.hg(*EVOLVE, "pull", "--remote-hidden", "-r", hidden, "-R", str(tmp_path / "c"), url("evo"),
                      check=False)
    assert refused.returncode != 0
    assert ("remote: ignoring request to access hidden changeset: this server does not serve hidden changesets, "
            "whatever [experimental] server.allow-hidden-access says") in refused.stderr, refused.stderr
