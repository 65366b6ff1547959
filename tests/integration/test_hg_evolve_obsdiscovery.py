"""hg-evolve's discovery of obsolescence markers (``_evoext_obshashrange_v1`` and
``_evoext_getbundle_obscommon``) with the real evolve client against hgwire, compared with
``hg serve --stdio`` with the extension loaded by the same hgrc.

Before, hgwire advertised neither: an evolve client fell back to getting every marker relevant to
what it pulled (a pull that found nothing new got them all again) and pushing every marker relevant
to what it pushed.

hgwire's hg client runs in processes forked from hg's chg server (``ForkedClient`` of
test_hg_evolve_topics: the real client code, over the real ssh and HTTP); the evolve area's tests with a
client process of its own are test_hg_evolve_topics'
``test_a_topic_names_its_newest_changeset_for_pull_and_clone``."""

# ruff: noqa: F811  (the htpasswd fixture, imported from test_hg_http, is each test's parameter)
from __future__ import annotations

import hashlib
import random
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from protocols import hg_obsmarkers as obs
from tests.conftest import Client, RunningServer, SshKeys
from tests.integration.test_hg_evolve_topics import (
    HG_EVOLVE,
    _reference_hg,
    _setup,
    client,  # noqa: F401 - a fixture (evolve-loaded command server)
)
from tests.integration.test_hg_http import (
    htpasswd,  # noqa: F401 - a fixture
    raw,
)

pytestmark = pytest.mark.skipif(HG_EVOLVE is None, reason="hg-evolve is not installed where hg runs "
                                "(pip install hg-evolve, as the test extra does): no evolve client to test with")

EVOLVE = ("--config", "extensions.evolve=", "--config", "experimental.evolution=all")
HGRC = "[extensions]\nevolve =\n[experimental]\nevolution = all\n[phases]\npublish = False\n"


def _dag(seed: int, count: int) -> str:
    """A ``hg debugbuilddag`` text of ``count`` changesets with branches and merges."""
    pick = random.Random(seed)
    steps = ["+1"]
    for i in range(1, count):
        roll = pick.random()
        if roll < 0.15 and i > 3:
            a, b = pick.randrange(i), pick.randrange(i)
            steps.append(f"*{i - a}/{i - b}" if a != b else "+1")
        elif roll < 0.35:
            steps.append(f"*{i - pick.randrange(i)}")
        else:
            steps.append("+1")
    return " ".join(steps)


def _nodes(client: Client, repo: Path) -> list[str]:
    return client.hg(*EVOLVE, "log", "--hidden", "-R", str(repo), "-r", "0:", "-T", "{node}\n").stdout.split()


def _markers(client: Client, repo: Path) -> list[str]:
    return sorted(client.hg(*EVOLVE, "debugobsolete", "-R", str(repo)).stdout.splitlines())


