"""A walk of many trees that name the same blobs (a shallow client's haves: each tip's whole tree;
a hostile ``--deepen`` naming 10,000 shallow lines and as many haves: 20,000 trees, 4 million
entries) looked each entry up in the pack index, however many trees before had named it: 2 s of
a 2.7 s fetch.  Each name is now looked up once a walk."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from dulwich.repo import Repo

from backends import git_reach
from backends.git_fastpack import generate_pack_fast
from tests.unit.backends.test_git_fastpack import expected_objects, git, with_shallow_file

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs a git binary")

COMMITS = 40
FILES = 30


def fast_import_stream() -> bytes:
    """A line of ``COMMITS`` commits of a root of ``FILES`` files and a directory ``s`` of as many,
    each commit changing one file of ``s`` (every tree names the blobs of the one before)."""
    out = []
    for n in range(COMMITS):
        changes = []
        if n == 0:
            for f in range(FILES):
                changes += [(f"r{f:02}.txt", f"root {f}\n"), (f"s/f{f:02}.txt", f"sub {f}\n")]
        else:
            changes.append((f"s/f{n % FILES:02}.txt", f"sub {n % FILES} change {n}\n"))
        message = f"c{n}\n"
        out.append(f"commit refs/heads/main\ncommitter A <a@example.com> {1600000000 + 60 * n} +0000\n"
                   f"data {len(message)}\n{message}")
        for path, text in changes:
            out.append(f"M 100644 inline {path}\ndata {len(text)}\n{text}")
    return "".join(out).encode() + b"done\n"


@pytest.fixture(scope="module", params=["sha1", "sha256"])
def shared_blobs(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    src = tmp_path_factory.mktemp("seen") / "shared.git"
    git(src.parent, "init", "-q", "--bare", "-b", "main", f"--object-format={request.param}", str(src))
    git(src, "fast-import", "--quiet", "--done", input=fast_import_stream())
    git(src, "repack", "-adbq")  # (a bitmap: the walk marks bits over the bitmapped pack)
    return src


def deepen_request(src: Path) -> tuple[list[bytes], list[bytes], list[bytes]]:
    """Every commit a shallow line, every other one a have, the tip wanted."""
    commits = git(src, "rev-list", "main").split()
    return commits[:1], commits[1::2], commits


def pack_objects(src: Path, wants: list[bytes], haves: list[bytes], boundary: list[bytes]) -> int:
    repo = Repo(str(src))
    chunks = generate_pack_fast(repo.object_store, wants, haves, thin_pack=True, refs=repo.get_refs(),
                                shallow_boundary=boundary)
    assert chunks is not None
    return int.from_bytes(b"".join(chunks)[8:12], "big")


def test_each_name_is_looked_up_once_a_walk(shared_blobs: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    walks: dict[int, Counter[bytes]] = {}  # (by the walk's marks: the haves' and the wants' go in one order)
    real_mark = git_reach.Walker._mark

    def mark(self: Any, reached: Any, sha: bytes, use_bitmap: bool = False) -> bool:
        walks.setdefault(id(reached), Counter())[sha] += 1
        return real_mark(self, reached, sha, use_bitmap)

    monkeypatch.setattr(git_reach.Walker, "_mark", mark)
    wants, haves, boundary = deepen_request(shared_blobs)
    oracle = with_shallow_file(tmp_path, shared_blobs, boundary, "oracle.git")
    expected = expected_objects(oracle, wants, []) - expected_objects(oracle, haves, [])  # (git's, shallow)
    assert pack_objects(shared_blobs, wants, haves, boundary) == len(expected)
    assert len(walks) == 2, "the haves' walk and the wants'"
    assert len(next(iter(walks.values()))) > 2 * FILES + len(haves), "the haves' commits, trees and blobs are walked"
    looked_twice = {sha for walk in walks.values() for sha, times in walk.items() if times > 1}
    assert not looked_twice, f"{len(looked_twice)} names looked up again in the same walk"


def test_names_forgotten_past_the_bound_give_the_same_pack(shared_blobs: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    wants, haves, boundary = deepen_request(shared_blobs)
    oracle = with_shallow_file(tmp_path, shared_blobs, boundary, "oracle.git")
    expected = expected_objects(oracle, wants, []) - expected_objects(oracle, haves, [])  # (git's, shallow)
    monkeypatch.setattr(git_reach, "SEEN_NAMES", 3)
    assert pack_objects(shared_blobs, wants, haves, boundary) == len(expected)
    monkeypatch.setattr(git_reach, "SEEN_NAMES", 0)
    assert pack_objects(shared_blobs, wants, haves, boundary) == len(expected)
