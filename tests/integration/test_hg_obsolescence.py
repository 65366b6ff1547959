"""Obsolescence markers exchanged with the real hg client over SSH and HTTP (changeset evolution:
``hg commit --amend``, prunes): pushed markers are stored and hide what they obsolete, pulls and
clones carry them, a stream clone copies them, and a server whose hgrc does not turn evolution on
keeps none, as ``hg serve`` does.  What the client prints of a push is compared with what it prints
pushing the same changes to ``hg serve --stdio`` on a copy of the repository.

hgwire's hg client runs in processes forked from hg's chg server (``ForkedClient`` of
test_hg_evolve_topics: the real client code, over the real ssh and HTTP); the evolve area's tests with a
client process of its own are test_hg_evolve_topics'
``test_a_topic_names_its_newest_changeset_for_pull_and_clone``."""

# ruff: noqa: F811  (the htpasswd fixture, imported from test_hg_http, is each test's parameter)
from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Client, RunningServer, SshKeys, ssh_server_settings
from tests.integration.test_hg_evolve_topics import ForkedClient, _reference_hg
from tests.integration.test_hg_hooks import _served
from tests.integration.test_hg_http import htpasswd  # noqa: F401 - a fixture
from tests.integration.test_hg_ssh import HgSsh

EVOLVE = ("--config", "experimental.evolution=all")
SERVER_HGRC = "[phases]\npublish = False\n[experimental]\nevolution = all\n"
FAKE_SSH = """#!/bin/sh
# ssh HOST COMMAND: run COMMAND here, as hg serve --stdio behind a real ssh would
for last; do :; done
exec sh -c "$last"
"""


def _setup(kind: str, make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys,
           htpasswd: Path, hgrc: str = SERVER_HGRC, forked: bool = False) -> tuple[Any, Callable[[str], str], Path]:
    """hgwire serving ``evo`` (this ``hgrc``) over ``kind``: its peer (hg's client as a process of its
    own, or forked from a chg server: ``ForkedClient``), the URL maker and the repository."""
    pusher = ForkedClient(client.env, client.cwd) if forked else client
    peer, url, server = _served(kind, make_server, pusher, ssh_keys, htpasswd)
    repo = server.root / "evo"
    client.hg("init", str(repo))
    (repo / ".hg" / "hgrc").write_text(hgrc)
    return peer, url, repo


def _commit(client: Client, work: Path, name: str, *extra: str) -> str:
    (work / name).write_text(f"{name}\n")
    client.hg(*EVOLVE, "commit", "-q", "-A", "-R", str(work), "-m", name, *extra)
    return client.hg(*EVOLVE, "log", "-R", str(work), "-r", ".", "-T", "{node}").stdout


def _amend(client: Client, work: Path, name: str) -> str:
    (work / name).write_text(f"{name} again\n")
    client.hg(*EVOLVE, "commit", "-q", "--amend", "-R", str(work), "-m", f"{name} amended")
    return client.hg(*EVOLVE, "log", "-R", str(work), "-r", ".", "-T", "{node}").stdout


def _markers(client: Client, repo: Path) -> list[str]:
    """Every marker as ``hg debugobsolete`` prints it, sorted."""
    return sorted(client.hg(*EVOLVE, "debugobsolete", "-R", str(repo)).stdout.splitlines())


def _visible(client: Client, repo: Path, *config: str) -> list[str]:
    return client.hg(*config, "log", "-R", str(repo), "-T", "{node} {phase} {desc}\n").stdout.splitlines()


def _remote_lines(done: Any) -> list[str]:
    return [line for line in (done.stdout + done.stderr).splitlines() if line.startswith("remote:")]


def _push_to_reference(client: Client, tmp_path: Path, work: Path, reference: Path, *args: str) -> Any:
    """``hg push ARGS`` of ``work`` to hg's own ``hg serve --stdio`` on ``reference`` (both forked from
    a chg server, no extension loaded: ``_reference_hg``)."""
    return _reference_hg(client, tmp_path, reference, *EVOLVE, "push", *args, "-R", str(work),
                         f"ssh://ref/{reference}", extensions=())


EXCHANGES = {"bundle2": (), "bundle1": ("--config", "devel.legacy.exchange=bundle1")}
"""bundle1 pushes the markers with a pushkey of their own after its changegroup, whose transaction
hg's server reports as it reports a bundle2 push's."""