def test_range_hashes_are_hg_evolves(make_server: Callable[..., RunningServer], client: Client,
                                     ssh_keys: SshKeys, htpasswd: Path) -> None:
    """Every stable range of a history of branches and merges, over markers that rewrite, prune
    (with parents) and chain: hgwire's hash is the one hg-evolve computes (its own
    ``debugobshashrange`` on the same repository); a head it lacks is answered all-ff, as is one
    it does not serve (hidden or secret), where hg-evolve answers (a client asks about the heads
    of what both sides have, which are served)."""
    _peer, _url, repo = _setup("http", make_server, client, ssh_keys, htpasswd, HGRC)
    server = _peer.server
    client.hg(*EVOLVE, "debugbuilddag", "-q", "-R", str(repo), "-n", _dag(7, 90))
    nodes = [bytes.fromhex(n) for n in _nodes(client, repo)]
    pick = random.Random(3)
    markers = []
    for i in range(120):
        fake = hashlib.sha1(b"fake %d" % i).digest()
        real = pick.choice(nodes)
        kind = i % 4
        if kind == 0:  # rewritten into a changeset here
            m = obs.Marker(fake, (real,), 0, ((b"user", b"t"),), (float(i), 0), None)
        elif kind == 1:  # pruned, its parent recorded
            m = obs.Marker(fake, (), 0, ((b"user", b"t"),), (float(i), -3600), (real,))
        elif kind == 2:  # a chain: rewritten into one that was rewritten into a changeset here
            m = obs.Marker(hashlib.sha1(b"older %d" % i).digest(), (fake,), 0, (), (float(i), 0), None)
            markers.append(obs.Marker(fake, (real,), 1, ((b"operation", b"amend"),), (float(i), 0), None))
        else:  # a changeset here rewritten elsewhere
            m = obs.Marker(real, (fake,), 0, ((b"user", b"t"),), (float(i), 0), ())
        markers.append(m)
    (repo / ".hg" / "store" / "obsstore").write_bytes(b"".join(obs.encode(markers, 1)))

    client.hg(*EVOLVE, "phase", "-q", "-R", str(repo), "--force", "--secret", "tip")
    served = {int(r) for r in client.hg(*EVOLVE, "log", "-R", str(repo), "-r", "not secret()",
                                        "-T", "{rev}\n").stdout.split()}
    table = client.hg(*EVOLVE, "debugobshashrange", "--subranges", "--rev", "all()", "--hidden",
                      "-R", str(repo)).stdout.splitlines()[1:]
    asked, expected = [], []
    for line in table:
        rev, _short, index, _size, _depth, short_hash = line.split()
        asked.append(nodes[int(rev)] + int(index).to_bytes(4, "big"))
        expected.append(short_hash if int(rev) in served else "f" * 12)
    assert len(asked) > 150 and len(set(expected)) > 50  # many ranges, of many hashes (null ones too)
    assert 0 < expected.count("f" * 12) < len(expected) // 2  # a few hidden or secret ones
    asked.append(b"\x01" * 20 + b"\0\0\0\0")
    arg = urllib.parse.urlencode({"ranges": " ".join(a.hex() for a in asked)})
    answer = raw(server.port("http"), "POST", "/team?cmd=evoext_obshashrange_v1",
                 {"X-HgArgs-Post": str(len(arg))}, arg.encode())
    assert answer.status == 200, answer
    hashes = answer.body.decode().split(" ")
    assert [h[:12] for h in hashes[:-1]] == expected
    assert hashes[-1] == "f" * 40 and all(len(h) == 40 for h in hashes)


def _at_reference(client: Client, tmp_path: Path, reference: Path, command: str, *args: str,
                  check: bool = True) -> Any:
    """``hg COMMAND ssh://ref/REFERENCE ARGS``: hg's own ``hg serve --stdio`` on ``reference``."""
    done = _reference_hg(client, tmp_path, reference, *EVOLVE[2:], command, f"ssh://ref/{reference}", *args,
                         extensions=("evolve",))
    if check and done.returncode != 0:
        raise AssertionError(f"hg {command} failed with {done.returncode}:\nstdout: {done.stdout}\n"
                             f"stderr: {done.stderr}")
    return done


def _commit(client: Client, work: Path, name: str) -> str:
    (work / name).write_text(f"{name}\n")
    client.hg(*EVOLVE, "commit", "-q", "-A", "-R", str(work), "-m", name)
    return client.hg(*EVOLVE, "log", "-R", str(work), "-r", ".", "-T", "{node}").stdout


def _discovery_line(done: Any) -> str:
    """``obsdiscovery, N/M mismatch``: how many of the probed changesets had markers differing."""
    lines: list[str] = [line for line in done.stdout.splitlines() if line.startswith("obsdiscovery, ")]
    assert len(lines) == 1, done.stdout
    return lines[0].split(" - ")[0]


