"""hg-evolve's count of a push's bare drafts (``topic-mode.server``, ``topic.publish-bare-branch``)
when the push brings an obsolete draft that stays visible: the parent of an orphan, pushed with
``-f`` beside its successor.  The extension counts ``not public() and (FIRST:) - hidden() - topic()``, so an obsolete
changeset a visible one descends from is counted; hgwire left out every obsolete one.  Compared with
``hg serve --stdio`` with the extensions (a fake ssh) on a copy with the same hgrc; ``hg verify``
passes after every push, and a refused push leaves ``.hg`` as it was.

hgwire's hg client runs in processes forked from hg's chg server (``ForkedClient`` of
test_hg_evolve_topics: the real client code, over the real ssh); the evolve area's tests with a client
process of its own are test_hg_evolve_topics'
``test_a_topic_names_its_newest_changeset_for_pull_and_clone``."""

# ruff: noqa: F811  (the htpasswd fixture, imported from test_hg_http, is each test's parameter)
from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Client, RunningServer, SshKeys
from tests.integration.test_hg_evolve_push_rules import _files
from tests.integration.test_hg_evolve_topics import (
    EXTENSIONS,
    HG_EVOLVE,
    SERVER_HGRC,
    _commit,
    _phases,
    _push_to_reference,
    _remote_lines,
    _with_reference,
    client,  # noqa: F401 - a fixture (local commands in an evolve-loaded command server)
)
from tests.integration.test_hg_http import htpasswd  # noqa: F401 - a fixture

pytestmark = pytest.mark.skipif(HG_EVOLVE is None, reason="hg-evolve is not installed where hg runs "
                                "(pip install hg-evolve, as the test extra does): no evolve or topic client to test with")

MODES = {
    "warning": "topic-mode.server = warning\n",
    "enforce": "topic-mode.server = enforce\n",
    "publish": "topic.publish-bare-branch = yes\n",
}


@pytest.mark.parametrize("mode", sorted(MODES))
def test_an_orphan_s_obsolete_parent_is_a_bare_draft(
        mode: str, make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys,
        htpasswd: Path, tmp_path: Path) -> None:
    """``a`` amended into ``a2`` on the client after ``b`` was made on it: a push of ``b`` and ``a2``
    with ``-f`` brings ``a`` too (obsolete by the marker the push carries, visible under its orphan
    ``b``).  hg serve counts the three as drafts without a topic (``pushed draft changeset without
    topic: a and 2 more``; refused naming ``a``; all three published), hgwire left ``a`` out."""
    hgrc = SERVER_HGRC + "[experimental]\n" + MODES[mode]
    peer, url, repo, reference = _with_reference("ssh", make_server, client, ssh_keys, htpasswd, tmp_path, hgrc)
    work = tmp_path / "work"
    peer.hg(*EXTENSIONS, "clone", "-q", url("team"), str(work))
    first = _commit(client, work, "a")
    _commit(client, work, "b")
    client.hg(*EXTENSIONS, "update", "-q", "-R", str(work), first)
    client.hg(*EXTENSIONS, "amend", "-q", "-R", str(work), "-m", "a2")
    theirs = tmp_path / "theirs"
    shutil.copytree(work, theirs)
    before = _files(repo)

    pushed = peer.hg(*EXTENSIONS, "push", "-f", "-r", "desc(b)", "-r", "desc(a2)", "-R", str(work), url("team"),
                     check=False)
    expected = _push_to_reference(client, tmp_path, theirs, reference, "-f", "-r", "desc(b)", "-r", "desc(a2)")
    if mode == "enforce":
        assert pushed.returncode == expected.returncode == 255, pushed.stdout + pushed.stderr
        words = f"rejecting draft changesets: {first[:12]} and 2 more"
        assert f"remote: {words}" in _remote_lines(expected)
        assert any(line.startswith(f"remote: {words}; ") for line in _remote_lines(pushed)), _remote_lines(pushed)
        assert _files(repo) == before
    else:
        assert pushed.returncode == expected.returncode == 0, pushed.stdout + pushed.stderr + expected.stderr
        assert _remote_lines(pushed) == _remote_lines(expected)
        if mode == "warning":
            assert f"remote: pushed draft changeset without topic: {first[:12]} and 2 more" in _remote_lines(pushed)
    assert _phases(client, repo) == _phases(client, reference)
    client.hg(*EXTENSIONS, "verify", "-q", "-R", str(repo))
