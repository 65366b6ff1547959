"""A server whose disk is full (or over quota) while a push lands, with the real clients: the push
is refused in the client's own words ("the server could not store …"), the repository stays as it
was, no lock is left behind, and once there is room the same push goes through.

The disk's refusal is injected (``OSError(ENOSPC)`` where the write would fail) so that the test
runs anywhere; the same cases were tried by hand on a 3 MiB tmpfs.
"""

# ruff: noqa: F811  (the htpasswd fixture, imported from test_hg_http, is a test's parameter)
from __future__ import annotations

import errno
import hashlib
import io
import os
import shutil
from pathlib import Path
from typing import Any, Self

import bcrypt
import pytest

from backends.interfaces import Kind
from tests.conftest import LOOPBACK, Client, SshKeys
from tests.integration.test_git_daemon import remote_refs, started_repo
from tests.integration.test_hg_http import htpasswd  # noqa: F401 - a fixture


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


def _hg_over_http(make_server: Any, client: Client, tmp_path: Path) -> tuple[Any, str, Path]:
    """A server taking hg pushes over HTTP (alice, password ``pw``) with an empty repository ``h``, and
    a local repository with one changeset: the server, the push URL and the local repository."""
    passwords = tmp_path / "passwords"
    passwords.write_text("alice:" + bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode() + "\n")
    server = make_server("fs", http=[LOOPBACK], htpasswd=str(passwords), allow_push_over_http=True)
    server.backend.create("h", Kind.HG)
    work = tmp_path / "hg-work"
    client.hg("init", str(work))
    (work / "a.txt").write_text("a\n")
    client.hg("commit", "-q", "-A", "-m", "a", "-u", "u", cwd=work)
    return server, f"http://alice:pw@127.0.0.1:{server.port('http')}/h", work


def _hg_with_a_new_file(make_server: Any, client: Client, tmp_path: Path, name: str,
                        size: int) -> tuple[Any, str, Path, Path, dict[str, bytes]]:
    """``_hg_over_http`` with its first changeset pushed and a second, adding ``name`` (``size``
    random bytes), committed but not pushed: the server, the URL, the local repository, the
    server's ``.hg`` and its bytes now."""
    server, url, work = _hg_over_http(make_server, client, tmp_path)
    client.hg("push", "-q", url, cwd=work)
    (work / name).write_bytes(os.urandom(size))
    client.hg("commit", "-q", "-A", "-m", name, "-u", "u", cwd=work)
    repo = server.root / "h" / ".hg"
    return server, url, work, repo, _snapshot(repo)


