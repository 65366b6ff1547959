"""hg-evolve's range hashes kept by one server across pushes of markers (amends, prunes, rebase-like
rewrites by the evolve client), markers about changesets it lacks, ``hg strip`` and ``hg
debugobsolete --delete`` on the server: after each step, every stable range answered is the one
hg-evolve computes afresh on the server's repository (its ``debugobshashrange``, its caches removed).
A push's markers forget only the hashes of the ranges holding the changesets they touch.

hgwire's hg client runs in processes forked from hg's chg server (``ForkedClient`` of
test_hg_evolve_topics: the real client code, over the real HTTP); the evolve area's tests with a client
process of its own are test_hg_evolve_topics'
``test_a_topic_names_its_newest_changeset_for_pull_and_clone``."""

# ruff: noqa: F811  (the htpasswd fixture, imported from test_hg_http, is the test's parameter)
from __future__ import annotations

import hashlib
import random
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Client, RunningServer, SshKeys
from tests.integration.test_hg_evolve_obsdiscovery import EVOLVE, HGRC, _dag
from tests.integration.test_hg_evolve_topics import (
    HG_EVOLVE,
    _setup,
    client,  # noqa: F401 - a fixture (local commands in an evolve-loaded command server)
)
from tests.integration.test_hg_http import (
    htpasswd,  # noqa: F401 - a fixture
    raw,
)

pytestmark = pytest.mark.skipif(HG_EVOLVE is None, reason="hg-evolve is not installed where hg runs "
                                "(pip install hg-evolve, as the test extra does)")


def _compare(client: Client, repo: Path, port: int) -> int:
    """Every range of every changeset's history (hg-evolve's ``--subranges``), asked of hgwire in one
    request, against hg-evolve's hashes computed afresh; how many ranges were compared."""
    r = str(repo)
    for cache in (repo / ".hg" / "cache").glob("evoext*"):
        cache.unlink()
    nodes = client.hg(*EVOLVE, "log", "--hidden", "-R", r, "-r", "0:", "-T", "{node}\n").stdout.split()
    served = {int(n) for n in client.hg(*EVOLVE, "log", "-R", r, "-r", "not secret()", "-T", "{rev}\n")
              .stdout.split()}
    table = client.hg(*EVOLVE, "debugobshashrange", "--subranges", "--rev", "all()", "--hidden",
                      "-R", r).stdout.splitlines()[1:]
    asked, expected = [], []
    for line in table:
        rev, _short, index, _size, _depth, short_hash = line.split()
        asked.append(nodes[int(rev)] + f"{int(index):08x}")
        expected.append(short_hash if int(rev) in served else "f" * 12)
    asked = asked[:1000]  # (what one request may ask)
    expected = expected[:1000]
    arg = urllib.parse.urlencode({"ranges": " ".join(asked)})
    answer = raw(port, "POST", "/team?cmd=evoext_obshashrange_v1", {"X-HgArgs-Post": str(len(arg))}, arg.encode())
    assert answer.status == 200, answer
    assert [h[:12] for h in answer.body.decode().split(" ")] == expected
    return len(asked)


def test_range_hashes_kept_across_pushes_of_markers_strips_and_deletions_are_hg_evolves(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, htpasswd: Path,
        tmp_path: Path) -> None:
    peer, url, repo = _setup("http", make_server, client, ssh_keys, htpasswd, HGRC)
    port = peer.server.port("http")
    r = str(repo)
    client.hg(*EVOLVE, "debugbuilddag", "-q", "-R", r, "-n", _dag(11, 50))
    work = tmp_path / "work"
    w = str(work)
    peer.hg(*EVOLVE, "clone", "-q", url("team"), w)
    pick = random.Random(5)

    def visible(where: str, revset: str) -> list[str]:
        return client.hg(*EVOLVE, "log", "-R", where, "-r", revset, "-T", "{node}\n").stdout.split()

    def push() -> None:
        peer.hg(*EVOLVE, "push", "-q", "-f", "-R", w, url("team"), check=False)  # (1: markers alone, no changes)

    assert _compare(client, repo, port) > 100
    compared = 0
    kinds = ["amend", "prune", "rebase", "unknown", "strip", "delete"] * 2
    pick.shuffle(kinds)
    for step, kind in enumerate(kinds):
        drafts = visible(w, "draft() and not obsolete()")
        if kind == "amend" and drafts:
            client.hg("update", "-q", "-C", "-R", w, pick.choice(drafts))
            (work / f"amended{step}").write_text(f"{step}\n")
            client.hg(*EVOLVE, "commit", "-q", "-A", "--amend", "-R", w, "-m", f"amended {step}")
            push()
        elif kind == "prune" and drafts:
            client.hg(*EVOLVE, "prune", "-q", "-R", w, "-r", pick.choice(drafts))
            push()
        elif kind == "rebase" and len(drafts) > 2:  # rewritten into another changeset both sides have
            prec, succ = pick.sample(drafts, 2)
            client.hg(*EVOLVE, "debugobsolete", "-q", "-R", w, prec, succ)
            push()
        elif kind == "unknown":  # a chain through changesets the repository never had
            fake = hashlib.sha1(b"fake %d" % step).hexdigest()
            older = hashlib.sha1(b"older %d" % step).hexdigest()
            client.hg(*EVOLVE, "debugobsolete", "-q", "-R", r, older, fake)
            client.hg(*EVOLVE, "debugobsolete", "-q", "-R", r, fake, pick.choice(visible(r, "all()")))
        elif kind == "strip":
            target = pick.choice(visible(r, "all()"))
            client.hg(*EVOLVE, "--config", "extensions.strip=", "strip", "-q", "--no-backup", "-R", r, target)
        elif kind == "delete":
            count = len(client.hg(*EVOLVE, "debugobsolete", "-R", r).stdout.splitlines())
            if count:
                client.hg(*EVOLVE, "debugobsolete", "-q", "-R", r, "--delete", str(pick.randrange(count)))
        compared += _compare(client, repo, port)
    assert compared > 800
    assert len(client.hg(*EVOLVE, "debugobsolete", "-R", r).stdout.splitlines()) > 5
