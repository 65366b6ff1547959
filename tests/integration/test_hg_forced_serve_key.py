"""An ``authorized_keys`` line moved from sshd that forces ``hg -R NAME serve --stdio`` (Mercurial's
wiki's one-repository set-up, before hg-ssh): the key clones and pushes that repository with real
``ssh`` and ``hg``, and is told which one it may reach when it names another, where hgwire skipped
the line and the user met only ``Permission denied (publickey)``."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.conftest import LOOPBACK, Client, RunningServer, SshKeys


def _hg(client: Client, ssh: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return client.hg("--config", f"ui.ssh={ssh}", *args, check=False)


def test_a_key_forced_to_hg_serve_one_repository_reaches_it(make_server: Callable[..., RunningServer],
                                                              client: Client, ssh_keys: SshKeys,
                                                              tmp_path: Path) -> None:
    public = (ssh_keys.key.parent / "alice_key.pub").read_text().split()
    authorized = tmp_path / "authorized_keys"
    authorized.write_text(f'command="hg -R team/app serve --stdio",no-port-forwarding,no-X11-forwarding,'
                          f'no-agent-forwarding,no-pty {public[0]} {public[1]} alice\n')
    server = make_server("fs", ssh=[LOOPBACK], host_key=str(ssh_keys.host_key), authorized_keys=str(authorized))
    for name in ("team/app", "team/other"):
        client.hg("init", str(server.root / name))
    ssh = ssh_keys.command(server.port("ssh"))
    base = f"ssh://alice@127.0.0.1:{server.port('ssh')}"
    work = tmp_path / "work"
    cloned = _hg(client, ssh, "clone", "-q", f"{base}/team/app", str(work))
    assert cloned.returncode == 0, cloned.stderr
    (work / "a.txt").write_text("one\n")
    client.hg("commit", "-q", "-A", "-u", "alice", "-m", "first", cwd=work)
    pushed = _hg(client, ssh, "push", "-q", "-R", str(work))
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    client.hg("verify", "-q", "-R", str(server.root / "team/app"))
    assert client.hg("log", "-R", str(server.root / "team/app"), "-T", "{desc}\n").stdout == "first\n"

    other = _hg(client, ssh, "clone", "-q", f"{base}/team/other", str(tmp_path / "other"))
    assert other.returncode != 0
    assert ("remote: abort: this SSH key serves team/app alone (hg -R team/app serve --stdio in "
            "authorized_keys): use ssh://HOST/team/app") in other.stderr, other.stderr
    git = client.git("ls-remote", f"{base}/team/app.git", check=False, env={"GIT_SSH_COMMAND": ssh})
    assert git.returncode != 0 and "this SSH key may only run Mercurial" in git.stderr, git.stderr
