"""The two byte stores of the engine agree on ``read_head``, the one-open read of a stream clone; the
file store writes as hg's vfs does (modes, hardlinks, mtimes hg's readers see change)."""

from __future__ import annotations

import itertools
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backends.hg.vfs import FsVfs, MemoryVfs, Vfs, disambiguate


def make(kind: str, root: Path) -> Vfs:
    return FsVfs(bytes(root)) if kind == "fs" else MemoryVfs()


@pytest.mark.parametrize("kind", ["fs", "memory"])
def test_read_head_of_a_missing_file_is_none(kind: str, tmp_path: Path) -> None:
    assert make(kind, tmp_path).read_head(b"nope.i", 4, lambda head: True) is None


@pytest.mark.parametrize("kind", ["fs", "memory"])
@given(data=st.binary(max_size=300_000), length=st.integers(0, 8), whole=st.booleans())
def test_read_head_gives_the_size_and_the_head_or_everything(
    kind: str, tmp_path_factory: pytest.TempPathFactory, data: bytes, length: int, whole: bool
) -> None:
    vfs = make(kind, tmp_path_factory.mktemp("vfs"))
    vfs.append(b"dir/f.i", data)
    seen: list[bytes] = []

    def decide(head: bytes) -> bool:
        seen.append(head)
        return whole

    assert vfs.read_head(b"dir/f.i", length, decide) == (len(data), data if whole else data[:length])
    assert seen == [data[:length]]


def test_files_and_directories_get_the_create_mode_and_a_replaced_file_keeps_its_own(tmp_path: Path) -> None:
    """As hg's vfs: with a ``createmode`` (the store directory's, when not the umask's) a new file
    gets its read and write bits and a new directory all of it; ``replace`` keeps a file's mode."""
    import stat

    from backends.blobs import UMASK
    from backends.hg.vfs import create_mode

    root = tmp_path / "store"
    root.mkdir()
    root.chmod(0o2775)
    mode = create_mode(bytes(root))
    assert mode == (0o2775 if UMASK & 0o020 else None)  # the umask's own mode needs nothing
    vfs = FsVfs(bytes(root), 0o2770)
    vfs.append(b"data/deep/er/f.i", b"x")
    vfs.replace(b"data/new/g", b"y")
    modes = {p.relative_to(root).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in root.rglob("*")}
    assert modes == {"data": 0o2770, "data/deep": 0o2770, "data/deep/er": 0o2770, "data/deep/er/f.i": 0o660,
                     "data/new": 0o2770, "data/new/g": 0o660}
    (root / "kept").write_bytes(b"old")
    (root / "kept").chmod(0o600)
    FsVfs(bytes(root)).replace(b"kept", b"new")
    assert stat.S_IMODE((root / "kept").stat().st_mode) == 0o600 and (root / "kept").read_bytes() == b"new"


def test_append_and_truncate_write_a_hardlinked_file_in_a_copy_of_its_own(tmp_path: Path) -> None:
    """As hg's vfs: a store file with other links (``hg clone``, ``cp -al``) is copied, mode kept, before
    an append or a truncation, so the other links keep their bytes; a file of one link stays itself."""
    root = tmp_path / "store"
    (root / "data").mkdir(parents=True)
    for name in ("data/a.i", "data/t.i", "own.i"):
        (root / name).write_bytes(b"0123456789")
        (root / name).chmod(0o640)
    os.link(root / "data" / "a.i", tmp_path / "other-a.i")
    os.link(root / "data" / "t.i", tmp_path / "other-t.i")
    own = (root / "own.i").stat().st_ino
    vfs = FsVfs(bytes(root))
    vfs.append(b"data/a.i", b"ab")
    vfs.truncate(b"data/t.i", 4)
    vfs.append(b"own.i", b"ab")
    vfs.truncate(b"own.i", 11)
    assert [(tmp_path / n).read_bytes() for n in ("other-a.i", "other-t.i")] == [b"0123456789"] * 2
    assert [(root / n).read_bytes() for n in ("data/a.i", "data/t.i", "own.i")] == [
        b"0123456789ab", b"0123", b"0123456789a"]
    for name in ("data/a.i", "data/t.i"):
        st = (root / name).stat()
        assert (st.st_nlink, st.st_mode & 0o7777) == (1, 0o640), name
    assert (root / "own.i").stat().st_ino == own  # no copy: a reader's cached index may grow in place
    assert sorted(p.name for p in root.rglob("*")) == ["a.i", "data", "own.i", "t.i"]  # no temporary left


def _seconds(ns: int) -> int:
    return ns // 1_000_000_000


