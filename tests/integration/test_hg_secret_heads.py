"""A push's "added N changesets ... (+N heads)" counts heads as ``hg serve`` counts them: in the whole
changelog, a secret head (which no client sees) included."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from tests.conftest import Client, RunningServer, SshKeys, ssh_server_settings
from tests.integration.test_hg_hooks import _real_hg_serve
from tests.integration.test_hg_ssh import HgSsh


def _commit(client: Client, repo: Path, name: str, *extra: str) -> None:
    (repo / name).write_text(f"{name}\n")
    client.hg("commit", "-q", "-A", "-R", str(repo), "-m", name, *extra)


def test_a_new_head_beside_a_secret_head_is_counted_as_hg_serve_counts_it(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, tmp_path: Path) -> None:
    server = make_server("fs", **ssh_server_settings(ssh_keys))
    peer = HgSsh(server, client, ssh_keys.command(server.port("ssh")))
    work, repo = tmp_path / "work", server.root / "r"
    client.hg("init", str(work))
    _commit(client, work, "base")
    client.hg("clone", "-q", str(work), str(repo))
    _commit(client, repo, "kept-secret", "--secret")  # the server's only head: a secret child of base
    reference = tmp_path / "reference" / "r"
    shutil.copytree(repo, reference)
    _commit(client, work, "other")  # a child of base too
    said = {}
    with _real_hg_serve(client, "ssh", reference, tmp_path) as (real, url):
        for name, (target, target_url) in {"hgwire": (peer, peer.url("r")), "hg": (real, url)}.items():
            pushed = target.hg("push", "-R", str(work), target_url)
            said[name] = [line for line in pushed.stdout.splitlines() if line.startswith("remote: added")]
    assert said["hgwire"] == said["hg"] == ["remote: added 1 changesets with 1 changes to 1 files (+1 heads)"]
    client.hg("verify", "-q", "-R", str(repo))
