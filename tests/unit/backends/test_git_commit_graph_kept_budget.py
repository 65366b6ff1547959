"""The commit-graphs kept between requests are bounded by the commits they hold, not only by their
count: each holds 20 bytes a commit since its parent and time columns are decoded in bulk (4
before), so sixteen graphs of a million commits each kept 320 MiB (64 before the columns)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from backends import git_commitgraph
from backends.git_commitgraph import commit_graph


@pytest.fixture
def kept() -> Iterator[None]:
    with git_commitgraph._KEPT_LOCK:
        saved = dict(git_commitgraph._KEPT)
        git_commitgraph._KEPT.clear()
    yield
    with git_commitgraph._KEPT_LOCK:
        git_commitgraph._KEPT.clear()
        git_commitgraph._KEPT.update(saved)


def _graphed(path: Path, commits: int) -> str:
    """A bare repository of ``commits`` commits in a line, with its commit-graph: its objects directory."""
    subprocess.run(["git", "init", "-q", "--bare", str(path)], check=True)
    stream = "".join(f"commit refs/heads/main\ncommitter a <a@b> {1_000_000 + n} +0000\ndata 0\n\n"
                     for n in range(commits))
    subprocess.run(["git", "--git-dir", str(path), "fast-import", "--quiet"], input=stream.encode(), check=True)
    subprocess.run(["git", "--git-dir", str(path), "commit-graph", "write", "--reachable"], check=True,
                   capture_output=True)
    return str(path / "objects")


def test_kept_graphs_hold_no_more_commits_than_the_budget(tmp_path: Path, kept: None,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(git_commitgraph, "MAX_KEPT_GRAPH_COMMITS", 250, raising=False)
    stores = [_graphed(tmp_path / f"r{n}.git", 100) for n in range(4)]
    for store in stores:
        graph = commit_graph(store, 20)
        assert graph is not None and len(graph) == 100
    assert sum(len(g) for g in git_commitgraph._KEPT.values() if g is not None) <= 250
    assert len(git_commitgraph._KEPT) == 2  # (the two most recently read)
    assert commit_graph(stores[-1], 20) is git_commitgraph._KEPT[next(reversed(git_commitgraph._KEPT))]


def test_one_graph_over_the_budget_is_still_kept(tmp_path: Path, kept: None,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(git_commitgraph, "MAX_KEPT_GRAPH_COMMITS", 50, raising=False)
    store = _graphed(tmp_path / "big.git", 100)
    first = commit_graph(store, 20)
    assert first is not None and commit_graph(store, 20) is first  # (read once, not each request)
