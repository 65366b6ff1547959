"""hg-evolve's server settings that refuse a push, and core hg's ``single-head-per-branch``,
on the real evolve-enabled client against hgwire over SSH and HTTP, each compared with hg's own
``hg serve --stdio`` (a fake ssh) on a copy with the same hgrc: ``topic.allow-publish = no``,
``enforce-single-head``, ``single-head-per-branch`` (and its
``:account-closed-heads``, ``:public-changes-only``) and ``tns-reject-push``.  A refused push leaves
the repository as it was, byte for byte, and ``hg verify`` passes after every push.  The single-head
settings on a push touching two branches are in test_hg_evolve_single_head_two_branches (a module of
their own: with ``--dist loadfile`` two test processes share the two halves).

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
from typing import Any

import pytest

from tests.conftest import Client, RunningServer, SshKeys
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


def _files(repo: Path) -> dict[str, bytes]:
    """Every file of the repository's ``.hg`` but its caches (which hg rebuilds), by path."""
    hg = repo / ".hg"
    return {str(p.relative_to(hg)): p.read_bytes() for p in sorted(hg.rglob("*"))
            if p.is_file() and p.relative_to(hg).parts[0] not in ("cache", "wcache")}


_PAIRS: dict[str, Path] = {}
"""Per kind, the ``team``, ``reference`` and ``work`` the module's first ``_pair`` made (kept in its
tmp_path, which pytest keeps for the session): the others copy them."""


def _pair(kind: str, make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys,
          htpasswd: Path, tmp_path: Path, hgrc: str) -> tuple[Any, Callable[[str], str], Path, Path, Path]:
    """hgwire's ``team`` and hg's own ``reference``, both with ``hgrc``, and a clone with one public
    changeset ``base`` pushed to both: cloned and pushed by the module's first test of each kind
    (with its hgrc), copied by the others (the same bytes, their own hgrc), its three processes
    of hg with evolve loaded being most of a test's set-up."""
    peer, url, repo, reference = _with_reference(kind, make_server, client, ssh_keys, htpasswd, tmp_path,
                                                  hgrc)
    work = tmp_path / "work"
    if kind in _PAIRS:
        for name, target in (("team", repo), ("reference", reference), ("work", work)):
            shutil.rmtree(target)
            shutil.copytree(_PAIRS[kind] / name, target, symlinks=True)
        for target in (repo, reference):
            (target / ".hg" / "hgrc").write_text(hgrc)
        return peer, url, repo, reference, work
    peer.hg(*EXTENSIONS, "clone", "-q", url("team"), str(work))
    _commit(client, work, "base")
    peer.hg(*EXTENSIONS, "push", "-q", "--publish", "-R", str(work), url("team"))
    assert _push_to_reference(client, tmp_path, work, reference, "-q", "--publish").returncode == 0
    for name, source in (("team", repo), ("reference", reference), ("work", work)):
        shutil.copytree(source, tmp_path / "pair" / name, symlinks=True)
    _PAIRS[kind] = tmp_path / "pair"
    return peer, url, repo, reference, work


def _both(peer: Any, client: Client, url: Callable[[str], str], tmp_path: Path, work: Path, reference: Path,
          *args: str) -> tuple[Any, Any]:
    """``hg push ARGS`` of ``work`` to hgwire, then of a copy of it to the reference (a push changes
    the pushing clone's phases)."""
    theirs = tmp_path / "theirs"
    shutil.rmtree(theirs, ignore_errors=True)
    shutil.copytree(work, theirs)
    pushed = peer.hg(*EXTENSIONS, "push", *args, "-R", str(work), url("team"), check=False)
    expected = _push_to_reference(client, tmp_path, theirs, reference, *args)
    return pushed, expected


def _refused_alike(pushed: Any, expected: Any, words: str, hint: str | None) -> None:
    """Both refused: hg's words (and hint) from both, the first as its own line from hg serve."""
    assert pushed.returncode == expected.returncode == 255, pushed.stdout + pushed.stderr
    theirs, mine = _remote_lines(expected), _remote_lines(pushed)
    assert f"remote: {words}" in theirs, theirs
    assert any(line.startswith(f"remote: {words}") for line in mine), mine
    if hint is not None:
        assert f"remote: ({hint})" in theirs, theirs
        assert f"remote: ({hint})" in mine, mine


def _verified(client: Client, *repos: Path) -> None:
    for repo in repos:
        client.hg(*EXTENSIONS, "verify", "-q", "-R", str(repo))


