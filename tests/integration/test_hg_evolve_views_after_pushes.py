"""One hgwire server taking a series of hg-evolve pushes into a repository with an obsstore (amend,
evolve's rebase of orphans, a prune pushed alone, a fold, a bookmark pinning a pruned changeset and
its removal, a publish, markers hg adds on the server): hgwire brings its views up to date after
each push instead of computing them again.  After every step what its repository holds and what a
fresh clone of it gets are compared with ``hg serve --stdio`` (hg-evolve loaded) given the same
pushes: every changeset with its phase and obsolescence, the heads, the markers.

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
    SERVER_HGRC,
    _commit,
    _push_to_reference,
    _reference_hg,
    _with_reference,
    client,  # noqa: F401 - a fixture (local commands in an evolve-loaded command server)
)
from tests.integration.test_hg_http import htpasswd  # noqa: F401 - a fixture

pytestmark = pytest.mark.skipif(HG_EVOLVE is None, reason="hg-evolve is not installed where hg runs "
                                "(pip install hg-evolve, as the test extra does): no evolve client to test with")


def _state(client: Client, repo: Path) -> tuple[list[str], list[str], list[str]]:
    """Every changeset (hidden ones too) with its phase and whether it is obsolete; the heads; the markers."""
    log = client.hg(*EXTENSIONS, "log", "--hidden", "-R", str(repo), "-T", "{rev}:{node} {phase} {obsolete}\n")
    heads = client.hg(*EXTENSIONS, "heads", "-R", str(repo), "-T", "{node}\n", check=False)
    markers = client.hg(*EXTENSIONS, "debugobsolete", "-R", str(repo))
    return log.stdout.splitlines(), sorted(heads.stdout.splitlines()), sorted(markers.stdout.splitlines())


def _served(client: Client, source: str, into: Path) -> tuple[list[str], list[str], list[str]]:
    """What a fresh clone of ``source`` gets (the server's view: hidden and secret ones left out),
    in node order (the two servers may send the changesets in another order)."""
    client.hg(*EXTENSIONS, "clone", "-q", "-U", source, str(into))
    return _cloned(client, into)


def _cloned(client: Client, into: Path) -> tuple[list[str], list[str], list[str]]:
    """``_served``'s state of the clone ``into``."""
    log, heads, markers = _state(client, into)
    return sorted(line.split(":", 1)[1] for line in log), heads, markers


class SideBySide:
    """One hgwire server (over HTTP) and ``hg serve --stdio`` (hg-evolve loaded) given the same pushes
    from one work clone: ``push`` to both, ``same`` compares their repositories and fresh clones.
    (hg's side runs in processes forked from a chg server: ``_reference_hg``.)"""

    def __init__(self, make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys,
                 htpasswd: Path, tmp_path: Path) -> None:
        self.client, self.tmp_path = client, tmp_path
        self.peer, self.url, self.repo, self.reference = _with_reference(
            "http", make_server, client, ssh_keys, htpasswd, tmp_path, SERVER_HGRC)
        self.work = tmp_path / "work"
        self.peer.hg(*EXTENSIONS, "clone", "-q", self.url("team"), str(self.work))
        self._clones = iter(range(100))

    def push(self, *args: str) -> None:
        mine = self.peer.hg(*EXTENSIONS, "push", *args, "-R", str(self.work), self.url("team"), check=False)
        theirs = _push_to_reference(self.client, self.tmp_path, self.work, self.reference, *args)
        assert mine.returncode == theirs.returncode, mine.stdout + mine.stderr + theirs.stdout + theirs.stderr
        assert mine.returncode in (0, 1), mine.stdout + mine.stderr

    def same(self, step: str) -> None:
        assert _state(self.client, self.repo) == _state(self.client, self.reference), step
        n = next(self._clones)
        mine = _served(self.peer, self.url("team"), self.tmp_path / f"mine{n}")
        into = self.tmp_path / f"theirs{n}"
        cloned = _reference_hg(self.client, self.tmp_path, self.reference, "clone", "-q", "-U",
                               f"ssh://ref/{self.reference}", str(into))
        assert cloned.returncode == 0, cloned.stdout + cloned.stderr
        theirs = _cloned(self.client, into)
        assert mine == theirs, step

    def hg(self, *args: str) -> str:
        return str(self.client.hg(*EXTENSIONS, *args, "-R", str(self.work)).stdout)


def _d(name: str) -> str:
    """The visible changeset described ``name``."""
    return f"desc('re:^{name}$') - obsolete()"


def test_a_series_of_evolve_pushes_into_one_server_life_matches_hg_serve(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys,
        htpasswd: Path, tmp_path: Path) -> None:
    both = SideBySide(make_server, client, ssh_keys, htpasswd, tmp_path)
    work, repo, reference, push, same, hg, d = both.work, both.repo, both.reference, both.push, both.same, both.hg, _d

    base = _commit(client, work, "base")
    push("--publish")
    _commit(client, work, "first")
    _commit(client, work, "second")
    _commit(client, work, "third")
    push()
    same("a stack of three drafts")

    hg("amend", "-q", "-m", "third-2")
    push()
    same("the top amended")

    hg("update", "-q", d("first"))
    hg("amend", "-q", "-m", "first-2")  # second and third-2 are orphans now
    push("-f", "-r", ".")
    same("the bottom amended: its old self stays visible under its orphans")

    hg("evolve", "-q", "--all")
    push()
    same("the orphans rebased")

    hg("prune", "-q", "-r", d("third-2"))
    push()
    same("the top pruned (markers pushed alone)")

    hg("fold", "-q", "--exact", "-r", d("first-2"), "-r", d("second"), "-m", "folded")
    push()
    same("two folded into one")

    hg("update", "-q", d("folded"))
    _commit(client, work, "fourth")
    hg("bookmark", "-q", "mark")
    push("-B", "mark")
    same("a bookmarked draft")

    hg("update", "-q", d("folded"))
    hg("prune", "-q", "-r", d("fourth"))
    push()
    same("the bookmarked draft pruned: the server's bookmark keeps it visible")

    hg("bookmark", "-q", "-d", "mark")
    push("-B", "mark")
    same("the bookmark deleted: hidden now")

    lone = _commit(client, work, "fifth")
    push()
    for target in (repo, reference):  # an operator prunes it on the server, with hg
        client.hg(*EXTENSIONS, "debugobsolete", "-q", "-R", str(target), lone, "-d", "0 0")
    same("a marker hg appended on the server")

    push("--publish", "-r", d("folded"))
    same("published")
    assert _state(client, repo)[0][-1] == f"0:{base} public "
