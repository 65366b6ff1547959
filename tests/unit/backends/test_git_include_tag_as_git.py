"""include-tag from the advertisement's peeled tags (``plan_pack``'s ``peeled``) sends what git's
``pack-objects --include-tag`` sends for the same wants and haves: a tag of a tree or of a blob that
is sent, a tag of a tag, a loose tag ref over a packed one whose peeled line is stale, and a
``packed-refs`` written without the ``peeled`` trait (so without peeled lines)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from dulwich.object_store import DiskObjectStore
from dulwich.repo import Repo

from backends import git_fastpack, git_pack
from backends.git import DulwichGitRepository

ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@b", "GIT_COMMITTER_NAME": "a",
       "GIT_COMMITTER_EMAIL": "a@b", "PATH": "/usr/bin:/bin", "GIT_CONFIG_COUNT": "1",
       "GIT_CONFIG_KEY_0": "pack.threads", "GIT_CONFIG_VALUE_0": "1"}


def git(cwd: Path, *args: str, input: bytes | None = None) -> bytes:
    return subprocess.run(["git", *args], cwd=cwd, input=input, check=True, capture_output=True,
                          env={**ENV, "HOME": str(cwd)}).stdout


def objects_of(root: Path, pack: bytes) -> set[bytes]:
    client = root / "client"
    if client.exists():
        subprocess.run(["rm", "-rf", str(client)], check=True)
    git(root, "init", "-q", "--bare", str(client))
    git(client, "index-pack", "--stdin", input=pack)
    return set(git(client, "cat-file", "--batch-all-objects", "--batch-check=%(objectname)").split())


def tag(src: Path, name: str, target: str) -> bytes:
    git(src, "tag", "-a", "-m", name, name, target)
    return git(src, "rev-parse", f"refs/tags/{name}").strip()


@pytest.mark.parametrize("peeled_trait", [True, False])
def test_include_tag_sends_what_git_sends(tmp_path: Path, peeled_trait: bool) -> None:
    src = tmp_path / "s.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(src))
    work = tmp_path / "w"
    git(tmp_path, "clone", "-q", str(src), str(work))
    for n in range(3):
        (work / "f").write_text(f"{n}\n")
        git(work, "add", "f")
        git(work, "commit", "-qm", f"c{n}")
    git(work, "push", "-q", "origin", "HEAD:main")
    tag(src, "on-old", "main~2")  # of the commit the client has: not sent
    tag(src, "on-new", "main~1")
    tag(src, "of-tree", "main^{tree}")
    tag(src, "of-blob", "main:f")
    inner = tag(src, "inner", "main~1")
    git(src, "tag", "-a", "-m", "outer", "outer", inner.decode())  # a tag of a tag
    tag(src, "moved", "main~2")
    git(src, "pack-refs", "--all")
    moved = tag(src, "moved-to", "main")  # refs/tags/moved: packed (peeled to main~2), loose over it
    git(src, "update-ref", "refs/tags/moved", moved.decode())
    git(src, "update-ref", "-d", "refs/tags/moved-to")
    if not peeled_trait:  # as an old git or another tool writes it: no trait, no peeled lines
        packed = (src / "packed-refs").read_bytes().splitlines()
        (src / "packed-refs").write_bytes(b"".join(line + b"\n" for line in packed
                                                   if not line.startswith((b"#", b"^"))))
    git(src, "repack", "-adq")
    want, have = git(src, "rev-parse", "main").strip(), git(src, "rev-parse", "main~2").strip()
    theirs = objects_of(tmp_path, git(src, "pack-objects", "--revs", "--include-tag", "--stdout", "-q",
                                      input=want + b"\n^" + have + b"\n"))

    repo = DulwichGitRepository("s.git", Repo(str(src)), owns_repo=True)
    snap = git_pack.snapshot_refs(repo)
    store = repo.object_store
    assert isinstance(store, DiskObjectStore)
    chunks = git_fastpack.generate_pack_fast(store, [want], [have], include_tag=True, refs=snap.refs,
                                             peeled=snap.peeled)  # type: ignore[arg-type]
    assert chunks is not None
    ours = objects_of(tmp_path, b"".join(chunks))
    repo.close()
    assert moved in ours and inner in ours
    assert ours == theirs
