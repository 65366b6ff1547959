"""``hg pull --remote-hidden`` (hg 6.5+: ``serve --stdio --hidden`` over SSH, ``access-hidden=1`` over
HTTP) asks for the server's hidden changesets.  As by ``hg serve``, the users the hgrc's
``[experimental] server.allow-hidden-access`` names (``*``: everyone) get them; anyone else's request
(everyone's when it is unset) is ignored, in its words on SSH ("remote: ignoring request to access
hidden changeset by unauthorized user: …") and in the server's log on HTTP, and a hidden changeset
asked by id is "filtered"."""

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


def _reference_pull(client: Client, tmp_path: Path, repo: Path, hidden: str, allowed: str) -> tuple[object, Path]:
    """``hg pull --remote-hidden -r hidden`` from ``hg serve --stdio`` (behind a stand-in for ssh) on
    a copy of ``repo`` whose hgrc allows ``allowed``, into a new repository; the run and that repository."""
    reference = tmp_path / "reference"
    shutil.copytree(repo, reference)
    with (reference / ".hg" / "hgrc").open("a") as hgrc:
        hgrc.write(f"server.allow-hidden-access = {allowed}\n")
    fake, remote = tmp_path / "fake-ssh", tmp_path / "remote-hg"
    fake.write_text(FAKE_SSH)
    remote.write_text(f'#!/bin/sh\nHGRCPATH= exec {VENV_BIN}/hg "$@"\n')
    for script in (fake, remote):
        script.chmod(0o755)
    into = tmp_path / "theirs"
    client.hg("init", str(into))
    done = client.hg(*EVOLVE, "--config", f"ui.ssh={fake}", "--config", f"ui.remotecmd={remote}", "pull",
                     "--remote-hidden", "-r", hidden, "-R", str(into), f"ssh://ref/{reference}", check=False)
    return done, into


def _state(client: Client, repo: Path) -> tuple[str, str]:
    """Every changeset (hidden ones too) with its phase, and every marker, of ``repo``."""
    nodes = client.hg(*EVOLVE, "log", "--hidden", "-R", str(repo), "-T", "{node} {phase}\n").stdout
    markers = client.hg(*EVOLVE, "debugobsolete", "-R", str(repo), "-T", "{precnode} {succnodes}\n").stdout
    return nodes, markers


@pytest.mark.parametrize("kind", ["ssh", "http"])
def test_remote_hidden_serves_hidden_changesets_to_the_users_the_hgrc_names(
        kind: str, make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, htpasswd: Path,
        tmp_path: Path) -> None:
    """``[experimental] server.allow-hidden-access = alice`` lets alice (the SSH key's user, the HTTP
    login) pull a hidden changeset by id, as ``hg serve`` lets the users it names (it was refused,
    "this server does not serve hidden changesets"); the clone gets what hg serve's gets."""
    peer, url, repo = _setup(kind, make_server, client, ssh_keys, htpasswd,
                             SERVER_HGRC + "server.allow-hidden-access = alice\n")
    hidden = _with_hidden(client, repo)
    theirs, their_clone = _reference_pull(client, tmp_path, repo, hidden, "*")
    assert theirs.returncode == 0, theirs.stderr  # type: ignore[attr-defined]
    client.hg("init", str(tmp_path / "ours"))
    with log_events() as events:
        ours = peer.hg(*EVOLVE, "pull", "--remote-hidden", "-r", hidden, "-R", str(tmp_path / "ours"), url("evo"),
                       check=False)
    assert ours.returncode == 0, ours.stderr
    assert _lines(ours) == [], _lines(ours)
    assert not any("ignoring request" in str(e.get("outcome")) for e in events)
    assert _state(client, tmp_path / "ours") == _state(client, their_clone)
    assert hidden in _state(client, tmp_path / "ours")[0]
    client.hg("init", str(tmp_path / "plain"))  # without --remote-hidden it stays hidden
    plain = peer.hg(*EVOLVE, "pull", "-r", hidden, "-R", str(tmp_path / "plain"), url("evo"), check=False)
    assert plain.returncode != 0 and "filtered revision" in plain.stderr, plain.stderr


def test_remote_hidden_from_a_user_the_hgrc_does_not_name_is_ignored_in_hg_serves_words(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, htpasswd: Path,
        tmp_path: Path) -> None:
    peer, url, repo = _setup("ssh", make_server, client, ssh_keys, htpasswd,
                             SERVER_HGRC + "server.allow-hidden-access = bob carol\n")
    hidden = _with_hidden(client, repo)
    client.hg("init", str(tmp_path / "c"))
    refused = peer.hg(*EVOLVE, "pull", "--remote-hidden", "-r", hidden, "-R", str(tmp_path / "c"), url("evo"),
                      check=False)
    assert refused.returncode != 0
    assert _lines(refused)[0] == f"remote: {IGNORED}alice", _lines(refused)
    assert "filtered revision" in refused.stderr


def test_remote_hidden_over_http_without_a_login_is_asked_for_one_where_the_hgrc_names_users(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, htpasswd: Path,
        tmp_path: Path) -> None:
    """hg's client sends its password only when challenged: an anonymous ``--remote-hidden`` pull is
    challenged (401) where the hgrc names users, so that a user with a password gets in; one
    without is told ``http authorization required``."""
    peer, _url, repo = _setup("http", make_server, client, ssh_keys, htpasswd,
                             SERVER_HGRC + "server.allow-hidden-access = alice\n")
    hidden = _with_hidden(client, repo)
    client.hg("init", str(tmp_path / "c"))
    anonymous = peer.hg(*EVOLVE, "pull", "--remote-hidden", "-r", hidden, "-R", str(tmp_path / "c"),
                        peer.url("evo"), check=False)
    assert anonymous.returncode != 0 and "http authorization required" in anonymous.stderr, anonymous.stderr
    client.hg("init", str(tmp_path / "everyone"))
    (repo / ".hg" / "hgrc").write_text(SERVER_HGRC + "server.allow-hidden-access = *\n")
    served = peer.hg(*EVOLVE, "pull", "--remote-hidden", "-r", hidden, "-R", str(tmp_path / "everyone"),
                     peer.url("evo"))
    assert "added 2 changesets" in served.stdout + served.stderr
