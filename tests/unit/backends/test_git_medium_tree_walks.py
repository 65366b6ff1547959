"""Counting a shallow fetch through many versions of trees of a hundred-odd entries (a root and a
directory, two files changed a commit, some added, deleted or renamed): what is sent is exactly
``git rev-list --objects`` with the boundary as a shallow file, with a bitmap or without, and each
version of a tree is read only where it differs from the last one walked under its name (each was
parsed whole: most of a ``--shallow-exclude`` of 8,000 commits' counting)."""

from __future__ import annotations

import binascii
import random
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from dulwich.objects import parse_tree
from dulwich.repo import Repo

from backends import git_reach
from backends.git_fastpack import plan_pack
from tests.unit.backends.test_git_large_tree_counting import _commit, _file, git, planned, revs

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs a git binary")

FILES, COMMITS = 120, 40


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root of 120 files and a ``dir`` of as many (4 KB trees each), then 40 commits of two
    changes each (a file changed, added, deleted or renamed, at the root or in ``dir``), packed
    with a bitmap."""
    src = tmp_path_factory.mktemp("medium") / "src.git"
    git(src.parent, "init", "-q", "--bare", str(src))
    rng = random.Random(3)
    names = [f"f{i:03d}.txt" for i in range(FILES)] + [f"dir/g{i:03d}.txt" for i in range(FILES)]
    stream = [_commit("refs/heads/main", 0, "base", [_file(name, f"{name}\n") for name in names])]
    for n in range(1, COMMITS + 1):
        lines = []
        for _ in range(2):
            name, roll = rng.choice(names), rng.random()
            if roll < 0.7:
                lines.append(_file(name, f"{name} {n} {rng.random()}\n"))
            elif roll < 0.8:
                names.append(f"{name}.{n}")
                lines.append(_file(names[-1], f"new {n}\n"))
            elif roll < 0.9 and len(names) > 10:
                names.remove(name)
                lines.append(f"D {name}\n")
            else:
                names.remove(name)
                names.append(f"{name}.r{n}")
                lines.append(f"R {name} {names[-1]}\n")
        stream.append(_commit("refs/heads/main", n, f"c{n}", lines))
    git(src, "fast-import", "--quiet", input=b"".join(stream))
    git(src, "repack", "-adbq")
    return src


def shallow_expected(src: Path, wants: list[bytes], boundary: list[bytes]) -> set[bytes]:
    """``git rev-list --objects WANTS`` with ``boundary`` as the repository's shallow commits."""
    shallow = src / "shallow"
    shallow.write_bytes(b"".join(b + b"\n" for b in boundary))
    try:
        out = git(src, "rev-list", "--objects", *(w.decode() for w in wants))
    finally:
        shallow.unlink()
    return {line.split()[0] for line in out.splitlines()}


@pytest.fixture
def parsed_entries(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many tree entries the walks parse (one count, updated as they go)."""
    count = [0]
    parse = parse_tree

    def counted(raw: bytes, raw_len: int) -> Iterator[tuple[bytes, int, bytes]]:
        entries = list(parse(raw, raw_len))
        count[0] += len(entries)
        return iter(entries)

    monkeypatch.setattr(git_reach, "parse_tree", counted)
    return count


@pytest.mark.parametrize("bitmap", [True, False])
@pytest.mark.parametrize("depth", [1, 5, 30])
def test_a_shallow_count_through_medium_trees_is_git_s(source: Path, tmp_path: Path, bitmap: bool,
                                                        depth: int, parsed_entries: list[int]) -> None:
    src = source
    if not bitmap:
        src = tmp_path / "nobitmap.git"
        shutil.copytree(source, src)
        for bitmap_file in (src / "objects" / "pack").glob("*.bitmap"):
            bitmap_file.unlink()
    wants = revs(src, ["main"])
    boundary = revs(src, [f"main~{depth - 1}"])
    plan = plan_pack(Repo(str(src)).object_store, wants, [], thin_pack=True, ofs_delta=True,
                     shallow_boundary=boundary)
    names = {binascii.hexlify(s.view.names[pos]) for s in plan.sources for pos in s.positions} | set(plan.whole)
    assert names == shallow_expected(src, wants, boundary)
    if depth == 30:  # (60 trees of about 120 entries: each whole was 7,200 entries parsed)
        assert parsed_entries[0] < 2 * (FILES + 2) + 8 * 2 * depth


def test_a_fetch_over_haves_is_git_s(source: Path) -> None:
    wants, haves = revs(source, ["main"]), revs(source, ["main~25"])
    args = [w.decode() for w in wants] + ["^" + h.decode() for h in haves]
    out = git(source, "rev-list", "--objects", "--stdin", input="\n".join(args).encode() + b"\n")
    assert planned(source, wants, haves) == {line.split()[0] for line in out.splitlines()}
