"""Partial-clone filters against git's own upload-pack: every spec hgwire serves sends exactly the
objects git sends (wanted ones whatever the filter, a symbolic link's blob as a blob, tags)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from backends import git_fastpack
from backends.interfaces import Kind
from tests.conftest import LOOPBACK, Client, RunningServer

SPECS = [
    "blob:none", "blob:limit=6", "tree:0", "tree:1", "tree:2",
    "object:type=blob", "object:type=tree", "object:type=commit", "object:type=tag",
    "combine:blob:none+tree:2", "combine:tree:3+blob:limit=6", "combine:object:type=tree+tree:1",
    "combine:object:type=blob+blob:limit=6", "combine:object:type=blob+object:type=tree",
]


@pytest.fixture
def history(server: RunningServer, client: Client) -> tuple[Path, str]:
    """A history with nested directories, a symbolic link, annotated tags (of a commit, of a tree,
    of a blob), pushed to hgwire as ``filters.git``; the source's path and the hgwire URL."""
    src = client.cwd / "src"
    client.git("init", "-q", "-b", "main", str(src))
    for i in range(3):
        (src / "d" / "e").mkdir(parents=True, exist_ok=True)
        (src / "top.txt").write_text(f"top {i}\n")
        (src / "d" / "mid.txt").write_text(f"a longer middle file {i}\n" * (i + 1))
        (src / "d" / "e" / "deep.txt").write_text(f"deep {i}\n")
        link = src / "link"
        if link.is_symlink():
            link.unlink()
        link.symlink_to(f"d/target-{i}")
        client.git("add", "-A", cwd=src)
        client.git("commit", "-q", "-m", f"c{i}", cwd=src)
        if i == 1:
            client.git("tag", "-a", "-m", "old", "v1", cwd=src)
    client.git("tag", "-a", "-m", "a tree", "tree-tag", "HEAD^{tree}", cwd=src)
    client.git("tag", "-a", "-m", "a blob", "blob-tag", "HEAD:top.txt", cwd=src)
    client.git("tag", "light", "HEAD~1", cwd=src)
    server.backend.create("filters", Kind.GIT)
    url = server.git_url("filters")
    client.git("push", "-q", url, "refs/heads/*:refs/heads/*", "refs/tags/*:refs/tags/*", cwd=src)
    return src, url


def _objects(client: Client, repo: Path) -> set[str]:
    listed = client.git("cat-file", "--batch-all-objects", "--batch-check=%(objectname) %(objecttype)", cwd=repo)
    return set(listed.stdout.splitlines())


@pytest.mark.parametrize("version", ["0", "2"])
def test_each_filter_sends_what_git_sends(history: tuple[Path, str], client: Client, version: str) -> None:
    src, url = history
    reference = client.cwd / "reference.git"
    client.git("clone", "-q", "--bare", str(src), str(reference))
    client.git("config", "uploadpack.allowFilter", "true", cwd=reference)
    differ = {}
    for spec in SPECS:
        ours, theirs = client.cwd / f"ours-{spec}", client.cwd / f"theirs-{spec}"
        for source, target in ((url, ours), (f"file://{reference}", theirs)):
            client.git("-c", f"protocol.version={version}", "clone", "-q", "--bare", f"--filter={spec}",
                       source, str(target))
        got, expected = _objects(client, ours), _objects(client, theirs)
        assert expected, spec
        if got != expected:
            differ[spec] = {"only ours": sorted(got - expected), "only git's": sorted(expected - got)}
    assert not differ, differ


