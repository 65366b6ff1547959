"""Counting what a fetch's haves reach: each have's own bitmap is taken before any have is walked,
so that a have without one is walked only where no other have's bitmap already holds it."""

from __future__ import annotations

import binascii
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from dulwich.repo import Repo

from backends import git_reach
from backends.git_fastpack import _find_bitmap, _pack_views, plan_pack

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs a git binary")

GIT_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}
COMMITS = 600


def git(cwd: Path, *args: str, input: bytes | None = None) -> bytes:
    done = subprocess.run(["git", *args], cwd=cwd, input=input, env={**os.environ, **GIT_ENV},
                          capture_output=True, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A line of 600 one-file commits packed with a bitmap (git gives one to the tip and to a few
    older commits), then 10 more commits in a pack of their own, as a push leaves them."""
    src = tmp_path_factory.mktemp("haves") / "src.git"
    git(src.parent, "init", "-q", "--bare", str(src))

    def commits(first: int, count: int) -> bytes:
        out = []
        for n in range(first, first + count):
            text, message = f"line {n}\n", f"commit {n}"
            out.append(f"commit refs/heads/main\ncommitter C <c@example.com> {1700000000 + n} +0000\n"
                       f"data {len(message)}\n{message}\n"
                       + ("from refs/heads/main^0\n" if n == first and first else "")
                       + f"M 100644 inline d{n % 7}/f{n}.txt\ndata {len(text)}\n{text}\n")
        return "".join(out).encode()

    git(src, "fast-import", "--quiet", input=commits(0, COMMITS))
    git(src, "repack", "-adbq")
    git(src, "fast-import", "--quiet", input=commits(COMMITS, 10))
    return src


def _counted_expansions(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    expanded: list[bytes] = []
    expand = git_reach.Walker._expand

    def counting(self: git_reach.Walker, reached: Any, sha: bytes, commits: list[bytes], trees: list[bytes]) -> None:
        expanded.append(sha)
        expand(self, reached, sha, commits, trees)

    monkeypatch.setattr(git_reach.Walker, "_expand", counting)
    return expanded


def test_a_client_s_haves_newest_first_are_counted_from_their_bitmaps(source: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A client sends its 16 newest commits as haves, newest first: the walk from the oldest ran
    down the line to a bitmapped commit (hundreds of commits and their trees) though the newest
    have's bitmap held all of them; now only the haves no bitmap holds are read, and what is sent
    is still exactly what git's rev-list lists."""
    store = Repo(str(source)).object_store
    found = _find_bitmap(store, _pack_views(store))
    assert found is not None
    line = git(source, "rev-list", "main").split()
    mapped = [found.bitmap.bitmap(binascii.unhexlify(c)) is not None for c in line]
    # a bitmapped commit with 60 commits below it that git gave no bitmap (the line's older part)
    first = next(n for n in range(len(line) - 61) if mapped[n] and not any(mapped[n + 1:n + 61]))
    haves, wants = line[first:first + 16], [line[0]]
    without = [h for h, m in zip(haves, mapped[first:first + 16], strict=True) if not m]
    assert len(without) == 15

    expanded = _counted_expansions(monkeypatch)
    plan = plan_pack(store, wants, haves, thin_pack=True, ofs_delta=True)
    sent = {binascii.hexlify(s.view.names[pos]) for s in plan.sources for pos in s.positions} | set(plan.whole)
    listed = git(source, "rev-list", "--objects", "--stdin",
                 input=b"\n".join([wants[0], *(b"^" + h for h in haves)]) + b"\n")
    assert sent == {line.split()[0] for line in listed.splitlines()}
    walked_for_haves = len(expanded) - 10  # (the wants' walk reads the 10 new commits)
    assert walked_for_haves <= len(without), f"{walked_for_haves} commits read for {len(haves)} haves"
