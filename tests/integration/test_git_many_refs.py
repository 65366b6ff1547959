"""A push that creates many refs at once (a migration's branches and tags) writes them into
``packed-refs`` together (``DulwichGitRepository._create_packed``): one file written and fsynced,
not a file each (40,000 refs took 100 s).  What git reads there must be what it would have
written itself: the refs, what each tag peels to, the file's traits; refs already there (loose or
packed) are kept; a ref that is in the way still gets git's answer."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from backends.git import PACKED_CREATIONS_MIN, _packed_lines, _packed_text
from backends.interfaces import Kind
from tests.conftest import Client, RunningServer
from tests.integration.test_git_daemon import assert_consistent, commit

COUNT = PACKED_CREATIONS_MIN + 36


def _work(client: Client, tmp_path: Path) -> Path:
    """A history of five commits with ``COUNT`` branches and annotated tags (of commits, a tag of a
    tag, a tag of a blob, a tag of a tree) and lightweight ones."""
    work = tmp_path / "w"
    client.git("init", "-q", "-b", "main", str(work))
    for n in range(5):
        commit(client, work, f"f{n}.txt", f"{n}\n", f"commit {n}")
    lines = []
    for i in range(COUNT):
        lines.append(f"create refs/heads/topic/b{i:04d} HEAD~{i % 5}\n")
    client.git("update-ref", "--stdin", cwd=work, input="".join(lines).encode())
    for i in range(COUNT // 4):
        client.git("tag", "-a", "-m", f"release {i}", f"v{i}", f"HEAD~{i % 5}", cwd=work)
        client.git("tag", f"light{i}", f"HEAD~{i % 5}", cwd=work)
    client.git("tag", "-a", "-m", "a tag of a tag", "v0-blessed", "v0", cwd=work)
    client.git("tag", "-a", "-m", "a tag of a blob", "blob-tag", "HEAD:f0.txt", cwd=work)
    client.git("tag", "-a", "-m", "a tag of a tree", "tree-tag", "HEAD^{tree}", cwd=work)
    return work


def _entries(git_dir: Path) -> dict[str, tuple[str, str | None]]:
    """``packed-refs`` as git wrote or would read it: name -> (id, peeled)."""
    found: dict[str, tuple[str, str | None]] = {}
    last = None
    for line in (git_dir / "packed-refs").read_text().splitlines():
        if line.startswith("#"):
            continue
        if line.startswith("^"):
            assert last is not None
            found[last] = (found[last][0], line[1:])
        else:
            sha, last = line.split(" ")
            found[last] = (sha, None)
    return found


def _header(git_dir: Path) -> str:
    return (git_dir / "packed-refs").read_text().splitlines()[0]


def test_a_push_creating_many_refs_writes_them_packed_as_git_would(
        make_server: Any, client: Client, tmp_path: Path) -> None:
    server: RunningServer = make_server("fs")
    server.backend.create("many", Kind.GIT)
    work = _work(client, tmp_path)
    client.git("push", "-q", server.git_url("many"), "refs/heads/*:refs/heads/*", "refs/tags/*:refs/tags/*",
               cwd=work)
    git_dir = server.root / "many.git"
    loose = [p.relative_to(git_dir).as_posix() for p in (git_dir / "refs").rglob("*") if p.is_file()]
    assert loose == ["refs/heads/main"], "no ref written loose but HEAD's branch (under HEAD.lock, as git)"
    assert _header(git_dir) == "# pack-refs with: peeled fully-peeled sorted "
    assert client.git("--git-dir", str(git_dir), "show-ref", "-d").stdout == \
        client.git("show-ref", "-d", cwd=work).stdout
    repacked = tmp_path / "by-git.git"  # git's own pack-refs of the same refs: the same entries and peels
    shutil.copytree(git_dir, repacked)
    (repacked / "packed-refs").unlink()
    for ref_line in client.git("show-ref", cwd=work).stdout.splitlines():
        sha, name = ref_line.split(" ")
        client.git("--git-dir", str(repacked), "update-ref", name, sha)
    client.git("--git-dir", str(repacked), "pack-refs", "--all", "--prune")
    theirs = _entries(repacked)
    assert _entries(git_dir) == {n: e for n, e in theirs.items() if n != "refs/heads/main"}
    assert theirs["refs/heads/main"] == ((git_dir / "refs/heads/main").read_text().strip(), None)
    remote = client.git("ls-remote", server.git_url("many")).stdout
    assert "refs/tags/v0-blessed^{}" in remote and "refs/tags/blob-tag^{}" in remote
    assert_consistent(server, client, "many")


def test_refs_already_there_are_kept_and_a_ref_in_the_way_gets_git_s_answer(
        make_server: Any, client: Client, tmp_path: Path) -> None:
    server: RunningServer = make_server("fs")
    server.backend.create("many", Kind.GIT)
    work = _work(client, tmp_path)
    url = server.git_url("many")
    client.git("push", "-q", url, "main", "refs/tags/v1", cwd=work)  # loose
    git_dir = server.root / "many.git"
    client.git("--git-dir", str(git_dir), "pack-refs", "--all")  # git's file, its traits
    client.git("push", "-q", url, "refs/tags/v2", cwd=work)  # a loose one beside it
    before = _header(git_dir)
    done = client.git("push", "--porcelain", url, "refs/heads/*:refs/heads/*", "refs/tags/*:refs/tags/*",
                      cwd=work)
    theirs = client.git("show-ref", "-d", cwd=work).stdout
    assert done.stdout.count("*\t") == len(client.git("show-ref", cwd=work).stdout.splitlines()) - 3
    assert _header(git_dir) == before == "# pack-refs with: peeled fully-peeled sorted "
    assert (git_dir / "refs" / "tags" / "v2").is_file(), "the loose ref stays as it was"
    assert client.git("--git-dir", str(git_dir), "show-ref", "-d").stdout == theirs
    assert_consistent(server, client, "many")


def test_a_ref_that_appears_meanwhile_is_left_to_the_usual_way(client: Client, tmp_path: Path) -> None:
    """Created by someone else between the checks and the write (loose, or being written: its
    ``.lock``): not packed over; the others are."""
    from backends import load_backend
    from backends.interfaces import RefUpdate

    work = _work(client, tmp_path)
    root = tmp_path / "root"
    root.mkdir()
    git_dir = root / "many.git"
    client.git("clone", "-q", "--bare", "--no-local", str(work), str(git_dir))
    for path in (git_dir / "refs").rglob("*"):
        if path.is_file():
            path.unlink()
    (git_dir / "packed-refs").unlink()
    head = client.git("rev-parse", "HEAD", cwd=work).stdout.strip()
    other = client.git("rev-parse", "HEAD~1", cwd=work).stdout.strip()
    client.git("--git-dir", str(git_dir), "update-ref", "refs/heads/n0003", other)  # appeared meanwhile
    (git_dir / "refs" / "heads" / "n0005.lock").write_text(other + "\n")  # being written
    repo = load_backend("fs", str(root)).open("many.git")
    zero = "0" * 40
    updates = [RefUpdate(f"refs/heads/n{i:04d}".encode(), zero.encode(), head.encode())  # type: ignore[arg-type]
               for i in range(COUNT)]
    made = repo._create_packed(updates)  # type: ignore[union-attr]
    assert set(made) == {u.ref for u in updates} - {b"refs/heads/n0003", b"refs/heads/n0005"}
    assert set(made.values()) == {None}
    assert client.git("--git-dir", str(git_dir), "rev-parse", "refs/heads/n0003").stdout.strip() == other
    assert (git_dir / "refs" / "heads" / "n0005.lock").read_text() == other + "\n"
    assert not (git_dir / "packed-refs.lock").exists()
    (git_dir / "refs" / "heads" / "n0005.lock").unlink()
    listed = client.git("--git-dir", str(git_dir), "for-each-ref", "--format=%(refname) %(objectname)").stdout
    assert len(listed.splitlines()) == COUNT - 1  # n0005 is nobody's yet


def test_a_few_refs_are_written_loose_as_before(make_server: Any, client: Client, tmp_path: Path) -> None:
    server: RunningServer = make_server("fs")
    server.backend.create("few", Kind.GIT)
    work = _work(client, tmp_path)
    names = [f"refs/heads/topic/b{i:04d}" for i in range(PACKED_CREATIONS_MIN - 1)]
    client.git("push", "-q", server.git_url("few"), *names, cwd=work)
    git_dir = server.root / "few.git"
    assert not (git_dir / "packed-refs").exists()
    assert len([p for p in (git_dir / "refs" / "heads").rglob("*") if p.is_file()]) == len(names)


@pytest.mark.parametrize("first", [None, "# pack-refs with: peeled \n", "", "# pack-refs with: fully-peeled \n"])
def test_the_file_keeps_its_traits_and_entries(first: str | None, tmp_path: Path) -> None:
    zero, one, two = "0" * 39 + "1", "0" * 39 + "2", "0" * 39 + "3"
    data = None if first is None else (first + f"{one} refs/tags/old\n^{two}\n{two} refs/heads/z\n").encode()
    kept_traits, packed = _packed_lines(data)
    packed.update({b"refs/heads/a": (zero.encode(), None), b"refs/tags/new": (one.encode(), two.encode())})
    written = _packed_text(kept_traits, packed)
    lines = written.decode().splitlines()
    traits = {None: "peeled fully-peeled", "# pack-refs with: peeled \n": "peeled", "": "",
              "# pack-refs with: fully-peeled \n": "fully-peeled"}[first]
    assert lines[0] == f"# pack-refs with: {traits + ' ' if traits else ''}sorted "
    expected = [f"{zero} refs/heads/a"]
    if first is not None:
        expected.append(f"{two} refs/heads/z")
    expected += [f"{one} refs/tags/new", f"^{two}"]
    if first is not None:
        expected += [f"{one} refs/tags/old", f"^{two}"]
    assert lines[1:] == expected
    git_dir = tmp_path / "r.git"  # and git reads it so
    subprocess.run(["git", "init", "-q", "--bare", str(git_dir)], check=True)
    (git_dir / "packed-refs").write_bytes(written)
    listed = subprocess.run(["git", "--git-dir", str(git_dir), "for-each-ref", "--format=%(refname)"],
                            capture_output=True, text=True, check=True).stdout.split()
    assert listed == sorted(name for name in ("refs/heads/a", "refs/heads/z", "refs/tags/new", "refs/tags/old")
                            if first is not None or name in ("refs/heads/a", "refs/tags/new"))