@pytest.mark.parametrize("exchange", EXCHANGES)
@pytest.mark.parametrize("kind", ["ssh", "http"])
def test_an_amended_changeset_is_replaced_everywhere(kind: str, exchange: str,
                                                      make_server: Callable[..., RunningServer],
                                                      client: Client, ssh_keys: SshKeys, htpasswd: Path,
                                                      tmp_path: Path) -> None:
    flags = EXCHANGES[exchange]
    peer, url, repo = _setup(kind, make_server, client, ssh_keys, htpasswd, forked=True)
    work = tmp_path / "work"
    peer.hg(*EVOLVE, "clone", "-q", url("evo"), str(work))
    _commit(client, work, "a")
    child = _commit(client, work, "b")
    _commit(client, work, "c")
    peer.hg(*EVOLVE, "push", "-R", str(work), url("evo"))
    reference = tmp_path / "reference" / "evo"
    shutil.copytree(repo, reference)
    client.hg(*EVOLVE, "update", "-q", "-R", str(work), child)
    amended = _amend(client, work, "b")

    pushed = peer.hg(*EVOLVE, *flags, "push", "-f", "-r", ".", "-R", str(work), url("evo"),  # c stays a head
                     check=False)
    assert pushed.returncode == 0, pushed.stderr
    lines = _remote_lines(pushed)
    assert "remote: 1 new obsolescence markers" in lines and "remote: obsoleted 1 changesets" in lines
    assert "remote: 1 new orphan changesets" in lines  # c, whose parent b was rewritten
    assert lines == _remote_lines(_push_to_reference(client, tmp_path, work, reference, *flags, "-f", "-r", "."))
    client.hg("verify", "-q", "-R", str(repo))
    assert _markers(client, repo) == _markers(client, work) == _markers(client, reference)
    # b is obsolete but not hidden: c, an orphan now, still descends from it (as hg's served view says)
    assert _visible(client, repo, *EVOLVE) == _visible(client, reference, *EVOLVE)
    assert any(amended in line for line in _visible(client, repo, *EVOLVE))

    for config in (EVOLVE, ()):  # a clone sees what the pusher sees, markers or not
        clone = tmp_path / f"clone{len(config)}"
        peer.hg(*config, "clone", "-q", "-U", url("evo"), str(clone))
        assert _visible(client, clone, *config) == _visible(client, work, *EVOLVE)
        client.hg("verify", "-q", "-R", str(clone))
    assert _markers(client, tmp_path / "clone2") == _markers(client, repo)
    assert not (tmp_path / "clone0" / ".hg" / "store" / "obsstore").exists()


@pytest.mark.parametrize("kind", ["ssh", "http"])
def test_pushes_after_an_amended_draft_was_pushed_are_not_told_the_repository_changed(
        kind: str, make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, htpasswd: Path,
        tmp_path: Path) -> None:
    """The basic evolve workflow: push a draft, amend it, push again, commit on and push.  The
    client's check:phases names the draft roots ``listkeys phases`` gave it, the amended (hidden)
    one among them, which hg looks up unfiltered; hgwire took it for a changeset it does not know and
    refused every later push from any clone that had it: "remote repository changed while pushing"."""
    peer, url, repo = _setup(kind, make_server, client, ssh_keys, htpasswd, forked=True)
    work, other = tmp_path / "work", tmp_path / "other"
    peer.hg(*EVOLVE, "clone", "-q", url("evo"), str(work))
    _commit(client, work, "base")
    client.hg("phase", "-q", "-p", "-R", str(work), ".")
    _commit(client, work, "d1")
    peer.hg(*EVOLVE, "push", "-q", "-R", str(work), url("evo"))
    peer.hg(*EVOLVE, "clone", "-q", url("evo"), str(other))  # a colleague who had d1 before it was amended
    _amend(client, work, "d1")
    peer.hg(*EVOLVE, "push", "-q", "-R", str(work), url("evo"))

    _commit(client, work, "d2")
    pushed = peer.hg(*EVOLVE, "push", "-R", str(work), url("evo"), check=False)
    assert pushed.returncode == 0 and "changed while pushing" not in pushed.stderr, pushed
    nothing = peer.hg(*EVOLVE, "push", "-R", str(work), url("evo"), check=False)
    assert nothing.returncode == 1 and "no changes found" in nothing.stdout, nothing  # not exit 255
    peer.hg(*EVOLVE, "pull", "-q", "-R", str(other), url("evo"))
    client.hg(*EVOLVE, "update", "-q", "-R", str(other), "tip")
    _commit(client, other, "theirs")
    theirs = peer.hg(*EVOLVE, "push", "-r", ".", "-R", str(other), url("evo"), check=False)
    assert theirs.returncode == 0 and "changed while pushing" not in theirs.stderr, theirs
    client.hg("verify", "-q", "-R", str(repo))
    assert _markers(client, repo) == _markers(client, work)