def test_an_hg_push_the_disk_cannot_hold_is_rolled_back_saying_so(
        make_server: Any, client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from backends.hg import vfs

    server, url, work, repo, before = _hg_with_a_new_file(make_server, client, tmp_path, "b.bin", 100_000)
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


class _FullDiskFile:
    """A file on a full disk: every write fails."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def write(self, data: bytes) -> int:
        _full()
        return 0

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self._real.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def test_an_hg_push_whose_bundle_the_disk_cannot_keep_is_refused_saying_so(
        make_server: Any, client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pushed bundle is kept in the repository's ``.hg`` until it is whole, before the push
    takes the locks (``backends.hg.push_spool``): a disk that cannot hold it refuses the push in the
    same words, nothing is locked or left."""
    import tempfile

    from tests.integration.test_hg_push_spool import kept_bundles

    server, url, work, repo, before = _hg_with_a_new_file(make_server, client, tmp_path, "b.bin", 100_000)
    real = tempfile.TemporaryFile

    def on_a_full_disk(*args: Any, **kwargs: Any) -> Any:
        return _FullDiskFile(real(*args, **kwargs))

    from twisted.logger import globalLogPublisher

    from gateway.audit import AUDIT_NAMESPACE

    audited: list[Any] = []

    def observe(event: Any) -> None:
        if event.get("log_namespace") == AUDIT_NAMESPACE:
            audited.append(event)

    globalLogPublisher.addObserver(observe)
    try:
        with monkeypatch.context() as patched:
            patched.setattr(tempfile, "TemporaryFile", on_a_full_disk)
            refused = client.hg("push", url, cwd=work, check=False)
    finally:
        globalLogPublisher.removeObserver(observe)
    assert refused.returncode != 0
    said = refused.stdout + refused.stderr
    assert "remote: the server could not store the push (No space left on device); nothing was changed" in said, said
    told = ("refused: the server could not store the push (No space left on device); nothing was changed, "
            "try again later or tell the server's operator")
    assert [e["outcome"] for e in audited] == [told]  # the operator the client is sent to sees it too
    assert _snapshot(repo) == before
    assert not kept_bundles(server.root / "h")
    client.hg("push", "-q", url, cwd=work)
    client.hg("verify", "-q", "-R", str(server.root / "h"))


@pytest.mark.skipif(shutil.which("git-lfs") is None, reason="the git-lfs client is not installed (make test installs it)")
def test_an_lfs_upload_the_disk_cannot_hold_is_refused_with_507_and_nothing_kept(
        make_server: Any, client: Client, ssh_keys: SshKeys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Git LFS's API answers 507 Insufficient Storage; git-lfs gives up the push, nothing of the
    object is left, and the same push goes through once there is room."""
    from tests.integration.test_git_lfs import _tracked_work, lfs_api
    from tests.integration.test_git_transports import TRANSPORTS

    server = TRANSPORTS["http"](make_server, "fs", client, ssh_keys, tmp_path)
    server.running.backend.create("media", Kind.GIT)
    url = server.git_url("media")
    data = os.urandom(300_000)
    work = _tracked_work(client, url, data)
    oid = hashlib.sha256(data).hexdigest()
    objects = server.running.root / "media.git" / "lfs" / "objects"
    with monkeypatch.context() as patched:
        patched.setattr(os, "fsync", _full)
        refused = client.git("-c", "lfs.transfer.maxretries=1", "push", "origin", "HEAD:main", cwd=work, check=False)
        href = f"http://127.0.0.1:{server.running.port('http')}/media.git/info/lfs/objects/{oid}"
        status, answer = lfs_api(href, data, method="PUT")
    assert refused.returncode != 0
    assert "LFS: the server could not store the upload (No space left on device)" in refused.stderr, refused.stderr
    assert status == 507 and "could not store the upload (No space left on device)" in answer["message"], answer
    assert not objects.exists() or not [p for p in objects.rglob("*") if p.is_file()]
    assert "refs/heads/main" not in client.git("ls-remote", url).stdout
    client.git("push", "-q", "origin", "HEAD:main", cwd=work)
    assert (objects / oid[:2] / oid[2:4] / oid).read_bytes() == data


@pytest.mark.parametrize("kind", ["ssh", "http"])
def test_a_largefile_the_disk_cannot_hold_refuses_the_push(
        kind: str, make_server: Any, client: Client, ssh_keys: SshKeys, htpasswd: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """hg's largefiles extension: ``putlfile`` refused, the push stops before its changesets, nothing
    of the file is kept."""
    from tests.integration.test_hg_hooks import _served
    from tests.integration.test_hg_largefiles import LF, largefiles_clone

    peer, url, server = _served(kind, make_server, client, ssh_keys, htpasswd)
    repo, work = largefiles_clone(peer, url, server, client, tmp_path)
    (work / "blob.bin").write_bytes(os.urandom(200_000))
    client.hg(*LF, "add", "-q", "--large", str(work / "blob.bin"), cwd=work)
    client.hg(*LF, "commit", "-q", "-m", "big", cwd=work)
    with monkeypatch.context() as patched:
        patched.setattr(os, "fsync", _full)
        refused = peer.hg(*LF, "push", "-R", str(work), url("big"), check=False)
    said = refused.stdout + refused.stderr
    assert refused.returncode != 0
    assert "could not store the upload (No space left on device)" in said, said
    assert not (repo / ".hg" / "largefiles").exists() or not list((repo / ".hg" / "largefiles").iterdir())
    assert client.hg("log", "-R", str(repo), "-T", "{node}\n").stdout == ""
    peer.hg(*LF, "push", "-q", "-R", str(work), url("big"))
    client.hg(*LF, "verify", "-q", "--large", "--lfa", "-R", str(repo))


def test_a_repository_the_disk_cannot_hold_is_not_left_half_made(
        make_server: Any, client: Client, ssh_keys: SshKeys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--create-on-push`` and ``hg init`` over SSH: refused saying why, no directory left (a later
    push or init would find a broken repository), and made once there is room."""
    import backends.filesystem
    from backends.hg import requirements
    from tests.conftest import ssh_server_settings

    server = make_server("fs", git=[LOOPBACK], create_on_push=True, **ssh_server_settings(ssh_keys))
    work = tmp_path / "work"
    client.git("init", "-q", "-b", "main", str(work))
    (work / "a.txt").write_text("a\n")
    client.git("add", "a.txt", cwd=work)
    client.git("commit", "-qm", "a", cwd=work)
    url = server.git_url("new")
    made_in_part = backends.filesystem._init_git

    def init_then_full(directory: str, object_format: str | None = None) -> None:
        made_in_part(directory, object_format)
        _full()

    with monkeypatch.context() as patched:
        patched.setattr(backends.filesystem, "_init_git", init_then_full)
        patched.setattr(requirements, "format_requirements", _full)
        refused = client.git("push", url, "main", cwd=work, check=False)
        ssh = ssh_keys.command(server.port("ssh")).split()
        init = client.run(*ssh, "git@127.0.0.1", "hg init hgnew", check=False)
    assert refused.returncode != 0
    assert "the server could not create repository new.git (No space left on device)" in refused.stderr, refused.stderr
    assert init.returncode != 0 and "could not create repository hgnew" in init.stderr, init.stderr
    assert sorted(p.name for p in server.root.iterdir() if not p.name.startswith(".ssh_host")) == [".lfs_token_key"]
    client.git("push", "-q", url, "main", cwd=work)
    client.git("--git-dir", str(server.root / "new.git"), "fsck", "--full")
    assert client.run(*ssh, "git@127.0.0.1", "hg init hgnew").returncode == 0
    client.hg("verify", "-q", "-R", str(server.root / "hgnew"))


def test_an_lfs_lock_the_disk_cannot_hold_is_refused_with_507_and_the_locks_stay(
        make_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.integration.test_git_lfs_locks import _api, _server

    server = _server(make_server, tmp_path)
    assert _api(server, "POST", "locks", {"path": "a.psd"})[0] == 201
    stored = server.root / "art.git" / "lfs" / "locks.json"
    before = stored.read_bytes()
    lock_id = _api(server, "GET", "locks")[1]["locks"][0]["id"]
    with monkeypatch.context() as patched:
        patched.setattr(os, "fsync", _full)
        made = _api(server, "POST", "locks", {"path": "b.psd"})
        removed = _api(server, "POST", f"locks/{lock_id}/unlock", {})
    for status, answer in (made, removed):
        assert status == 507, answer
        assert answer["message"].startswith("the server could not store the lock (No space left on device); "
                                            "the locks are as they were"), answer
    assert stored.read_bytes() == before
    assert sorted(p.name for p in stored.parent.iterdir()) == ["locks.json", "locks.lock"]
    assert _api(server, "POST", "locks", {"path": "b.psd"})[0] == 201


def _read_only(*_args: Any, **_kwargs: Any) -> None:
    raise OSError(errno.EROFS, os.strerror(errno.EROFS))


def test_a_push_the_disk_cannot_lock_for_is_refused_saying_so(
        make_server: Any, client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A read-only root (remounted for maintenance): the lock a push needs cannot be taken, the
    client is told why in its own protocol (was an internal error), and reads still work."""
    server = make_server("fs", git=[LOOPBACK])
    url, work = started_repo(server, client, "ro", push=True)
    client.git("push", "-q", url, "HEAD:refs/heads/doomed", cwd=work)
    lock = server.root / "ro.git" / "hgwire-refs.lock"
    lock.unlink()
    lock.mkdir()  # opened for writing, it fails as on a read-only disk
    refused = client.git("push", url, ":refs/heads/doomed", cwd=work, check=False)
    assert refused.returncode != 0
    assert "the server could not lock the repository's refs (Is a directory); nothing was changed" in refused.stderr, \
        refused.stderr
    assert "refs/heads/doomed" in remote_refs(client, "default", url)
    client.git("clone", "-q", url, str(tmp_path / "still-readable"))
    lock.rmdir()
    client.git("push", "-q", url, ":refs/heads/doomed", cwd=work)

    web, hg_url, hg_work = _hg_over_http(make_server, client, tmp_path)
    before = _snapshot(web.root / "h" / ".hg")
    with monkeypatch.context() as patched:
        patched.setattr(os, "symlink", _read_only)  # hg's lock is a symbolic link
        refused = client.hg("push", hg_url, cwd=hg_work, check=False)
    said = refused.stdout + refused.stderr
    assert refused.returncode != 0
    assert "remote: the server could not lock the repository (Read-only file system); nothing was changed" in said, said
    assert _snapshot(web.root / "h" / ".hg") == before
    client.hg("push", "-q", hg_url, cwd=hg_work)


class _FullSpool:
    """twisted.web's spool for a request body on a full ``TMPDIR``: every write fails."""

    def write(self, data: bytes) -> int:
        _full()
        return 0

    def close(self) -> None:
        pass


def _spool_on_full_tmpdir(real: Any) -> Any:
    """``twisted.web.http._getContentFile`` as on a full ``TMPDIR``: a body it would spool to a
    temporary file (over 100 kB, or of unknown length) cannot be written there."""
    def content_file(length: int | None) -> Any:
        return real(length) if length is not None and length < 100_000 else _FullSpool()
    return content_file


def test_pushes_need_no_tmpdir_and_a_body_a_full_one_cannot_hold_is_answered_507(
        make_server: Any, client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """twisted.web spools a body over 100 kB to TMPDIR; a full one dropped the connection (hg: "bad
    HTTP status line", git: "unexpected disconnect") with a traceback logged.  A push's body is not
    spooled at all (``gateway.live_body``: a git pack goes to the repository's quarantine as it
    arrives, an hg bundle is kept in the repository's ``.hg`` until it is whole): both go through with
    TMPDIR full (they were
    answered 507).  A body that is still spooled (here hg's POST arguments) is answered 507 with the
    reason, and the server keeps serving."""
    import http.client

    from twisted.web import http as twisted_http

    server, hg_url, work, repo, before = _hg_with_a_new_file(make_server, client, tmp_path, "big.bin", 300_000)
    git_bare = server.root / "g.git"
    server.backend.create("g.git", Kind.GIT)
    git_url = f"http://alice:pw@127.0.0.1:{server.port('http')}/g.git"
    git_work = tmp_path / "git-work"
    client.git("init", "-q", "-b", "main", str(git_work))
    (git_work / "big.bin").write_bytes(os.urandom(300_000))
    client.git("add", "big.bin", cwd=git_work)
    client.git("commit", "-qm", "big", cwd=git_work)
    args = b"key=" + b"a" * 150_000
    with monkeypatch.context() as patched:
        patched.setattr(twisted_http, "_getContentFile", _spool_on_full_tmpdir(twisted_http._getContentFile))
        pushed = client.hg("push", hg_url, cwd=work, check=False)
        git_pushed = client.git("push", git_url, "HEAD:main", cwd=git_work, check=False)
        conn = http.client.HTTPConnection("127.0.0.1", server.port("http"), timeout=30)
        conn.request("POST", "/h?cmd=lookup", body=args, headers={"X-HgArgs-Post": str(len(args))})
        answer = conn.getresponse()
        refused = (answer.status, answer.reason, answer.read())
        conn.close()
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    assert _snapshot(repo) != before
    client.hg("verify", "-q", "-R", str(server.root / "h"))
    assert git_pushed.returncode == 0, git_pushed.stderr
    client.git("--git-dir", str(git_bare), "fsck", "--full")
    assert set(remote_refs(client, "default", git_url)) == {"HEAD", "refs/heads/main"}
    assert refused[0] == 507 and "the server's temporary space is full" in refused[1], refused
    client.hg("pull", "-q", hg_url, cwd=work)  # and serves on


def test_clones_go_on_when_the_temporary_directory_is_full(
        make_server: Any, client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Identical full clones share one answer spooled to TMPDIR; with TMPDIR (nearly) full every
    clone failed ("remote: internal error", "HTTP Error 500").  Now each is answered on its own."""
    from gateway import shared_streams

    _, hg_url, work = _hg_over_http(make_server, client, tmp_path)
    client.hg("push", "-q", hg_url, cwd=work)
    git_server = make_server("fs", git=[LOOPBACK])
    git_url, _ = started_repo(git_server, client, "g", push=True)

    class Full:
        f_bavail, f_frsize = 0, 4096

    # a registry of its own: the pause it takes must not outlast the test (later tests share answers)
    monkeypatch.setattr(shared_streams, "SHARED", shared_streams.SharedStreams())
    monkeypatch.setattr(shared_streams.os, "statvfs", lambda path: Full())  # what the directory says
    monkeypatch.setattr(shared_streams.SharedStreams, "new_spool", _full)  # what a spool would meet
    client.git("clone", "-q", git_url, str(tmp_path / "git-clone"))
    assert (tmp_path / "git-clone" / "a.txt").read_text() == "a\n"
    client.hg("clone", "-q", hg_url.replace("alice:pw@", ""), str(tmp_path / "hg-clone"))
    assert (tmp_path / "hg-clone" / "a.txt").read_text() == "a\n"


class _FullDiskRaw(io.FileIO):
    """A file's descriptor on a full disk: every write to it fails (what a buffered file's flush meets)."""

    def write(self, data: Any) -> int:
        _full()
        return 0


def test_a_small_hg_bundle_whose_flush_the_disk_refuses_is_refused_saying_so(
        make_server: Any, client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A small pushed bundle fits in the spool's buffer: the disk refuses it only when the buffer is
    flushed, and again when the file is closed. The push is refused in the client's words (it was an
    internal error: a 500 over HTTP, the connection dropped over SSH, found on a full tmpfs)."""
    import tempfile

    from tests.integration.test_hg_push_spool import kept_bundles

    server, url, work, repo, before = _hg_with_a_new_file(make_server, client, tmp_path, "small.txt", 100)
    real = tempfile.TemporaryFile

    def on_a_full_disk(*args: Any, **kwargs: Any) -> Any:
        made = real(*args, **kwargs)
        raw = _FullDiskRaw(os.dup(made.fileno()), "r+")
        made.close()
        return io.BufferedRandom(raw)

    with monkeypatch.context() as patched:
        patched.setattr(tempfile, "TemporaryFile", on_a_full_disk)
        refused = client.hg("push", url, cwd=work, check=False)
    assert refused.returncode != 0
    said = refused.stdout + refused.stderr
    assert "remote: the server could not store the push (No space left on device); nothing was changed" in said, said
    assert _snapshot(repo) == before
    assert not kept_bundles(server.root / "h")
    client.hg("push", "-q", url, cwd=work)
    client.hg("verify", "-q", "-R", str(server.root / "h"))
