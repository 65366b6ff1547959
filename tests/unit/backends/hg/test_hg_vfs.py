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
