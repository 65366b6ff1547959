"""include-tag with the advertisement's peeled tags (``plan_pack``'s ``peeled``): only the tags of
objects being sent are read; every other tag ref costs a dict lookup (a mirror's 100,000 tags,
each looked up in the store and peeled, took 1.7 s for a fetch of 10 commits)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from dulwich.object_store import DiskObjectStore
from dulwich.repo import Repo

from backends import git_fastpack, git_pack
from backends.git import DulwichGitRepository


def git(cwd: Path, *args: str, input: bytes | None = None) -> bytes:
    return subprocess.run(["git", *args], cwd=cwd, input=input, check=True, capture_output=True,
                          env={"GIT_CONFIG_NOSYSTEM": "1", "HOME": str(cwd), "GIT_AUTHOR_NAME": "a",
                               "GIT_AUTHOR_EMAIL": "a@b", "GIT_COMMITTER_NAME": "a",
                               "GIT_COMMITTER_EMAIL": "a@b", "PATH": "/usr/bin:/bin"}).stdout


def objects_of(root: Path, pack: bytes) -> set[bytes]:
    client = root / "client"
    if client.exists():
        subprocess.run(["rm", "-rf", str(client)], check=True)
    git(root, "init", "-q", "--bare", str(client))
    git(client, "index-pack", "--stdin", input=pack)
    out = git(client, "cat-file", "--batch-all-objects", "--batch-check=%(objectname)")
    return set(out.split())


def test_only_the_tags_of_sent_objects_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "w"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    for n in range(2):
        (work / "f").write_text(f"{n}\n")
        git(work, "add", "f")
        git(work, "commit", "-qm", f"c{n}")
        if n == 0:
            for t in range(30):  # annotated tags of the commit the client has
                git(work, "tag", "-a", f"old{t:02d}", "-m", "old")
    git(work, "tag", "-a", "new", "-m", "new")
    git(work, "tag", "-a", "outer", "new", "-m", "a tag of a tag")
    git(work, "tag", "light")
    src = tmp_path / "s.git"
    git(tmp_path, "clone", "-q", "--bare", str(work), str(src))
    git(src, "pack-refs", "--all")
    git(src, "repack", "-adq")
    repo = DulwichGitRepository("s.git", Repo(str(src)), owns_repo=True)
    snap = git_pack.snapshot_refs(repo)
    store = repo.object_store
    assert isinstance(store, DiskObjectStore)
    want, have = snap.refs[b"refs/heads/main"], git(src, "rev-parse", "main~1").strip()

    peels: list[bytes] = []
    lookups: list[bytes] = []
    peel = git_fastpack._peel
    contains = DiskObjectStore.__contains__

    def peeling(*args: Any) -> Any:
        peels.append(args[1])
        return peel(*args)

    def looking(store: DiskObjectStore, sha: Any) -> bool:
        lookups.append(sha)
        return contains(store, sha)

    monkeypatch.setattr(git_fastpack, "_peel", peeling)
    monkeypatch.setattr(DiskObjectStore, "__contains__", looking)

    def pack(peeled: object) -> set[bytes]:
        chunks = git_fastpack.generate_pack_fast(store, [want], [have], include_tag=True, refs=snap.refs,
                                                 peeled=peeled)  # type: ignore[arg-type]
        assert chunks is not None
        return objects_of(tmp_path, b"".join(chunks))

    sent = pack(snap.peeled)
    tags = {snap.refs[b"refs/tags/new"], snap.refs[b"refs/tags/outer"]}
    assert tags <= sent
    assert sorted(peels) == sorted(tags)  # the 30 old tags and the lightweight one were not read
    assert len(lookups) <= 4  # the want, the have, and the two tags sent at most
    assert pack(None) == sent  # as each tag ref read and peeled
    repo.close()


class _CountedRefs(dict):  # type: ignore[type-arg]
    """Refs that count the names looked up in them."""

    looked: int = 0

    def __getitem__(self, key: Any) -> Any:
        self.looked += 1
        return super().__getitem__(key)

    def get(self, key: Any, default: Any = None) -> Any:
        self.looked += 1
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        self.looked += 1
        return super().__contains__(key)


def test_the_tags_of_objects_not_sent_cost_no_lookup_of_their_own(tmp_path: Path) -> None:
    """Each distinct peeled object is looked for among those sent once; the refs of those found
    alone are looked up (a mirror's 100,000 tag refs each took a lookup and a prefix test: a
    third of a fetch's CPU)."""
    work = tmp_path / "w"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    for n in range(2):
        (work / "f").write_text(f"{n}\n")
        git(work, "add", "f")
        git(work, "commit", "-qm", f"c{n}")
        for t in range(40 if n == 0 else 2):
            git(work, "tag", "-a", f"c{n}-{t:02d}", "-m", "t")
    src = tmp_path / "s.git"
    git(tmp_path, "clone", "-q", "--bare", str(work), str(src))
    git(src, "pack-refs", "--all")
    git(src, "repack", "-adq")
    repo = DulwichGitRepository("s.git", Repo(str(src)), owns_repo=True)
    try:
        snap = git_pack.snapshot_refs(repo)
        refs = _CountedRefs(snap.refs)
        want, have = snap.refs[b"refs/heads/main"], git(src, "rev-parse", "main~1").strip()
        chunks = git_fastpack.generate_pack_fast(repo.object_store, [want], [have], include_tag=True, refs=refs,
                                                 peeled=snap.peeled)
        assert chunks is not None
        sent = objects_of(tmp_path, b"".join(chunks))
        assert {snap.refs[b"refs/tags/c1-00"], snap.refs[b"refs/tags/c1-01"]} <= sent
        assert refs.looked <= 2 * 2, refs.looked  # the two tags sent, not the 40 of the commit the client has
    finally:
        repo.close()
