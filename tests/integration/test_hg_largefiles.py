"""Mercurial's largefiles extension served over SSH and HTTP, with the real hg client and the
extension on both sides: a push uploads the big files (``statlfile``, ``putlfile``) before its
changesets, a clone downloads what its update needs (``getlfile``), the repository gains the
``largefiles`` requirement as with ``hg serve``, and a client without the extension is told to
enable it.  A repository whose hgrc does not enable the extension offers none of it."""

# ruff: noqa: F811  (the htpasswd fixture, imported from test_hg_http, is each test's parameter)
from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Client, RunningServer, SshKeys
from tests.integration.test_hg_hooks import _served
from tests.integration.test_hg_http import htpasswd  # noqa: F401 - a fixture

LF = ("--config", "extensions.largefiles=")


def largefiles_clone(peer: Any, url: Callable[[str], str], server: RunningServer, client: Client,
                     tmp_path: Path) -> tuple[Path, Path]:
    """A repository ``big`` on the server whose hgrc enables the extension, and a clone of it made
    with the extension: their paths."""
    repo = server.root / "big"
    client.hg("init", str(repo))
    (repo / ".hg" / "hgrc").write_text("[extensions]\nlargefiles =\n")
    work = tmp_path / "work"
    peer.hg(*LF, "clone", "-q", url("big"), str(work))
    return repo, work


@pytest.mark.parametrize("kind", ["ssh", "http"])
def test_largefiles_go_up_with_a_push_and_come_down_with_a_clone(
        kind: str, make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys,
        htpasswd: Path, tmp_path: Path) -> None:
    peer, url, server = _served(kind, make_server, client, ssh_keys, htpasswd)
    repo, work = largefiles_clone(peer, url, server, client, tmp_path)
    data = os.urandom(3 << 20) + b"the end\n"
    (work / "blob.bin").write_bytes(data)
    (work / "small.txt").write_text("small\n")
    client.hg(*LF, "add", "-q", "--large", str(work / "blob.bin"), str(work / "small.txt"), cwd=work)
    client.hg(*LF, "commit", "-q", "-m", "big and small", cwd=work)
    pushed = peer.hg(*LF, "push", "-R", str(work), url("big"))
    assert "searching for changes" in pushed.stdout

    sha = hashlib.sha1(data).hexdigest()
    assert (repo / ".hg" / "largefiles" / sha).read_bytes() == data
    requires = (repo / ".hg" / "store" / "requires").read_text().split()
    assert "largefiles" in requires, "as the extension's checkrequireslfiles adds it"
    client.hg(*LF, "verify", "-q", "--large", "--lfa", "-R", str(repo))

    clone = tmp_path / "clone"
    peer.hg(*LF, "--config", "largefiles.usercache=" + str(tmp_path / "cache"), "clone", "-q", url("big"),
            str(clone))
    assert (clone / "blob.bin").read_bytes() == data, "getlfile brought it"
    assert (clone / "small.txt").read_text() == "small\n"

    plain = peer.hg("clone", url("big"), str(tmp_path / "plain"), check=False)  # not quiet: remote lines shown
    assert plain.returncode != 0
    said = plain.stdout + plain.stderr
    assert "This repository uses the largefiles extension" in said, said


@pytest.mark.parametrize("kind", ["ssh", "http"])
def test_a_repository_without_the_extension_serves_no_largefiles(
        kind: str, make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys,
        htpasswd: Path, tmp_path: Path) -> None:
    peer, url, server = _served(kind, make_server, client, ssh_keys, htpasswd)
    repo = server.root / "plain"
    client.hg("init", str(repo))
    caps = peer.hg(*LF, "debugcapabilities", url("plain")).stdout
    assert "largefiles" not in caps
    work = tmp_path / "work"
    peer.hg(*LF, "clone", "-q", url("plain"), str(work))
    (work / "blob.bin").write_bytes(b"x" * 1000)
    client.hg(*LF, "add", "-q", "--large", str(work / "blob.bin"), cwd=work)
    client.hg(*LF, "commit", "-q", "-m", "big", cwd=work)
    refused = peer.hg(*LF, "push", "-R", str(work), url("plain"), check=False)
    assert refused.returncode != 0
    assert not (repo / ".hg" / "largefiles").exists()
    assert client.hg("log", "-R", str(repo), "-T", "{node}\n").stdout == ""