@pytest.mark.parametrize("kind", ["ssh", "http"])
def test_a_prune_pushed_alone_reaches_other_clones(kind: str, make_server: Callable[..., RunningServer],
                                                   client: Client, ssh_keys: SshKeys, htpasswd: Path,
                                                   tmp_path: Path) -> None:
    peer, url, repo = _setup(kind, make_server, client, ssh_keys, htpasswd, forked=True)
    work, other = tmp_path / "work", tmp_path / "other"
    peer.hg(*EVOLVE, "clone", "-q", url("evo"), str(work))
    base = _commit(client, work, "a")
    doomed = _commit(client, work, "b")
    peer.hg(*EVOLVE, "push", "-R", str(work), url("evo"))
    peer.hg(*EVOLVE, "clone", "-q", "-U", url("evo"), str(other))
    client.hg(*EVOLVE, "update", "-q", "-R", str(work), base)
    client.hg(*EVOLVE, "debugobsolete", "-R", str(work), "--record-parents", doomed)  # as ``hg prune``

    pushed = peer.hg(*EVOLVE, "push", "-R", str(work), url("evo"), check=False)
    assert "no changes found" in pushed.stdout
    assert _remote_lines(pushed) == ["remote: 1 new obsolescence markers", "remote: obsoleted 1 changesets"]
    assert [line.split()[0] for line in _visible(client, repo, *EVOLVE)] == [base]

    pulled = peer.hg(*EVOLVE, "pull", "-R", str(other), url("evo"), check=False)
    assert pulled.returncode in (0, 1), pulled.stderr
    assert "1 new obsolescence markers" in pulled.stdout and "obsoleted 1 changesets" in pulled.stdout
    assert [line.split()[0] for line in _visible(client, other, *EVOLVE)] == [base]
    assert _markers(client, other) == _markers(client, repo)

    late = tmp_path / "late"  # a clone from before the prune builds on the pruned changeset
    shutil.copytree(work, late)
    client.hg(*EVOLVE, "debugobsolete", "-R", str(late), "--delete", "0")
    client.hg(*EVOLVE, "update", "-q", "-R", str(late), doomed)
    _commit(client, late, "child")
    pushed = peer.hg(*EVOLVE, "push", "-f", "-R", str(late), url("evo"), check=False)
    assert _remote_lines(pushed)[-2:] == [  # as hg serve: doomed is resent (the server hides it)
        "remote: added 1 changesets with 1 changes to 2 files", "remote: 1 new orphan changesets"]


def test_a_server_without_evolution_keeps_no_markers(make_server: Callable[..., RunningServer], client: Client,
                                                     ssh_keys: SshKeys, htpasswd: Path, tmp_path: Path) -> None:
    peer, url, repo = _setup("ssh", make_server, client, ssh_keys, htpasswd, hgrc="[phases]\npublish = False\n",
                             forked=True)
    caps = peer.hg("debugcapabilities", url("evo")).stdout
    assert "obsmarkers" not in caps
    work = tmp_path / "work"
    peer.hg(*EVOLVE, "clone", "-q", url("evo"), str(work))
    _commit(client, work, "a")
    old = _commit(client, work, "b")
    peer.hg(*EVOLVE, "push", "-R", str(work), url("evo"))
    reference = tmp_path / "reference" / "evo"
    shutil.copytree(repo, reference)
    new = _amend(client, work, "b")
    pushed = peer.hg(*EVOLVE, "push", "-f", "-R", str(work), url("evo"), check=False)
    assert pushed.returncode == 0, pushed.stderr
    assert not any("obsole" in line for line in _remote_lines(pushed))
    assert not (repo / ".hg" / "store" / "obsstore").exists()
    heads = client.hg("heads", "-R", str(repo), "-T", "{node}\n").stdout.split()
    assert sorted(heads) == sorted([old, new])  # both: the server knows of no rewrite
    said = _push_to_reference(client, tmp_path, work, reference, "-f")
    assert _remote_lines(said) == _remote_lines(pushed)
    assert not (reference / ".hg" / "store" / "obsstore").exists()


