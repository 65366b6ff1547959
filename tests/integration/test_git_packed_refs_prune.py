"""A push that deletes many packed refs (a rewritten history's ``git push --mirror --force``,
``git push --prune``) takes them out of ``packed-refs`` in one rewrite of the file
(``DulwichGitRepository._delete_packed``), as git's receive-pack does: each deletion rewrote the
whole file before, so 6,000 deletions from a file of 6,750 refs took 550 s.  The file is left byte
for byte as git's receive-pack leaves it; a ref that moved meanwhile, is being written or whose
loose file names another id is left to the usual way, which says what stands in its way."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

import backends.git
from backends.interfaces import Kind
from tests.conftest import Client, RunningServer
from tests.integration.test_git_daemon import assert_consistent, commit
from tests.integration.test_git_hooks import _transactions

COUNT = 80


def _work(client: Client, tmp_path: Path) -> Path:
    """Three commits, ``COUNT`` branches and ``COUNT`` tags (half of them annotated)."""
    work = tmp_path / "w"
    client.git("init", "-q", "-b", "main", str(work))
    for n in range(3):
        commit(client, work, f"f{n}.txt", f"{n}\n", f"commit {n}")
    lines = [f"create refs/heads/topic/b{i:03d} HEAD~{i % 3}\n" for i in range(COUNT)]
    lines += [f"create refs/tags/light{i:03d} HEAD~{i % 3}\n" for i in range(COUNT // 2)]
    client.git("update-ref", "--stdin", cwd=work, input="".join(lines).encode())
    for i in range(COUNT // 2):
        client.git("tag", "-a", "-m", f"release {i}", f"v{i:03d}", f"HEAD~{i % 3}", cwd=work)
    return work


@pytest.fixture
def rewrites(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times the server wrote a ``packed-refs`` file (one entry a write)."""
    written: list[int] = []
    real = backends.git._packed_text

    def counted(traits: list[bytes], lines: backends.git.PackedLines) -> bytes:
        written.append(len(lines))
        return real(traits, lines)

    monkeypatch.setattr(backends.git, "_packed_text", counted)
    return written


def test_a_mirror_push_deleting_many_packed_refs_rewrites_the_file_once_as_git_leaves_it(
        make_server: Any, client: Client, tmp_path: Path, rewrites: list[int]) -> None:
    server: RunningServer = make_server("fs")
    server.backend.create("pruned", Kind.GIT)
    served, twin = server.root / "pruned.git", tmp_path / "twin.git"
    work = _work(client, tmp_path)
    client.git("push", "-q", server.git_url("pruned"), "--mirror", cwd=work)
    client.git("--git-dir", str(served), "pack-refs", "--all", "--prune")
    moved = [f"refs/heads/topic/b{i:03d}" for i in range(0, COUNT, 10)]  # loose over their packed value
    client.git("push", "-q", "-f", server.git_url("pruned"), *[f"HEAD~2:{ref}" for ref in moved], cwd=work)
    shutil.copytree(served, twin, symlinks=True)

    kept = [f"refs/heads/topic/b{i:03d}" for i in range(0, COUNT, 4)] + ["refs/tags/v001", "refs/tags/light002"]
    doomed = client.git("for-each-ref", "--format=delete %(refname)", "refs/heads/topic", "refs/tags",
                        cwd=work).stdout.splitlines()
    client.git("update-ref", "--stdin", cwd=work,
               input="".join(f"{line}\n" for line in doomed if line.split(" ")[1] not in kept).encode())
    rewrites.clear()
    client.git("push", "-q", "--mirror", "--force", server.git_url("pruned"), cwd=work)
    client.git("push", "-q", "--mirror", "--force", f"file://{twin}", cwd=work)  # git's own receive-pack

    assert len(rewrites) == 1, "packed-refs written once, not once a deleted ref"
    assert (served / "packed-refs").read_bytes() == (twin / "packed-refs").read_bytes()
    assert not [p for p in (served / "refs" / "heads").rglob("*") if p.is_file() and "topic" in str(p)
                and str(p.relative_to(served)) not in kept]
    listed = client.git("--git-dir", str(served), "show-ref", "-d").stdout
    assert listed == client.git("--git-dir", str(twin), "show-ref", "-d").stdout
    assert listed == client.git("show-ref", "-d", cwd=work).stdout
    client.git("--git-dir", str(served), "fsck", "--full")
    assert_consistent(server, client, "pruned")