@pytest.mark.parametrize("kind", ["ssh", "http"])
def test_allow_publish_no_refuses_every_publishing_push(
        kind: str, make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys,
        htpasswd: Path, tmp_path: Path) -> None:
    """``[experimental] topic.allow-publish = no``: hg serve refuses a push that makes anything public
    (``rejecting publishing of changeset X and 1 others``): with ``--publish``, with changesets already
    there, or of changesets the client has public; hgwire published them."""
    hgrc = SERVER_HGRC + "[experimental]\ntopic.allow-publish = no\n"
    peer, url, repo, reference, work = _pair(kind, make_server, client, ssh_keys, htpasswd, tmp_path,
                                             SERVER_HGRC)
    for target in (repo, reference):
        (target / ".hg" / "hgrc").write_text(hgrc)
    first = _commit(client, work, "d1")
    _commit(client, work, "d2")
    before = _files(repo)
    pushed, expected = _both(peer, client, url, tmp_path, work, reference, "--publish")
    _refused_alike(pushed, expected, f"rejecting publishing of changeset {first[:12]} and 1 others", None)
    assert "push without --publish" in pushed.stdout + pushed.stderr
    assert _files(repo) == before
    assert _phases(client, repo) == _phases(client, reference) == ["public  base"]

    pushed, expected = _both(peer, client, url, tmp_path, work, reference)  # as drafts: taken
    assert pushed.returncode == expected.returncode == 0, pushed.stdout + pushed.stderr
    before = _files(repo)
    pushed, expected = _both(peer, client, url, tmp_path, work, reference, "--publish")  # phases only
    assert pushed.returncode == expected.returncode == 255, pushed.stdout + pushed.stderr
    assert f"remote: rejecting publishing of changeset {first[:12]} and 1 others" in _remote_lines(expected)
    assert f"rejecting publishing of changeset {first[:12]} and 1 others" in pushed.stdout + pushed.stderr
    assert _files(repo) == before
    client.hg(*EXTENSIONS, "phase", "-q", "--public", "-R", str(work), "-r", "tip")  # public on the client
    _commit(client, work, "d3")
    client.hg(*EXTENSIONS, "phase", "-q", "--public", "-R", str(work), "-r", "tip")
    pushed, expected = _both(peer, client, url, tmp_path, work, reference)
    assert pushed.returncode == expected.returncode == 255, pushed.stdout + pushed.stderr
    assert _phases(client, repo) == _phases(client, reference) == ["draft  d2", "draft  d1", "public  base"]
    _verified(client, repo)


SINGLE_HEAD = [
    ("enforce-single-head = yes\n", '2 heads on "{name}"', "{a}, {b}"),
    ("single-head-per-branch = yes\n", 'rejecting multiple heads on branch "{name}"', "2 heads: {a} {b}"),
]


@pytest.mark.parametrize("setting", SINGLE_HEAD, ids=["evolve", "core"])
@pytest.mark.parametrize("kind", ["ssh", "http"])
def test_single_head_settings_refuse_a_second_head(
        kind: str, setting: tuple[str, str, str], make_server: Callable[..., RunningServer], client: Client,
        ssh_keys: SshKeys, htpasswd: Path, tmp_path: Path) -> None:
    """hg-evolve's ``enforce-single-head`` and core hg's ``single-head-per-branch``: hg serve refuses a
    push leaving a second head on a branch, a topic being a branch of its own (``default//feat``),
    in each setting's words with the heads as the hint; hgwire took it."""
    line, words, hint = setting
    hgrc = SERVER_HGRC + "[experimental]\n" + line
    peer, url, repo, reference, work = _pair(kind, make_server, client, ssh_keys, htpasswd, tmp_path, hgrc)
    base = client.hg(*EXTENSIONS, "log", "-R", str(work), "-r", ".", "-T", "{node}").stdout
    client.hg(*EXTENSIONS, "topic", "-q", "-R", str(work), "feat")
    one = _commit(client, work, "f1")
    client.hg(*EXTENSIONS, "update", "-q", "-R", str(work), base)
    client.hg(*EXTENSIONS, "topic", "-q", "-R", str(work), "--clear")
    bare = _commit(client, work, "bare")  # a head of default beside feat's: taken, as by hg serve
    pushed, expected = _both(peer, client, url, tmp_path, work, reference, "-f")
    assert pushed.returncode == expected.returncode == 0, pushed.stdout + pushed.stderr
    assert _remote_lines(pushed) == _remote_lines(expected)

    client.hg(*EXTENSIONS, "update", "-q", "-R", str(work), base)
    other = _commit(client, work, "bare2")
    before = _files(repo)
    pushed, expected = _both(peer, client, url, tmp_path, work, reference, "-f")
    _refused_alike(pushed, expected, words.format(name="default"), hint.format(a=bare[:12], b=other[:12]))
    assert _remote_lines(pushed) == _remote_lines(expected)
    assert _files(repo) == before

    client.hg(*EXTENSIONS, "update", "-q", "-R", str(work), base)
    client.hg(*EXTENSIONS, "topic", "-q", "-R", str(work), "feat")
    two = _commit(client, work, "f2")
    pushed, expected = _both(peer, client, url, tmp_path, work, reference, "-f", "-r", two)
    _refused_alike(pushed, expected, words.format(name="default//feat"), hint.format(a=one[:12], b=two[:12]))
    assert _remote_lines(pushed) == _remote_lines(expected)
    assert _files(repo) == before
    assert _phases(client, repo) == _phases(client, reference)

    # an amended head replaces the one it obsoletes (hidden by the push's marker): one head, taken
    client.hg(*EXTENSIONS, "update", "-q", "-R", str(work), bare)
    client.hg(*EXTENSIONS, "amend", "-q", "-R", str(work), "-m", "bare-amended")
    pushed, expected = _both(peer, client, url, tmp_path, work, reference, "-r", ".")
    assert pushed.returncode == expected.returncode == 0, pushed.stdout + pushed.stderr
    assert _remote_lines(pushed) == _remote_lines(expected)
    assert _phases(client, repo) == _phases(client, reference)
    _verified(client, repo)


