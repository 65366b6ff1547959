"""A ref another git process holds locked for a moment (``git gc``, ``git pack-refs``, a local
``git update-ref``) is waited for, as git's refs code waits (``core.filesRefLockTimeout``, 100 ms;
``core.packedRefsTimeout``, 1 s); a lock held past that refuses the ref naming the lock file."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_damaged_repository import bare_with_a_commit


def _seeded(make_server: Callable[..., RunningServer], client: Client) -> tuple[RunningServer, Path, Path]:
    server = make_server("fs", git=[LOOPBACK])
    bare, work = bare_with_a_commit(client, server.root, "locked.git")
    (work / "a.txt").write_text("b\n")
    client.git("commit", "-qam", "b", cwd=work)
    return server, bare, work


@pytest.mark.parametrize("lock", ["refs/heads/main.lock", "packed-refs.lock"])
def test_a_lock_held_for_a_moment_is_waited_for(
        make_server: Callable[..., RunningServer], client: Client, lock: str) -> None:
    server, bare, work = _seeded(make_server, client)
    held = bare / lock
    held.write_text("")
    release = threading.Timer(0.05, held.unlink)
    release.start()
    try:
        client.git("push", "-q", server.git_url("locked"), "main", cwd=work)
    finally:
        release.join()
    assert client.git("--git-dir", str(bare), "rev-parse", "main").stdout == \
        client.git("rev-parse", "HEAD", cwd=work).stdout


def test_a_lock_left_behind_refuses_the_ref_naming_the_file(
        make_server: Callable[..., RunningServer], client: Client) -> None:
    server, bare, work = _seeded(make_server, client)
    (bare / "refs" / "heads" / "main.lock").write_text("")
    started = time.monotonic()
    refused = client.git("push", server.git_url("locked"), "main", cwd=work, check=False)
    assert refused.returncode == 1
    assert ("(failed to update ref: refs/heads/main.lock exists: another git process is changing refs; "
            "push again, or remove that file if no process is)") in refused.stderr, refused.stderr
    assert time.monotonic() - started < 10
