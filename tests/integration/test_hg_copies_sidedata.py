"""A client whose repository keeps copies in changeset sidedata (``format.exp-use-copies-side-data-changeset
= yes``, hg's changeset-centric copy tracing) pushing renames and copies, over SSH and HTTP with the real hg
client.  hg's client marks such a push's changegroup part ``exp-sidedata`` and its changesets that copy
with the revision flag ``HASCOPIESINFO`` (0x1000); ``hg serve`` on a repository of today's format takes
both (the copies travel in the filelogs too) and keeps the flag.  hgwire refused the push, first with
"abort: missing support for changegroup - exp-sidedata", then with "unsupported revision flags 0x1000 in
changegroup"."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Client, RunningServer, SshKeys
from tests.integration.test_hg_hooks import _served
from tests.integration.test_hg_http import htpasswd  # noqa: F401 - a fixture

SIDEDATA = ("--config", "format.exp-use-copies-side-data-changeset=yes")


def _changesets_with_copies(client: Client, work: Path) -> None:
    client.hg(*SIDEDATA, "init", str(work))
    (work / "a").write_text("a\n")
    client.hg("commit", "-q", "-A", "-R", str(work), "-m", "a", "-d", "1 0")
    client.hg("mv", "-R", str(work), str(work / "a"), str(work / "b"))
    client.hg("commit", "-q", "-R", str(work), "-m", "rename a b", "-d", "2 0")
    client.hg("cp", "-R", str(work), str(work / "b"), str(work / "c"))
    client.hg("commit", "-q", "-R", str(work), "-m", "copy b c", "-d", "3 0")
    (work / "b").write_text("a\nb\n")
    client.hg("commit", "-q", "-R", str(work), "-m", "b", "-d", "4 0")


def _changelog_index(client: Client, repo: Path) -> str:
    """Each changeset's flags, parents and node, as hg's index holds them."""
    return client.hg("debugrevlogindex", "-c", "--format", "1", "-R", str(repo)).stdout


@pytest.mark.parametrize("kind", ["ssh", "http"])
def test_renames_and_copies_of_a_sidedata_client_are_pushed_and_followed_by_others(
        kind: str, make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys,
        htpasswd: Path, tmp_path: Path) -> None:  # noqa: F811
    peer, url, server = _served(kind, make_server, client, ssh_keys, htpasswd)
    work = tmp_path / "sidedata-work"
    _changesets_with_copies(client, work)
    assert "exp-copies-sidedata-changeset" in (work / ".hg" / "store" / "requires").read_text()
    served = server.root / "copies"
    client.hg("init", str(served))
    reference = tmp_path / "reference"  # the same push into a repository of today's format, by hg itself
    client.hg("init", str(reference))
    client.hg("push", "-q", "-R", str(work), str(reference))

    pushed = peer.hg("push", "-R", str(work), url("copies"), check=False)
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    assert "remote: added 4 changesets with 4 changes to 3 files" in pushed.stdout + pushed.stderr
    client.hg("verify", "-q", "-R", str(served))
    assert _changelog_index(client, served) == _changelog_index(client, reference)
    assert " 1000 " in _changelog_index(client, served)  # the flag kept, as hg keeps it

    for name, config in (("plain", ()), ("sidedata", SIDEDATA)):
        clone = tmp_path / f"clone-{name}"
        peer.hg(*config, "clone", "-q", url("copies"), str(clone))
        followed = client.hg("log", "-R", str(clone), "-f", str(clone / "b"), "-T", "{desc}|").stdout
        assert followed == "b|rename a b|a|", (name, followed)
        copied = client.hg("log", "-R", str(clone), "-f", str(clone / "c"), "-T", "{desc}|").stdout
        assert copied == "copy b c|rename a b|a|", (name, copied)
        assert _changelog_index(client, clone) == _changelog_index(client, reference)
