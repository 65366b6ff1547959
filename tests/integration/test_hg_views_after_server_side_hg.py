"""One hgwire server life where, between evolve pushes, the server's own hg changes what the served
views were computed with: ``hg phase --force`` (drafts made secret, then draft again; a draft made
public), ``hg debugobsolete --delete`` (the obsstore rewritten shorter), ``hg update`` onto an
obsolete changeset (a pin) and off it, a local tag.  After each step hgwire's repository and a fresh
clone of it are compared with ``hg serve --stdio`` (hg-evolve loaded) given the same pushes and
the same commands.

hgwire's hg client runs in processes forked from hg's chg server (``ForkedClient`` of
test_hg_evolve_topics: the real client code, over the real HTTP); the evolve area's tests with a client
process of its own are test_hg_evolve_topics'
``test_a_topic_names_its_newest_changeset_for_pull_and_clone``."""

# ruff: noqa: F811  (the htpasswd fixture, imported from test_hg_http, is each test's parameter)
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Client, RunningServer, SshKeys
from tests.integration.test_hg_evolve_topics import (
    EXTENSIONS,
    HG_EVOLVE,
    _commit,
    client,  # noqa: F401 - a fixture (local commands in an evolve-loaded command server)
)
from tests.integration.test_hg_evolve_views_after_pushes import SideBySide, _d
from tests.integration.test_hg_http import htpasswd  # noqa: F401 - a fixture

pytestmark = pytest.mark.skipif(HG_EVOLVE is None, reason="hg-evolve is not installed where hg runs "
                                "(pip install hg-evolve, as the test extra does): no evolve client to test with")


def test_server_side_hg_between_evolve_pushes_matches_hg_serve(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys,
        htpasswd: Path, tmp_path: Path) -> None:
    both = SideBySide(make_server, client, ssh_keys, htpasswd, tmp_path)
    work, repo, reference, push, same, hg, d = both.work, both.repo, both.reference, both.push, both.same, both.hg, _d

    def on_servers(*args: str) -> None:
        for target in (repo, reference):
            client.hg(*EXTENSIONS, *args, "-R", str(target))

    _commit(client, work, "base")
    push("--publish")
    first = _commit(client, work, "first")
    second = _commit(client, work, "second")
    _commit(client, work, "third")
    push()
    hg("amend", "-q", "-m", "third-2")
    push()
    same("a stack with an amended top")

    on_servers("phase", "-q", "--force", "--secret", "-r", second)
    same("the server made two drafts secret")

    _commit(client, work, "fourth")
    push()
    same("a push onto a secret changeset")

    on_servers("phase", "-q", "--force", "--draft", "-r", second)
    same("the server made them draft again")

    on_servers("debugobsolete", "-q", "--delete", "0")
    same("the server deleted the amend's marker: the obsstore is rewritten, the old top is back")

    hg("update", "-q", d("second"))
    hg("amend", "-q", "-m", "second-2")
    push("-f", "-r", ".")
    same("the middle amended after the rewrite")

    on_servers("update", "-q", "--hidden", "-r", second)
    same("the server's working directory on an obsolete changeset pins it")

    hg("evolve", "-q", "--all")
    push()
    same("its children rebased: the pin alone keeps it")

    on_servers("update", "-q", "null")
    same("the working directory moved off it: hidden")

    on_servers("tag", "-q", "--local", "--hidden", "-r", second, "kept")
    same("a local tag pins it again")

    on_servers("phase", "-q", "--public", "-r", first)
    same("the server published the bottom")
