"""Files under ``.hg`` that hg writes itself (its caches, the dirstate, ``store/requires``, the
lock) were read with a plain ``open``: a FIFO there held a worker thread for ever (its open waits
for a writer), in the service every repository shares, and a link to ``/dev/zero`` was read as
zeros.  They are opened without waiting and read only when regular: a cache that is not is taken
as absent (hg rebuilds it: its readers take a cache they cannot read as missing), any other file
refuses the repository with one sentence.

Each FIFO has a writer thread, so that code which still waits on the open gets an empty file (and
the test fails) rather than hanging."""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from backends.hg import lock, open_repository
from backends.hg.vfs import FsVfs, NotRegularFile
from tests import hg_command_server
from tests.conftest import VENV_BIN

ENV = {**os.environ, "HGRCPATH": "", "HGPLAIN": "1", "HGUSER": "t <t@example.com>"}
NOT_SERVED = "where hgwire reads only regular files, so it does not serve the repository; tell the server's operator"


@contextlib.contextmanager
def fifo_at(path: Path) -> Iterator[Path]:
    """A FIFO at ``path`` (what was there removed) with a writer that ends each read of it at once."""
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    keep = path.with_name(path.name + ".fifo")  # (the FIFO still, should the file be replaced meanwhile)
    os.link(path, keep)
    stop = threading.Event()

    def writer() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError), open(keep, "wb"):  # waits for a reader, then ends its read
                pass

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        yield path
    finally:
        stop.set()
        while thread.is_alive():  # (a reader for the writer's open, which may be waiting)
            fd = os.open(keep, os.O_RDONLY | os.O_NONBLOCK)
            thread.join(timeout=0.05)
            os.close(fd)
        keep.unlink()


def _hg(repo: Path, command: str, *args: str) -> str:
    # (the command before -R: hg_command_server runs a command line that starts with -R as a process)
    done = hg_command_server.subprocess_run([os.path.join(VENV_BIN, "hg"), command, "-R", str(repo), *args],
                                            cwd=repo.parent, env=ENV, text=True)
    assert done.returncode == 0, done.stderr
    return str(done.stdout)


@pytest.fixture(scope="module")
def repo_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[bytes, list[bytes]]]:
    """The repository (built once, in the tests' hg command server) and the heads of its two branches."""
    path = tmp_path_factory.mktemp("vfs") / "r"
    hg_command_server.subprocess_run([os.path.join(VENV_BIN, "hg"), "init", str(path)], cwd=path.parent, env=ENV,
                                     check=True)
    _hg(path, "debugbuilddag", "-q", "+5 :a @other +3")
    _hg(path, "phase", "-q", "-p", "-r", "all()")
    _hg(path, "debugupdatecaches")
    assert (path / ".hg" / "cache" / "branch2-served").exists()
    assert (path / ".hg" / "cache" / "rbc-names-v2").exists()
    heads = {name.encode(): sorted(bytes.fromhex(n) for n in _hg(
        path, "log", "-r", f"head() and branch({name})", "-T", "{node}\n").split()) for name in ("default", "other")}
    return path, heads


@pytest.fixture
def repo(repo_template: tuple[Path, dict[bytes, list[bytes]]], tmp_path: Path) -> Path:
    """A copy of the template for a test to change."""
    path = tmp_path / "r"
    shutil.copytree(repo_template[0], path, symlinks=True)
    return path


@pytest.mark.parametrize("read", [
    lambda vfs: vfs.read(b"f"),
    lambda vfs: vfs.read_range(b"f", 0, 80),
    lambda vfs: vfs.read_head(b"f", 4, lambda head: True),
], ids=["read", "read_range", "read_head"])
def test_a_fifo_is_refused_not_waited_for(tmp_path: Path, read: Callable[[FsVfs], object]) -> None:
    with fifo_at(tmp_path / "f"), pytest.raises(NotRegularFile) as refused:
        read(FsVfs(os.fsencode(tmp_path)))
    assert str(refused.value) == f"the repository's {tmp_path / 'f'} is a FIFO, {NOT_SERVED}"


