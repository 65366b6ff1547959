"""A Mercurial repository with ``persistent-nodemap`` (what a Rust-enabled hg creates), served over SSH
and HTTP to the real hg client: clone, stream clone, push; hg's own tools read the result."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Client, SshKeys
from tests.integration.test_hg_hooks import _served
from tests.integration.test_hg_http import htpasswd  # noqa: F401 - a fixture

SLOW_PATH = ("--config", "storage.revlog.persistent-nodemap.slow-path=allow")
"""This hg has no Rust extensions: it reads such repositories only when told it may, slowly."""


def _nodemap_repo(client: Client, repo: Path) -> list[str]:
    """A repository whose changelog is not inline (the nodemap only serves those), with its nodemap."""
    client.hg("init", *SLOW_PATH, "--config", "format.use-persistent-nodemap=yes", str(repo))
    (repo / "a.txt").write_text("a\n")
    client.hg("commit", *SLOW_PATH, "-q", "-A", "-R", str(repo), "-l", "/dev/stdin",
              input=b"a long description\n" + os.urandom(100_000).hex().encode())
    for i in range(3):
        (repo / f"f{i}.txt").write_text(f"{i}\n")
        client.hg("commit", *SLOW_PATH, "-q", "-A", "-R", str(repo), "-m", f"change {i}")
    assert "persistent-nodemap" in (repo / ".hg" / "store" / "requires").read_text()
    assert (repo / ".hg" / "store" / "00changelog.n").exists() and (repo / ".hg" / "store" / "00changelog.d").exists()
    return client.hg("log", *SLOW_PATH, "-R", str(repo), "-r", "0:", "-T", "{node}\n").stdout.split()


def _metadata(client: Client, repo: Path) -> str:
    return client.hg("debugnodemap", *SLOW_PATH, "--metadata", "-R", str(repo)).stdout


@pytest.mark.parametrize("kind", ["ssh", "http"])
def test_a_persistent_nodemap_repository_is_served_and_stays_readable(
        make_server: Any, client: Client, ssh_keys: SshKeys, htpasswd: Path, tmp_path: Path, kind: str) -> None:
    peer, url, server = _served(kind, make_server, client, ssh_keys, htpasswd)
    repo = server.root / "fast"
    before = _nodemap_repo(client, repo)
    docket = _metadata(client, repo)
    assert "tip-rev: 3" in docket

    work = tmp_path / "work"
    peer.hg("clone", "-q", url("fast"), str(work))
    assert client.hg("log", "-R", str(work), "-r", "0:", "-T", "{node}\n").stdout.split() == before
    for i in range(3):
        (work / f"new{i}.txt").write_text(f"new {i}\n")
        client.hg("commit", "-q", "-A", "-R", str(work), "-m", f"pushed {i}")
    pushed = client.hg("log", "-R", str(work), "-r", "4:", "-T", "{node}\n").stdout.split()
    peer.hg("push", "-q", "-R", str(work), url("fast"))

    # hg's readers: the nodemap still ends at revision 3; the pushed revisions are found by full and
    # short id all the same, and the repository verifies
    assert _metadata(client, repo) == docket
    for rev, node in enumerate(pushed, start=4):
        for key in (node, node[:12]):
            assert client.hg("log", *SLOW_PATH, "-R", str(repo), "-r", key, "-T", "{rev}").stdout == str(rev)
    client.hg("verify", *SLOW_PATH, "-q", "-R", str(repo))
    # hg brings its nodemap up to date when asked (or at its next write)
    client.hg("debugupdatecaches", *SLOW_PATH, "-R", str(repo))
    assert "tip-rev: 6" in _metadata(client, repo)
    client.hg("debugnodemap", *SLOW_PATH, "--check", "-R", str(repo))

    streamed = tmp_path / "streamed"
    done = peer.hg("clone", "-U", "--stream", url("fast"), str(streamed))
    assert "files to transfer" in done.stdout, done  # no streamreqs for it, as from hg serve
    assert client.hg("log", "-R", str(streamed), "-r", "0:", "-T", "{node}\n").stdout.split() == before + pushed
    client.hg("verify", "-q", "-R", str(streamed))
