"""SIGKILL the real ``twistd hgwire`` in the middle of pushes (issue 8 item 4).

The machinery is ``bench/crash.py`` (``python -m bench.crash`` is the long run).
Here each VCS gets a few seeded kills with real clients: while the client
uploads, right after the upload, and inside the server's work after it (pack
ingest and ref update; changegroup apply and transaction commit).  After each
kill the server restarts on the same root; the repository must verify
(``git fsck`` / ``hg verify``), hold its old or its new state, and the same
push, retried, must succeed.

Two kills land in windows too narrow for a random delay, so a writer is killed
there on purpose: inside a git ref update (its ``NAME.lock`` left behind), and
while breaking the stale lock of an earlier dead hg writer (``lock.break``
left behind).  The checks themselves are shown to fail on damaged repositories.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from backends.hg.lock import lock_prefix
from bench.crash import (
    PROJECT_DIR,
    Client,
    CrashRun,
    GitCase,
    HgCase,
    KillResult,
    Server,
    classify,
    client_env,
    git_problems,
    git_state,
    hg_changesets,
    hg_problems,
    hg_state,
)

SIZE = 1536 * 1024
SEED = 8
KILLS = {
    # A kill after the upload needs the upload measured on its transport: the retry of an earlier
    # upload kill there measures it (git://, hg over SSH), else one more push does (git over SSH).
    "git": [("git", "upload"), ("ssh", "after-upload"), ("git", "commit")],
    "hg": [("ssh", "upload"), ("ssh", "commit")],
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the module: the kill tests restart it; every test uses repositories of its own."""
    base = tmp_path_factory.mktemp("crash")
    server = Server(base / "server", base / "root")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    client = Client(client_env(tmp_path / "home"))
    yield client
    client.close()


def _report(results: list[KillResult]) -> str:
    return "\n".join(r.line() for r in results)


@pytest.mark.parametrize("vcs", ["git", "hg"])
def test_sigkill_during_push_leaves_old_or_new_and_a_retry_succeeds(
    server: Server, tmp_path: Path, vcs: str
) -> None:
    starts = server.starts
    crash = CrashRun(server, vcs, tmp_path / "clients", SIZE, SEED)
    try:
        results = [crash.kill(transport, phase) for transport, phase in KILLS[vcs]]
    finally:
        crash.close()
    report = _report(results)
    assert all(r.ok for r in results), report
    assert server.starts == starts + len(results)
    for result in results:
        if result.point.phase == "upload":  # the relay held the rest of the push: the server never had it
            assert result.killed_mid_push and result.state == "old", report
            assert result.watched.sent_at_kill == result.point.threshold, report


KILLED_REF_UPDATE = r"""
import os, sys, time
sys.path.insert(0, sys.argv[1])
from backends.filesystem import FilesystemBackend
from backends.interfaces import ObjectId, RefUpdate

def hang(fd):  # dulwich fsyncs NAME.lock before renaming it over NAME: be killed right there
    print("ref lock taken", flush=True)
    time.sleep(60)

os.fsync = hang
repo = FilesystemBackend(sys.argv[2]).open(sys.argv[3])
ref, old, new = (arg.encode() for arg in sys.argv[4:7])
repo.update_refs([RefUpdate(ref, ObjectId(old), ObjectId(new))], atomic=False)
"""


def test_ref_lock_of_a_killed_writer_does_not_block_later_pushes(
    server: Server, client: Client, tmp_path: Path
) -> None:
    """A SIGKILL between taking ``refs/heads/main.lock`` and renaming it once made every later push fail."""
    case = GitCase(server, client, tmp_path / "clients", "ref-locked")
    rng = random.Random(SEED)
    _, pushed = case.prepare(4096, rng, case.create())
    client.check(case.push_argv("git"))
    writer = subprocess.Popen(
        [sys.executable, "-c", KILLED_REF_UPDATE, str(PROJECT_DIR), str(server.root), case.name,
         "refs/heads/main", pushed["refs/heads/main"], pushed["refs/heads/b1"]],
        stdout=subprocess.PIPE,
    )
    assert writer.stdout is not None
    assert writer.stdout.readline() == b"ref lock taken\n"
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    assert (case.path / "refs" / "heads" / "main.lock").exists()
    assert git_state(client, case.path) == pushed
    _, new = case.prepare(4096, rng, pushed)
    result = client.run(case.push_argv("git"))
    assert result.returncode == 0, result.stderr
    assert git_state(client, case.path) == new
    assert git_problems(client, case.path) is None


def test_lock_breaker_of_a_killed_writer_does_not_block_later_pushes(
    server: Server, client: Client, tmp_path: Path
) -> None:
    """A writer killed while breaking a dead writer's hg lock leaves ``lock.break``: it once hung pushes."""
    case = HgCase(server, client, tmp_path / "clients", "lock-broken")
    rng = random.Random(SEED)
    old = case.create()
    dead = subprocess.Popen(["true"])
    dead.wait()
    store = case.path / ".hg" / "store"
    for lock in (store / "lock", store / "lock.break", case.path / ".hg" / "wlock"):
        os.symlink(f"{lock_prefix()}:{dead.pid}", lock)
    _, new = case.prepare(4096, rng, old)
    result = client.run(case.push_argv("ssh"), timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert case.state() == new
    assert hg_problems(client, case.path) is None
    assert not any(os.path.lexists(lock) for lock in (store / "lock", store / "lock.break"))


def test_the_checks_see_damage(client: Client, tmp_path: Path) -> None:
    """``git fsck``, ``hg verify`` and the old/new classification do fail: a check that cannot is none."""
    git_repo = tmp_path / "g"
    client.check(["git", "init", "-q", git_repo])
    (git_repo / "f").write_text("content\n")
    client.check(["git", "-C", git_repo, "add", "f"])
    client.check(["git", "-C", git_repo, "commit", "-q", "-m", "one"])
    assert git_problems(client, git_repo / ".git") is None
    blob = client.check(["git", "-C", git_repo, "rev-parse", "HEAD:f"]).strip()
    (git_repo / ".git" / "objects" / blob[:2] / blob[2:]).unlink()
    assert "missing blob" in (git_problems(client, git_repo / ".git") or "")

    hg_repo = tmp_path / "h"
    client.check_hg("init", hg_repo)
    (hg_repo / "f").write_text("content\n")
    client.check_hg("-R", hg_repo, "commit", "-q", "-A", "-m", "one")
    assert hg_problems(client, hg_repo) is None
    assert hg_state(hg_changesets(client, hg_repo))["repository"].startswith("1 changesets, 0 bookmarks")
    (hg_repo / ".hg" / "store" / "journal").write_bytes(b"")
    assert "abandoned transaction" in (hg_problems(client, hg_repo) or "")
    (hg_repo / ".hg" / "store" / "journal").unlink()
    filelog = hg_repo / ".hg" / "store" / "data" / "f.i"
    filelog.write_bytes(filelog.read_bytes()[:-4])
    assert (hg_problems(client, hg_repo) or "").startswith("hg verify")

    old, new = {"a": "1", "b": "1"}, {"a": "2", "b": "2"}
    assert [classify(old, new, now) for now in (old, new, {"a": "2", "b": "1"}, {"a": "3", "b": "1"},
                                                {"a": "1", "b": "1", "c": "1"})] == [
        "old", "new", "mixed", "partial", "partial"]
