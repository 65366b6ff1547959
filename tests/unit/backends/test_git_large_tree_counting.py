"""Counting a fetch into large trees: what is sent is exactly ``git rev-list --objects WANTS --not
HAVES``, and a tree that differs from one walked before in a few entries is not walked entry by entry."""

from __future__ import annotations

import binascii
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from dulwich.repo import Repo

from backends.git_fastpack import plan_pack
from backends.git_packindex import PackIndexView

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs a git binary")

GIT_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}
FILES, SUB_FILES = 3000, 1500


def git(cwd: Path, *args: str, input: bytes | None = None) -> bytes:
    done = subprocess.run(["git", *args], cwd=cwd, input=input, env={**os.environ, **GIT_ENV},
                          capture_output=True, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout


def _commit(ref: str, n: int, message: str, lines: list[str], parent: str | None = None) -> bytes:
    head = f"commit {ref}\ncommitter C <c@example.com> {1700000000 + n} +0000\ndata {len(message)}\n{message}\n"
    if parent is not None:
        head += f"from {parent}\n"
    return (head + "".join(lines)).encode()


def _file(path: str, text: str) -> str:
    return f"M 100644 inline {path}\ndata {len(text.encode())}\n{text}\n"


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A flat root of 3,000 files and a ``sub`` of 1,500, packed with a bitmap; then commits (in a
    pack of their own, as a push leaves them) that add, change, delete and rename files at the
    start, the middle and the end of those trees, and a side branch."""
    src = tmp_path_factory.mktemp("large") / "src.git"
    git(src.parent, "init", "-q", "--bare", str(src))
    base = [_file(f"f{i:05d}.txt", f"file {i}\n") for i in range(FILES)]
    base += [_file(f"sub/s{i:05d}.txt", f"sub {i}\n") for i in range(SUB_FILES)]
    git(src, "fast-import", "--quiet", input=_commit("refs/heads/main", 0, "base", base))
    git(src, "repack", "-adbq")
    steps = [
        [_file("zz-last.txt", "new at the end\n")],
        [_file(f"f{FILES // 2:05d}.txt", "changed in the middle\n")],
        ["D f00000.txt\n"],
        [_file("sub/s00750.txt", "changed in sub\n"), _file("sub/t-new.txt", "new in sub\n")],
        ["R f01000.txt r01000.txt\n"],
        [_file("0-first.txt", "new at the start\n"), "D sub/s00001.txt\n"],
        [_file(f"f{i:05d}.txt", f"many {i}\n") for i in range(0, FILES, 3)],  # a third of them changed
        [_file("sub/s00003.txt", "again\n")],
    ]
    stream = b"".join(_commit("refs/heads/main", n, f"step {n}", lines, "refs/heads/main^0" if n == 1 else None)
                      for n, lines in enumerate(steps, 1))
    git(src, "fast-import", "--quiet", input=stream)
    fork = git(src, "rev-parse", "main~5").strip().decode()
    side = _commit("refs/heads/side", 50, "side", [_file("f00100.txt", "side\n"), "D sub/s00002.txt\n"], fork)
    git(src, "fast-import", "--quiet", input=side)
    return src


CASES = [
    (["main"], ["main~1"]),
    (["main"], ["main~2"]),
    (["main"], ["main~8"]),
    (["main~2"], ["main~7"]),
    (["main", "side"], ["main~6"]),
    (["side"], ["main"]),
    (["main"], ["side"]),
    (["main", "side"], []),
]


def planned(src: Path, wants: list[bytes], haves: list[bytes]) -> set[bytes]:
    plan = plan_pack(Repo(str(src)).object_store, wants, haves, thin_pack=True, ofs_delta=True)
    names = {binascii.hexlify(s.view.names[pos]) for s in plan.sources for pos in s.positions}
    assert len(names) == plan.count - len(plan.whole)
    return names | set(plan.whole)


def expected(src: Path, wants: list[bytes], haves: list[bytes]) -> set[bytes]:
    args = [w.decode() for w in wants] + ["^" + h.decode() for h in haves]
    out = git(src, "rev-list", "--objects", "--stdin", input="\n".join(args).encode() + b"\n")
    return {line.split()[0] for line in out.splitlines()}


def revs(src: Path, specs: list[str]) -> list[bytes]:
    return [git(src, "rev-parse", spec).strip() for spec in specs]


@pytest.mark.parametrize("bitmap", [True, False])
@pytest.mark.parametrize(("want_specs", "have_specs"), CASES)
def test_counting_into_large_trees_is_exact(source: Path, tmp_path: Path, bitmap: bool,
                                            want_specs: list[str], have_specs: list[str]) -> None:
    src = source
    if not bitmap:
        src = tmp_path / "nobitmap.git"
        shutil.copytree(source, src)
        for bitmap_file in (src / "objects" / "pack").glob("*.bitmap"):
            bitmap_file.unlink()
    wants, haves = revs(src, want_specs), revs(src, have_specs)
    assert planned(src, wants, haves) == expected(src, wants, haves)


def test_a_fetch_does_not_look_up_each_entry_of_every_large_tree(source: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A fetch of 8 commits into a root of 3,000 entries and a ``sub`` of 1,500 looked up each entry
    of each tree (about 30,000 lookups); now each tree's entries once, and what differs."""
    calls = 0
    position = PackIndexView.position

    def counted(self: PackIndexView, sha: bytes) -> int | None:
        nonlocal calls
        calls += 1
        return position(self, sha)

    wants, haves = revs(source, ["main"]), revs(source, ["main~8"])
    monkeypatch.setattr(PackIndexView, "position", counted)
    assert planned(source, wants, haves) == expected(source, wants, haves)
    assert calls < 2 * (FILES + SUB_FILES)