@pytest.mark.parametrize("version", ["0", "2"])
def test_a_shallow_filtered_clone_follows_only_the_tags_of_what_it_gets(history: tuple[Path, str], client: Client,
                                                                         version: str) -> None:
    """``--depth=1`` (no ``refs/tags/*`` wanted: the client asks ``include-tag``) with each filter: a
    tag comes along only when the object it peels to is in the pack sent, as git's pack-objects adds
    it (``blob-tag`` names a blob ``blob:none`` leaves out; ``tree-tag`` the tree ``tree:0`` does)."""
    src, url = history
    reference = client.cwd / "reference.git"
    client.git("clone", "-q", "--bare", str(src), str(reference))
    client.git("config", "uploadpack.allowFilter", "true", cwd=reference)
    differ = {}
    for spec in SPECS:
        got = {}
        for side, source in (("ours", url), ("git's", f"file://{reference}")):
            target = client.cwd / f"{side}-{spec}"
            client.git("-c", f"protocol.version={version}", "clone", "-q", "--no-checkout", "--depth=1",
                       f"--filter={spec}", source, str(target))
            got[side] = (client.git("tag", cwd=target).stdout.split(), _objects(client, target))
        if got["ours"] != got["git's"]:
            differ[spec] = {"tags": (got["ours"][0], got["git's"][0]),
                            "only ours": sorted(got["ours"][1] - got["git's"][1]),
                            "only git's": sorted(got["git's"][1] - got["ours"][1])}
    assert not differ, differ


def test_filters_given_twice_are_combined_by_the_client(history: tuple[Path, str], client: Client) -> None:
    """``git clone --filter=A --filter=B`` sends ``combine:A+B``: trees one level deep; of the blobs,
    only the one a wanted tag names (the client named it)."""
    src, url = history
    target = client.cwd / "twice"
    traced = client.git("clone", "-q", "--bare", "--filter=object:type=tree", "--filter=tree:1", url, str(target),
                        env={"GIT_TRACE_PACKET": "1"})
    assert "filter combine:object:type=tree+tree:1" in traced.stderr.replace("%3d", "=").replace("%3D", "=")
    objects = _objects(client, target)
    blob_tagged = client.git("rev-parse", "blob-tag^{}", cwd=src).stdout.strip()
    assert [line for line in objects if line.endswith(" blob")] == [f"{blob_tagged} blob"]
    trees = {line.split()[0] for line in objects if line.endswith(" tree")}
    roots = set(client.git("log", "--format=%T", "main", cwd=src).stdout.split())
    assert trees == roots, "the commits' root trees (depth 0), nothing below them"


def test_an_unsupported_filter_is_refused_by_name(history: tuple[Path, str], client: Client) -> None:
    _src, url = history
    refused = client.git("clone", "-q", "--bare", "--filter=sparse:oid=main:.sparse", url,
                         str(client.cwd / "sparse"), check=False)
    assert refused.returncode != 0
    said = refused.stderr  # the spec as the user wrote it, not Python's b'...'
    assert "unsupported filter spec 'sparse:oid=main:.sparse'" in said and "object:type=<type>" in said, said


