"""A head taken away on the server between a client's ``heads`` and its ``getbundle``: an hg clone
reads the heads, then asks for them; a strip or an obsolescence marker (``hg prune``, an amend
pushed by someone else) in between left hgwire answering "unknown revision NODE" for the server's
own head, which tells the person nothing.  The race is made certain by a client extension that runs
the server-side command after the client's discovery, before its getbundle (exchange's
``_pullbundle2``).  ``hg serve --stdio`` aborts with ``00changelog@NODE: no node`` and a cut stream
after a strip (and serves its session's stale view after a marker); ``hg serve`` answers 500."""

# ruff: noqa: F811  (the htpasswd fixture, imported from test_hg_http, is the test's parameter)
from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import VENV_BIN, Client, RunningServer, SshKeys, ssh_server_settings
from tests.integration.test_hg_http import (
    HgHttp,
    _settings,
    htpasswd,  # noqa: F401 - a fixture
)
from tests.integration.test_hg_ssh import HgSsh

PAUSE = '''\
import os
import shutil
from mercurial import exchange, extensions


def _after_discovery(orig, pullop):
    os.system(pullop.repo.ui.config(b"pause", b"cmd").decode())
    return orig(pullop)


def extsetup(ui):
    extensions.wrapfunction(exchange, "_pullbundle2", _after_discovery)
'''
"""A client extension: ``[pause] cmd`` runs once the pull knows the remote heads, before it asks for them."""

TAKE_AWAY = {
    "debugobsolete": ("--config", "experimental.evolution=all", "debugobsolete"),
    "strip": ("--config", "extensions.strip=", "strip", "-q", "--no-backup", "-r"),
}


def _served(client: Client, repo: Path) -> str:
    """Two heads: ``b`` on the public root, and the draft ``c`` beside it; nothing checked out (a
    working copy's parent stays visible whatever marks it obsolete).  ``c``'s node."""
    client.hg("init", str(repo))
    (repo / ".hg" / "hgrc").write_text("[phases]\npublish = False\n[experimental]\nevolution = all\n")
    for name, parent in (("a", None), ("b", "0"), ("c", "0")):
        if parent is not None:
            client.hg("update", "-q", "-R", str(repo), parent)
        (repo / name).write_text(f"{name}\n")
        client.hg("commit", "-q", "-A", "-R", str(repo), "-d", "0 0", "-m", name)
    client.hg("phase", "-R", str(repo), "--public", "-r", "0")
    client.hg("update", "-q", "-R", str(repo), "null")
    return client.hg("log", "-R", str(repo), "-r", "2", "-T", "{node}").stdout


@pytest.mark.parametrize("how", sorted(TAKE_AWAY))
@pytest.mark.parametrize("kind", ["ssh", "http"])
def test_a_head_taken_away_after_discovery_is_told_and_a_retry_clones(
        kind: str, how: str, make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys,
        htpasswd: Path, tmp_path: Path) -> None:
    server = make_server("fs", **ssh_server_settings(ssh_keys), **_settings(htpasswd))
    peer = HgSsh(server, client, ssh_keys.command(server.port("ssh"))) if kind == "ssh" else HgHttp(server, client)
    repo = server.root / "r"
    gone = _served(client, repo)
    extension = tmp_path / "pause.py"
    extension.write_text(PAUSE)
    command = " ".join([os.path.join(VENV_BIN, "hg"), "-R", str(repo), *TAKE_AWAY[how], gone])
    raced = peer.hg("--config", f"extensions.pause={extension}", "--config", f"pause.cmd={command}",
                    "clone", "-U", peer.url("r"), str(tmp_path / "raced"), check=False)
    assert raced.returncode == 255, raced
    assert (f"remote: abort: changeset {gone} is no longer on the server (it was stripped or made obsolete after "
            "this clone or pull began); try it again\n") in raced.stderr, raced.stderr
    assert "unknown revision" not in raced.stderr
    again = tmp_path / "again"
    peer.hg("clone", "-q", "-U", peer.url("r"), str(again))
    assert client.hg("log", "-R", str(again), "-T", "{desc}\n").stdout == "b\na\n"
    client.hg("verify", "-q", "-R", str(again))
    client.hg("verify", "-q", "-R", str(repo))