def test_a_stream_clone_copies_the_markers(make_server: Callable[..., RunningServer], client: Client,
                                           ssh_keys: SshKeys, htpasswd: Path, tmp_path: Path) -> None:
    peer, url, repo = _setup("http", make_server, client, ssh_keys, htpasswd, forked=True)
    work = tmp_path / "work"
    peer.hg(*EVOLVE, "clone", "-q", url("evo"), str(work))
    _commit(client, work, "a")
    _commit(client, work, "b")
    peer.hg(*EVOLVE, "push", "-R", str(work), url("evo"))
    _amend(client, work, "b")
    peer.hg(*EVOLVE, "push", "-R", str(work), url("evo"))

    streamed = tmp_path / "streamed"
    done = peer.hg(*EVOLVE, "clone", "--stream", "-U", url("evo"), str(streamed))
    assert "streaming all changes" in done.stdout
    assert _markers(client, streamed) == _markers(client, repo)
    assert _visible(client, streamed, *EVOLVE) == _visible(client, work, *EVOLVE)
    client.hg("verify", "-q", "-R", str(streamed))

    refused = peer.hg("clone", "--stream", "-U", url("evo"), str(tmp_path / "refused"), check=False)
    assert refused.returncode != 0
    assert "server has obsolescence markers, but client cannot receive them via stream clone" in refused.stderr


def test_lookups_of_hidden_changesets_say_what_hg_says(make_server: Callable[..., RunningServer], client: Client,
                                                        ssh_keys: SshKeys, htpasswd: Path, tmp_path: Path) -> None:
    """``hg identify -r KEY URL`` (the wire ``lookup``) against hgwire and against ``hg serve --stdio``
    on the same repository: obsolete and secret changesets by number, full id, prefix and bookmark."""
    peer, url, repo = _setup("ssh", make_server, client, ssh_keys, htpasswd, forked=True)
    _commit(client, repo, "base")
    client.hg("phase", "-R", str(repo), "-p", ".")
    first = _commit(client, repo, "a")
    rewritten = _amend(client, repo, "a")
    client.hg(*EVOLVE, "update", "-q", "-R", str(repo), "0")
    secret = _commit(client, repo, "s", "--secret")
    client.hg(*EVOLVE, "bookmark", "-R", str(repo), "-r", secret, "on-secret")
    client.hg(*EVOLVE, "update", "-q", "-R", str(repo), "null")
    reference = tmp_path / "reference" / "evo"
    shutil.copytree(repo, reference)
    keys = [first, first[:12], "1", rewritten[:12], secret, secret[:8], "on-secret", "tip", "nothing-here"]
    for key in keys:
        ours = peer.hg("identify", "-r", key, url("evo"), check=False)
        theirs = _reference_hg(client, tmp_path, reference, "identify", "-r", key, f"ssh://ref/{reference}",
                               extensions=())
        assert (ours.returncode, ours.stdout, ours.stderr) == (theirs.returncode, theirs.stdout, theirs.stderr), key


