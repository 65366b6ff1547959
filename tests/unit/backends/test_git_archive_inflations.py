"""An archive inflates each pack entry it needs once, as git's archive does: a file's blob stored
as a delta was looked up three times, the first bytes of its delta inflated for its size, then
read again through dulwich (each entry of its chain inflated there). The archive's bytes are
``git archive``'s."""

from __future__ import annotations

import os
import subprocess
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from backends import git_archive
from backends.filesystem import FilesystemBackend
from backends.interfaces import GitRepository
from protocols.git_archive import parse_arguments

VERSIONS = 6


def _git(repo: Path, *args: str, stdin: bytes | None = None) -> bytes:
    env = {**os.environ, "GIT_AUTHOR_DATE": "1700000000 +0000", "GIT_COMMITTER_DATE": "1700000000 +0000",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env=env,
                          input=stdin).stdout


@pytest.fixture
def packed(tmp_path: Path) -> Path:
    """A repository whose tag ``old`` names a commit whose files are stored as deltas of later
    versions (git keeps the newest whole), all in one pack."""
    work = tmp_path / "work"
    _git(tmp_path, "init", "-q", "-b", "main", str(work))
    for version in range(VERSIONS):
        for name in ("a", "b", "c"):
            path = work / "d" / f"{name}.txt"
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(b"".join(b"%s line %d of a file that changes a little\n" % (name.encode(), i)
                                      for i in range(400 + version)))
        (work / "big.bin").write_bytes(os.urandom(1000) * 8 + bytes([version]))
        _git(work, "add", "-A")
        _git(work, "commit", "-q", "-m", f"v{version}")
        if version == 1:
            _git(work, "tag", "old")
    bare = tmp_path / "root" / "r.git"
    _git(tmp_path, "clone", "-q", "--bare", str(work), str(bare))
    _git(bare, "repack", "-adq", "--depth=50", "--window=50")
    return bare


def _entries_needed(bare: Path) -> int:
    """The pack entries an archive of ``old`` must inflate: its commit's (whose id and details go
    in it), its trees', its blobs' and every entry of their delta chains."""
    listed = _git(bare, "ls-tree", "-r", "-t", "old").split(b"\n")
    names = {line.split()[2] for line in listed if line}
    names.add(_git(bare, "rev-parse", "old^{tree}").strip())
    names.add(_git(bare, "rev-parse", "old^{commit}").strip())
    index = next((bare / "objects" / "pack").glob("*.idx"))
    bases: dict[bytes, bytes | None] = {}
    for line in _git(bare, "verify-pack", "-v", str(index)).split(b"\n"):
        fields = line.split()
        if len(fields) >= 5 and len(fields[0]) == 40:
            bases[fields[0]] = fields[6] if len(fields) > 6 else None
    needed: set[bytes] = set()
    for name in names:
        at: bytes | None = name
        while at is not None and at not in needed:
            needed.add(at)
            at = bases[at]
    assert any(bases[name] is not None for name in names)  # some of them are deltas
    return len(needed)


class _Counting:
    def __init__(self) -> None:
        self.count = 0

    def wrap(self, f: Any) -> Any:
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return f(*args, **kwargs)
        return counted


def _archive(bare: Path, kind: str, counting: _Counting | None = None) -> bytes:
    """The archive of ``old``; ``counting`` counts the inflations of its writing (the ref resolved first)."""
    repo = cast(GitRepository, FilesystemBackend(str(bare.parent)).open("r.git"))
    options = parse_arguments((f"--format={kind}", "old"))
    source = git_archive.resolve(repo, options.treeish, options.pathspecs)
    with pytest.MonkeyPatch.context() as patch:
        if counting is not None:
            patch.setattr(zlib, "decompress", counting.wrap(zlib.decompress))
            patch.setattr(zlib, "decompressobj", counting.wrap(zlib.decompressobj))
        chunks: Iterator[bytes] = git_archive.archive_chunks(repo.object_store, source, options)
        return b"".join(chunks)


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_an_archive_inflates_each_entry_it_needs_once(packed: Path, kind: str) -> None:
    expected = _git(packed, "archive", f"--format={kind}", "old")
    needed = _entries_needed(packed)
    _archive(packed, kind)  # (the repository's refs and indexes read once before)
    counting = _Counting()
    assert _archive(packed, kind, counting) == expected
    assert counting.count == needed
