"""A push carrying changesets the server already holds as secret makes them draft (public when the
repository publishes), as hg's ``changegroup.apply`` advances every changeset of a pushed group,
over bundle2 and bundle1, HTTP and SSH; compared with the same pushes into a local ``hg`` repository.

The pushes, clones and outgoing (to hgwire, and to the local repository by its ``file://`` URL) run
in processes forked from hg's chg server (``ForkedClient`` of test_hg_evolve_topics: hg's own
client code without its start-up, over the real ssh and HTTP): what the server takes is the point
here; test_hg_ssh and test_hg_http push with client processes of their own."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.audit import AUDIT_NAMESPACE
from tests.conftest import Client, RunningServer, SshKeys, log_events, ssh_server_settings
from tests.integration.test_hg_evolve_topics import ForkedClient
from tests.integration.test_hg_http import PASSWORD, _settings, htpasswd  # noqa: F401

EXCHANGES = {"bundle2": (), "bundle1": ("--config", "devel.legacy.exchange=bundle1")}


def _commit(client: Client, work: Path, name: str) -> None:
    (work / name).write_text(name + "\n")
    client.hg("commit", "-q", "-A", "-R", str(work), "-m", name)


def _phases(client: Client, repo: Path) -> str:
    return client.hg("log", "-R", str(repo), "--hidden", "-T", "{rev}{phase} ").stdout.strip()


def _phaseroots(repo: Path) -> bytes:
    path = repo / ".hg" / "store" / "phaseroots"
    return path.read_bytes() if path.exists() else b""


@pytest.fixture
def served(make_server: Callable[..., RunningServer], htpasswd: Path, ssh_keys: SshKeys,  # noqa: F811
           ) -> tuple[RunningServer, SshKeys]:
    return make_server("fs", **_settings(htpasswd), **ssh_server_settings(ssh_keys)), ssh_keys


def _urls(server: RunningServer, keys: SshKeys, transport: str, name: str) -> tuple[str, tuple[str, ...]]:
    """The push URL of ``name`` and the options the client needs for it."""
    if transport == "ssh":
        return (f"ssh://alice@127.0.0.1:{server.port('ssh')}/{name}",
                ("--config", f"ui.ssh={keys.command(server.port('ssh'))}"))
    scheme, rest = server.url("http", name).split("://", 1)
    return f"{scheme}://alice:{PASSWORD.replace(' ', '%20')}@{rest}", ()


@pytest.mark.parametrize("exchange", EXCHANGES)
@pytest.mark.parametrize("transport", ["http", "ssh"])
@pytest.mark.parametrize("publish", [False, True])
def test_a_secret_changeset_pushed_again_leaves_secret(served: tuple[RunningServer, SshKeys], client: Client,
                                                       tmp_path: Path, transport: str, exchange: str,
                                                       publish: bool) -> None:
    """Revs 0-3 pushed (0-1 public), 3 made secret on the server, then 4 on 3 pushed: hg's server
    has 3 and 4 draft (all public when it publishes), lists them to a clone, and writes the same
    phaseroots; so it does when 3 alone is pushed again."""
    server, keys = served
    url, options = _urls(server, keys, transport, "p")
    flags = (*options, *EXCHANGES[exchange])
    work, reference = tmp_path / "work", tmp_path / "reference"
    peer, local = ForkedClient(client.env, client.cwd), f"file://{reference}"
    client.hg("init", str(work))
    for name in "abcd":
        _commit(client, work, name)
    client.hg("phase", "-q", "-p", "-r", "1", "-R", str(work))
    for repo in (server.root / "p", reference):
        client.hg("init", str(repo))
        if not publish:
            (repo / ".hg" / "hgrc").write_text("[phases]\npublish = False\n")
    pristine = tmp_path / "pristine"
    shutil.copytree(work, pristine)
    for target in (url, local):
        peer.hg("push", "-q", "-R", str(work), *flags, target)
    client.hg("phase", "-q", "-f", "--secret", "-r", "3", "-R", str(server.root / "p"))
    client.hg("phase", "-q", "-f", "--secret", "-r", "3", "-R", str(reference))
    # the pristine copy still has 2-3 draft: pushing it again carries 3 alone, which the server has
    peer.hg("push", "-q", "-R", str(pristine), *flags, url, check=False)
    peer.hg("push", "-q", "-R", str(pristine), *flags, local, check=False)
    expected = "3public 2public 1public 0public" if publish else "3draft 2draft 1public 0public"
    assert _phases(client, server.root / "p") == _phases(client, reference) == expected
    assert _phaseroots(server.root / "p") == _phaseroots(reference)
    client.hg("phase", "-q", "-f", "--secret", "-r", "3", "-R", str(server.root / "p"))
    client.hg("phase", "-q", "-f", "--secret", "-r", "3", "-R", str(reference))
    _commit(client, work, "e")
    pushed = peer.hg("push", "-R", str(work), *flags, url)
    assert "added 1 changesets" in pushed.stdout, pushed.stdout
    peer.hg("push", "-q", "-R", str(work), *flags, local)
    expected = "4public 3public 2public 1public 0public" if publish else "4draft 3draft 2draft 1public 0public"
    assert _phases(client, server.root / "p") == _phases(client, reference) == expected
    assert _phaseroots(server.root / "p") == _phaseroots(reference)
    client.hg("verify", "-q", "-R", str(server.root / "p"))
    clone = tmp_path / "clone"
    peer.hg("clone", "-q", "-U", *options, url, str(clone))
    assert client.hg("log", "-R", str(clone), "-T", "{rev} ").stdout.strip() == "4 3 2 1 0"
    outgoing = peer.hg("outgoing", "-R", str(work), *options, url, check=False)
    assert outgoing.returncode == 1, outgoing.stdout


@pytest.mark.parametrize("exchange", EXCHANGES)
@pytest.mark.parametrize("transport", ["http", "ssh"])
@pytest.mark.parametrize("publish", [False, True])
def test_the_audit_log_lists_each_phase_move_once(served: tuple[RunningServer, SshKeys], client: Client,
                                                  tmp_path: Path, transport: str, exchange: str,
                                                  publish: bool) -> None:
    """A publishing repository makes a push's changesets public, and the client's phase part or
    pushkey then asks the same of its head: one move, listed once (it was listed twice)."""
    server, keys = served
    url, options = _urls(server, keys, transport, "a")
    work = tmp_path / "work"
    client.hg("init", str(work))
    for name in "abc":
        _commit(client, work, name)
    client.hg("phase", "-q", "-p", "-r", "0", "-R", str(work))
    client.hg("init", str(server.root / "a"))
    if not publish:
        (server.root / "a" / ".hg" / "hgrc").write_text("[phases]\npublish = False\n")
    with log_events() as events:
        ForkedClient(client.env, client.cwd).hg("push", "-q", "-R", str(work), *options, *EXCHANGES[exchange], url)
    nodes = client.hg("log", "-R", str(work), "-r", "0:2" if publish else "0", "-T", "{node} ").stdout.split()
    audits = [e for e in events if e.get("log_namespace") == AUDIT_NAMESPACE]  # (bundle1: a pushkey of its own)
    phases = [c for e in audits for c in e["changes"] if c["name"].startswith("phase")]
    assert [(c["name"], c["new"].split()) for c in phases] == [("phase public", nodes)], phases
