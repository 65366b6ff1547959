"""Shallow clones and their deepens of a repository with a commit-graph (``git gc`` writes one;
hgwire's walks take the commits it holds from it, not reading them): a seeded random history with
merges, each shape of request (``--deepen``, ``--depth``, ``--shallow-since``, ``--shallow-exclude``,
``--unshallow``) over protocol v0 and v2 (and v0 without a graph), against git's own upload-pack
(``file://``): the same shallow commits, the same objects, and a repository ``git fsck`` passes."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import LOOPBACK, Client, RunningServer


def history(client: Client, work: Path, seed: int) -> None:
    """Branches forking and merging over a few files and a directory of 70 (a tree of 2.5 KB, which
    hgwire's walks read where it differs from the last one of its name), a commit a minute."""
    rng = random.Random(seed)
    client.git("init", "-q", "-b", "main", str(work))
    env_time = 1_600_000_000
    (work / "README").write_text("root\n")
    (work / "wide").mkdir()
    for i in range(70):
        (work / "wide" / f"w{i:02d}.txt").write_text(f"{i}\n")
    client.git("add", "-A", cwd=work)
    client.git("commit", "-q", "-m", "root", cwd=work, env={"GIT_AUTHOR_DATE": f"@{env_time} +0000",
                                                          "GIT_COMMITTER_DATE": f"@{env_time} +0000"})
    for n in range(1, 40):
        branches = client.git("for-each-ref", "--format=%(refname:short)", "refs/heads", cwd=work).stdout.split()
        client.git("checkout", "-q", rng.choice(branches), cwd=work)
        when = f"@{env_time + 60 * n} +0000"
        env = {"GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when}
        roll = rng.random()
        if roll < 0.15:
            client.git("checkout", "-q", "-b", f"b{n}", cwd=work)
        if roll > 0.8 and len(branches) > 1:
            others = [b for b in branches if b != client.git("branch", "--show-current", cwd=work).stdout.strip()]
            client.git("merge", "-q", "--no-edit", "-s", "ours", rng.choice(others), cwd=work, env=env)
            continue
        d = work / f"d{rng.randrange(4)}"
        d.mkdir(exist_ok=True)
        (d / f"f{rng.randrange(3)}.txt").write_text(f"{n} {rng.random()}\n")
        if rng.random() < 0.5:
            (work / "wide" / f"w{rng.randrange(80):02d}.txt").write_text(f"{n}\n")
        client.git("add", "-A", cwd=work)
        client.git("commit", "-q", "-m", f"c{n}", cwd=work, env=env)


@pytest.mark.parametrize(("version", "graph"), [("0", True), ("2", True), ("0", False)])
def test_deepens_with_a_commit_graph_are_git_s(make_server: Callable[..., RunningServer], client: Client,
                                               version: str, graph: bool) -> None:
    server = make_server("fs", git=[LOOPBACK])
    work, bare = client.cwd / "work", server.root / "graph.git"
    history(client, work, 9)
    client.git("clone", "-q", "--bare", str(work), str(bare))
    client.git("repack", "-adbq", cwd=bare)
    if graph:
        client.git("commit-graph", "write", "--reachable", cwd=bare)
    assert (bare / "objects" / "info" / "commit-graph").is_file() == graph
    since = "@" + str(1_600_000_000 + 60 * 30)
    side = client.git("for-each-ref", "--format=%(refname:short)", "refs/heads", cwd=bare).stdout.split()[0]
    shapes = [["--deepen=2"], ["--depth=3"], [f"--shallow-since={since}"], [f"--shallow-exclude={side}"],
              ["--unshallow"]]
    for shape in shapes:
        found = []
        for name, url in [("ours", server.git_url("graph")), ("git", f"file://{bare}")]:
            clone = client.cwd / f"{name}-{shape[0].split('=')[0].strip('-')}"
            client.git("-c", f"protocol.version={version}", "clone", "-q", "-n", "--depth", "1",
                       "--no-single-branch", url, str(clone))
            client.git("-c", f"protocol.version={version}", "fetch", "-q", *shape, cwd=clone)
            client.git("fsck", "--full", "--strict", cwd=clone)
            shallow = clone / ".git" / "shallow"
            found.append((sorted(shallow.read_text().split()) if shallow.exists() else [],
                          sorted(client.git("rev-list", "--objects", "--all", cwd=clone).stdout.splitlines())))
        assert found[0] == found[1], shape
