"""A getbundle's markers are those of what the repository serves: a request naming a secret
changeset, as a head (``cg=0``, so no changegroup refuses it) or in hg-evolve's
``evo_missing_nodes``, got the markers relevant to it (its predecessors, who rewrote it, when),
telling whoever named it that it exists and what it was made from.  Such nodes are now left out,
as unknown ones are.

hgwire's hg client runs in processes forked from hg's chg server (``ForkedClient`` of
test_hg_evolve_topics: the real client code, over the real HTTP); the evolve area's tests with a client
process of its own are test_hg_evolve_topics'
``test_a_topic_names_its_newest_changeset_for_pull_and_clone``."""

# ruff: noqa: F811  (the htpasswd fixture, imported from test_hg_http, is the test's parameter)
from __future__ import annotations

import urllib.parse
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Client, RunningServer, SshKeys
from tests.integration.test_hg_evolve_obsdiscovery import EVOLVE, HGRC, _commit
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

BUNDLE2 = urllib.parse.quote("HG20\nobsmarkers=V0,V1")


def _bundle(port: int, **args: str) -> bytes:
    query = urllib.parse.urlencode({"bundlecaps": "HG20,bundle2=" + BUNDLE2, "cg": "0", "obsmarkers": "1", **args})
    answer = raw(port, "POST", "/team?cmd=getbundle", {"X-HgArgs-Post": str(len(query)), "X-HgProto-1": "0.1"},
                 query.encode())
    assert answer.status == 200 and answer.headers["content-type"] == "application/mercurial-0.1", answer
    data = zlib.decompress(answer.body)
    assert data.startswith(b"HG20"), data[:200]
    return data


def test_a_getbundle_naming_a_secret_changeset_gets_none_of_its_markers(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, htpasswd: Path) -> None:
    peer, _url, repo = _setup("http", make_server, client, ssh_keys, htpasswd, HGRC)
    port = peer.server.port("http")
    base = _commit(client, repo, "base")
    secret = _commit(client, repo, "secret")
    client.hg(*EVOLVE, "phase", "-q", "-R", str(repo), "--force", "--secret", secret)
    hidden_past = "ab" * 20  # what the secret changeset was rewritten from
    client.hg(*EVOLVE, "debugobsolete", "-q", "-R", str(repo), "-d", "5 0", hidden_past, secret)
    client.hg(*EVOLVE, "debugobsolete", "-q", "-R", str(repo), "-d", "6 0", "cd" * 20, base)  # one on base
    seen = bytes.fromhex("cd" * 20)
    leaked = bytes.fromhex(hidden_past)

    served = _bundle(port, heads=base)  # what a client of base may have
    assert seen in served and leaked not in served
    as_head = _bundle(port, heads=secret)
    assert leaked not in as_head
    missing = _bundle(port, heads=base, common=base, evo_missing_nodes=f"{base} {secret}")
    assert seen in missing and leaked not in missing
    # a real client gets the marker on base, none of the secret one's
    work = repo.parent / "work"
    peer.hg(*EVOLVE, "clone", "-q", "-U", _url("team"), str(work))
    markers = client.hg(*EVOLVE, "debugobsolete", "-R", str(work)).stdout
    assert "cd" * 20 in markers and hidden_past not in markers
