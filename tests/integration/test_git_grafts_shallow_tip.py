"""A shallow clone of a repository whose ``info/grafts`` cuts a commit off from its own parents,
when the pack stops at that commit (``git clone --depth 1`` whose only commit is the grafted one,
or a deeper clone of a branch above it): git's upload-pack sends that commit as a shallow one, and
the clone succeeds, since neither the grafted nor the stored parents are in the pack.  hgwire
refused every pack of such a repository; it now refuses only a pack whose walk goes through a cut
commit to its parents (``--depth 2`` at the grafted commit, as git's fails), each beside git's
own answer (``file://``), over protocol v0 and v2."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_daemon import commit


@pytest.mark.parametrize("version", ["0", "2"])
def test_a_shallow_clone_stopping_at_the_grafted_commit_is_served_as_git_serves_it(
        make_server: Callable[..., RunningServer], client: Client, version: str) -> None:
    server = make_server("fs", git=[LOOPBACK])
    work, bare = client.cwd / "work", server.root / "g.git"
    client.git("init", "-q", "-b", "main", str(work))
    first = commit(client, work, "f", "1\n", "c1")
    commit(client, work, "f", "2\n", "c2")
    third = commit(client, work, "f", "3\n", "c3")
    client.git("branch", "at-cut", cwd=work)
    fourth = commit(client, work, "f", "4\n", "c4")
    client.git("clone", "-q", "--bare", str(work), str(bare))
    client.git("config", "advice.graftFileDeprecated", "false", cwd=bare)
    (bare / "info" / "grafts").write_text(f"{third} {first}\n")  # (c2 cut off)
    cases = {  # (branch, depth): served, and the commits the clone has
        ("at-cut", "1"): [third],
        ("main", "2"): [fourth, third],
        ("at-cut", "2"): None,
        ("main", "3"): None,
    }
    for url in (f"file://{bare}", server.git_url("g")):
        tag = "git" if url.startswith("file:") else "ours"
        for (branch, depth), expected in cases.items():
            clone = client.cwd / f"{tag}-{branch}-{depth}"
            cloned = client.git("-c", f"protocol.version={version}", "clone", "-q", "--depth", depth,
                                "--branch", branch, url, str(clone), check=False)
            assert (cloned.returncode == 0) == (expected is not None), (tag, branch, depth, cloned.stderr)
            if expected is not None:
                assert client.git("rev-list", "HEAD", cwd=clone).stdout.split() == expected, (tag, branch, depth)
                client.git("fsck", "--full", cwd=clone)
            elif tag == "ours":
                assert f"info/grafts cuts commit {third}" in cloned.stderr, cloned.stderr
