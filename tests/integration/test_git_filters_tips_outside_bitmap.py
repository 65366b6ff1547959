"""A bitmapped repository, then a push of a commit with a tag of its root tree (and of a blob and a
directory of it), which land outside the bitmapped pack.  git's bitmap walk finds such tips by
walking, and its filter judges them as a walk without a bitmap does: ``tree:0`` leaves out the
tagged tree it met as the new commit's root first.  hgwire sent that tree (it kept every tip of a
bitmapped repository whatever the filter)."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends import git_fastpack
from tests.conftest import Client, RunningServer
from tests.integration.test_git_filters import SPECS, _objects, history

__all__ = ["history"]


def test_tips_outside_the_bitmap_are_filtered_as_git_filters_them(history: tuple[Path, str], server: RunningServer,
                                                                    client: Client) -> None:
    if server.backend_name != "fs":
        pytest.skip("bitmaps are on disk")
    src, url = history
    reference = client.cwd / "reference.git"
    client.git("clone", "-q", "--bare", str(src), str(reference))
    client.git("config", "uploadpack.allowFilter", "true", cwd=reference)
    for repo in (reference, server.repo_path("filters.git")):
        client.git("repack", "-adq", "--write-bitmap-index", cwd=repo)
    (src / "top.txt").write_text("after the bitmap\n")
    (src / "d" / "e" / "deep.txt").write_text("deeper after the bitmap\n")
    client.git("commit", "-qam", "after", cwd=src)
    client.git("tag", "-a", "-m", "the new root", "new-root", "HEAD^{tree}", cwd=src)
    client.git("tag", "-a", "-m", "a new directory", "new-dir", "HEAD:d", cwd=src)
    client.git("tag", "-a", "-m", "a new file", "new-file", "HEAD:top.txt", cwd=src)
    for target in (url, str(reference)):
        client.git("push", "-q", target, "main", "refs/tags/*:refs/tags/*", cwd=src)
    store = server.backend.open("filters").object_store  # type: ignore[union-attr]
    assert git_fastpack.counts_from_bitmap(store)
    root = client.git("rev-parse", "HEAD^{tree}", cwd=src).stdout.strip()
    assert not git_fastpack.bitmap_covers(store, [root.encode()]), "the new root is outside the bitmap"
    differ = {}
    for spec in SPECS:
        for mirror in (False, True):
            ours, theirs = client.cwd / f"ours-{spec}-{mirror}", client.cwd / f"theirs-{spec}-{mirror}"
            how = "--mirror" if mirror else "--bare"
            for source, target in ((url, ours), (f"file://{reference}", theirs)):
                client.git("clone", "-q", how, f"--filter={spec}", source, str(target))
            got, expected = _objects(client, ours), _objects(client, theirs)
            if got != expected:
                differ[(spec, mirror)] = {"only ours": sorted(got - expected), "only git's": sorted(expected - got)}
    assert not differ, differ
