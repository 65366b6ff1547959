"""The two byte stores of the engine agree on ``read_head``, the one-open read of a stream clone."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backends.hg.vfs import FsVfs, MemoryVfs, Vfs


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
    import os

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
