"""The background repack's refusals: no git binary, a repack already running."""

from __future__ import annotations

from pathlib import Path

import pytest
from twisted.logger import LogEvent, globalLogPublisher

from gateway import maintenance


def test_without_git_nothing_runs_and_that_is_logged_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(maintenance.shutil, "which", lambda _name: None)
    monkeypatch.setattr(maintenance, "_no_git_logged", False)
    events: list[LogEvent] = []
    globalLogPublisher.addObserver(events.append)
    try:
        assert maintenance.start_repack(str(tmp_path), "r") is False
        assert maintenance.start_repack(str(tmp_path), "r") is False
    finally:
        globalLogPublisher.removeObserver(events.append)
    warned = [e for e in events if "no git binary" in e.get("log_format", "")]
    assert len(warned) == 1 and warned[0]["repo"] == "r"
    assert str(tmp_path) not in maintenance.running()  # other tests of this process may be repacking


def test_a_repository_being_repacked_gets_no_second_repack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(maintenance, "_running", {str(tmp_path)})
    assert maintenance.start_repack(str(tmp_path), "r", git="/bin/false") is False


class _Repo:
    """A repository that always lacks a bitmap (git cannot write one: kept packs, say)."""

    def __init__(self) -> None:
        self.asked: list[tuple[int, ...]] = []

    def repack_candidate(self, pack_limit: int, bitmap_objects: int = 0) -> str | None:
        self.asked.append((pack_limit, bitmap_objects))
        return "/r.git" if bitmap_objects else None

    def bitmap_candidate(self, min_objects: int) -> str | None:
        self.asked.append((min_objects,))
        return "/r.git"


def test_a_repository_that_gets_no_bitmap_is_repacked_for_one_once_an_hour(monkeypatch: pytest.MonkeyPatch) -> None:
    from twisted.internet import defer

    clock = [1000.0]
    started: list[str] = []
    monkeypatch.setattr(maintenance, "_bitmap_started", {})
    monkeypatch.setattr(maintenance.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(maintenance, "run_blocking", lambda f, *args: defer.succeed(f(*args)))
    monkeypatch.setattr(maintenance, "_pack_refs_then_repack", lambda path, name, _pack_refs, _graph, *_: started.append(name))
    repo = _Repo()
    maintenance.after_push(repo, "r", 50, 10_000)  # type: ignore[arg-type]
    maintenance.after_push(repo, "r", 50, 10_000)  # type: ignore[arg-type]
    maintenance.after_fetch(repo, "r", 50, 10_000)  # type: ignore[arg-type]
    assert started == ["r"]
    assert repo.asked == [(50, 10_000), (50, 0)]  # the second push: pack limits only
    clock[0] += maintenance.BITMAP_RECHECK_SECONDS
    maintenance.after_fetch(repo, "r", 50, 10_000)  # type: ignore[arg-type]
    maintenance.after_fetch(repo, "r", 50, 10_000)  # type: ignore[arg-type]
    maintenance.after_push(repo, "r", 50, 10_000)  # type: ignore[arg-type]
    assert started == ["r", "r"]
    maintenance.after_fetch(repo, "other", 50, 0)  # type: ignore[arg-type]
    maintenance.after_fetch(repo, "other", 0, 10_000)  # type: ignore[arg-type]
    assert started == ["r", "r"]


def test_the_repack_holds_gc_pid_as_git_gc_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A live ``git gc`` (its ``gc.pid``: a live process here, or any on another host, younger than
    12 hours) stops hgwire's repack; a dead one's or an old one's lock is taken over, written as git
    writes it, and removed when the repack ends; a ``git gc`` started meanwhile stops at once."""
    import os
    import shutil
    import socket
    import subprocess
    import time

    from backends import git_maintenance

    git_dir = tmp_path / "r.git"
    subprocess.run(["git", "init", "-q", "--bare", str(git_dir)], check=True)
    pid_file = git_dir / "gc.pid"
    host = socket.gethostname()
    pid_file.write_text(f"{os.getpid()} {host}")  # a live process on this host
    assert git_maintenance.gc_holder(git_dir) == f"{os.getpid()} on {host}"
    assert maintenance.start_repack(str(git_dir), "r", git=shutil.which("git")) is False
    pid_file.write_text("1234 elsewhere.example")  # another host's: counted while young
    assert git_maintenance.take_gc_lock(git_dir) == "1234 on elsewhere.example"
    old = time.time() - git_maintenance.GC_LOCK_SECONDS - 60
    os.utime(pid_file, (old, old))
    assert git_maintenance.gc_holder(git_dir) is None  # older than 12 hours: git takes it over too
    dead = subprocess.Popen(["true"])
    dead.wait()
    pid_file.write_text(f"{dead.pid} {host}")  # a process that has ended
    assert git_maintenance.take_gc_lock(git_dir) is None
    assert pid_file.read_text() == f"{os.getpid()} {host}" and not (git_dir / "gc.pid.lock").exists()
    gc = subprocess.run(["git", "--git-dir", str(git_dir), "gc"], check=False, capture_output=True, text=True)
    assert gc.returncode != 0 and "gc is already running" in gc.stderr
    git_maintenance.release_gc_lock(git_dir)
    assert not pid_file.exists()
    pid_file.write_text("1234 elsewhere.example")
    git_maintenance.release_gc_lock(git_dir)  # not ours: left alone
    assert pid_file.exists()


def test_a_gc_pid_that_cannot_be_written_leaves_no_lock_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk while gc.pid is written: the error goes up (the repack is not started) and no
    gc.pid.lock stays to stop every later gc."""
    import errno
    import os

    from backends import git_maintenance

    def full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(git_maintenance.os, "write", full)
    with pytest.raises(OSError):
        git_maintenance.take_gc_lock(tmp_path)
    assert os.listdir(tmp_path) == []
    monkeypatch.undo()
    assert git_maintenance.take_gc_lock(tmp_path) is None and (tmp_path / "gc.pid").exists()
    git_maintenance.release_gc_lock(tmp_path)
