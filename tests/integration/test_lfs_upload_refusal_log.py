"""A refused LFS upload is logged as refused, with its reason, and no log line of it says ok: hg's
LFS client's PUT, git-lfs's over HTTP, and git-lfs's ``put-object`` over ``git-lfs-transfer``,
whose SSH session line said "ok" of a session that refused its upload."""

# ruff: noqa: F811  (the htpasswd fixture, imported from test_hg_http, is a test's parameter)
from __future__ import annotations

import errno
import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backends.interfaces import Kind
from tests.conftest import Client, SshKeys
from tests.conftest import log_events as logged
from tests.integration.test_hg_hooks import _served
from tests.integration.test_hg_http import htpasswd  # noqa: F401 - a fixture

FULL = "the server could not store the upload (No space left on device)"
LFS = ("--config", "extensions.lfs=", "--config", 'lfs.track=size(">1KB")')
needs_git_lfs = pytest.mark.skipif(shutil.which("git-lfs") is None,
                                   reason="the git-lfs client is not installed (make test installs it)")


@pytest.fixture
def log_events() -> Iterator[list[dict[str, Any]]]:
    with logged() as events:
        yield events


def _full(*_args: Any, **_kwargs: Any) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _lfs_outcomes(events: list[dict[str, Any]]) -> list[str]:
    """What the LFS API's request lines said (``git-lfs REPO: …``)."""
    return [str(e["outcome"]) for e in events if e.get("proto") == "git-lfs" and "outcome" in e]


def test_an_hg_lfs_upload_the_disk_cannot_hold_is_logged_refused(
        make_server: Any, client: Client, ssh_keys: SshKeys, htpasswd: Path, tmp_path: Path,
        log_events: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    peer, url, server = _served("http", make_server, client, ssh_keys, htpasswd)
    repo = server.root / "blobs"
    client.hg("init", str(repo))
    (repo / ".hg" / "hgrc").write_text("[extensions]\nlfs =\n")
    work = tmp_path / "work"
    peer.hg(*LFS, "clone", "-q", url("blobs"), str(work))
    (work / "big.bin").write_bytes(os.urandom(1 << 16))
    client.hg(*LFS, "commit", "-q", "-A", "-m", "big", cwd=work)
    with monkeypatch.context() as patched:
        patched.setattr(os, "fsync", _full)
        refused = peer.hg(*LFS, "push", "-R", str(work), url("blobs"), check=False)
    assert refused.returncode != 0 and f"HTTP Error 507: {FULL}" in refused.stderr, refused.stderr
    outcomes = _lfs_outcomes(log_events)
    assert outcomes[-1].startswith(f"refused 507: {FULL}"), outcomes
    assert not [o for o in outcomes if o.startswith("ok: stored")], outcomes


@needs_git_lfs
@pytest.mark.parametrize("kind", ["ssh", "http"])
def test_a_git_lfs_upload_the_disk_cannot_hold_is_logged_refused(
        kind: str, make_server: Any, client: Client, ssh_keys: SshKeys, tmp_path: Path,
        log_events: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    """Over SSH git-lfs opens several ``git-lfs-transfer`` sessions; the one whose ``put-object``
    was refused ends (exit 0, as the protocol has it) with a log line that says so, not "ok"."""
    from tests.integration.test_git_lfs import _tracked_work
    from tests.integration.test_git_transports import TRANSPORTS

    server = TRANSPORTS[kind](make_server, "fs", client, ssh_keys, tmp_path)
    server.running.backend.create("media", Kind.GIT)
    work = _tracked_work(client, server.git_url("media"), os.urandom(300_000))
    with monkeypatch.context() as patched:
        patched.setattr(os, "fsync", _full)
        refused = client.git("-c", "lfs.transfer.maxretries=1", "push", "origin", "HEAD:main", cwd=work, check=False)
    assert refused.returncode != 0
    outcomes = _lfs_outcomes(log_events)
    assert [o for o in outcomes if FULL in o], outcomes
    assert not [o for o in outcomes if o.startswith("ok: stored")], outcomes
    if kind == "ssh":
        server.running.settled()  # (a session's line comes when the server sees it close, maybe after git)
        sessions = [str(e["outcome"]) for e in log_events
                    if e.get("service") == "git-lfs-transfer-upload" and "outcome" in e]
        refusals = [o for o in sessions if o.startswith("refused: put-object 507: " + FULL)]
        assert refusals, sessions
        assert len(refusals) + sessions.count("ok") == len(sessions), sessions



def _push_damaged(kind: str, make_server: Any, client: Client, ssh_keys: SshKeys,
                  tmp_path: Path) -> tuple[Any, Path, subprocess.CompletedProcess[str]]:
    """A push over ``kind`` of a commit whose LFS object's copy in the clone was damaged after the
    commit (git-lfs sends it as it is): the server, the clone, and what the push gave."""
    from tests.integration.test_git_lfs import _tracked_work
    from tests.integration.test_git_transports import TRANSPORTS

    server = TRANSPORTS[kind](make_server, "fs", client, ssh_keys, tmp_path)
    server.running.backend.create("media", Kind.GIT)
    data = os.urandom(300_000)
    work = _tracked_work(client, server.git_url("media"), data)
    oid = hashlib.sha256(data).hexdigest()
    kept = work / ".git" / "lfs" / "objects" / oid[:2] / oid[2:4] / oid
    kept.chmod(0o644)
    kept.write_bytes(os.urandom(len(data)))
    pushed = client.git("-c", "lfs.transfer.maxretries=1", "push", "origin", "HEAD:main", cwd=work, check=False)
    return server, work, pushed


@needs_git_lfs
def test_a_git_lfs_transfer_upload_that_does_not_hash_to_its_name_is_logged_refused(
        make_server: Any, client: Client, ssh_keys: SshKeys, tmp_path: Path,
        log_events: list[dict[str, Any]]) -> None:
    """The server refuses the damaged upload (422), and the session that carried it says so."""
    server, _work, refused = _push_damaged("ssh", make_server, client, ssh_keys, tmp_path)
    assert refused.returncode != 0
    server.running.settled()  # (a session's line comes when the server sees it close, maybe after git)
    assert "the upload's contents do not match its hash" in refused.stderr, refused.stderr
    sessions = [str(e["outcome"]) for e in log_events
                if e.get("service") == "git-lfs-transfer-upload" and "outcome" in e]
    told = "refused: put-object 422: the upload's contents do not match its hash"
    assert told in sessions, sessions
    assert sessions.count(told) + sessions.count("ok") == len(sessions), sessions


@needs_git_lfs
def test_a_git_lfs_http_upload_that_does_not_hash_to_its_name_fails_the_push(
        make_server: Any, client: Client, ssh_keys: SshKeys, tmp_path: Path,
        log_events: list[dict[str, Any]]) -> None:
    """Over HTTP git-lfs 3.3 read the 422 hgwire answered as "unsupported Content-Type header(s)",
    went on, and the push landed a ref whose LFS object the server does not have; the refusal is now
    one git-lfs fails the push on."""
    server, work, refused = _push_damaged("http", make_server, client, ssh_keys, tmp_path)
    assert refused.returncode != 0, refused.stderr
    assert "the upload's contents do not match its hash" in refused.stderr, refused.stderr
    listed = client.git("ls-remote", server.git_url("media"), cwd=work).stdout
    assert "refs/heads/main" not in listed, listed
    assert any(str(e.get("outcome", "")).startswith("refused 4") and "do not match its hash" in str(e.get("outcome"))
               for e in log_events), [e.get("outcome") for e in log_events if "outcome" in e]