def test_each_write_of_a_checked_file_gives_it_an_mtime_of_its_own(tmp_path: Path) -> None:
    """As hg's ``checkambig`` writes: rewrites within a second, at the same size (a replacement, an
    append and a cut back, a rename over it), each get a later whole-second mtime (``hg serve``
    reloads only on a new size or mtime); a file not checked keeps the time it was written at."""
    vfs = FsVfs(bytes(tmp_path))
    checked = ["bookmarks", "phaseroots", "00changelog.i", "obsstore"]

    def write_each(n: int) -> list[int]:
        vfs.replace(b"bookmarks", b"%d" % (n % 2))
        vfs.replace(b"phaseroots", b"%d" % (n % 2))
        vfs.append(b"00changelog.i", b"x")
        vfs.truncate(b"00changelog.i", 1)
        vfs.replace(b"next", b"%d" % (n % 2))
        vfs.rename(b"next", b"obsstore")
        return [_seconds(os.stat(tmp_path / name).st_mtime_ns) for name in checked]

    seen = [write_each(n) for n in range(6)]
    assert all(a != b for before, after in itertools.pairwise(seen) for a, b in zip(before, after)), seen
    for _ in range(3):
        vfs.replace(b"requires", b"same\n")
    written = os.stat(tmp_path / "requires")
    assert _seconds(written.st_mtime_ns) <= _seconds(written.st_ctime_ns)  # not moved past its writing


def test_disambiguate_moves_the_mtime_on_from_the_old_one_only_when_a_reader_could_miss_the_write(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same ctime second as the old file's (hg's rule), or the same mtime second as the old one's
    (a write in the second hg's rule moved the previous mtime to): the old mtime plus one second.
    A file whose times this process may not set (another user's) is copied to one of its own first."""
    full = tmp_path / "bookmarks"
    full.write_bytes(b"new")
    st = os.stat(full)

    def old(ctime: int, mtime: int) -> os.stat_result:
        return os.stat_result(tuple(st[:10]), {"st_ctime_ns": ctime * 10**9, "st_mtime_ns": mtime * 10**9})

    def written() -> tuple[int, int]:
        """The file as written (its mtime back): its mtime and ctime, in seconds."""
        os.utime(full, ns=(st.st_atime_ns, st.st_mtime_ns))
        now = os.stat(full)
        return _seconds(now.st_mtime_ns), _seconds(now.st_ctime_ns)

    mtime, ctime = written()
    disambiguate(bytes(full), old(ctime - 5, mtime - 5))  # the first write of its second: a reader sees it
    disambiguate(bytes(full), None)  # a new file
    assert os.stat(full).st_mtime_ns == st.st_mtime_ns
    mtime, ctime = written()
    disambiguate(bytes(full), old(ctime, mtime + 3))  # the fourth write of this second
    assert os.stat(full).st_mtime_ns == (mtime + 4) * 10**9
    mtime, ctime = written()
    disambiguate(bytes(full), old(ctime - 1, mtime))  # after two writes the second before
    assert os.stat(full).st_mtime_ns == (mtime + 1) * 10**9
    refused = [PermissionError(1, "Operation not permitted")]
    utime = os.utime

    def owned_by_another(path: bytes, *, ns: tuple[int, int]) -> None:
        if refused:
            raise refused.pop()
        utime(path, ns=ns)

    mtime, ctime = written()
    inode = os.stat(full).st_ino
    monkeypatch.setattr("backends.hg.vfs.os.utime", owned_by_another)
    disambiguate(bytes(full), old(ctime, 100))
    monkeypatch.undo()
    assert os.stat(full).st_mtime_ns == 101 * 10**9 and os.stat(full).st_ino != inode
    assert full.read_bytes() == b"new" and sorted(p.name for p in tmp_path.iterdir()) == ["bookmarks"]


def test_a_repository_opened_to_read_never_asks_the_umask_and_one_written_gives_the_store_mode(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store's mode is what a write needs; a poll's four requests only read (a stat and a read
    of /proc each, before)."""
    from backends import hg
    from backends.hg import vfs as vfs_module

    hg.create_repository(str(tmp_path / "r"), "r")
    store = tmp_path / "r" / ".hg" / "store"
    os.chmod(store, 0o2770)
    asked: list[int] = []
    real = vfs_module.process_umask

    def counted() -> int:
        asked.append(1)
        return real()

    monkeypatch.setattr(vfs_module, "process_umask", counted)
    repo = hg.open_repository(str(tmp_path / "r"), "r")
    assert repo.heads() is not None and dict(repo.listkeys(b"bookmarks")) == {}
    assert asked == []
    repo.store.replace(b"written", b"x")
    assert stat.S_IMODE(os.stat(store / "written").st_mode) == 0o660 and asked
