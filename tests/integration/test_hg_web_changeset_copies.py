"""hgweb's diffs and file statuses of a repository whose hgrc has hg read copies from what each
changeset records (``[experimental] copies.read-from = changeset-only`` or ``compatibility``: the
``p1copies`` and ``filesadded`` extras that clients with ``copies.write-to=changeset-only`` write,
and whose filelogs then hold no copy), side by side with the real ``hg serve``.  hgwire traced the
filelogs whatever the setting, so its git diffs showed such a rename as a file removed and one added
where hg serve shows ``rename from``, and its ``json-rev`` called files added that hg calls modified."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_hg_archive import _hg_serve
from tests.integration.test_hg_http import raw

CHANGESET_ONLY = ("--config", "experimental.copies.write-to=changeset-only")


def _history(client: Client, repo: Path) -> None:
    """Renames and copies recorded in the changesets alone, then one in the filelogs alone, then
    a changeset that records no file as added."""
    client.hg("init", str(repo))

    def commit(message: str, *config: str) -> None:
        client.hg(*config, "commit", "-q", "-A", "-R", str(repo), "-m", message, "-d", "1 0")

    (repo / "a").write_text("a\n")
    (repo / "keep").write_text("keep\n")
    commit("a", *CHANGESET_ONLY)
    client.hg("mv", "-R", str(repo), str(repo / "a"), str(repo / "b"))
    commit("rename a b", *CHANGESET_ONLY)
    client.hg("cp", "-R", str(repo), str(repo / "b"), str(repo / "c"))
    (repo / "c").write_text("a\nc\n")
    commit("copy b c", *CHANGESET_ONLY)
    client.hg("mv", "-R", str(repo), str(repo / "keep"), str(repo / "kept"))
    commit("rename keep kept, in the filelog")
    (repo / "new").write_text("new\n")
    commit("add new, in the filelog")


@pytest.mark.parametrize("source", ["changeset-only", "compatibility"])
def test_diffs_and_statuses_read_the_copies_the_changesets_record_as_hg_serve_does(
        source: str, make_server: Callable[..., RunningServer], client: Client) -> None:
    server = make_server("fs", http=[LOOPBACK])
    repo = server.root / "copies"
    _history(client, repo)
    (repo / ".hg" / "hgrc").write_text(f"[diff]\ngit = 1\n[experimental]\ncopies.read-from = {source}\n")
    pages = [f"{page}/{rev}" for rev in range(5) for page in ("raw-rev", "json-rev")]
    with _hg_serve(client, repo) as port:
        for page in pages:
            ours = raw(server.port("http"), "GET", f"/copies/{page}")
            theirs = raw(port, "GET", f"/{page}")
            assert (ours.status, ours.body.decode()) == (theirs.status, theirs.body.decode()), page
    renamed = raw(server.port("http"), "GET", "/copies/raw-rev/1").body
    assert b"rename from a\nrename to b\n" in renamed


def _merges(client: Client, repo: Path) -> None:
    """Renames recorded in the changesets alone on both sides of merges (one renamed twice on the
    second parent's side), a rename in the filelog alone beside them, and merges both ways."""
    client.hg("init", str(repo))

    def commit(message: str, *config: str) -> None:
        client.hg(*config, "commit", "-q", "-A", "-R", str(repo), "-m", message, "-d", "1 0")

    for name in ("a", "k", "m"):
        (repo / name).write_text(f"{name}\n")
    commit("a k m")
    client.hg("mv", "-R", str(repo), str(repo / "a"), str(repo / "b"))
    commit("rename a b", *CHANGESET_ONLY)
    client.hg("mv", "-R", str(repo), str(repo / "b"), str(repo / "c"))
    commit("rename b c, renamed before", *CHANGESET_ONLY)
    client.hg("update", "-q", "-R", str(repo), "0")
    client.hg("mv", "-R", str(repo), str(repo / "k"), str(repo / "k2"))
    commit("rename k k2", *CHANGESET_ONLY)
    client.hg("mv", "-R", str(repo), str(repo / "m"), str(repo / "m2"))
    commit("rename m m2, in the filelog")
    client.hg("merge", "-q", "-R", str(repo), "2")
    commit("merge the renames of a", *CHANGESET_ONLY)
    client.hg("update", "-q", "-R", str(repo), "2")
    client.hg("merge", "-q", "-R", str(repo), "4")
    commit("merge the renames of k and m", *CHANGESET_ONLY)


@pytest.mark.parametrize("source", ["changeset-only", "compatibility"])
def test_a_merge_shows_the_renames_recorded_on_its_second_parents_side_as_hg_serve_does(
        source: str, make_server: Callable[..., RunningServer], client: Client) -> None:
    """hgwire read only the merge's own recorded copies: the renames its second parent's side made
    (a -> b -> c; k -> k2) were shown as files removed and added, where hg serve chains them."""
    server = make_server("fs", http=[LOOPBACK])
    repo = server.root / "merges"
    _merges(client, repo)
    (repo / ".hg" / "hgrc").write_text(f"[diff]\ngit = 1\n[experimental]\ncopies.read-from = {source}\n")
    pages = [f"{page}/{rev}" for rev in range(7) for page in ("raw-rev", "json-rev")]
    with _hg_serve(client, repo) as port:
        for page in pages:
            ours = raw(server.port("http"), "GET", f"/merges/{page}")
            theirs = raw(port, "GET", f"/{page}")
            assert (ours.status, ours.body.decode()) == (theirs.status, theirs.body.decode()), page
    assert b"rename from a\nrename to c\n" in raw(server.port("http"), "GET", "/merges/raw-rev/5").body
    assert b"rename from k\nrename to k2\n" in raw(server.port("http"), "GET", "/merges/raw-rev/6").body
