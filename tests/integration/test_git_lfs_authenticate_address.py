"""``git-lfs-authenticate`` over SSH with the HTTP listener on every address (``interface=0.0.0.0``
or ``\\:\\:``): the answer named this host's name (``socket.gethostname()``), which the client may not
resolve; it now names the address the SSH client reached, with the HTTP listener's port (unless
``[http] public_url`` is set, which wins)."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from backends.interfaces import Kind
from tests.conftest import Client, SshKeys, ssh_server_settings


def test_lfs_authenticate_names_the_address_the_client_reached(make_server: Any, client: Client,
                                                                ssh_keys: SshKeys) -> None:
    server = make_server("fs", http=["tcp:0:interface=0.0.0.0"], **ssh_server_settings(ssh_keys))
    server.backend.create("media", Kind.GIT)
    ssh = ssh_keys.command(server.port("ssh")).split()
    done = client.run(*ssh, "git@127.0.0.1", "git-lfs-authenticate media.git download")
    href = json.loads(done.stdout)["href"]
    assert href == f"http://127.0.0.1:{server.port('http')}/media.git/info/lfs", (href, socket.gethostname())


def test_lfs_authenticate_takes_public_url_over_the_reached_address(make_server: Any, client: Client,
                                                                     ssh_keys: SshKeys, tmp_path: Path) -> None:
    policy = tmp_path / "hgwire.toml"
    policy.write_text('[http]\npublic_url = "https://proxy.example/scm/"\n\n[[repo]]\npattern = "*"\nread = ["alice"]\n')
    server = make_server("fs", http=["tcp:0:interface=0.0.0.0"], config_file=str(policy),
                         **ssh_server_settings(ssh_keys))
    server.backend.create("media", Kind.GIT)
    ssh = ssh_keys.command(server.port("ssh")).split()
    done = client.run(*ssh, "git@127.0.0.1", "git-lfs-authenticate media.git download")
    assert json.loads(done.stdout)["href"] == "https://proxy.example/scm/media.git/info/lfs"
