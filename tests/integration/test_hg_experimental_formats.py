"""Repositories of hg's experimental formats (``format.exp-use-changelog-v2``,
``experimental.revlogv2``, each made only when told ``enable-unstable-format-and-corrupt-my-data``),
which hgwire does not read: the refusal named the requirement and no way on; it now says to make a
new one in today's format, which ``hg clone --pull`` does."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import LOOPBACK, Client, RunningServer, SshKeys
from tests.integration.test_hg_hooks import _served
from tests.integration.test_hg_http import htpasswd  # noqa: F401 - a fixture

UNSTABLE = "enable-unstable-format-and-corrupt-my-data"


@pytest.mark.parametrize(("setting", "requirement"), [
    ("format.exp-use-changelog-v2", "exp-changelog-v2"),
    ("experimental.revlogv2", "exp-revlogv2.2"),
])
def test_an_experimental_format_is_refused_saying_how_to_serve_it(make_server: Callable[..., RunningServer],
                                                                  client: Client, setting: str,
                                                                  requirement: str) -> None:
    server = make_server("fs", http=[LOOPBACK])
    repo = server.root / "exp"
    client.hg("init", "--config", f"{setting}={UNSTABLE}", "--config", "storage.fileindex.slow-path=allow", repo)
    assert requirement in (repo / ".hg" / "store" / "requires").read_text()
    refused = client.hg("clone", "-U", server.url("http", "exp"), client.cwd / "copy", check=False)
    assert refused.returncode != 0
    assert f"unsupported repository feature: {requirement} (an experimental format" in refused.stderr, refused.stderr
    assert "'hg clone --pull OLD NEW' to serve it" in refused.stderr
    client.hg("clone", "-q", "-U", "--pull", "--config", "storage.fileindex.slow-path=allow", repo,
              server.root / "today")  # what the refusal says does serve it
    client.hg("clone", "-q", "-U", server.url("http", "today"), client.cwd / "served")


def test_a_repository_keeping_copies_in_sidedata_is_refused_naming_the_setting_that_made_it(
        make_server: Callable[..., RunningServer], client: Client) -> None:
    """``format.exp-use-copies-side-data-changeset = yes`` makes ``exp-changelog-v2`` without being told
    the data may be corrupted: the refusal said it was, and named no setting."""
    server = make_server("fs", http=[LOOPBACK])
    repo = server.root / "sidedata"
    client.hg("init", "--config", "format.exp-use-copies-side-data-changeset=yes", repo)
    (repo / "a").write_text("a\n")
    client.hg("commit", "-q", "-A", "-R", repo, "-m", "a")
    client.hg("mv", "-R", repo, repo / "a", repo / "b")
    client.hg("commit", "-q", "-R", repo, "-m", "rename")
    refused = client.hg("clone", "-U", server.url("http", "sidedata"), client.cwd / "copy", check=False)
    assert refused.returncode != 0
    assert ("unsupported repository feature: exp-changelog-v2 (an experimental format of hg's that keeps copies "
            "in changeset sidedata, which format.exp-use-copies-side-data-changeset makes); make a new one of it "
            "in today's format with 'hg clone --pull OLD NEW' to serve it (its copies and renames are kept)"
            in refused.stderr), refused.stderr
    client.hg("clone", "-q", "-U", "--pull", repo, server.root / "today")
    client.hg("clone", "-q", server.url("http", "today"), client.cwd / "served")
    followed = client.hg("log", "-R", client.cwd / "served", "-f", client.cwd / "served" / "b", "-T", "{desc}|")
    assert followed.stdout == "rename|a|"


@pytest.mark.parametrize("kind", ["ssh", "http"])
def test_a_push_of_tree_manifests_is_refused_saying_so(kind: str, make_server: Callable[..., RunningServer],
                                                        client: Client, ssh_keys: SshKeys, htpasswd: Path,  # noqa: F811
                                                        tmp_path: Path) -> None:
    """A client whose repository was made with ``experimental.treemanifest`` (which hgwire does not serve)
    was told "abort: missing support for changegroup - treemanifest"."""
    peer, url, server = _served(kind, make_server, client, ssh_keys, htpasswd)
    client.hg("init", server.root / "flat")
    work = tmp_path / "trees"
    client.hg("init", "--config", "experimental.treemanifest=1", work)
    (work / "d").mkdir()
    (work / "d" / "a").write_text("a\n")
    client.hg("commit", "-q", "-A", "-R", work, "-m", "a")
    refused = peer.hg("push", "-R", str(work), url("flat"), check=False)
    assert refused.returncode != 0
    assert ("remote: this push holds tree manifests (its repository was made with experimental.treemanifest), which "
            "this server does not serve; push it to a server that serves that format\n"
            "abort: push failed on remote\n") in refused.stderr, refused.stderr
    assert client.hg("log", "-R", server.root / "flat", "-T", "x").stdout == ""
    assert "treemanifest" not in (server.root / "flat" / ".hg" / "store" / "requires").read_text()
