"""A server whose disk is full (or over quota) while a push lands, with the real clients: the push
is refused in the client's own words ("the server could not store …"), the repository stays as it
was, no lock is left behind, and once there is room the same push goes through.

The disk's refusal is injected (``OSError(ENOSPC)`` where the write would fail) so that the test
runs anywhere; the same cases were tried by hand on a 3 MiB tmpfs.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from backends.interfaces import Kind
from tests.conftest import LOOPBACK, Client
from tests.integration.test_git_daemon import remote_refs, started_repo


def _full(*_args: Any, **_kwargs: Any) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class _UnflushableFile:
    """A file on a full disk: a few bytes are taken into the buffer, flushing them fails, and so
    does closing (which still lets the descriptor go), every time."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def write(self, data: bytes) -> int:
        return len(data)

    def flush(self) -> None:
        _full()

    def close(self) -> None:
        self._real.close()
        _full()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_git_pack_the_disk_cannot_hold_is_refused_and_nothing_changes(
        make_server: Any, client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    from backends import git_ingest

    server = make_server("fs", git=[LOOPBACK])
    url, work = started_repo(server, client, "full", push=True)
    bare = server.root / "full.git"
    (work / "b.txt").write_bytes(os.urandom(200_000))
    client.git("add", "b.txt", cwd=work)
    client.git("commit", "-qm", "b", cwd=work)
    before = remote_refs(client, "default", url)
    with monkeypatch.context() as patched:
        patched.setattr(git_ingest.PackIngest, "write", _full)
        refused = client.git("push", url, "HEAD:main", cwd=work, check=False)
    assert refused.returncode != 0
    assert ("the server could not store the pushed pack (No space left on device); nothing was changed"
            in refused.stderr), refused.stderr
    assert remote_refs(client, "default", url) == before
    assert not list((bare / "objects").glob("tmp_*")) and not list((bare / "objects").glob("incoming-*"))
    client.git("--git-dir", str(bare), "fsck", "--full")
    client.git("push", "-q", url, "HEAD:main", cwd=work)
    assert remote_refs(client, "default", url)["refs/heads/main"] == client.git("rev-parse", "HEAD", cwd=work
                                                                                ).stdout.strip()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # dulwich's file, collected,
# tries to close itself again: on this disk that fails too
def test_a_ref_the_disk_cannot_write_is_refused_and_leaves_no_lock(
        make_server: Any, client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """dulwich leaves its ``.lock`` when the write fails before the rename (a full disk, and the
    lock holder's note cannot be written either): hgwire removes it, so the ref can move later."""
    import dulwich.file

    server = make_server("fs", git=[LOOPBACK])
    url, work = started_repo(server, client, "refs", push=True)
    heads = server.root / "refs.git" / "refs" / "heads"
    before = remote_refs(client, "default", url)
    original_init = dulwich.file._GitFile.__init__

    def on_a_full_disk(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self._file = _UnflushableFile(self._file)
        for method in self.PROXY_METHODS:
            setattr(self, method, getattr(self._file, method))

    with monkeypatch.context() as patched:
        patched.setattr(dulwich.file._GitFile, "__init__", on_a_full_disk)
        patched.setattr(os, "pwrite", _full)  # the ref lock's holder note
        refused = client.git("push", url, "HEAD:refs/heads/topic", cwd=work, check=False)
    assert refused.returncode != 0
    assert "topic (failed to update ref: No space left on device)" in refused.stderr, refused.stderr
    assert remote_refs(client, "default", url) == before
    assert sorted(p.name for p in heads.iterdir()) == ["main"], "no ref, no lock left"
    client.git("push", "-q", url, "HEAD:refs/heads/topic", cwd=work)
    assert "refs/heads/topic" in remote_refs(client, "default", url)


def test_an_hg_push_the_disk_cannot_hold_is_rolled_back_saying_so(
        make_server: Any, client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from backends.hg import vfs

    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("alice:" + bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode() + "\n")
    server = make_server("fs", http=[LOOPBACK], htpasswd=str(htpasswd), allow_push_over_http=True)
    server.backend.create("h", Kind.HG)
    url = f"http://alice:pw@127.0.0.1:{server.port('http')}/h"
    work = tmp_path / "work"
    client.hg("init", str(work))
    (work / "a.txt").write_text("a\n")
    client.hg("commit", "-q", "-A", "-m", "a", "-u", "u", cwd=work)
    client.hg("push", "-q", url, cwd=work)
    (work / "b.bin").write_bytes(os.urandom(100_000))
    client.hg("commit", "-q", "-A", "-m", "b", "-u", "u", cwd=work)
    repo = server.root / "h" / ".hg"
    before = _snapshot(repo)
    original = vfs.FsVfs.append

    def append(self: Any, path: bytes, data: bytes) -> None:
        if path.startswith(b"data/b.bin"):  # the new file's revlog: the changelog is written last
            _full()
        original(self, path, data)

    with monkeypatch.context() as patched:
        patched.setattr(vfs.FsVfs, "append", append)
        refused = client.hg("push", url, cwd=work, check=False)
    assert refused.returncode != 0
    said = refused.stdout + refused.stderr
    assert "remote: the server could not store the push (No space left on device); nothing was changed" in said, said
    assert _snapshot(repo) == before
    client.hg("verify", "-q", "-R", str(server.root / "h"))
    client.hg("push", "-q", url, cwd=work)
    client.hg("verify", "-q", "-R", str(server.root / "h"))
