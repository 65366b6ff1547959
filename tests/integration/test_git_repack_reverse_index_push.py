"""The repack hgwire starts after pushes writes the new pack's reverse index (``.rev``, git's
``pack.writeReverseIndex``, not written by default before git 2.41), which its clones then take
their pack order from; the packs it replaces go with their ``.rev``; a repository whose config
says ``pack.writeReverseIndex = false`` gets none."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from backends import git_packindex
from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_daemon import _waited, commit


@pytest.mark.parametrize("write_reverse_index", [None, "false"])
def test_the_automatic_repack_writes_the_reverse_index(
        make_server: Callable[..., RunningServer], client: Client, write_reverse_index: str | None) -> None:
    from gateway import maintenance

    server = make_server("fs", git=[LOOPBACK])
    served = server.root / "rev.git"
    pack_dir = served / "objects" / "pack"
    work = client.cwd / "work"
    client.git("init", "-q", "--bare", str(served))
    client.git("--git-dir", str(served), "config", "gc.autoPackLimit", "3")
    if write_reverse_index is not None:
        client.git("--git-dir", str(served), "config", "pack.writeReverseIndex", write_reverse_index)
    client.git("init", "-q", "-b", "main", str(work))
    commit(client, work, "f.txt", "f\n", "before")
    client.git("push", "-q", str(served), "main", cwd=work)
    client.git("--git-dir", str(served), "-c", "pack.writeReverseIndex=true", "repack", "-adq")  # an operator's
    (old,) = pack_dir.glob("pack-*.rev")
    for step in range(2):  # 2 packs, 3: repacked into one
        commit(client, work, f"g{step}.txt", f"{step}\n", f"through hgwire {step}")
        client.git("push", "-q", server.git_url("rev"), "main", cwd=work)
    assert _waited(lambda: len(list(pack_dir.glob("pack-*.pack"))) == 1 and str(served) not in maintenance.running(),
                   60)
    (pack,) = pack_dir.glob("pack-*.pack")
    assert not old.exists()  # gone with its pack
    revs = list(pack_dir.glob("pack-*.rev"))
    client.git("--git-dir", str(served), "fsck", "--full")
    if write_reverse_index == "false":
        assert revs == []
        return
    assert revs == [pack.with_suffix(".rev")]
    client.git("--git-dir", str(served), "verify-pack", str(pack.with_suffix(".idx")))
    view = git_packindex.read_index(str(pack.with_suffix(".idx")), str(pack))
    assert git_packindex._reverse_index(str(pack), len(view), view.checksum, 20) is not None
    client.git("clone", "-q", server.git_url("rev"), str(client.cwd / "clone"))
    assert (client.cwd / "clone" / "g1.txt").read_text() == "1\n"
