"""A repository whose repack has ended is let go whole: a reader that sees it no longer among
``maintenance.running()`` (another thread: a status page, a test) finds its ``gc.pid`` gone too."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.python.failure import Failure

from backends import git_maintenance
from gateway import maintenance


class _Watched(set[str]):
    """``_running`` that notes, as each repository leaves it, whether its gc.pid was still there."""

    def __init__(self, seen: list[bool]) -> None:
        super().__init__()
        self.seen = seen

    def discard(self, item: object) -> None:
        self.seen.append((Path(str(item)) / git_maintenance.GC_PID).exists())
        super().discard(item)


@pytest.mark.parametrize("reason", [ProcessDone(0), ProcessTerminated(exitCode=1)], ids=["succeeded", "failed"])
def test_the_gc_pid_is_gone_before_the_repository_leaves_running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   reason: Any) -> None:
    git_dir = tmp_path / "r.git"
    (git_dir / "objects" / "pack").mkdir(parents=True)
    seen: list[bool] = []
    monkeypatch.setattr(maintenance, "_running", _Watched(seen))
    assert git_maintenance.take_gc_lock(str(git_dir)) is None
    maintenance._running.add(str(git_dir))
    done = maintenance._RepackProtocol(str(git_dir), "r", "git", commit_graph=False)
    done.processEnded(Failure(reason))
    assert seen == [False]
    assert not (git_dir / git_maintenance.GC_PID).exists()
    assert str(git_dir) not in maintenance.running()