@pytest.mark.parametrize("kind", ["ssh", "http"])
def test_single_head_per_branch_sub_options(
        kind: str, make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys,
        htpasswd: Path, tmp_path: Path) -> None:
    """Core hg's ``single-head-per-branch``: a closed head counts only with ``:account-closed-heads``
    (hg-evolve's ``enforce-single-head`` always counts it); with ``:public-changes-only`` drafts are
    not looked at, and a publishing push of a second head is refused."""
    peer, url, repo, reference, work = _pair(kind, make_server, client, ssh_keys, htpasswd, tmp_path,
                                             SERVER_HGRC + "[experimental]\nsingle-head-per-branch = yes\n")
    base = client.hg(*EXTENSIONS, "log", "-R", str(work), "-r", ".", "-T", "{node}").stdout
    _commit(client, work, "one")
    client.hg(*EXTENSIONS, "commit", "-q", "--close-branch", "-R", str(work), "-m", "closed")
    client.hg(*EXTENSIONS, "update", "-q", "-R", str(work), base)
    _commit(client, work, "two")
    pushed, expected = _both(peer, client, url, tmp_path, work, reference, "-f")
    assert pushed.returncode == expected.returncode == 0, pushed.stdout + pushed.stderr
    for name, setting in (("closed", "single-head-per-branch:account-closed-heads = yes\n"),
                          ("evolve", "enforce-single-head = yes\n")):
        hgrc = SERVER_HGRC + "[experimental]\nsingle-head-per-branch = yes\n" + setting
        for target in (repo, reference):
            (target / ".hg" / "hgrc").write_text(hgrc)
        client.hg(*EXTENSIONS, "update", "-q", "-R", str(work), "desc(two)")
        _commit(client, work, f"on-{name}")
        before = _files(repo)
        pushed, expected = _both(peer, client, url, tmp_path, work, reference)
        assert pushed.returncode == expected.returncode == 255, pushed.stdout + pushed.stderr
        assert _remote_lines(pushed) == _remote_lines(expected)
        assert _files(repo) == before
        client.hg(*EXTENSIONS, "prune", "-q", "-R", str(work), "-r", f"desc('on-{name}')")

    hgrc = SERVER_HGRC + "[experimental]\nsingle-head-per-branch = yes\nsingle-head-per-branch:public-changes-only = yes\n"
    for target in (repo, reference):
        (target / ".hg" / "hgrc").write_text(hgrc)
    client.hg(*EXTENSIONS, "update", "-q", "-R", str(work), base)
    _commit(client, work, "three")  # a third draft head: drafts are not looked at
    pushed, expected = _both(peer, client, url, tmp_path, work, reference, "-f")
    assert pushed.returncode == expected.returncode == 0, pushed.stdout + pushed.stderr
    before = _files(repo)
    pushed, expected = _both(peer, client, url, tmp_path, work, reference, "-f", "--publish")
    assert pushed.returncode == expected.returncode == 255, pushed.stdout + pushed.stderr
    assert _remote_lines(pushed) == _remote_lines(expected)
    assert _files(repo) == before
    assert _phases(client, repo) == _phases(client, reference)
    _verified(client, repo)


@pytest.mark.parametrize("kind", ["ssh", "http"])
def test_tns_reject_push_refuses_drafts_in_a_topic_namespace(
        kind: str, make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys,
        htpasswd: Path, tmp_path: Path) -> None:
    """``[experimental] tns-reject-push = yes``: hg serve refuses new drafts that name a topic namespace
    (``rejecting draft changesets with topic namespace: X``); hgwire took them."""
    hgrc = SERVER_HGRC + "[experimental]\ntns-reject-push = yes\n"
    peer, url, repo, reference, work = _pair(kind, make_server, client, ssh_keys, htpasswd, tmp_path, hgrc)
    client.hg(*EXTENSIONS, "debug-topic-namespace", "-q", "-R", str(work), "team")
    client.hg(*EXTENSIONS, "topic", "-q", "-R", str(work), "feat")
    first = _commit(client, work, "n1")
    before = _files(repo)
    pushed, expected = _both(peer, client, url, tmp_path, work, reference)
    _refused_alike(pushed, expected, f"rejecting draft changesets with topic namespace: {first[:12]}", None)
    assert _files(repo) == before
    assert _phases(client, repo) == _phases(client, reference) == ["public  base"]
    pushed, expected = _both(peer, client, url, tmp_path, work, reference, "--publish")  # public: no namespace
    assert pushed.returncode == expected.returncode == 0, pushed.stdout + pushed.stderr
    _verified(client, repo)
