"""An ``authorized_keys`` line forcing ``hg -R NAME serve --stdio --hidden`` (which hg accepts, and
``hg pull --remote-hidden`` sends): sshd's hg then serves the hidden changesets to every session of
the key when ``[experimental] server.allow-hidden-access`` allows its user, and warns "ignoring
request to access hidden changeset by unauthorized user" otherwise.  hgwire skipped the line, so the
key met ``Permission denied (publickey)``; it is honoured so now, the user being the key's.  The
reference is hg itself behind a stand-in for sshd that runs the forced command whatever the client
asked, as sshd does."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import LOOPBACK, VENV_BIN, Client, RunningServer, SshKeys
from tests.integration.test_hg_obsolescence import EVOLVE, SERVER_HGRC

IGNORED = "ignoring request to access hidden changeset by unauthorized user: "


def _with_hidden(client: Client, repo: Path) -> str:
    """Two changesets in ``repo``, the second amended: its old version is hidden."""
    for name in "ab":
        (repo / name).write_text(f"{name}\n")
        client.hg(*EVOLVE, "commit", "-q", "-A", "-R", str(repo), "-u", "alice", "-m", name)
    hidden = client.hg("log", "-R", str(repo), "-r", ".", "-T", "{node}").stdout
    (repo / "b").write_text("b again\n")
    client.hg(*EVOLVE, "commit", "-q", "--amend", "-R", str(repo), "-u", "alice", "-m", "b amended")
    return hidden


def _pull(client: Client, into: Path, ssh: str, url: str, hidden: str) -> subprocess.CompletedProcess[str]:
    """A plain ``hg pull -r HIDDEN`` (no ``--remote-hidden``: the forced command asks for it)."""
    client.hg("init", str(into))
    return client.hg(*EVOLVE, "--config", f"ui.ssh={ssh}", "pull", "-r", hidden, "-R", str(into), url, check=False)


@pytest.mark.parametrize("allowed", [True, False])
def test_a_key_forced_to_serve_hidden_gets_what_hg_serves_it(make_server: Callable[..., RunningServer],
                                                             client: Client, ssh_keys: SshKeys, tmp_path: Path,
                                                             allowed: bool) -> None:
    public = (ssh_keys.key.parent / "alice_key.pub").read_text().split()
    authorized = tmp_path / "authorized_keys"
    authorized.write_text(f'command="hg -R evo serve --stdio --hidden",no-pty {public[0]} {public[1]} alice\n')
    server = make_server("fs", ssh=[LOOPBACK], host_key=str(ssh_keys.host_key), authorized_keys=str(authorized))
    repo = server.root / "evo"
    client.hg("init", str(repo))
    allow = "server.allow-hidden-access = *\n" if allowed else ""
    (repo / ".hg" / "hgrc").write_text(SERVER_HGRC + allow)
    hidden = _with_hidden(client, repo)

    reference = tmp_path / "reference"
    shutil.copytree(repo, reference)
    sshd = tmp_path / "forced-ssh"  # sshd with that line: the client's command is ignored
    sshd.write_text(f'#!/bin/sh\nHGRCPATH= exec {VENV_BIN}/hg -R {reference} serve --stdio --hidden\n')
    sshd.chmod(0o755)
    theirs = _pull(client, tmp_path / "c0", str(sshd), "ssh://ref/elsewhere", hidden)

    ours = _pull(client, tmp_path / "c1", ssh_keys.command(server.port("ssh")),
                 f"ssh://alice@127.0.0.1:{server.port('ssh')}/evo", hidden)
    assert ours.returncode == theirs.returncode == (0 if allowed else 255), (ours.stderr, theirs.stderr)
    warned = [line for line in ours.stderr.splitlines() if IGNORED in line]
    assert warned == ([] if allowed else [f"remote: {IGNORED}alice"]), ours.stderr
    assert (IGNORED in theirs.stderr) is not allowed
    if allowed:
        nodes = client.hg(*EVOLVE, "log", "--hidden", "-R", str(tmp_path / "c1"), "-T", "{node}\n").stdout.split()
        assert hidden in nodes
    client.hg("verify", "-q", "-R", str(repo))