@pytest.mark.parametrize("kind", ["ssh", "http"])
def test_pulls_and_pushes_exchange_only_the_markers_that_differ(
        kind: str, make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys,
        htpasswd: Path, tmp_path: Path) -> None:
    """Markers on changesets both sides have are found by the range hashes and pushed and pulled
    alone, as with ``hg serve`` and the extension; a pull that finds nothing new gets no markers."""
    peer, url, repo = _setup(kind, make_server, client, ssh_keys, htpasswd, HGRC)
    reference = tmp_path / "reference"
    client.hg("init", str(reference))
    (reference / ".hg" / "hgrc").write_text(HGRC)
    work, other, other_ref = tmp_path / "work", tmp_path / "other", tmp_path / "other-ref"
    peer.hg(*EVOLVE, "clone", "-q", url("team"), str(work))
    nodes = [_commit(client, work, f"c{i}") for i in range(8)]
    peer.hg(*EVOLVE, "push", "-q", "-R", str(work), url("team"))
    _at_reference(client, tmp_path, reference, "push", "-q", "-R", str(work))
    peer.hg(*EVOLVE, "clone", "-q", "-U", url("team"), str(other))
    _at_reference(client, tmp_path, reference, "clone", "-q", "-U", str(other_ref))

    # markers on changesets everyone has: a rewrite into c2, and c7 pruned
    client.hg(*EVOLVE, "debugobsolete", "-q", "-R", str(work), "-d", "5 0", "1" * 40, nodes[2])
    client.hg(*EVOLVE, "debugobsolete", "-q", "-R", str(work), "-d", "6 0", "--record-parents", nodes[7])
    pushed = peer.hg(*EVOLVE, "push", "--debug", "-R", str(work), url("team"), check=False)
    theirs = _at_reference(client, tmp_path, reference, "push", "--debug", "-R", str(work), check=False)
    # c2, c7 and c6 (the pruned c7's parent) of the 8 common changesets
    assert _discovery_line(pushed) == _discovery_line(theirs) == "obsdiscovery, 3/8 mismatch"
    assert _markers(client, repo) == _markers(client, reference) == _markers(client, work)

    pulled = peer.hg(*EVOLVE, "pull", "--debug", "-R", str(other), url("team"))
    theirs = _at_reference(client, tmp_path, reference, "pull", "--debug", "-R", str(other_ref))
    assert _discovery_line(pulled) == _discovery_line(theirs)
    assert _markers(client, other) == _markers(client, other_ref) == _markers(client, work)
    assert len(_markers(client, other)) == 2

    again = peer.hg(*EVOLVE, "pull", "--debug", "-R", str(other), url("team"))
    assert _discovery_line(again).startswith("obsdiscovery, 0/")
    assert 'bundle2-input-part: "obsmarkers"' not in again.stdout  # nothing to send: no markers sent
    assert _markers(client, other) == _markers(client, work)
    client.hg(*EVOLVE, "verify", "-q", "-R", str(repo))
    client.hg("verify", "-q", "-R", str(other))


def test_a_pull_over_http_of_markers_differing_on_many_changesets_gets_them_all(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, htpasswd: Path,
        tmp_path: Path) -> None:
    """Past 200 changesets whose markers differ (not the newest), an HTTP client without ``httppostargs`` cannot send
    their nodes and falls back to ``evo_obscommon``, naming changesets above them: hg serve with
    evolve then sends none of those markers, at every pull, where the client was told "falling
    back to a less efficient fetching method"; hgwire sends every marker relevant to the pull, as
    without the extension."""
    peer, url, repo = _setup("http", make_server, client, ssh_keys, htpasswd, HGRC)
    client.hg(*EVOLVE, "debugbuilddag", "-q", "-R", str(repo), "+230")
    work = tmp_path / "work"
    peer.hg(*EVOLVE, "clone", "-q", "-U", url("team"), str(work))
    markers = [obs.Marker(hashlib.sha1(node.encode()).digest(), (bytes.fromhex(node),), 0, ((b"user", b"t"),),
                          (float(i), 0), None) for i, node in enumerate(_nodes(client, repo)[:220])]
    (repo / ".hg" / "store" / "obsstore").write_bytes(b"".join(obs.encode(markers, 1)))

    pulled = peer.hg(*EVOLVE, "--config", "experimental.verbose-obsolescence-exchange=yes", "pull", "--debug",
                     "-R", str(work), url("team"))
    assert "Falling back to a less efficient fetching method" in pulled.stdout, pulled.stdout[-3000:]
    assert _markers(client, work) == _markers(client, repo) and len(markers) == 220
