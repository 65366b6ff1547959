"""A refused largefiles upload (``putlfile``) is logged as refused, with its reason, over SSH and
HTTP: its answer is ``1`` and a ``largefiles:`` line (a file whose bytes do not hash to its name, a
repository that serves no largefiles) or an error (a disk that cannot hold it), never "pushed"/"ok"."""

# ruff: noqa: F811  (the htpasswd fixture, imported from test_hg_http, is each test's parameter)
from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Client, RunningServer, SshKeys, ssh_server_settings
from tests.conftest import log_events as logged
from tests.integration.test_hg_hooks import _served
from tests.integration.test_hg_http import HgHttp, _settings, htpasswd  # noqa: F401 - a fixture
from tests.integration.test_hg_largefiles import LF, largefiles_clone
from tests.integration.test_hg_ssh import HgSsh


@pytest.fixture
def log_events() -> Iterator[list[dict[str, Any]]]:
    with logged() as events:
        yield events


def _committed(client: Client, work: Path) -> Path:
    """A largefile added and committed in ``work``: the client's copy of it, in its store."""
    (work / "blob.bin").write_bytes(os.urandom(100_000))
    client.hg(*LF, "add", "-q", "--large", str(work / "blob.bin"), cwd=work)
    client.hg(*LF, "commit", "-q", "-m", "big", cwd=work)
    sha = (work / ".hglf" / "blob.bin").read_text().strip()
    return work / ".hg" / "largefiles" / sha


def _read_only_served(kind: str, make_server: Any, client: Client, ssh_keys: SshKeys,
                      htpasswd: Path) -> tuple[Any, Callable[[str], str], RunningServer]:
    if kind == "ssh":
        server = make_server("fs", read_only=True, **ssh_server_settings(ssh_keys))
        ssh = HgSsh(server, client, ssh_keys.command(server.port("ssh")))
        return ssh, ssh.url, server
    server = make_server("fs", **_settings(htpasswd, read_only=True))
    http = HgHttp(server, client)
    return http, http.push_url, server


def _pushes(events: list[dict[str, Any]], kind: str, server: RunningServer) -> list[str]:
    """The outcome of each SSH session (the push is the last), or of each HTTP putlfile."""
    if kind == "ssh":
        server.settled()  # (a session's line comes when the server sees it close, maybe after the client)
        return [str(e["outcome"]) for e in events if e.get("proto") == "hg-ssh" and "outcome" in e]
    return [str(e["outcome"]) for e in events if e.get("command") == "putlfile" and "outcome" in e]


@pytest.mark.parametrize("kind", ["ssh", "http"])
def test_a_largefile_that_does_not_hash_to_its_name_is_logged_refused(
        kind: str, make_server: Any, client: Client, ssh_keys: SshKeys, htpasswd: Path, tmp_path: Path,
        log_events: list[dict[str, Any]]) -> None:
    peer, url, server = _served(kind, make_server, client, ssh_keys, htpasswd)
    repo, work = largefiles_clone(peer, url, server, client, tmp_path)
    kept = _committed(client, work)
    kept.chmod(0o644)
    kept.write_bytes(b"not what its name says\n")
    refused = peer.hg(*LF, "push", "-R", str(work), url("big"), check=False)
    assert refused.returncode != 0
    assert "largefiles: failed to put" in refused.stdout + refused.stderr
    outcomes = _pushes(log_events, kind, server)
    assert outcomes[-1].startswith("refused: largefiles: failed to put "), outcomes
    assert outcomes[-1].endswith("into store: the upload's contents do not match its hash"), outcomes
    assert not (repo / ".hg" / "largefiles").exists() or not list((repo / ".hg" / "largefiles").iterdir())


@pytest.mark.parametrize("kind", ["ssh", "http"])
def test_a_largefile_pushed_to_a_read_only_server_is_logged_refused(
        kind: str, make_server: Any, client: Client, ssh_keys: SshKeys, htpasswd: Path, tmp_path: Path,
        log_events: list[dict[str, Any]]) -> None:
    peer, url, server = _read_only_served(kind, make_server, client, ssh_keys, htpasswd)
    _, work = largefiles_clone(peer, url, server, client, tmp_path)
    _committed(client, work)
    refused = peer.hg(*LF, "push", "-R", str(work), url("big"), check=False)
    assert refused.returncode != 0
    outcomes = _pushes(log_events, kind, server)
    assert outcomes[-1].startswith("refused") or "(403)" in outcomes[-1], outcomes
    assert "read-only" in outcomes[-1], outcomes


@pytest.mark.parametrize("kind", ["ssh", "http"])
def test_a_largefile_the_disk_cannot_hold_is_logged_refused(
        kind: str, make_server: Any, client: Client, ssh_keys: SshKeys, htpasswd: Path, tmp_path: Path,
        log_events: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    peer, url, server = _served(kind, make_server, client, ssh_keys, htpasswd)
    _, work = largefiles_clone(peer, url, server, client, tmp_path)
    _committed(client, work)
    with monkeypatch.context() as patched:
        patched.setattr(os, "fsync", _full)
        refused = peer.hg(*LF, "push", "-R", str(work), url("big"), check=False)
    assert refused.returncode != 0
    outcomes = _pushes(log_events, kind, server)
    assert "could not store the upload (No space left on device)" in outcomes[-1], outcomes
    assert not outcomes[-1].startswith(("ok", "pushed")), outcomes


def _full(*_args: Any, **_kwargs: Any) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
