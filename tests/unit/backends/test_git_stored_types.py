"""A pack entry's stored type, read from the ``.idx`` in place and the entry's first byte (no view
built, nothing inflated), as ``git verify-pack`` lists every object: SHA-1 and SHA-256, offsets in
the large table; an index it cannot read is not looked in; a cold advertisement peels refs to
objects stored whole without reading them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from backends import git_pack, load_backend
from backends.git_packindex import StoredTypes

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs a git binary")

TYPES = {"commit": 1, "tree": 2, "blob": 3, "tag": 4}
OFS_DELTA = 6


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=True,
                          env={"GIT_CONFIG_NOSYSTEM": "1", "HOME": str(cwd), "GIT_AUTHOR_NAME": "A",
                               "GIT_AUTHOR_EMAIL": "a@b", "GIT_COMMITTER_NAME": "C", "GIT_COMMITTER_EMAIL": "c@d",
                               "PATH": "/usr/bin:/bin:/usr/local/bin"}).stdout.decode()


def _history(root: Path, object_format: str = "sha1") -> Path:
    """Commits of a file that grows (its blobs and trees stored as deltas), an annotated tag, one pack."""
    work = root / "work"
    work.mkdir()
    _git(work, "init", "-q", f"--object-format={object_format}", "-b", "main")
    lines = ""
    for n in range(12):
        lines += "".join(f"line {n} {k} of a file long enough to be stored as a delta\n" for k in range(20))
        (work / "f.txt").write_text(lines)
        (work / f"n{n}.txt").write_text(f"{n}\n")
        _git(work, "add", "-A")
        _git(work, "commit", "-q", "-m", f"c{n}")
    _git(work, "tag", "-a", "v1", "-m", "v1")
    _git(root, "clone", "-q", "--bare", "--no-local", str(work), str(root / "r.git"))
    _git(root / "r.git", "repack", "-q", "-a", "-d", "-f")
    return root / "r.git"


def _listed(repo: Path) -> dict[bytes, int]:
    """Every packed object's stored type as ``git verify-pack -v`` lists it (a delta's: OFS_DELTA)."""
    (idx,) = (repo / "objects" / "pack").glob("*.idx")
    stored = {}
    for line in _git(repo, "verify-pack", "-v", str(idx)).splitlines():
        fields = line.split()
        if len(fields) >= 5 and fields[1] in TYPES:
            stored[bytes.fromhex(fields[0])] = OFS_DELTA if len(fields) == 7 else TYPES[fields[1]]
    return stored


@pytest.mark.parametrize("object_format", ["sha1", "sha256"])
@pytest.mark.parametrize("index", ["as written", "large offsets", "version 1"])
def test_every_object_s_stored_type(tmp_path: Path, object_format: str, index: str) -> None:
    repo = _history(tmp_path, object_format)
    stored = _listed(repo)
    assert OFS_DELTA in stored.values() and set(TYPES.values()) <= set(stored.values())
    pack_dir = repo / "objects" / "pack"
    if index != "as written":  # the same pack indexed again: every offset in the 8-byte table, or version 1
        (pack,) = pack_dir.glob("*.pack")
        idx = pack.with_suffix(".idx")
        idx.unlink()
        version = "2,0" if index == "large offsets" else "1"
        _git(repo, "index-pack", f"--object-format={object_format}", f"--index-version={version}", "-o",
             str(idx), str(pack))
    raw_len = 20 if object_format == "sha1" else 32
    types = StoredTypes(str(pack_dir), raw_len)
    try:
        found = {name: types.type_of(name) for name in stored}
        assert found == (stored if index != "version 1" else dict.fromkeys(stored))
        assert types.type_of(b"\0" * raw_len) is None and types.type_of(b"\xff" * raw_len) is None
        assert types.type_of(b"") is None and types.type_of(b"\1" * (raw_len + 1)) is None
    finally:
        types.close()
    assert StoredTypes(str(tmp_path / "nowhere"), raw_len).type_of(next(iter(stored))) is None


def test_a_cold_advertisement_reads_only_the_tags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Refs to commits stored whole are peeled by their headers, the packed annotated tag by its
    entry's first line (``StoredTypes.whole_entries``); only a ref to a loose object (in no pack) is
    read through the store; the peeled values are the ones git shows."""
    repo_path = _history(tmp_path)
    commits = _git(repo_path, "rev-list", "main").split()
    for n, oid in enumerate(commits):
        _git(repo_path, "update-ref", f"refs/heads/b{n}", oid)
    loose = _git(repo_path, "commit-tree", "-m", "loose", "-p", commits[0], f"{commits[0]}^{{tree}}").strip()
    _git(repo_path, "update-ref", "refs/heads/loose", loose)
    for line in _git(repo_path, "show-ref").splitlines():  # every ref loose: packed-refs says no peeled value
        oid, name = line.split(" ", 1)
        (repo_path / name).parent.mkdir(parents=True, exist_ok=True)
        (repo_path / name).write_text(oid + "\n")
    (repo_path / "packed-refs").unlink()
    repo = load_backend("fs", str(tmp_path)).open("r.git")
    store = repo.object_store
    reads: list[bytes] = []
    real = store.get_raw

    def counting(name: bytes) -> tuple[int, bytes]:
        reads.append(bytes(name))
        return real(name)

    monkeypatch.setattr(store, "get_raw", counting)
    monkeypatch.setattr(git_pack, "_peeled", {})  # nothing known from earlier tests
    snapshot = git_pack.snapshot_refs(repo)
    assert reads == [loose.encode()]
    expected = {}
    for line in _git(repo_path, "show-ref", "-d").splitlines():
        oid, name = line.split(" ", 1)
        if name.endswith("^{}"):
            expected[name[:-3].encode()] = oid.encode()
    assert snapshot.peeled == expected and len(snapshot.refs) == len(commits) + 4  # HEAD, main, loose, v1
    repo.close()


def test_a_fork_s_refs_are_typed_from_the_packs_it_borrows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fork (``git clone --shared``) whose refs name the base's packed commits: its cold
    advertisement reads none of them (the base's pack is looked in too)."""
    base = _history(tmp_path)
    fork = tmp_path / "fork.git"
    _git(tmp_path, "clone", "-q", "--bare", "--shared", str(base), str(fork))
    commits = _git(fork, "rev-list", "main").split()
    for n, oid in enumerate(commits[:5]):
        _git(fork, "update-ref", f"refs/heads/b{n}", oid)
    repo = load_backend("fs", str(tmp_path)).open("fork.git")
    reads: list[bytes] = []
    real = repo.object_store.get_raw

    def counting(name: bytes) -> tuple[int, bytes]:
        reads.append(bytes(name))
        return real(name)

    monkeypatch.setattr(repo.object_store, "get_raw", counting)
    monkeypatch.setattr(git_pack, "_peeled", {})
    snapshot = git_pack.snapshot_refs(repo)
    assert len(snapshot.refs) >= 6 and set(reads) <= {_git(fork, "rev-parse", "v1").strip().encode()}
    repo.close()
