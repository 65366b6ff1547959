"""A CI poller's ``hg id`` over HTTP makes four requests (``capabilities``, ``batch``, ``listkeys``
...); each opened the repository afresh.  A request that only reads now gets the repository opened
before while nothing an open reads changed on disk, and every change still reaches the next
request: a push through hgwire, a commit, a bookmark and a phase change by ``hg`` in the repository
itself, a rewritten requirements file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import backends.hg as hg_engine
from tests.conftest import LOOPBACK, Client, RunningServer, SshKeys, ssh_server_settings
from tests.integration.test_hg_ssh import HgSsh


def _commit(client: Client, repo: Path, name: str) -> str:
    (repo / name).write_text(f"{name}\n")
    client.hg("commit", "-q", "-A", "-R", str(repo), "-m", name)
    return client.hg("log", "-R", str(repo), "-r", "tip", "-T", "{node|short}").stdout


def test_a_poll_reuses_the_open_repository_and_sees_every_change(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    server = make_server("fs", http=[LOOPBACK], **ssh_server_settings(ssh_keys))
    repo = server.root / "polled"
    client.hg("init", str(repo))
    (repo / ".hg" / "hgrc").write_text("[phases]\npublish = False\n")
    tip = _commit(client, repo, "a")
    opened: list[str] = []
    real_open = hg_engine.open_repository

    def counted(path: str, name: str) -> object:
        opened.append(name)
        return real_open(path, name)

    monkeypatch.setattr(hg_engine, "open_repository", counted)
    url = server.url("http", "polled")
    for _ in range(3):  # twelve requests
        assert client.hg("id", url).stdout.strip() == tip
    assert len(opened) <= 1, opened

    tip = _commit(client, repo, "b")  # hg itself, in the repository
    assert client.hg("id", url).stdout.strip() == tip
    client.hg("bookmark", "-R", str(repo), "-r", tip, "mark")
    assert client.hg("id", "-r", "mark", url).stdout.split() == [tip, "mark"]
    assert client.hg("debugpushkey", url, "phases").stdout.strip()  # a draft root
    client.hg("phase", "-R", str(repo), "--public", "-r", tip)
    assert client.hg("debugpushkey", url, "phases").stdout.strip() == ""  # all public now

    work = tmp_path / "work"  # a push through hgwire
    ssh = HgSsh(server, client, ssh_keys.command(server.port("ssh")))
    ssh.hg("clone", "-q", ssh.url("polled"), str(work))
    tip = _commit(client, work, "c")
    ssh.hg("push", "-q", "-R", str(work), ssh.url("polled"))
    assert client.hg("id", url).stdout.split()[0] == tip

    before = len(opened)
    requires = repo / ".hg" / "requires"
    requires.write_bytes(requires.read_bytes())  # rewritten (hg debugupgraderepo writes it): opened again
    assert client.hg("id", url).stdout.split()[0] == tip
    assert len(opened) == before + 1


def test_a_repository_over_the_configured_budget_is_opened_by_each_request(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``[limits] hg_kept_repositories_bytes`` bounds what the kept repositories' indexes may hold:
    a repository holding more than it is not kept, and each request opens it, as before."""
    policy = tmp_path / "policy.toml"
    policy.write_text('[[repo]]\npattern = "*"\n[limits]\nhg_kept_repositories_bytes = 4000\n')
    kept = hg_engine.READ_REUSE
    monkeypatch.setattr(hg_engine.kept.KEPT, "budget", hg_engine.kept.KEPT.budget)  # (restored after)
    server = make_server("fs", http=[LOOPBACK], config_file=str(policy))
    repo = server.root / "polled"
    client.hg("init", str(repo))
    for name in ("a", "b", "c"):  # (a changelog and a manifest of three revisions: some 1,600 bytes reckoned)
        tip = _commit(client, repo, name)
    opened: list[str] = []
    real_open = hg_engine.open_repository

    def counted(path: str, name: str) -> object:
        opened.append(name)
        return real_open(path, name)

    monkeypatch.setattr(hg_engine, "open_repository", counted)
    url = server.url("http", "polled")
    for _ in range(2):
        assert client.hg("id", url).stdout.strip() == tip
    assert len(opened) >= 6, opened  # (every request: none kept)
    assert kept.budget == 4000 and not [entry for entry in kept.values() if entry[1].name == "polled"]
