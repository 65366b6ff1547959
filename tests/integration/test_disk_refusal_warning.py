"""A push the server's disk refuses (a directory the service's user may not write, a full disk, a
read-only mount), with the real clients: the client is told the reason and to tell the server's
operator, and the operator's log has a warning that names the file or directory and what to do
(`journalctl -p warning` shows it).  Before, the log had only the request's `info` line with the
client's words: no path, nothing at warning level.

The disk's refusals are injected (an ``OSError`` with its file name where the write would fail), so
that the tests run as any user; the same cases were tried by hand with a root-owned repository
served by ``nobody``.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from twisted.logger import ILogObserver, LogEvent, LogLevel, formatEvent, globalLogPublisher
from zope.interface import provider

from tests.conftest import LOOPBACK, Client
from tests.integration.test_full_disk import _hg_with_a_new_file
from tests.integration.test_git_daemon import remote_refs, started_repo


@contextmanager
def _warnings() -> Iterator[list[str]]:
    """The text of every warning the service logs meanwhile."""
    seen: list[str] = []

    @provider(ILogObserver)
    def observe(event: LogEvent) -> None:
        if event.get("log_level") == LogLevel.warn:
            seen.append(formatEvent(event))

    globalLogPublisher.addObserver(observe)
    try:
        yield seen
    finally:
        globalLogPublisher.removeObserver(observe)


def test_a_git_push_into_a_directory_the_service_may_not_write_names_it_in_a_warning(
        make_server: Any, client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    from backends import git_ingest

    server = make_server("fs", git=[LOOPBACK])
    url, work = started_repo(server, client, "locked", push=True)
    objects = server.root / "locked.git" / "objects"
    (work / "b.txt").write_text("b\n")
    client.git("add", "b.txt", cwd=work)
    client.git("commit", "-qm", "b", cwd=work)
    before = remote_refs(client, "default", url)

    def not_writable(self: Any, store: Any) -> None:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(objects / "tmp_objdir-incoming-x"))

    with _warnings() as warned, monkeypatch.context() as patched:
        patched.setattr(git_ingest.Quarantine, "__init__", not_writable)
        refused = client.git("push", url, "HEAD:main", cwd=work, check=False)
        server.settled()
    assert refused.returncode != 0
    assert "the server could not store the pushed pack (Permission denied)" in refused.stderr, refused.stderr
    assert str(objects) not in refused.stderr  # the client is not shown the server's paths
    assert [w for w in warned if "push to locked.git" in w] == [(
        "git-daemon push to locked.git: the server's disk refused a write, so the push was refused: "
        f"{objects}: Permission denied; give the service's user write rights there")], warned
    assert remote_refs(client, "default", url) == before
    client.git("push", "-q", url, "HEAD:main", cwd=work)


@pytest.mark.parametrize("named", [True, False], ids=["its-file", "a-file-already-open"])
def test_a_git_pack_a_full_disk_cannot_hold_names_the_file_in_a_warning(
        make_server: Any, client: Client, monkeypatch: pytest.MonkeyPatch, named: bool) -> None:
    """The file the error names; a write to a file already open names none: the repository's
    directory is named then (its file system is the one to free)."""
    from backends import git_ingest

    server = make_server("fs", git=[LOOPBACK])
    url, work = started_repo(server, client, "full", push=True)
    (work / "b.bin").write_bytes(os.urandom(200_000))
    client.git("add", "b.bin", cwd=work)
    client.git("commit", "-qm", "b", cwd=work)
    pack = server.root / "full.git" / "objects" / "pack" / "tmp_pack_x"

    def full(*_args: Any, **_kwargs: Any) -> None:
        if named:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(pack))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with _warnings() as warned, monkeypatch.context() as patched:
        patched.setattr(git_ingest.PackIngest, "write", full)
        refused = client.git("push", url, "HEAD:main", cwd=work, check=False)
        server.settled()
    assert refused.returncode != 0
    assert "(No space left on device); nothing was changed" in refused.stderr, refused.stderr
    assert [w for w in warned if "push to full.git" in w] == [(
        "git-daemon push to full.git: the server's disk refused a write, so the push was refused: "
        f"{pack if named else server.root / 'full.git'}: No space left on device; free space on that file system")
    ], warned


def test_an_hg_push_whose_bundle_cannot_be_kept_names_the_directory_in_a_warning(
        make_server: Any, client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    _, url, work, repo, _ = _hg_with_a_new_file(make_server, client, tmp_path, "b.bin", 100_000)

    def not_writable(*args: Any, dir: str | None = None, **kwargs: Any) -> Any:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.path.join(dir or "", "hgwire-unbundle-x"))

    with _warnings() as warned, monkeypatch.context() as patched:
        patched.setattr(tempfile, "TemporaryFile", not_writable)
        refused = client.hg("push", url, cwd=work, check=False)
    said = refused.stdout + refused.stderr
    assert refused.returncode != 0
    assert "remote: the server could not store the push (Permission denied); nothing was changed" in said, said
    assert str(repo) not in said
    assert [w for w in warned if "push to h" in w] == [(
        "hg-http push to h: the server's disk refused a write, so the push was refused: "
        f"{repo}: Permission denied; give the service's user write rights there")], warned
    client.hg("push", "-q", url, cwd=work)


def test_an_hg_push_on_a_read_only_mount_names_the_lock_in_a_warning(
        make_server: Any, client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, url, work, repo, _ = _hg_with_a_new_file(make_server, client, tmp_path, "c.bin", 10)

    def read_only(source: Any, target: Any, *args: Any, **kwargs: Any) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), target)

    with _warnings() as warned, monkeypatch.context() as patched:
        patched.setattr(os, "symlink", read_only)  # hg's lock is a symbolic link
        refused = client.hg("push", url, cwd=work, check=False)
    said = refused.stdout + refused.stderr
    assert refused.returncode != 0
    assert "(Read-only file system); nothing was changed" in said, said
    ours = [w for w in warned if "push to h" in w]
    assert len(ours) == 1 and ours[0].startswith(
        "hg-http push to h: the server's disk refused a write, so the push was refused: " + str(repo)), warned
    assert ours[0].endswith(": Read-only file system; remount that file system read-write, or serve with "
                            "--read-only"), ours
    client.hg("push", "-q", url, cwd=work)
