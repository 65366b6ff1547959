"""``git push --atomic`` whose disk fills while its refs are written: git's ref transaction writes
every ref's value into its lock file before it renames any into place, so a write that fails (a
full disk, a quota) fails them all with nothing changed.  hgwire wrote and renamed each ref in
turn: the refs before the failing one moved, the push reported "atomic transaction failed" for
none of them."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable

import pytest

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_damaged_repository import bare_with_a_commit


def test_an_atomic_push_whose_disk_fills_mid_write_moves_no_ref(
        make_server: Callable[..., RunningServer], client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    server = make_server("fs", git=[LOOPBACK])
    bare, work = bare_with_a_commit(client, server.root, "full.git")
    client.git("push", "-q", str(bare), "main:refs/heads/side", "main:refs/heads/third", cwd=work)
    before = client.git("--git-dir", str(bare), "for-each-ref").stdout
    client.git("commit", "-q", "--allow-empty", "-m", "b", cwd=work)
    new = client.git("rev-parse", "HEAD", cwd=work).stdout.strip().encode()
    written = os.write
    values: list[bytes] = []

    def disk_full_at_second_ref(fd: int, data: bytes) -> int:  # (the server runs in this process)
        if data == new + b"\n":
            values.append(data)
            if len(values) == 2:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return written(fd, data)

    monkeypatch.setattr(os, "write", disk_full_at_second_ref)
    pushed = client.git("push", "--atomic", server.git_url("full"), "main", "main:refs/heads/side",
                        "main:refs/heads/third", cwd=work, check=False)
    monkeypatch.undo()
    assert len(values) >= 2, "the push's refs were not written through os.write"
    assert pushed.returncode != 0
    rejected = [line for line in pushed.stderr.splitlines() if "[remote rejected]" in line]
    assert len(rejected) == 3 and all("atomic transaction failed" in line or "No space" in line
                                      for line in rejected), pushed.stderr
    assert client.git("--git-dir", str(bare), "for-each-ref").stdout == before  # nothing moved
    assert not list(bare.glob("refs/**/*.lock"))
    client.git("--git-dir", str(bare), "fsck", "--full")
    client.git("push", "-q", "--atomic", server.git_url("full"), "main", "main:refs/heads/side", cwd=work)