def test_refs_in_the_way_are_left_to_the_usual_way(client: Client, tmp_path: Path) -> None:
    """A packed ref that moved since the push looked, one being written (its ``.lock``) and one
    whose loose file names another id stay; the rest leave the file, a packed value hidden by a
    loose file naming the id the push saw too, and then its loose file (under its lock, as git)."""
    from backends import load_backend
    from backends.interfaces import RefUpdate

    work = _work(client, tmp_path)
    root = tmp_path / "root"
    root.mkdir()
    git_dir = root / "many.git"
    client.git("clone", "-q", "--mirror", "--no-local", str(work), str(git_dir))
    client.git("--git-dir", str(git_dir), "pack-refs", "--all", "--prune")
    ids: dict[str, str] = {}
    for line in client.git("--git-dir", str(git_dir), "show-ref").stdout.splitlines():
        sha, name = line.split(" ")
        ids[name] = sha
    other = client.git("rev-parse", "HEAD", cwd=work).stdout.strip()  # b001's and b004's is HEAD~1
    heads = git_dir / "refs" / "heads" / "topic"
    heads.mkdir(parents=True, exist_ok=True)
    (heads / "b001").write_text(other + "\n")  # a loose file naming another id
    (heads / "b002").write_text(ids["refs/heads/topic/b002"] + "\n")  # naming the id the push saw
    (heads / "b003.lock").write_text(other + "\n")  # being written
    zero = "0" * 40
    names = [f"refs/heads/topic/b{i:03d}" for i in range(COUNT)]
    updates = [RefUpdate(name.encode(), ids[name].encode(), zero.encode())  # type: ignore[arg-type]
               for name in names]
    updates[4] = RefUpdate(updates[4].ref, other.encode(), zero.encode())  # type: ignore[arg-type]  # moved since
    repo = load_backend("fs", str(root)).open("many.git")

    done = repo._delete_packed(updates)  # type: ignore[union-attr]

    left = {f"refs/heads/topic/b{i:03d}".encode() for i in (1, 3, 4)}
    assert set(done) == {u.ref for u in updates} - left
    assert set(done.values()) == {None}
    assert not (git_dir / "packed-refs.lock").exists()
    packed = (git_dir / "packed-refs").read_text()
    assert "topic/b001" in packed and "topic/b003" in packed and "topic/b004" in packed
    assert "topic/b002" not in packed and "topic/b000" not in packed
    (heads / "b003.lock").unlink()
    listed = client.git("--git-dir", str(git_dir), "for-each-ref", "--format=%(refname) %(objectname)",
                        "refs/heads/topic").stdout.splitlines()
    assert not (heads / "b002").exists()
    assert listed == [f"refs/heads/topic/b001 {other}", f"refs/heads/topic/b003 {ids['refs/heads/topic/b003']}",
                      f"refs/heads/topic/b004 {ids['refs/heads/topic/b004']}"]
    client.git("--git-dir", str(git_dir), "fsck", "--full")


def test_one_deletion_goes_the_usual_way(make_server: Any, client: Client, tmp_path: Path) -> None:
    server: RunningServer = make_server("fs")
    server.backend.create("one", Kind.GIT)
    work = _work(client, tmp_path)
    client.git("push", "-q", server.git_url("one"), "--mirror", cwd=work)
    served = server.root / "one.git"
    client.git("--git-dir", str(served), "pack-refs", "--all", "--prune")
    client.git("push", "-q", server.git_url("one"), ":refs/heads/topic/b007", cwd=work)
    assert "topic/b007" not in (served / "packed-refs").read_text()
    assert "topic/b008" in (served / "packed-refs").read_text()


HOOK = """#!/bin/sh
(echo "== $*"; cat) >> "$GIT_DIR/transactions.log"
"""


def test_an_atomic_push_under_a_transaction_hook_rewrites_the_file_once(
        make_server: Any, client: Client, tmp_path: Path, rewrites: list[int]) -> None:
    """One transaction for the whole push, as git's: the hook is told the same lines as git's
    receive-pack tells it, and ``packed-refs`` is written once, as git leaves it."""
    server: RunningServer = make_server("fs")
    server.backend.create("hooked", Kind.GIT)
    served, twin = server.root / "hooked.git", tmp_path / "twin.git"
    work = _work(client, tmp_path)
    client.git("push", "-q", server.git_url("hooked"), "--mirror", cwd=work)
    client.git("--git-dir", str(served), "pack-refs", "--all", "--prune")
    shutil.copytree(served, twin, symlinks=True)
    for git_dir in (served, twin):
        (git_dir / "hooks").mkdir(exist_ok=True)
        (git_dir / "hooks" / "reference-transaction").write_text(HOOK)
        (git_dir / "hooks" / "reference-transaction").chmod(0o755)
    doomed = [f":refs/heads/topic/b{i:03d}" for i in range(0, COUNT, 2)] + [":refs/tags/v003", ":refs/tags/light004"]
    rewrites.clear()
    client.git("push", "-q", "--atomic", server.git_url("hooked"), *doomed, cwd=work)
    client.git("push", "-q", "--atomic", f"file://{twin}", *doomed, cwd=work)  # git's own receive-pack

    assert len(rewrites) == 1
    assert (served / "packed-refs").read_bytes() == (twin / "packed-refs").read_bytes()
    told, git_told = _transactions(served), _transactions(twin)  # (git's own of packed-refs left out)
    assert told == git_told
    assert [block.split("\n")[0] for block in told] == ["prepared", "committed"]
    assert_consistent(server, client, "hooked")