@pytest.mark.parametrize("read", [
    lambda vfs: vfs.read_range(b"f", 0, 80),
    lambda vfs: vfs.read_head(b"f", 4, lambda head: False),
], ids=["read_range", "read_head"])
def test_a_link_to_dev_zero_is_refused(tmp_path: Path, read: Callable[[FsVfs], object]) -> None:
    (tmp_path / "f").symlink_to("/dev/zero")
    with pytest.raises(NotRegularFile) as refused:
        read(FsVfs(os.fsencode(tmp_path)))
    assert str(refused.value) == f"the repository's {tmp_path / 'f'} is a character device, {NOT_SERVED}"


def test_regular_files_read_as_before(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"0123456789")
    (tmp_path / "d").mkdir()
    vfs = FsVfs(os.fsencode(tmp_path))
    assert vfs.read(b"f") == b"0123456789"
    assert vfs.read_range(b"f", 3, 4) == b"3456"
    assert vfs.read_range(b"f", 8, 10) == b"89"
    assert vfs.read_range(b"f", 20, 10) == b""
    assert vfs.read_head(b"f", 4, lambda head: head == b"0123") == (10, b"0123456789")
    assert vfs.read_head(b"missing", 4, lambda head: True) is None
    with pytest.raises(FileNotFoundError):
        vfs.read(b"missing")
    with pytest.raises(IsADirectoryError):  # (as open() says)
        vfs.read(b"d")
    (tmp_path / "null").symlink_to(os.devnull)
    with pytest.raises(NotRegularFile):
        vfs.read(b"null")


@pytest.mark.parametrize("cache", ["branch2-served", "rbc-names-v2", "rbc-revs-v2"])
def test_a_cache_that_is_a_fifo_is_taken_as_absent(repo_template: tuple[Path, dict[bytes, list[bytes]]], repo: Path,
                                                   cache: str) -> None:
    """hg takes a cache it cannot read as missing and writes it anew; so does hgwire."""
    expected = repo_template[1]
    with fifo_at(repo / ".hg" / "cache" / cache):
        found = open_repository(str(repo), "r").branchmap()
    assert {name: sorted(nodes) for name, nodes in found.items()} == expected


def test_stream_caches_that_are_fifos_are_left_out(repo: Path) -> None:
    with fifo_at(repo / ".hg" / "cache" / "rbc-revs-v2"), fifo_at(repo / ".hg" / "cache" / "rbc-names-v2"):
        sent = [name for name, _data in open_repository(str(repo), "r")._stream_caches()]
    assert sent and b"rbc-revs-v2" not in sent and b"rbc-names-v2" not in sent, sent  # (the others still)


def test_a_dirstate_that_is_a_fifo_refuses_the_repository(repo: Path) -> None:
    with fifo_at(repo / ".hg" / "dirstate"), pytest.raises(NotRegularFile) as refused:
        open_repository(str(repo), "r").working_parents()
    assert str(refused.value) == f"the repository's .hg/dirstate is a FIFO, {NOT_SERVED}"


def test_a_dirstate_linked_to_dev_zero_refuses_the_repository(repo: Path) -> None:
    (repo / ".hg" / "dirstate").unlink(missing_ok=True)
    (repo / ".hg" / "dirstate").symlink_to("/dev/zero")
    with pytest.raises(NotRegularFile) as refused:
        open_repository(str(repo), "r").working_parents()
    assert "is a character device, " + NOT_SERVED in str(refused.value)


def test_store_requires_that_is_a_fifo_refuses_the_repository(repo: Path) -> None:
    assert "share-safe" in (repo / ".hg" / "requires").read_text()
    with fifo_at(repo / ".hg" / "store" / "requires"), pytest.raises(NotRegularFile) as refused:
        open_repository(str(repo), "r")
    assert str(refused.value) == f"the repository's .hg/store/requires is a FIFO, {NOT_SERVED}"


def test_a_lock_file_that_is_a_fifo_is_refused(tmp_path: Path) -> None:
    with fifo_at(tmp_path / "lock"), pytest.raises(NotRegularFile) as refused:
        lock.read_holder(str(tmp_path / "lock"))
    assert str(refused.value) == f"the repository's {tmp_path / 'lock'} is a FIFO, {NOT_SERVED}"
    (tmp_path / "plain").write_text("host:1")
    assert lock.read_holder(str(tmp_path / "plain")) == "host:1"