@pytest.mark.parametrize("kind", ["ssh", "http"])
def test_a_head_stripped_after_a_pull_found_nothing_new_leaves_it_pulled(
        kind: str, make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys,
        htpasswd: Path, tmp_path: Path) -> None:
    """A pull of a clone that has every changeset asks for no changegroup, only the phases of the
    heads it read (cg=0, phases=1); a head stripped in between made the phase-heads part look it up
    and the session died with an internal error ("stream ended unexpectedly" over SSH).  The stripped
    head has no phase to tell: the pull ends, the clone keeps it, as a pull a moment earlier would."""
    server = make_server("fs", **ssh_server_settings(ssh_keys), **_settings(htpasswd))
    peer = HgSsh(server, client, ssh_keys.command(server.port("ssh"))) if kind == "ssh" else HgHttp(server, client)
    repo = server.root / "r"
    gone = _served(client, repo)
    mine = tmp_path / "mine"
    peer.hg("clone", "-q", "-U", peer.url("r"), str(mine))
    extension = tmp_path / "pause.py"
    extension.write_text(PAUSE)
    command = " ".join([os.path.join(VENV_BIN, "hg"), "-R", str(repo), *TAKE_AWAY["strip"], gone])
    pulled = peer.hg("--config", f"extensions.pause={extension}", "--config", f"pause.cmd={command}",
                     "pull", "-R", str(mine), peer.url("r"), check=False)
    assert pulled.returncode == 0, pulled
    assert "no changes found" in pulled.stdout, pulled.stdout
    assert client.hg("log", "-R", str(repo), "-T", "{desc}\n").stdout == "b\na\n"  # (the strip ran)
    assert client.hg("log", "-R", str(mine), "-T", "{desc} {phase}\n").stdout == "c draft\nb draft\na public\n"
    client.hg("verify", "-q", "-R", str(mine))
    client.hg("verify", "-q", "-R", str(repo))


@pytest.mark.parametrize("kind", ["ssh", "http"])
def test_a_head_stripped_after_a_pull_found_nothing_new_is_published_as_hg_publishes_it(
        kind: str, make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys,
        htpasswd: Path, tmp_path: Path) -> None:
    """The same race where the repository now publishes: hg's server names every head asked for
    public without looking it up, the stripped one too, and the clone's draft copies (b and c) are published
    (``hg serve`` 7.2.4 over SSH and HTTP does so); the reference is hg's own pull from a twin of the
    repository on disk, which runs the same server code."""
    server = make_server("fs", **ssh_server_settings(ssh_keys), **_settings(htpasswd))
    peer = HgSsh(server, client, ssh_keys.command(server.port("ssh"))) if kind == "ssh" else HgHttp(server, client)
    repo, twin = server.root / "r", tmp_path / "twin"
    gone = _served(client, repo)
    shutil.copytree(repo, twin)
    extension = tmp_path / "pause.py"
    extension.write_text(PAUSE)
    shown = {}
    for served, url in ((repo, peer.url("r")), (twin, str(twin))):
        mine = tmp_path / f"mine-{served.name}"
        client.hg("clone", "-q", "-U", str(served), str(mine))  # (c draft: the repository did not publish)
        (served / ".hg" / "hgrc").write_text("[phases]\npublish = True\n")
        command = " ".join([os.path.join(VENV_BIN, "hg"), "-R", str(served), *TAKE_AWAY["strip"], gone])
        pulled = peer.hg("--config", f"extensions.pause={extension}", "--config", f"pause.cmd={command}",
                         "pull", "-R", str(mine), url, check=False)
        assert pulled.returncode == 0, pulled
        assert client.hg("log", "-R", str(served), "-T", "{desc}\n").stdout == "b\na\n"  # (the strip ran)
        shown[served] = (pulled.stdout.splitlines()[1:],
                         client.hg("log", "-R", str(mine), "-T", "{desc} {phase}\n").stdout)
        client.hg("verify", "-q", "-R", str(mine))
    assert shown[repo] == shown[twin]
    assert shown[repo] == (["searching for changes", "no changes found", "2 local changesets published"],
                           "c public\nb public\na public\n")
    client.hg("verify", "-q", "-R", str(repo))
