"""A push into a repository whose store files are hardlinked to another's (``hg clone`` of a local
repository hardlinks them, ``cp -al`` too) leaves the other repository as it was, with the real hg client.

As ``hg serve`` does (its vfs copies a file with more than one link before it opens it to append or
truncate), hgwire breaks the link of each store file it writes: the other repository keeps every byte,
also while the push's transaction is pending and after it is rolled back.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Client, RunningServer, SshKeys
from tests.integration.test_hg_hooks import _served
from tests.integration.test_hg_http import htpasswd  # noqa: F401 - a fixture
from tests.integration.test_hg_ssh import _commit


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _hardlinked_pair(client: Client, server: RunningServer, how: str = "hg clone") -> tuple[Path, Path]:
    """``hA`` (three changesets) and ``hB`` on the server's root, made by ``hg clone -U hA hB`` (the
    revlogs are hardlinked) or ``cp -al hA hB`` (every file is)."""
    a, b = server.root / "hA", server.root / "hB"
    client.hg("init", str(a))
    for i in range(3):
        _commit(client, a, f"f{i}.txt", f"{i}\n", f"change {i}")
    client.hg("phase", "-q", "-R", str(a), "-p", "1")
    linked = ["00changelog.i", "00manifest.i", "data/f0.txt.i"]
    if how == "hg clone":
        client.hg("clone", "-q", "-U", str(a), str(b))
    else:
        client.run("cp", "-al", a, b)
        linked += ["fncache", "phaseroots"]
    for name in linked:
        assert (a / ".hg" / "store" / name).samefile(b / ".hg" / "store" / name), name  # as on one filesystem
    return a, b


def _pushed_work(client: Client, a: Path, tmp_path: Path) -> Path:
    """A clone of ``a`` with one more changeset, which adds a file."""
    work = tmp_path / "work-hg"
    client.hg("clone", "-q", str(a), str(work))
    _commit(client, work, "newfile", "new\n", "adds newfile")
    return work


@pytest.mark.parametrize(("kind", "how"), [("ssh", "hg clone"), ("http", "hg clone"), ("ssh", "cp -al")])
def test_a_push_breaks_the_links_and_leaves_the_hardlinked_clone_as_it_was(
        make_server: Any, client: Client, ssh_keys: SshKeys, htpasswd: Path,  # noqa: F811
        tmp_path: Path, kind: str, how: str) -> None:
    peer, url, server = _served(kind, make_server, client, ssh_keys, htpasswd)
    a, b = _hardlinked_pair(client, server, how)
    work = _pushed_work(client, a, tmp_path)
    before = _files(b / ".hg")

    peer.hg("push", "-q", "-R", str(work), url("hA"))

    assert _files(b / ".hg") == before
    for name in ("00changelog.i", "00manifest.i", *(("fncache", "phaseroots") if how == "cp -al" else ())):
        assert not (a / ".hg" / "store" / name).samefile(b / ".hg" / "store" / name), name
    assert (a / ".hg" / "store" / "data" / "f0.txt.i").samefile(b / ".hg" / "store" / "data" / "f0.txt.i")
    assert "newfile" in (a / ".hg" / "store" / "fncache").read_text()
    for repo in (a, b):
        client.hg("verify", "-q", "-R", str(repo))
    assert client.hg("log", "-R", str(a), "-T", "{desc}\n").stdout.splitlines() == [
        "adds newfile", "change 2", "change 1", "change 0"]
    assert client.hg("log", "-R", str(b), "-T", "{desc}\n").stdout.splitlines() == [
        "change 2", "change 1", "change 0"]
    for name in ("hA", "hB"):  # and as served
        clone = tmp_path / f"clone-{name}"
        peer.hg("clone", "-q", "-U", url(name), str(clone))
        client.hg("verify", "-q", "-R", str(clone))


@pytest.mark.parametrize("kind", ["ssh", "http"])
def test_a_refused_push_leaves_both_repositories_as_they_were(
        make_server: Any, client: Client, ssh_keys: SshKeys, htpasswd: Path,  # noqa: F811
        tmp_path: Path, kind: str) -> None:
    """The pushed revisions are written when ``pretxnchangegroup`` runs (it may read them): the hook
    copies what ``hB`` holds then, and refuses; the transaction is rolled back."""
    peer, url, server = _served(kind, make_server, client, ssh_keys, htpasswd)
    a, b = _hardlinked_pair(client, server)
    work = _pushed_work(client, a, tmp_path)
    during = tmp_path / "during"
    (a / ".hg" / "hgrc").write_text(f'[hooks]\npretxnchangegroup.no = cp -R ../hB/.hg "{during}"; exit 1\n')
    before_a, before_b = _files(a / ".hg" / "store"), _files(b / ".hg")

    refused = peer.hg("push", "-R", str(work), url("hA"), check=False)

    assert refused.returncode != 0 and "pretxnchangegroup.no hook exited with status 1" in refused.stderr, refused
    assert _files(during) == before_b  # hB, while hA's transaction was open
    assert _files(b / ".hg") == before_b
    assert _files(a / ".hg" / "store") == before_a
    for repo in (a, b):
        client.hg("verify", "-q", "-R", str(repo))
    shutil.rmtree(during)
    (a / ".hg" / "hgrc").unlink()
    peer.hg("push", "-q", "-R", str(work), url("hA"))  # the same push, accepted, still leaves hB alone
    assert _files(b / ".hg") == before_b
    for repo in (a, b):
        client.hg("verify", "-q", "-R", str(repo))
