"""hg-evolve's ``[experimental] topic-mode.server`` on a repository served by hgwire over SSH and
HTTP (``enforce``, ``warning``, a mode the extension does not know), on the real evolve-enabled
client, each compared with hg's own ``hg serve --stdio`` (a fake ssh) on a copy with the same hgrc
(test_hg_evolve_topics' way, in a module of its own so that ``--dist loadfile`` can run it beside
that one).

hgwire's hg client runs in processes forked from hg's chg server (``ForkedClient`` of
test_hg_evolve_topics: the real client code, over the real ssh and HTTP); the evolve area's tests with a
client process of its own are test_hg_evolve_topics'
``test_a_topic_names_its_newest_changeset_for_pull_and_clone``.

Skipped, saying so, where hg-evolve is not importable by the Python that runs ``hg``."""

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
    _push_to_reference,
    _with_reference,
    client,  # noqa: F401 - a fixture (local commands in an evolve-loaded command server)
)
from tests.integration.test_hg_http import htpasswd  # noqa: F401 - a fixture

pytestmark = pytest.mark.skipif(HG_EVOLVE is None, reason="hg-evolve is not installed where hg runs "
                                "(pip install hg-evolve, as the test extra does): no evolve or topic client to test with")


@pytest.mark.parametrize("kind", ["ssh", "http"])
def test_topic_mode_enforce_refuses_drafts_without_a_topic(
        kind: str, make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys,
        htpasswd: Path, tmp_path: Path) -> None:
    """``[experimental] topic-mode.server = enforce``: ``hg serve`` refuses a push leaving drafts
    without a topic ("rejecting draft changesets: X and 1 more"); hgwire took them."""
    hgrc = SERVER_HGRC + "[experimental]\ntopic-mode.server = enforce\n"
    peer, url, repo, reference = _with_reference(kind, make_server, client, ssh_keys, htpasswd, tmp_path,
                                                  hgrc)
    work = tmp_path / "work"
    peer.hg(*EXTENSIONS, "clone", "-q", url("team"), str(work))
    first = _commit(client, work, "bare1")
    _commit(client, work, "bare2")
    theirs = tmp_path / "theirs"
    shutil.copytree(work, theirs)

    refused = peer.hg(*EXTENSIONS, "push", "-R", str(work), url("team"), check=False)
    expected = _push_to_reference(client, tmp_path, theirs, reference)
    words = f"rejecting draft changesets: {first[:12]} and 1 more"
    assert refused.returncode == expected.returncode == 255
    assert f"remote: {words}\n" in expected.stdout + expected.stderr
    assert f"remote: {words}; " in refused.stdout + refused.stderr
    assert "hg push --publish" in refused.stdout + refused.stderr
    assert _phases(client, repo) == _phases(client, reference) == []

    published = peer.hg(*EXTENSIONS, "push", "--publish", "-R", str(theirs), url("team"), check=False)
    assert published.returncode == 0, published.stderr  # published by the same push: taken, as by hg serve
    client.hg(*EXTENSIONS, "topic", "-q", "-R", str(work), "feat")  # on a topic: taken
    _commit(client, work, "f1")
    peer.hg(*EXTENSIONS, "push", "-q", "-R", str(work), url("team"))
    assert _phases(client, repo) == ["draft feat f1", "public  bare2", "public  bare1"]


@pytest.mark.parametrize("kind", ["ssh", "http"])
@pytest.mark.parametrize("mode", ["warning", "stern"])
def test_topic_mode_warning_takes_drafts_without_a_topic_and_names_them(
        kind: str, mode: str, make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys,
        htpasswd: Path, tmp_path: Path) -> None:
    """``[experimental] topic-mode.server = warning``: ``hg serve`` takes a push leaving drafts without
    a topic and says so ("pushed draft changeset without topic: X and 1 more"); a mode the extension
    does not know, "unknown 'topic-mode.server': X".  hgwire took them and said nothing."""
    hgrc = SERVER_HGRC + f"[experimental]\ntopic-mode.server = {mode}\n"
    peer, url, repo, reference = _with_reference(kind, make_server, client, ssh_keys, htpasswd, tmp_path,
                                                  hgrc)
    work = tmp_path / "work"
    peer.hg(*EXTENSIONS, "clone", "-q", url("team"), str(work))
    first = _commit(client, work, "bare1")
    _commit(client, work, "bare2")
    client.hg(*EXTENSIONS, "topic", "-q", "-R", str(work), "feat")
    _commit(client, work, "f1")
    theirs = tmp_path / "theirs"
    shutil.copytree(work, theirs)

    pushed = peer.hg(*EXTENSIONS, "push", "-R", str(work), url("team"), check=False)
    expected = _push_to_reference(client, tmp_path, theirs, reference)
    assert pushed.returncode == expected.returncode == 0, pushed.stderr + expected.stderr
    words = (f"pushed draft changeset without topic: {first[:12]} and 1 more" if mode == "warning"
             else f"unknown 'topic-mode.server': {mode}")
    said = [line for line in (pushed.stdout + pushed.stderr).splitlines() if line.startswith("remote: ")]
    assert said == [line for line in (expected.stdout + expected.stderr).splitlines() if line.startswith("remote: ")]
    assert f"remote: {words}" in said
    assert _phases(client, repo) == _phases(client, reference) == ["draft feat f1", "draft  bare2", "draft  bare1"]

    client.hg(*EXTENSIONS, "update", "-q", "-R", str(work), "desc(bare2)")
    client.hg(*EXTENSIONS, "topic", "-q", "-R", str(work), "other")
    _commit(client, work, "on-a-topic-again")  # nothing bare: nothing said
    quiet = peer.hg(*EXTENSIONS, "push", "-f", "-R", str(work), url("team"))
    assert "without topic" not in quiet.stdout + quiet.stderr and "unknown" not in quiet.stdout + quiet.stderr
