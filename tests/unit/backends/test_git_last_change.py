"""When the index says a git repository last changed: its newest branch tip's committer date, as
gitweb's project list says it, whatever HEAD names and however a commit's header is written."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from backends import load_backend
from backends.git_web import GitPages

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs a git binary")

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


def _git(repo: Path, *args: str, data: bytes | None = None) -> str:
    return subprocess.run(["git", "--git-dir", str(repo), *args], input=data, capture_output=True,
                          check=True).stdout.decode().strip()


def _commit(repo: Path, committer: str) -> str:
    tail = "" if committer.endswith("\n") else "\n\nm\n"  # a committer line that ends the object, or a message
    raw = f"tree {EMPTY_TREE}\nauthor A <a@b> 1 +0000\ncommitter {committer}{tail}".encode()
    return _git(repo, "hash-object", "-t", "commit", "--literally", "-w", "--stdin", data=raw)


@pytest.mark.parametrize(("committer", "expected"), [
    ("C <c@d> 1600000000 +0130", [1600000000.0, -5400]),  # as git writes it: read from the header
    ("C <c@d> 1600000000 -0700", [1600000000.0, 25200]),
    ("C <c@d> 1600000000 +0200\n", [1600000000.0, -7200]),  # the header's last line, no message after it
    ("C <c@d> 1600000000 +01", [1600000000.0, -60]),  # not as git writes it: dulwich's reading
    ("C <c@d> 1600000000", None),  # no zone: no date to give
    ("C <c@d> soon +0000", None),
])
def test_the_newest_tip_s_committer_date(tmp_path: Path, committer: str, expected: list[float] | None) -> None:
    repo = tmp_path / "r.git"
    subprocess.run(["git", "init", "-q", "--bare", str(repo)], check=True)
    old = _commit(repo, "C <c@d> 1000000000 +0000")
    _git(repo, "update-ref", "refs/heads/old", old)
    _git(repo, "update-ref", "refs/heads/odd", _commit(repo, committer))
    _git(repo, "symbolic-ref", "HEAD", "refs/heads/never-pushed")
    pages = GitPages(load_backend("fs", str(tmp_path)).open("r.git"))  # type: ignore[arg-type]
    assert pages.last_change() == (expected or [1000000000.0, 0])  # an unreadable date: the other tip's


def test_no_commit_yet_and_a_detached_head(tmp_path: Path) -> None:
    repo = tmp_path / "r.git"
    subprocess.run(["git", "init", "-q", "--bare", str(repo)], check=True)
    backend = load_backend("fs", str(tmp_path))
    assert GitPages(backend.open("r.git")).last_change() is None  # type: ignore[arg-type]
    (repo / "HEAD").write_text(_commit(repo, "C <c@d> 1234567890 +0000") + "\n")  # no branch: HEAD's commit
    assert GitPages(backend.open("r.git")).last_change() == [1234567890.0, 0]  # type: ignore[arg-type]
