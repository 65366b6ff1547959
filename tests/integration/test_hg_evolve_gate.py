"""hg-evolve's ``[experimental] topic.server-gate-topic-changesets``: a client without the topic
extension is not shown the drafts with a topic (``heads`` leaves them and their descendants out),
one with it asks ``_exttopics_heads`` and gets every head; hgwire against ``hg serve --stdio`` (a fake
ssh) on a copy with the same hgrc.  Skipped, saying so, where hg-evolve is not importable.

hgwire's hg client runs in processes forked from hg's chg server (``ForkedClient`` of
test_hg_evolve_topics: the real client code, over the real ssh and HTTP); the evolve area's tests with a
client process of its own are test_hg_evolve_topics'
``test_a_topic_names_its_newest_changeset_for_pull_and_clone``."""

# ruff: noqa: F811  (the htpasswd fixture, imported from test_hg_http, is each test's parameter)
from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Client, RunningServer, SshKeys
from tests.integration.test_hg_evolve_topics import (
    EXTENSIONS,
    HG_EVOLVE,
    SERVER_HGRC,
    _commit,
    _phases,
    _reference_hg,
    _setup,
    client,  # noqa: F401 - a fixture (local commands in an evolve-loaded command server)
)
from tests.integration.test_hg_http import htpasswd  # noqa: F401 - a fixture

pytestmark = pytest.mark.skipif(HG_EVOLVE is None, reason="hg-evolve is not installed where hg runs "
                                "(pip install hg-evolve, as the test extra does): no evolve or topic client to test with")


@pytest.mark.parametrize("kind", ["ssh", "http"])
def test_gate_hides_the_topics_from_clients_without_the_extension(
        kind: str, make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys,
        htpasswd: Path, tmp_path: Path) -> None:
    """With the setting, hg serve's ``heads`` leaves out the drafts with a topic and their
    descendants, so a client without the extension clones the rest; hgwire showed it every head
    (and did not answer ``_exttopics_heads``, so gating them would have hidden them from everyone)."""
    hgrc = SERVER_HGRC + "[experimental]\ntopic.server-gate-topic-changesets = yes\n"
    peer, url, repo = _setup(kind, make_server, client, ssh_keys, htpasswd, hgrc)
    work = tmp_path / "work"
    peer.hg(*EXTENSIONS, "clone", "-q", url("team"), str(work))
    base = _commit(client, work, "base")
    peer.hg(*EXTENSIONS, "push", "-q", "--publish", "-R", str(work), url("team"))
    client.hg(*EXTENSIONS, "topic", "-q", "-R", str(work), "feat")
    _commit(client, work, "f1")
    client.hg(*EXTENSIONS, "topic", "-q", "-R", str(work), "--clear")
    _commit(client, work, "on-f1")  # a bare draft above a topic's: gated too
    client.hg(*EXTENSIONS, "update", "-q", "-R", str(work), base)
    _commit(client, work, "bare")
    peer.hg(*EXTENSIONS, "push", "-q", "-f", "-R", str(work), url("team"))
    reference = tmp_path / "reference"
    shutil.copytree(repo, reference)
    assert "_exttopics_heads" in peer.hg(*EXTENSIONS, "debugcapabilities", url("team")).stdout.split()

    old, theirs = tmp_path / "old", tmp_path / "old-reference"
    peer.hg("clone", "-q", "-U", url("team"), str(old))  # no extension
    cloned = _reference_hg(client, tmp_path, reference, "clone", "-q", "-U", f"ssh://ref/{reference}", str(theirs),
                           client_extensions=())
    assert cloned.returncode == 0, cloned.stderr
    shown = client.hg("log", "-R", str(old), "-T", "{desc}\n").stdout.splitlines()
    assert shown == client.hg("log", "-R", str(theirs), "-T", "{desc}\n").stdout.splitlines() == ["bare", "base"]

    new = tmp_path / "new"
    peer.hg(*EXTENSIONS, "clone", "-q", "-U", url("team"), str(new))
    assert _phases(client, new) == _phases(client, repo) == [
        "draft  bare", "draft  on-f1", "draft feat f1", "public  base"]
    pulled = peer.hg("pull", "-R", str(old), url("team"))
    assert "no changes found" in pulled.stdout
