"""Mercurial subrepositories over SSH and HTTP with the real hg client, as with ``hg serve`` (tried side by
side, with hgweb's collections and ``hg serve --stdio``): a parent whose ``.hgsub`` names ``sub = sub``
(a repository nested in the parent's working directory, reached at ``parent/sub``) and ``other =
../other`` (a sibling).  ``hg clone`` clones each subrepository from the URL beside the parent's, ``hg
push`` pushes the subrepositories first, ``hg pull -u`` pulls each one the new ``.hgsubstate`` names."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Client, RunningServer, SshKeys
from tests.integration.test_hg_hooks import _served
from tests.integration.test_hg_http import htpasswd  # noqa: F401 - a fixture


def _commit(client: Client, repo: Path, name: str, text: str) -> None:
    (repo / name).write_text(text)
    client.hg("commit", "-q", "-A", "-R", str(repo), "-m", f"{name} {text.strip()}")


def _served_parent(client: Client, root: Path, tmp_path: Path) -> None:
    """``root/parent`` with ``sub`` nested in its working directory and ``root/other`` beside it."""
    source = tmp_path / "source"
    client.hg("init", str(source / "other"))
    _commit(client, source / "other", "o", "o0\n")
    client.hg("init", str(source / "parent"))
    client.hg("init", str(source / "parent" / "sub"))
    _commit(client, source / "parent" / "sub", "s", "s0\n")
    client.hg("clone", "-q", str(source / "other"), str(source / "parent" / "other"))
    (source / "parent" / ".hgsub").write_text("sub = sub\nother = ../other\n")
    _commit(client, source / "parent", "p", "p0\n")
    for name in ("parent", "other"):
        client.hg("clone", "-q", "-U", str(source / name), str(root / name))
    client.hg("clone", "-q", "-U", str(source / "parent" / "sub"), str(root / "parent" / "sub"))


def _descs(client: Client, repo: Path) -> list[str]:
    return client.hg("log", "-R", str(repo), "-T", "{desc}\n").stdout.splitlines()


@pytest.mark.parametrize("kind", ["ssh", "http"])
def test_clone_push_and_pull_of_subrepositories_nested_and_beside(
        kind: str, make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys,
        htpasswd: Path, tmp_path: Path) -> None:  # noqa: F811
    peer, url, server = _served(kind, make_server, client, ssh_keys, htpasswd)
    _served_parent(client, server.root, tmp_path)
    first, second = tmp_path / "first", tmp_path / "second"
    for clone in (first, second):
        cloned = peer.hg("clone", url("parent"), str(clone))
        said = cloned.stdout + cloned.stderr
        assert "cloning subrepo other from " in said and "cloning subrepo sub from " in said, said
    assert (first / "sub" / "s").read_text() == "s0\n" and (first / "other" / "o").read_text() == "o0\n"

    _commit(client, first / "sub", "s", "s1\n")
    _commit(client, first / "other", "o", "o1\n")
    _commit(client, first, "p", "p1\n")
    pushed = peer.hg("push", "-R", str(first), url("parent"))
    said = [line.split(" to ")[0] for line in pushed.stdout.splitlines() if line.startswith("pushing ")]
    assert said == ["pushing", "pushing subrepo other", "pushing subrepo sub"], pushed.stdout
    assert _descs(client, server.root / "parent" / "sub") == ["s s1", "s s0"]
    assert _descs(client, server.root / "other") == ["o o1", "o o0"]
    assert _descs(client, server.root / "parent") == ["p p1", "p p0"]
    for name in ("parent/sub", "other"):
        client.hg("verify", "-q", "-R", str(server.root / name))

    pulled = peer.hg("pull", "-u", "-R", str(second), url("parent"))
    said = pulled.stdout + pulled.stderr
    assert "pulling subrepo other from " in said and "pulling subrepo sub from " in said, said
    assert (second / "sub" / "s").read_text() == "s1\n" and (second / "other" / "o").read_text() == "o1\n"
    assert (second / "p").read_text() == "p1\n"