def test_a_bitmapped_repository_s_filtered_clones_and_fetches_are_git_s(
        make_server: Callable[..., RunningServer], client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """What partial clones and CI ask for most (``blob:none``, ``blob:limit=``, ``tree:0``; every
    ref a branch or a tag of a commit) is counted from the bitmap's type bitsets and the pack
    entries' headers, and the stored entries sent as they are: the objects are git's own
    upload-pack's, for a clone and for the fetch after a push (objects outside the bitmapped pack)."""
    left_out: list[Any] = []
    leave_out = git_fastpack._leave_out
    monkeypatch.setattr(git_fastpack, "_leave_out", lambda send, omit, *rest: (
        left_out.append(omit), leave_out(send, omit, *rest))[1])
    server = make_server("fs", git=[LOOPBACK])
    src = client.cwd / "src"
    client.git("init", "-q", "-b", "main", str(src))

    def commit(i: int) -> None:
        for name in ("top.txt", "d/mid.txt", "d/e/deep.txt"):
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            (src / name).write_text(f"{name} {i}\n" * (i % 5 + 1))
        client.git("add", "-A", cwd=src)
        client.git("commit", "-q", "-m", f"c{i}", cwd=src)

    for i in range(6):
        commit(i)
    client.git("tag", "-a", "-m", "one", "v1", cwd=src)
    server.backend.create("bitmapped", Kind.GIT)
    url = server.git_url("bitmapped")
    client.git("push", "-q", "--follow-tags", url, "main", cwd=src)
    client.git("repack", "-adq", "--write-bitmap-index", cwd=server.repo_path("bitmapped.git"))
    reference = client.cwd / "reference.git"
    client.git("clone", "-q", "--bare", str(src), str(reference))
    client.git("config", "uploadpack.allowFilter", "true", cwd=reference)
    specs = ("blob:none", "blob:limit=20", "tree:0")
    for spec in specs:
        for source, target in ((url, f"ours-{spec}"), (f"file://{reference}", f"theirs-{spec}")):
            client.git("clone", "-q", "--bare", f"--filter={spec}", source, str(client.cwd / target))
        assert _objects(client, client.cwd / f"ours-{spec}") == _objects(client, client.cwd / f"theirs-{spec}"), spec
    assert len(left_out) == len(specs)
    for i in range(6, 9):
        commit(i)
    client.git("push", "-q", url, "main", cwd=src)
    client.git("push", "-q", str(reference), "main", cwd=src)
    for spec in specs:
        for target in (f"ours-{spec}", f"theirs-{spec}"):
            client.git("fetch", "-q", "origin", "+refs/heads/*:refs/heads/*", cwd=client.cwd / target)
        assert _objects(client, client.cwd / f"ours-{spec}") == _objects(client, client.cwd / f"theirs-{spec}"), spec
    assert len(left_out) == 2 * len(specs)


@pytest.mark.parametrize(("bitmap", "use_bitmaps"), [(False, True), (True, True), (True, False)],
                         ids=["walked", "bitmapped", "bitmaps-unused"])
def test_trees_tags_name_are_sent_as_git_sends_them(history: tuple[Path, str], server: RunningServer,
                                                     client: Client, bitmap: bool, use_bitmaps: bool) -> None:
    """Tags of a directory's tree (not a commit's root) and of a deeper one: git sends a tree a
    wanted tag names whatever the filter, unless its walk met it first below a root tree, and counts
    the depth of its entries from 0; with a bitmap, ``tree:0`` sends the trees and blobs the tags
    name and nothing else.  hgwire counted such a tree as depth 0 and its entries from 1, and left
    the tagged root tree out of a bitmapped repository's ``tree:0``.  With ``pack.useBitmaps``
    false git walks though a bitmap is there: hgwire counted from the bitmap all the same, and its
    ``tree:0`` clone missed the trees git's walk sends."""
    if bitmap and server.backend_name != "fs":
        pytest.skip("bitmaps are on disk")
    src, url = history
    client.git("tag", "-a", "-m", "a directory", "dir-tag", "HEAD:d", cwd=src)
    client.git("tag", "-a", "-m", "a deeper one", "deep-tag", "HEAD~2:d/e", cwd=src)
    client.git("push", "-q", url, "refs/tags/*:refs/tags/*", cwd=src)
    reference = client.cwd / "reference.git"
    client.git("clone", "-q", "--bare", str(src), str(reference))
    client.git("config", "uploadpack.allowFilter", "true", cwd=reference)
    if bitmap:
        for repo in (reference, server.repo_path("filters.git")):
            client.git("repack", "-adq", "--write-bitmap-index", cwd=repo)
            if not use_bitmaps:
                client.git("config", "pack.useBitmaps", "false", cwd=repo)
    store = server.backend.open("filters").object_store  # type: ignore[union-attr]
    assert git_fastpack.counts_from_bitmap(store) is bitmap
    differ = {}
    for spec in SPECS:
        ours, theirs = client.cwd / f"ours-{spec}", client.cwd / f"theirs-{spec}"
        for source, target in ((url, ours), (f"file://{reference}", theirs)):
            client.git("clone", "-q", "--bare", f"--filter={spec}", source, str(target))
        got, expected = _objects(client, ours), _objects(client, theirs)
        if got != expected:
            differ[spec] = {"only ours": sorted(got - expected), "only git's": sorted(expected - got)}
    assert not differ, differ
