"""A ``packed-refs`` that does not say ``fully-peeled`` (an old git's, another tool's) and is too big
for the kept parses: every advertisement peels each of its refs.  Each tag was looked up and read
whole through dulwich, and ``peel``'s cache, smaller than a mirror's 100,000 tags, was emptied
along the way, so the next advertisement found none of them there (1.7-2.0 s of server CPU a
``git ls-remote``, git's upload-pack 0.3).  ``git_pack.peel_many`` now reads the packs' whole
tag entries in a pass over each index (the first line of each inflated); checked here against
``peel`` for every kind of object a ref may name."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from dulwich.repo import Repo

from backends import git as git_backend
from backends import git_pack
from backends.git import DulwichGitRepository
from backends.interfaces import ObjectId
from backends.lru import LruCache

TAGS = 200


def git(cwd: Path, *args: str, input: bytes | None = None) -> bytes:
    return subprocess.run(["git", "-c", "pack.threads=1", *args], cwd=cwd, input=input, check=True,
                          capture_output=True,
                          env={"GIT_CONFIG_NOSYSTEM": "1", "HOME": str(cwd), "GIT_AUTHOR_NAME": "a",
                               "GIT_AUTHOR_EMAIL": "a@b", "GIT_COMMITTER_NAME": "a",
                               "GIT_COMMITTER_EMAIL": "a@b", "PATH": "/usr/bin:/bin"}).stdout


def _stream() -> bytes:
    out = [b"blob\nmark :1\ndata 2\nb\n",
           b"commit refs/heads/main\nmark :2\ncommitter a <a@b> 1700000000 +0000\ndata 2\nc\nM 644 :1 f\n"]
    for n in range(TAGS):
        out.append(b"tag v%03d\nfrom :2\ntagger a <a@b> 1700000000 +0000\ndata 4\nt%03d\n" % (n, n % 1000))
    out.append(b"tag blobtag\nfrom :1\ntagger a <a@b> 1700000000 +0000\ndata 2\nb\n")
    return b"".join(out)


@pytest.fixture
def mirror(tmp_path: Path) -> Path:
    repo = tmp_path / "m.git"
    git(tmp_path, "init", "-q", "--bare", str(repo))
    git(repo, "fast-import", "--quiet", input=_stream())
    git(repo, "tag", "-a", "-m", "outer", "outer", "v000")  # a tag of a tag
    tree = git(repo, "rev-parse", "main^{tree}").strip().decode()
    git(repo, "tag", "-a", "-m", "tree", "treetag", tree)
    git(repo, "repack", "-adq")
    git(repo, "tag", "-a", "-m", "loose", "loose", "main")  # a loose tag object
    git(repo, "pack-refs", "--all")
    text = (repo / "packed-refs").read_bytes()
    lines = [line for line in text.splitlines(keepends=True) if not line.startswith((b"#", b"^"))]
    (repo / "packed-refs").write_bytes(b"".join(lines))  # as another tool writes it: nothing peeled
    return repo


def _peeled_by_git(repo: Path) -> dict[bytes, bytes]:
    out = git(repo, "show-ref", "--dereference")  # (``^{}``: what each finally names, as advertised)
    return {name[:-3]: oid for oid, name in (line.split(b" ") for line in out.splitlines()) if name.endswith(b"^{}")}


def test_peel_many_answers_as_peel(mirror: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(git_pack, "_peeled", {})
    repo = DulwichGitRepository("m.git", Repo(str(mirror)), owns_repo=True)
    try:
        oids = [ObjectId(oid) for oid in repo.refs().values()]
        store = repo.object_store
        types = git_pack._stored_types(store)
        try:
            many = git_pack.peel_many(store, [*oids, *oids[:3], ObjectId(b"0" * 40)], types)
        finally:
            assert types is not None
            types.close()
        git_pack._peeled.clear()
        assert many == {oid: git_pack.peel(store, oid) for oid in [*oids, ObjectId(b"0" * 40)]}
    finally:
        repo.close()


def test_an_unvouched_file_too_big_to_keep_is_peeled_without_reading_each_tag(
        mirror: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(git_pack, "_peeled", {})
    monkeypatch.setattr(git_backend, "_PACKED_REFS", LruCache(0, git_backend._packed_cost))
    repo = DulwichGitRepository("m.git", Repo(str(mirror)), owns_repo=True)
    try:
        store = repo.object_store
        reads = _counted_reads(monkeypatch, store)
        for _ in range(2):  # (the second as the first: nothing of it kept)
            reads.clear()
            snap = git_pack.snapshot_refs(repo)
            repo.forget_refs_read()
            assert dict(snap.peeled) == _peeled_by_git(mirror)
            # the loose tag, the tag the outer tag names: read whole; none of the packed tags
            assert len(reads) <= 3, len(reads)
    finally:
        repo.close()


@pytest.mark.parametrize("packed", [False, True], ids=["loose", "packed"])
def test_a_tag_git_cannot_read_is_advertised_unpeeled_as_git_advertises_it(
        tmp_path: Path, packed: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    # A tag object whose first line is not ``object <id>`` (another tool's, written with ``git
    # hash-object --literally``), named in a packed-refs without ``^`` lines: git's show-ref and
    # upload-pack list it without a peeled value; every advertisement of the repository was refused
    # ("the repository holds an object the server cannot read"), a fetch of any other ref with it.
    monkeypatch.setattr(git_pack, "_peeled", {})
    repo = tmp_path / "odd.git"
    git(tmp_path, "init", "-q", "--bare", str(repo))
    git(repo, "fast-import", "--quiet", input=_stream())
    main = git(repo, "rev-parse", "main").strip()
    odd = git(repo, "hash-object", "-w", "-t", "tag", "--literally", "--stdin", input=(
        b"type commit\nobject %s\ntag odd\ntagger a <a@b> 1700000000 +0000\n\nodd\n" % main)).strip()
    outer = git(repo, "hash-object", "-w", "-t", "tag", "--stdin", input=(  # (a tag of it: git peels it no more)
        b"object %s\ntype tag\ntag outer\ntagger a <a@b> 1700000000 +0000\n\nouter\n" % odd)).strip()
    if packed:
        git(repo, "repack", "-adq")
    git(repo, "pack-refs", "--all")
    text = (repo / "packed-refs").read_bytes()
    lines: list[bytes] = [line for line in text.splitlines(keepends=True) if not line.startswith((b"#", b"^"))]
    lines += [b"%s refs/tags/odd\n" % odd, b"%s refs/tags/outer\n" % outer]
    lines.sort(key=lambda entry: entry.split(b" ")[1])
    (repo / "packed-refs").write_bytes(b"".join(lines))
    peeled_by_git = _peeled_by_git(repo)
    assert b"refs/tags/odd" not in peeled_by_git and b"refs/tags/outer" not in peeled_by_git
    opened = DulwichGitRepository("odd.git", Repo(str(repo)), owns_repo=True)
    try:
        snap = git_pack.snapshot_refs(opened)
        assert dict(snap.peeled) == peeled_by_git
        assert snap.refs[b"refs/tags/odd"] == odd
    finally:
        opened.close()


def test_tags_of_as_many_commits_are_peeled_a_level_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A mirror's tags each name a commit of their own: each commit was looked up on its own
    # (``_peel_readable``: an index search and a place in ``peel``'s cache, 100,000 of them emptying
    # it at every advertisement); the objects the tags name are now read from the packs' entries in
    # one more pass, a level of the chains at a time, and nothing is added to the cache.
    monkeypatch.setattr(git_pack, "_peeled", {})
    repo = tmp_path / "d.git"
    git(tmp_path, "init", "-q", "--bare", str(repo))
    stream = [b"commit refs/heads/main\nmark :%d\ncommitter a <a@b> %d +0000\ndata 2\nc\n%s\n"
              % (n, 1700000000 + n, b"from :%d\n" % (n - 1) if n > 1 else b"") for n in range(1, 41)]
    stream += [b"tag v%02d\nfrom :%d\ntagger a <a@b> 1700000000 +0000\ndata 2\nt\n" % (n, n) for n in range(1, 41)]
    git(repo, "fast-import", "--quiet", input=b"".join(stream))
    git(repo, "tag", "-a", "-m", "outer", "outer", "v01")  # a tag of a tag
    git(repo, "tag", "-a", "-m", "outer2", "outer2", "outer")  # and of that
    git(repo, "repack", "-adfq", "--window=0")  # (each object whole: none read through the store)
    opened = DulwichGitRepository("d.git", Repo(str(repo)), owns_repo=True)
    try:
        store = opened.object_store
        reads = _counted_reads(monkeypatch, store)
        oids = [ObjectId(oid) for name, oid in opened.refs().items() if name.startswith(b"refs/tags/")]
        types = git_pack._stored_types(store)
        assert types is not None
        try:
            many = git_pack.peel_many(store, oids, types)
        finally:
            types.close()
        peeled = _peeled_by_git(repo)
        assert many == {oid: peeled[name] for name, oid in opened.refs().items() if name.startswith(b"refs/tags/")}
        assert reads == [] and git_pack._peeled == {}
    finally:
        opened.close()


def _counted_reads(monkeypatch: pytest.MonkeyPatch, store: Any) -> list[bytes]:
    """The ids ``store.get_raw`` is asked for from now on, in order (the reads go on as before)."""
    reads: list[bytes] = []
    get_raw = store.get_raw

    def counted(sha: Any) -> tuple[int, bytes]:
        reads.append(sha)
        return get_raw(sha)

    monkeypatch.setattr(store, "get_raw", counted)
    return reads