def test_divergence_is_reported_as_hg_reports_it(make_server: Callable[..., RunningServer], client: Client,
                                                 ssh_keys: SshKeys, htpasswd: Path, tmp_path: Path) -> None:
    """Two clones amend the same changeset (content-divergent), and one amends a changeset the server
    has published meanwhile (phase-divergent): each push's words equal those of ``hg serve --stdio``."""
    peer, url, repo = _setup("ssh", make_server, client, ssh_keys, htpasswd, forked=True)
    one, two = tmp_path / "one", tmp_path / "two"
    peer.hg(*EVOLVE, "clone", "-q", url("evo"), str(one))
    _commit(client, one, "a")
    _commit(client, one, "b")
    peer.hg(*EVOLVE, "push", "-R", str(one), url("evo"))
    peer.hg(*EVOLVE, "clone", "-q", url("evo"), str(two))
    _amend(client, one, "b")
    peer.hg(*EVOLVE, "push", "-R", str(one), url("evo"))
    (two / "b").write_text("b, the other way\n")
    client.hg(*EVOLVE, "commit", "-q", "--amend", "-R", str(two), "-m", "b the other way")
    reference = tmp_path / "reference" / "evo"
    shutil.copytree(repo, reference)

    pushed = peer.hg(*EVOLVE, "push", "-f", "-R", str(two), url("evo"), check=False)
    assert "remote: 2 new content-divergent changesets" in _remote_lines(pushed)
    assert _remote_lines(pushed) == _remote_lines(_push_to_reference(client, tmp_path, two, reference, "-f"))

    _commit(client, one, "c")
    peer.hg(*EVOLVE, "push", "-f", "-r", ".", "-R", str(one), url("evo"))
    _push_to_reference(client, tmp_path, one, reference, "-f", "-r", ".")
    peer.hg(*EVOLVE, "pull", "-q", "-R", str(two), url("evo"))
    client.hg(*EVOLVE, "update", "-q", "-R", str(two), "desc(c)")
    _amend(client, two, "c")
    for served in (repo, reference):
        client.hg("phase", "-R", str(served), "-p", "desc(c)")
    pushed = peer.hg(*EVOLVE, "push", "-f", "-r", ".", "-R", str(two), url("evo"), check=False)
    assert "remote: 1 new phase-divergent changesets" in _remote_lines(pushed)
    said = _push_to_reference(client, tmp_path, two, reference, "-f", "-r", ".")
    assert _remote_lines(pushed) == _remote_lines(said)
    client.hg("verify", "-q", "-R", str(repo))
    assert _markers(client, repo) == _markers(client, reference)


@pytest.mark.parametrize("backend", ["memory", "fs"])
def test_the_operators_hgrc_turns_evolution_on_for_every_repository(
        backend: str, make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys,
        tmp_path: Path) -> None:
    """``[hg] hgrc`` of the ``--config`` file is read before each repository's own hgrc, as ``hg serve``
    reads the system's: evolution on for every repository, the memory backend's too, unless a
    repository's own hgrc turns it off."""
    base = tmp_path / "hgwire.hgrc"
    base.write_text("[phases]\npublish = False\n%include evolution.rc\n")  # next to it, as for hg
    (tmp_path / "evolution.rc").write_text("[experimental]\nevolution = all\n")
    policy = tmp_path / "hgwire.toml"
    policy.write_text(f'[hg]\nhgrc = "{base}"\n\n[[repo]]\npattern = "*"\nwrite = ["alice"]\ncreate = ["alice"]\n')
    server = make_server(backend, **ssh_server_settings(ssh_keys), config_file=str(policy))
    peer = HgSsh(server, ForkedClient(client.env, client.cwd), ssh_keys.command(server.port("ssh")))
    peer.hg("init", peer.url("evo"))
    assert "obsmarkers" in peer.hg("debugcapabilities", peer.url("evo")).stdout
    work = tmp_path / "work"
    peer.hg(*EVOLVE, "clone", "-q", peer.url("evo"), str(work))
    _commit(client, work, "a")
    _commit(client, work, "b")
    peer.hg(*EVOLVE, "push", "-R", str(work), peer.url("evo"))
    _amend(client, work, "b")
    pushed = peer.hg(*EVOLVE, "push", "-R", str(work), peer.url("evo"), check=False)
    assert "remote: 1 new obsolescence markers" in _remote_lines(pushed), pushed.stdout + pushed.stderr
    clone = tmp_path / "clone"
    peer.hg(*EVOLVE, "clone", "-q", "-U", peer.url("evo"), str(clone))
    assert _visible(client, clone, *EVOLVE) == _visible(client, work, *EVOLVE)
    if backend == "fs":
        (server.root / "evo" / ".hg" / "hgrc").write_text("[experimental]\nevolution = false\n")
        assert "obsmarkers" not in peer.hg("debugcapabilities", peer.url("evo")).stdout
