"""hgwire's automatic repack after pushes writes the repository's commit-graph after it, as the
``git gc --auto`` git's receive-pack runs does (``gc.writeCommitGraph``, true by default), with
the real git client: the graph then covers every commit there is then (it went on covering those of the last
``git gc`` an operator ran); a repository whose config turns it off keeps its graph as it was."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from twisted.logger import LogEvent, globalLogPublisher

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_daemon import _waited, commit


def _graph_commits(git_dir: Path) -> int:
    """The commits ``objects/info/commit-graph`` holds: the last fan-out entry of its OID Fanout
    chunk (``gitformat-commit-graph(5)``: a 8-byte header whose byte 6 counts the chunks, then a
    table of 12-byte entries, a chunk id and its offset)."""
    data = (git_dir / "objects" / "info" / "commit-graph").read_bytes()
    assert data[:4] == b"CGPH"
    for at in range(8, 8 + 12 * data[6], 12):
        chunk, offset = struct.unpack(">4sQ", data[at:at + 12])
        if chunk == b"OIDF":
            return int(struct.unpack(">I", data[offset + 255 * 4:offset + 256 * 4])[0])
    raise AssertionError("no OID Fanout chunk")


def _repacked(events: list[LogEvent]) -> list[LogEvent]:
    return [e for e in events if str(e.get("log_format", "")).startswith("repacked {repo}")]


@pytest.mark.parametrize("write_commit_graph", [None, "false"])
def test_the_automatic_repack_writes_the_commit_graph_as_git_gc_does(
        make_server: Callable[..., RunningServer], client: Client, write_commit_graph: str | None) -> None:
    from gateway import maintenance

    server = make_server("fs", git=[LOOPBACK])
    served = server.root / "graph.git"
    work = client.cwd / "work"
    client.git("init", "-q", "--bare", str(served))
    client.git("--git-dir", str(served), "config", "gc.autoPackLimit", "3")
    if write_commit_graph is not None:
        client.git("--git-dir", str(served), "config", "gc.writeCommitGraph", write_commit_graph)
    client.git("init", "-q", "-b", "main", str(work))
    for step in range(2):
        commit(client, work, f"f{step}.txt", f"{step}\n", f"before {step}")
    client.git("push", "-q", str(served), "main", cwd=work)
    client.git("--git-dir", str(served), "-c", "gc.writeCommitGraph=true", "gc", "-q")  # an operator's
    assert _graph_commits(served) == 2
    events: list[LogEvent] = []
    globalLogPublisher.addObserver(events.append)
    try:
        expected = 0
        for step in range(5):  # 2 packs, 3: repacked; 2, 3: repacked; 2
            commit(client, work, f"g{step}.txt", f"{step}\n", f"through hgwire {step}")
            client.git("push", "-q", server.git_url("graph"), "main", cwd=work)
            expected += step in (1, 3)
            assert _waited(lambda n=expected: len(_repacked(events)) >= n and str(served) not in maintenance.running(),
                           60)
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert [e["repo"] for e in _repacked(events)] == ["graph.git"] * 2
    assert not (served / "gc.pid").exists()
    client.git("--git-dir", str(served), "commit-graph", "verify")
    at_last_repack = int(client.git("--git-dir", str(served), "rev-list", "--count", "main~1").stdout)
    assert at_last_repack == 6  # (the last push made no repack, as it would make git's gc --auto run none)
    assert _graph_commits(served) == (2 if write_commit_graph == "false" else at_last_repack)
    client.git("--git-dir", str(served), "fsck", "--full")


def test_the_automatic_repack_keeps_a_cruft_pack_with_its_times(make_server: Callable[..., RunningServer],
                                                                 client: Client) -> None:
    """A repository whose unreachable objects an operator's ``git gc --cruft`` keeps in a cruft pack
    (each with the time it was last written, in ``.mtimes``, by which a later ``git gc --prune``
    expires it): hgwire's repack moved them into its new pack, whose time every repack renewed,
    so that they were never pruned; they stay in a cruft pack, with their times."""
    from gateway import maintenance

    server = make_server("fs", git=[LOOPBACK])
    served = server.root / "cruft.git"
    work = client.cwd / "work"
    client.git("init", "-q", "--bare", str(served))
    client.git("--git-dir", str(served), "config", "gc.autoPackLimit", "3")
    client.git("init", "-q", "-b", "main", str(work))
    commit(client, work, "f.txt", "1\n", "first")
    client.git("push", "-q", str(served), "main", cwd=work)
    commit(client, work, "f.txt", "2\n", "dropped")
    dropped = client.git("rev-parse", "HEAD", cwd=work).stdout.strip()
    client.git("push", "-q", str(served), "main:dropped", cwd=work)
    client.git("reset", "-q", "--hard", "HEAD~1", cwd=work)
    client.git("--git-dir", str(served), "update-ref", "-d", "refs/heads/dropped")
    client.git("--git-dir", str(served), "gc", "-q", "--cruft", "--prune=1.year.ago")  # an operator's
    pack_dir = served / "objects" / "pack"
    assert len(list(pack_dir.glob("*.mtimes"))) == 1
    events: list[LogEvent] = []
    globalLogPublisher.addObserver(events.append)
    try:
        for step in range(2):  # 3 packs with the two gc left: repacked
            commit(client, work, f"g{step}.txt", f"{step}\n", f"through hgwire {step}")
            client.git("push", "-q", server.git_url("cruft"), f"HEAD:refs/heads/b{step}", cwd=work)
        assert _waited(lambda: len(_repacked(events)) >= 1 and str(served) not in maintenance.running(), 60)
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert len(list(pack_dir.glob("*.mtimes"))) == 1
    assert len(list(pack_dir.glob("*.bitmap"))) == 1
    assert client.git("--git-dir", str(served), "cat-file", "-t", dropped).stdout.strip() == "commit"
    client.git("--git-dir", str(served), "fsck", "--full")
    client.git("--git-dir", str(served), "gc", "-q", "--cruft", "--prune=now")  # the operator's expiry still works
    assert client.git("--git-dir", str(served), "cat-file", "-t", dropped, check=False).returncode != 0
