"""A push into a changelog past ``revlog.LAZY_ENTRIES`` (read lazily, its views' parents the index's
own columns, its heads found by C-level passes over them), the first request after a start and a
second one after it: the heads, branch heads and phases on the server are those ``hg serve`` leaves
after the same pushes, with two named branches, a merge across them (a branch head that is no head)
and a secret head the served view hides; ``hg verify`` is clean."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from backends.hg import revlog
from tests.conftest import VENV_BIN, Client, RunningServer, SshKeys, client_environment, ssh_server_settings
from tests.integration.test_hg_obsolescence import FAKE_SSH
from tests.integration.test_hg_ssh import HgSsh

DAG = "+2600 :fork +1000 :main @stable <fork +900 :st /main +300 <st +200"
"""5,001 changesets: default to 3599, stable forking at 2599 with a merge of default's head (4500),
two stable heads (4800, 5000): default's head 3599 is a branch head with a child on stable."""


def _state(client: Client, repo: Path) -> dict[str, str]:
    return {
        "heads": client.hg("heads", "-R", str(repo), "-T", "{rev}:{node} {branch}\n").stdout,
        "topo": client.hg("log", "-R", str(repo), "-r", "heads(all())", "-T", "{rev}\n").stdout,
        "branches": client.hg("branches", "-R", str(repo), "-c").stdout,
        "phases": client.hg("log", "-R", str(repo), "-T", "{rev}:{node} {phase}\n").stdout,
    }


def _commit(client: Client, work: Path, name: str, parent: str) -> None:
    client.hg("update", "-q", "-R", str(work), "-r", parent)
    (work / name).write_text(f"{name}\n")
    client.hg("commit", "-q", "-A", "-R", str(work), "-m", name, "-d", "0 0")


@pytest.fixture(scope="module")
def long_history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``DAG`` built once for the module (some 2 s of hg's CPU), its heads 4999 and 3599 public;
    each test copies it."""
    tmp_path = tmp_path_factory.mktemp("long-history")
    client = Client(client_environment(tmp_path), tmp_path)
    repo = tmp_path / "long"
    client.hg("init", str(repo))
    client.hg("debugbuilddag", "-q", "-R", str(repo), DAG, timeout=600)
    client.hg("phase", "-q", "-p", "-R", str(repo), "-r", "4999 + 3599")
    assert int(client.hg("log", "-R", str(repo), "-r", "tip", "-T", "{rev}").stdout) + 1 > revlog.LAZY_ENTRIES
    return repo


@pytest.mark.parametrize("secret", [True, False], ids=["a-secret-head", "nothing-filtered"])
def test_pushes_into_a_long_history_leave_the_heads_branches_and_phases_hg_serve_leaves(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, tmp_path: Path,
        long_history: Path, secret: bool) -> None:
    """Nothing filtered, the first branch map takes hg's ``branch2-served``; a secret head makes
    hg's file carry a hash of it, and the branch heads are found by a walk."""
    server = make_server("fs", **ssh_server_settings(ssh_keys))
    repo = server.root / "long"
    shutil.copytree(long_history, repo)
    client.hg("phase", "-q", "-f", "-s" if secret else "-p", "-R", str(repo), "-r", "4800")
    client.hg("debugupdatecaches", "-R", str(repo))
    assert (repo / ".hg" / "cache" / "branch2-served").read_text().count(" ") == (2 if secret else 1) + 2 * 3  # (a hash: filtered ones)
    reference = tmp_path / "reference"  # the same pushes to hg serve --stdio (behind a stand-in for ssh)
    shutil.copytree(repo, reference)
    fake = tmp_path / "fake-ssh"
    fake.write_text(FAKE_SSH)
    fake.chmod(0o755)
    ssh = HgSsh(server, client, ssh_keys.command(server.port("ssh")))
    work = tmp_path / "work"
    client.hg("clone", "-q", "-U", str(reference), str(work))  # (without the secret head)
    stable, default = (client.hg("log", "-R", str(reference), "-r", rev, "-T", "{node}").stdout for rev in ("5000", "3599"))

    _commit(client, work, "on-stable", stable)
    _commit(client, work, "on-default", default)
    for url, extra in ((ssh.url("long"), ()), (f"ssh://ref/{reference}", ("-e", str(fake)))):
        client.hg("--config", f"ui.ssh={ssh.ssh}", "push", "-q", "-f", "-R", str(work), *extra,
                  "--remotecmd", f"{VENV_BIN}/hg", "-r", "tip", "-r", "tip~1", url)
    assert _state(client, repo) == _state(client, reference)

    _commit(client, work, "second-default-head", default)  # (a new head: the grown views' heads)
    for url, extra in ((ssh.url("long"), ()), (f"ssh://ref/{reference}", ("-e", str(fake)))):
        client.hg("--config", f"ui.ssh={ssh.ssh}", "push", "-q", "-f", "-R", str(work), *extra,
                  "--remotecmd", f"{VENV_BIN}/hg", "-r", "tip", url)
    assert _state(client, repo) == _state(client, reference)

    # hg itself commits on the server between two requests: what hgwire holds of the changelog (the
    # bytes it read at the start, the entries pushed since apart) is extended by the file's new
    # entry once its old bytes are found as they were; the next push and pull read it right
    for path in (repo, reference):
        client.hg("update", "-q", "-R", str(path), "-r", default)
        (path / "by-hg").write_text("by hg\n")
        client.hg("commit", "-q", "-A", "-R", str(path), "-m", "by hg", "-d", "0 0")
    _commit(client, work, "after-hg", stable)
    for url, extra in ((ssh.url("long"), ()), (f"ssh://ref/{reference}", ("-e", str(fake)))):
        client.hg("--config", f"ui.ssh={ssh.ssh}", "push", "-q", "-f", "-R", str(work), *extra,
                  "--remotecmd", f"{VENV_BIN}/hg", "-r", "tip", url)
    assert _state(client, repo) == _state(client, reference)
    assert client.hg("log", "-R", str(repo), "-r", "-2:", "-T", "{desc}\n").stdout == "by hg\nafter-hg\n"
    client.hg("verify", "-q", "-R", str(repo))
    pulled = tmp_path / "pulled"
    ssh.hg("clone", "-q", "-U", ssh.url("long"), str(pulled))
    assert client.hg("log", "-R", str(pulled), "-r", "heads(all())", "-T", "{node}\n").stdout == client.hg(
        "log", "-R", str(reference), "-r", "heads(not secret())", "-T", "{node}\n").stdout
