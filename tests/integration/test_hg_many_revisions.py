"""``hg pull -r`` of many revisions at once: hg asks for each in one ``batch`` of ``lookup``
commands, over SSH and HTTP alike, as ``hg serve`` answers them all."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Client, RunningServer, SshKeys, ssh_server_settings
from tests.integration.test_hg_http import HgHttp, _settings, htpasswd  # noqa: F401
from tests.integration.test_hg_ssh import HgSsh

HEADS = 80


@pytest.mark.parametrize("transport", ["ssh", "http"])
def test_a_pull_of_eighty_revisions_named_on_the_command_line(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, htpasswd: Path,  # noqa: F811
        tmp_path: Path, transport: str) -> None:
    server = make_server("fs", **ssh_server_settings(ssh_keys), **_settings(htpasswd))
    peer: HgSsh | HgHttp = (HgSsh(server, client, ssh_keys.command(server.port("ssh"))) if transport == "ssh"
                            else HgHttp(server, client))
    served = server.root / "r"
    client.hg("init", str(served))
    client.hg("debugbuilddag", "-q", "-R", str(served), "+1:r " + " ".join("<r +1" for _ in range(HEADS)))
    heads = client.hg("log", "-R", str(served), "-r", "head()", "-T", "{node}\n").stdout.split()
    assert len(heads) == HEADS
    work = tmp_path / "w"
    peer.hg("clone", "-q", "-U", "-r", "0", peer.url("r"), str(work))

    pulled = peer.hg("pull", "-R", str(work), *(arg for node in heads for arg in ("-r", node)), peer.url("r"),
                     check=False)

    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    assert client.hg("log", "-R", str(work), "-r", "head()", "-T", "{node}\n").stdout.split() == heads
    client.hg("verify", "-q", "-R", str(work))
