"""``[limits] hg_kept_repositories_bytes = 0``: the hg engine keeps nothing parsed between requests,
as ``hg serve`` keeps nothing; it was refused ("must be a positive integer") where
``git_kept_refs_bytes = 0`` was taken.  Every request then opens and parses its repository afresh:
clones, pushes and pulls right after them see what was just written, over HTTP and SSH."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from backends.hg import kept
from backends.interfaces import Kind
from tests.conftest import Client, RunningServer, SshKeys, ssh_server_settings
from tests.integration.test_hg_http import HgHttp, _settings, htpasswd  # noqa: F401 - a fixture
from tests.integration.test_hg_ssh import HgSsh


def _commit(client: Client, work: Path, name: str) -> str:
    (work / name).write_text(f"{name}\n")
    client.hg("commit", "-q", "-A", "-R", str(work), "-m", name)
    return client.hg("log", "-R", str(work), "-r", "tip", "-T", "{node}").stdout


def test_a_budget_of_0_keeps_nothing_and_every_request_still_works(
        make_server: Callable[..., RunningServer], client: Client, htpasswd: Path,  # noqa: F811
        ssh_keys: SshKeys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kept.KEPT, "budget", kept.KEPT.budget)  # (restored after)
    policy = tmp_path / "policy.toml"
    policy.write_text('[[repo]]\npattern = "*"\nwrite = ["*"]\n[limits]\nhg_kept_repositories_bytes = 0\n')
    server = make_server("fs", config_file=str(policy), **_settings(htpasswd), **ssh_server_settings(ssh_keys))
    assert kept.KEPT.budget == 0
    http = HgHttp(server, client)
    ssh = HgSsh(server, client, ssh_keys.command(server.port("ssh")))
    transports: dict[str, tuple[Callable[..., object], Callable[[str], str], Callable[[str], str]]] = {
        "http": (http.hg, http.url, http.push_url), "ssh": (ssh.hg, ssh.url, ssh.url)}
    for proto, (hg, url, push_url) in transports.items():
        server.backend.create(proto, Kind.HG)
        first, second = tmp_path / f"{proto}-1", tmp_path / f"{proto}-2"
        hg("clone", "-q", url(proto), str(first))
        _commit(client, first, "a")
        hg("push", "-q", "-R", str(first), push_url(proto))
        hg("clone", "-q", url(proto), str(second))
        tip = _commit(client, first, "b")
        hg("push", "-q", "-R", str(first), push_url(proto))
        hg("pull", "-q", "-u", "-R", str(second), url(proto))  # at once: what the push wrote
        assert client.hg("log", "-R", str(second), "-r", "tip", "-T", "{node}").stdout == tip
        tip = _commit(client, second, "c")
        hg("push", "-q", "-R", str(second), push_url(proto))
        hg("pull", "-q", "-u", "-R", str(first), url(proto))
        assert client.hg("log", "-R", str(first), "-r", "tip", "-T", "{node}").stdout == tip
        for repo in (first, second, server.root / proto):
            client.hg("verify", "-q", "-R", str(repo))
    assert kept.KEPT.held == 0
