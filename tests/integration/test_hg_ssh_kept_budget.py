"""``[limits] hg_kept_repositories_bytes`` bounds what the hg engine keeps parsed between requests,
which SSH sessions use as much as HTTP requests: it was applied by an HTTP read-only request only,
so a server serving hg over SSH alone kept the default budget whatever the policy said.  (It is now
applied as the policy is read: ``test_hg_kept_budget_reload``.)"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from backends.hg import kept
from tests.conftest import Client, RunningServer, SshKeys, ssh_server_settings
from tests.integration.test_hg_ssh import HgSsh


def test_an_ssh_session_applies_the_configured_budget(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kept.KEPT, "budget", kept.KEPT.budget)  # (restored after)
    policy = tmp_path / "policy.toml"
    policy.write_text('[[repo]]\npattern = "*"\nread = ["alice"]\n[limits]\nhg_kept_repositories_bytes = 3000000\n')
    server = make_server("fs", config_file=str(policy), **ssh_server_settings(ssh_keys))
    repo = server.root / "r"
    client.hg("init", str(repo))
    (repo / "f").write_text("a\n")
    client.hg("commit", "-q", "-A", "-R", str(repo), "-m", "a")
    ssh = HgSsh(server, client, ssh_keys.command(server.port("ssh")))
    assert kept.KEPT.budget == 3_000_000  # (applied as the service is built: test_hg_kept_budget_reload)
    assert len(ssh.hg("id", ssh.url("r")).stdout.split()[0]) == 12
    assert kept.KEPT.budget == 3_000_000
    assert kept.KEPT.held <= 3_000_000
