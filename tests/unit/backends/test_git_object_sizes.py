"""``PackObjectReader.size_of``: every object's size read from pack entry headers (and a delta's own
header) equals the inflated object's, for packs of ofs-deltas and of ref-deltas and for loose
objects; a missing object is a KeyError."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from dulwich.repo import Repo

from backends.git_objects import size_reader


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env={"GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@e", "GIT_COMMITTER_NAME": "a",
                               "GIT_COMMITTER_EMAIL": "a@e", "PATH": "/usr/bin:/bin", "HOME": str(cwd)}).stdout


@pytest.mark.parametrize("offsets", [True, False])
def test_sizes_from_headers_equal_the_objects(tmp_path: Path, offsets: bool) -> None:
    work = tmp_path / "w"
    _git(tmp_path, "init", "-q", "-b", "main", str(work))
    text = b""
    for n in range(30):  # a growing file: deltas between its versions, some larger than 127 bytes
        text += b"line %d of a file that grows and grows\n" % n * 3
        (work / "f.txt").write_bytes(text)
        (work / f"small{n % 3}.txt").write_bytes(b"x" * n)
        _git(work, "add", "-A")
        _git(work, "commit", "-q", "-m", f"c{n}")
    _git(work, "-c", f"repack.useDeltaBaseOffset={'true' if offsets else 'false'}", "repack", "-adfq")
    (work / "loose.txt").write_bytes(b"loose object\n" * 500)
    _git(work, "add", "loose.txt")  # a loose blob beside the pack
    listed = _git(work, "verify-pack", "-v", *[str(p) for p in (work / ".git/objects/pack").glob("*.idx")])
    assert "chain length = " in listed  # deltas are in the pack
    repo = Repo(str(work))
    try:
        store = repo.object_store
        objects = list(store)
        assert len(objects) > 90
        with size_reader(store) as sizes:
            assert [sizes.size_of(oid) for oid in objects] == [len(store.get_raw(oid)[1]) for oid in objects]
            with pytest.raises(KeyError):
                sizes.size_of(b"0" * 40)
    finally:
        repo.close()
