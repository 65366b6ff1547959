"""A refused hg push is a refusal in the operator's log and in the audit log, whatever the
transport: the client was told to "tell the server's operator", who must find why."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import backends.hg.lock
from gateway.audit import AUDIT_NAMESPACE
from tests.conftest import Client, RunningServer, SshKeys, log_events, ssh_server_settings
from tests.integration.test_hg_http import HgHttp, _settings, htpasswd  # noqa: F401
from tests.integration.test_hg_lock_wait import _repo_with_a_change
from tests.integration.test_hg_ssh import HgSsh


def _locked_repository(client: Client, root: Path, tmp_path: Path) -> Path:
    """``_repo_with_a_change``, the server's repository locked by a process of another host."""
    work = _repo_with_a_change(client, root, tmp_path)
    os.symlink("buildhost-7/4026531836:4242", root / "r" / ".hg" / "store" / "lock")
    return work


def _said(events: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    outcomes = [str(e.get("outcome")) for e in events if "outcome" in e and e.get("log_namespace") != AUDIT_NAMESPACE]
    audits = [str(e.get("outcome")) for e in events if e.get("log_namespace") == AUDIT_NAMESPACE]
    return outcomes, audits


def test_a_push_refused_over_ssh_is_logged_as_refused_with_its_reason(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backends.hg.lock, "DEFAULT_TIMEOUT", 0.3)
    server = make_server("fs", **ssh_server_settings(ssh_keys))
    hgssh = HgSsh(server, client, ssh_keys.command(server.port("ssh")))
    work = _locked_repository(client, server.root, tmp_path)
    with log_events() as events:
        pushed = hgssh.hg("push", "-R", str(work), hgssh.url("r"), check=False)
        server.settled()  # (the session's line comes when the server sees it close, maybe after the client)
    assert pushed.returncode != 0 and "locked by process 4242" in pushed.stdout + pushed.stderr
    outcomes, audits = _said(events)
    assert any(o.startswith("refused") and "locked by process 4242" in o for o in outcomes), outcomes
    assert any(a.startswith("refused") and "locked by process 4242" in a for a in audits), audits


def test_a_push_refused_over_http_is_in_the_audit_log(
        make_server: Callable[..., RunningServer], client: Client, htpasswd: Path,  # noqa: F811
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backends.hg.lock, "DEFAULT_TIMEOUT", 0.3)
    http = HgHttp(make_server("fs", **_settings(htpasswd)), client)
    work = _locked_repository(client, http.server.root, tmp_path)
    with log_events() as events:
        pushed = client.hg("push", "-R", str(work), http.push_url("r"), check=False)
    assert pushed.returncode != 0
    _outcomes, audits = _said(events)
    assert any(a.startswith("refused") and "locked by process 4242" in a for a in audits), audits


def test_a_repository_refused_as_unsupported_is_a_refusal_in_the_log(
        make_server: Callable[..., RunningServer], client: Client, htpasswd: Path,  # noqa: F811
        tmp_path: Path) -> None:
    """A repository hgwire cannot serve (a share): hg shows the reason, and the log line is the
    refusal, not "ok"."""
    http = HgHttp(make_server("fs", **_settings(htpasswd)), client)
    client.hg("init", str(tmp_path / "source"))
    client.hg("--config", "extensions.share=", "share", "-q", str(tmp_path / "source"), str(http.server.root / "sh"))
    with log_events() as events:
        refused = client.hg("id", http.url("sh"), check=False)
    assert refused.returncode != 0
    outcomes, _audits = _said(events)
    assert outcomes and all(o.startswith("refused: ") for o in outcomes), outcomes


def test_a_transaction_a_killed_hg_left_is_rolled_back_and_logged(
        make_server: Callable[..., RunningServer], client: Client, htpasswd: Path,  # noqa: F811
        tmp_path: Path) -> None:
    """An ``hg commit`` killed on the server leaves its journal: hg would stop and ask for ``hg
    recover``; hgwire rolls it back on the next open, and the operator's log says so (once)."""
    http = HgHttp(make_server("fs", **_settings(htpasswd)), client)
    _repo_with_a_change(client, http.server.root, tmp_path)
    served = http.server.root / "r"
    (served / "f").write_text("f\n")
    client.hg("commit", "-q", "-A", "-m", "kept", cwd=served)
    (served / "f").write_text("killed\n")
    client.hg("commit", "-q", "-m", "killed", "--config", "hooks.pretxncommit=kill -9 $PPID", cwd=served, check=False,
              env={})  # (its own process: the hook kills it)
    assert (served / ".hg" / "store" / "journal").exists()
    with log_events() as events:
        client.hg("clone", "-q", "-U", http.url("r"), str(tmp_path / "c"))
        client.hg("id", http.url("r"))
    assert client.hg("log", "-T", "{desc}\n", cwd=tmp_path / "c").stdout.split() == ["kept"]
    said = [e for e in events if "rolled back an interrupted transaction" in str(e.get("log_format"))]
    assert len(said) == 1 and said[0]["repo"] == "r", said
    assert not (served / ".hg" / "store" / "journal").exists()
    assert client.hg("verify", "-q", cwd=served).returncode == 0


def test_a_push_that_lost_a_race_is_a_refusal_with_its_reason_in_the_audit_log(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, tmp_path: Path) -> None:
    """The client was told "remote repository changed while pushing - please try again (bookmark …)"
    and the audit event said "aborted"."""
    server = make_server("fs", **ssh_server_settings(ssh_keys))
    hgssh = HgSsh(server, client, ssh_keys.command(server.port("ssh")))
    served = server.root / "r"
    client.hg("init", str(served))
    (served / "a").write_text("a\n")
    client.hg("commit", "-q", "-A", "-m", "a", cwd=served)
    client.hg("bookmark", "bm", cwd=served)
    work = tmp_path / "w"
    hgssh.hg("clone", "-q", hgssh.url("r"), str(work))
    (work / "b").write_text("b\n")
    client.hg("commit", "-q", "-A", "-m", "b", cwd=work)
    client.hg("bookmark", "-f", "bm", cwd=work)
    # while the client makes its bundle (after it read the server's bookmarks), bm moves on the server
    (served / "c").write_text("c\n")
    moved = f"hg -R {served} commit -q -A -m c"
    with log_events() as events:
        pushed = hgssh.hg("push", "-R", str(work), "-B", "bm", hgssh.url("r"), "--config",
                          f"hooks.preoutgoing={moved}", check=False)
    told = pushed.stdout + pushed.stderr
    assert pushed.returncode != 0 and "remote repository changed while pushing - please try again" in told, told
    _outcomes, audits = _said(events)
    assert any(a.startswith("refused: remote repository changed while pushing - please try again (bookmark \"bm\" "
                            "move from ")
               for a in audits), audits
    client.hg("verify", "-q", "-R", str(served))


@pytest.mark.parametrize("transport", ["ssh", "http"])
def test_a_bundle1_push_a_hook_refuses_is_logged_as_refused_with_its_reason(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, htpasswd: Path,  # noqa: F811
        tmp_path: Path, transport: str) -> None:
    """A bundle1 push is answered with a result and the server's words: refused, result 0 and an
    ``abort:`` line, the client exits 1; the session's log said "pushed" (SSH) or "ok" (HTTP) all the same."""
    if transport == "ssh":
        server = make_server("fs", **ssh_server_settings(ssh_keys))
        hgssh = HgSsh(server, client, ssh_keys.command(server.port("ssh")))
        url, hg = hgssh.url("r"), hgssh.hg
    else:
        http = HgHttp(make_server("fs", **_settings(htpasswd)), client)
        server, url, hg = http.server, http.push_url("r"), client.hg
    work = _repo_with_a_change(client, server.root, tmp_path)
    (server.root / "r" / ".hg" / "hgrc").write_text("[hooks]\npretxnchangegroup.no = false\n")
    with log_events() as events:
        pushed = hg("push", "-R", str(work), url, "--config", "devel.legacy.exchange=bundle1", check=False)
        server.settled()  # (over SSH the session's line comes when the server sees it close)
    told = pushed.stdout + pushed.stderr
    assert pushed.returncode == 1 and "remote: abort: pretxnchangegroup.no hook exited with status 1" in told, told
    outcomes, audits = _said(events)
    # (HTTP logs each request: capabilities, heads… "ok", the unbundle its outcome)
    refused = [o for o in outcomes if o not in ("ok", "pushed") and not o.startswith("asked to log in")]
    assert refused == ["refused: pretxnchangegroup.no hook exited with status 1"], outcomes
    assert any(a.startswith("refused") for a in audits), audits
