"""Peeled values from ``packed-refs`` (``backends.git.PackedRefs``): an advertisement peels the
packed annotated tags as the file records them, without reading a tag, as git's upload-pack does."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from dulwich.repo import Repo

from backends import git as git_backend
from backends import git_pack

A = b"a" * 40
B = b"b" * 40
C = b"c" * 40
D = b"d" * 40

GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "A U Thor",
    "GIT_AUTHOR_EMAIL": "author@example.com",
    "GIT_COMMITTER_NAME": "C O Mitter",
    "GIT_COMMITTER_EMAIL": "committer@example.com",
    "GIT_AUTHOR_DATE": "1700000000 +0000",
    "GIT_COMMITTER_DATE": "1700000000 +0000",
}


def git(cwd: Path, *args: str) -> bytes:
    env = {**os.environ, **GIT_ENV, "HOME": str(cwd)}
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, check=False)
    if done.returncode:
        raise AssertionError(f"git {' '.join(args)}: {done.stderr.decode(errors='replace')}")
    return done.stdout


def test_fully_peeled_files_vouch_for_every_ref() -> None:
    parsed = git_backend._parse_packed_refs(
        b"# pack-refs with: peeled fully-peeled sorted \n"
        + A + b" refs/heads/main\n"
        + B + b" refs/tags/v1\n^" + A + b"\n"
        + C + b" refs/remotes/origin/main\n")
    assert dict(parsed.refs) == {b"refs/heads/main": A, b"refs/tags/v1": B, b"refs/remotes/origin/main": C}
    assert dict(parsed.peeled) == {A: A, B: A, C: C}


def test_a_file_that_says_only_peeled_vouches_for_its_peeled_lines_alone() -> None:
    # dulwich writes this first line when it rewrites a file that had none: the tags without a
    # "^" line may be annotated ones all the same
    parsed = git_backend._parse_packed_refs(
        b"# pack-refs with: peeled\n"
        + A + b" refs/heads/main\n"
        + B + b" refs/tags/v1\n^" + A + b"\n"
        + D + b" refs/tags/v2\n")
    assert dict(parsed.peeled) == {B: A}
    assert len(parsed.refs) == 3


@pytest.mark.parametrize("content", [b"", A + b" refs/heads/main\n" + B + b" refs/tags/v1\n",
                                     b"# pack-refs with: sorted\n" + A + b" refs/tags/v1\n"])
def test_files_without_peeled_values_peel_nothing(content: bytes) -> None:
    parsed = git_backend._parse_packed_refs(content)
    assert dict(parsed.peeled) == {}
    assert len(parsed.refs) == content.count(b" refs/")


def test_a_peeled_line_in_a_file_that_does_not_announce_them_is_refused() -> None:
    from dulwich.refs import PackedRefsException

    with pytest.raises(PackedRefsException):
        git_backend._parse_packed_refs(A + b" refs/tags/v1\n^" + B + b"\n")


class CountingStore:
    def __init__(self, store: Any) -> None:
        self.store = store
        self.reads: list[bytes] = []

    def __getitem__(self, oid: bytes) -> Any:
        self.reads.append(oid)
        return self.store[oid]

    def __contains__(self, oid: bytes) -> bool:
        return oid in self.store


@pytest.mark.skipif(shutil.which("git") is None, reason="needs a git binary")
def test_an_advertisement_peels_packed_tags_without_reading_them(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    for n in range(3):
        (work / "f").write_text(f"{n}\n")
        git(work, "add", "f")
        git(work, "commit", "-q", "-m", f"c{n}")
        git(work, "tag", "-a", "-m", f"release {n}", f"v{n}")
    git(work, "tag", "light", "HEAD~1")
    git(work, "tag", "-a", "-m", "a tag of a tag", "outer", "v0")
    git(work, "tag", "-a", "-m", "a tag of a tree", "tree-tag", "HEAD^{tree}")
    bare = tmp_path / "r.git"
    git(tmp_path, "clone", "-q", "--bare", str(work), str(bare))
    git(bare, "pack-refs", "--all")
    # a loose tag over a packed one: the loose one is advertised, peeled by reading it
    loose_target = git(bare, "rev-parse", "v1").strip()
    (bare / "refs" / "tags").mkdir(parents=True, exist_ok=True)
    (bare / "refs" / "tags" / "v2").write_bytes(loose_target + b"\n")
    expected = {}
    for line in git(bare, "show-ref", "-d").splitlines():
        oid, name = line.split(b" ", 1)
        if name.endswith(b"^{}"):
            expected[name[:-3]] = oid
    assert set(expected) == {b"refs/tags/v0", b"refs/tags/v1", b"refs/tags/v2", b"refs/tags/outer",
                             b"refs/tags/tree-tag"}

    monkeypatch.setattr(git_pack, "_peeled", {})  # nothing known from earlier tests
    monkeypatch.setattr(git_backend, "_PACKED_REFS", git_backend.LruCache(1000, git_backend._packed_cost))
    repo = git_backend.DulwichGitRepository("r.git", Repo(str(bare)))
    counting = CountingStore(repo.object_store)
    monkeypatch.setattr(repo.dulwich_repo, "object_store", counting)
    snapshot = git_pack.snapshot_refs(repo)
    assert snapshot.peeled == expected
    assert snapshot.peeled[b"refs/tags/v2"] == expected[b"refs/tags/v1"]
    assert set(counting.reads) <= {loose_target, expected[b"refs/tags/v1"]}, \
        "only the loose ref's tag (which the file does not cover) was read"

    monkeypatch.setattr(git_pack, "_peeled", {})
    plain = git_backend.DulwichGitRepository("r.git", Repo(str(bare)))
    monkeypatch.setattr(plain, "known_peeled", dict)
    assert git_pack.snapshot_refs(plain) == snapshot, "the same as reading every object"
    plain.close()
    repo.close()


def test_a_repository_without_packed_refs_knows_nothing_peeled(tmp_path: Path) -> None:
    Repo.init_bare(str(tmp_path / "e.git"), mkdir=True).close()
    repo = git_backend.DulwichGitRepository("e.git", Repo(str(tmp_path / "e.git")))
    assert dict(repo.known_peeled()) == {}
    (tmp_path / "e.git" / "packed-refs").write_bytes(b"# pack-refs with: peeled fully-peeled \n"
                                                   + A + b" refs/heads/main\n")
    assert dict(repo.known_peeled()) == {A: A}
    repo.close()
