"""After a push, ``hg serve`` leaves ``.hg/cache/branch2-served`` up to date (hg writes its caches as
its transaction closes), and ``hg clone --stream`` copies it.  hgwire removed it at every push, so a
stream clone from it carried no branch heads and its first ``hg branches``/``hg log -b`` read every
changeset.  hgwire now writes the file as hg does, byte for byte, where no changeset is filtered."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from tests.conftest import LOOPBACK, VENV_BIN, Client, RunningServer, SshKeys, ssh_server_settings
from tests.integration.test_hg_obsolescence import FAKE_SSH
from tests.integration.test_hg_ssh import HgSsh


def _commit(client: Client, work: Path, name: str, *extra: str) -> None:
    (work / "f").write_text(f"{name}\n")
    client.hg("commit", "-q", "-A", "-R", str(work), "-m", name, *extra)


def test_a_push_leaves_the_served_branchmap_hg_writes_and_a_stream_clone_gets_it(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, tmp_path: Path) -> None:
    server = make_server("fs", http=[LOOPBACK], **ssh_server_settings(ssh_keys))
    repo = server.root / "branchy"
    client.hg("init", str(repo))
    _commit(client, repo, "root")
    for name in ("one", "two", "gone"):
        client.hg("branch", "-q", "-R", str(repo), name)
        _commit(client, repo, name)
        client.hg("update", "-q", "-R", str(repo), "default")
    ssh = HgSsh(server, client, ssh_keys.command(server.port("ssh")))
    work = tmp_path / "work"
    ssh.hg("clone", "-q", ssh.url("branchy"), str(work))
    client.hg("update", "-q", "-R", str(work), "gone")
    _commit(client, work, "closing", "--close-branch")
    client.hg("update", "-q", "-R", str(work), "one")
    _commit(client, work, "one more")
    client.hg("update", "-q", "-R", str(work), "-r", "one~1")
    _commit(client, work, "second head of one")
    client.hg("branch", "-q", "-R", str(work), "new")
    _commit(client, work, "new")
    reference = tmp_path / "reference"  # the same push to hg serve --stdio (behind a stand-in for ssh)
    shutil.copytree(repo, reference)
    fake = tmp_path / "fake-ssh"
    fake.write_text(FAKE_SSH)
    fake.chmod(0o755)
    client.hg("push", "-q", "-f", "--new-branch", "-R", str(work), "-e", str(fake), "--remotecmd", f"{VENV_BIN}/hg",
              f"ssh://ref/{reference}")
    ssh.hg("push", "-q", "-f", "--new-branch", "-R", str(work), ssh.url("branchy"))

    written = repo / ".hg" / "cache" / "branch2-served"
    assert written.exists(), sorted(p.name for p in (repo / ".hg" / "cache").iterdir())
    assert written.read_bytes() == (reference / ".hg" / "cache" / "branch2-served").read_bytes()

    streamed, pulled = tmp_path / "streamed", tmp_path / "pulled"
    client.hg("clone", "-q", "-U", "--stream", server.url("http", "branchy"), str(streamed))
    client.hg("clone", "-q", "-U", server.url("http", "branchy"), str(pulled))
    assert (streamed / ".hg" / "cache" / "branch2-served").read_bytes() == written.read_bytes()
    for clone in (streamed, pulled):
        client.hg("verify", "-q", "-R", str(clone))
    for args in (("branches", "-c"), ("tags",), ("heads", "-T", "{node} {branch}\n")):
        assert client.hg(*args, "-R", str(streamed)).stdout == client.hg(*args, "-R", str(pulled)).stdout
