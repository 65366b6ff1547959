"""Repositories an old git made, served as git serves them: packs with version-1 indexes (git
wrote them until 1.5.2, and writes them with ``pack.indexVersion = 1``: a push into one was "the
pushed pack is invalid: … not a version-2 pack index"), and a ``HEAD`` (or any ref) that is a
symbolic link to ``refs/…`` (git before 1.4.4, ``core.preferSymlinkRefs``: such a repository was
"not a git or Mercurial repository" once its branch was packed)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from backends.git_packindex import read_index
from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_daemon import commit


def _history(client: Client, work: Path, n: int) -> None:
    for step in range(n):
        commit(client, work, f"f{step % 7}.txt", f"{step}\n" * (step + 1), f"step {step}")


def _served_history(make_server: Callable[..., RunningServer], client: Client, name: str, commits: int,
                    *refspecs: str) -> tuple[RunningServer, Path]:
    """A server whose bare repository ``NAME.git`` holds a history of ``commits`` pushed as ``refspecs``."""
    server = make_server("fs", git=[LOOPBACK], http=[LOOPBACK])
    repo = server.root / f"{name}.git"
    work = client.cwd / "work"
    client.git("init", "-q", "-b", "main", str(work))
    _history(client, work, commits)
    client.git("init", "-q", "--bare", str(repo))
    client.git("push", "-q", str(repo), *refspecs, cwd=work)
    return server, repo


def test_a_version_1_index_reads_as_its_version_2_twin(client: Client, tmp_path: Path) -> None:
    work = tmp_path / "work"
    client.git("init", "-q", "-b", "main", str(work))
    _history(client, work, 30)
    client.git("repack", "-q", "-a", "-d", cwd=work)
    (pack,) = (work / ".git" / "objects" / "pack").glob("*.pack")
    v2 = read_index(str(pack.with_suffix(".idx")), str(pack))
    v1_path = tmp_path / "v1.idx"
    client.git("index-pack", "--index-version=1", "-o", str(v1_path), str(pack))
    assert v1_path.read_bytes()[:4] != b"\377tOc"
    v1 = read_index(str(v1_path), str(pack))
    assert (v1.names, list(v1.offsets), list(v1.idx_to_pos), v1.checksum) == (
        v2.names, list(v2.offsets), list(v2.idx_to_pos), v2.checksum)
    assert len(v1) > 30  # commits, trees and blobs


def test_a_repository_of_version_1_indexes_is_served(make_server: Callable[..., RunningServer],
                                                     client: Client) -> None:
    server, repo = _served_history(make_server, client, "old", 30, "main")
    client.git("--git-dir", str(repo), "-c", "pack.indexVersion=1", "repack", "-q", "-a", "-d")
    (idx,) = (repo / "objects" / "pack").glob("*.idx")
    assert idx.read_bytes()[:4] != b"\377tOc"
    url = server.git_url("old")
    copy = client.cwd / "copy"
    client.git("clone", "-q", url, str(copy))
    shallow = client.cwd / "shallow"
    client.git("clone", "-q", "--depth=2", server.url("http", "old"), str(shallow))
    commit(client, copy, "new.txt", "new\n", "after")
    client.git("push", "-q", url, "HEAD:main", cwd=copy)
    client.git("fetch", "-q", "origin", cwd=shallow)
    assert client.git("rev-parse", "origin/main", cwd=shallow).stdout == client.git("rev-parse", "HEAD",
                                                                                     cwd=copy).stdout
    client.git("--git-dir", str(repo), "fsck", "--full")


def test_a_head_linked_to_its_branch_is_served_as_git_serves_it(make_server: Callable[..., RunningServer],
                                                                client: Client) -> None:
    server, repo = _served_history(make_server, client, "linked", 3, "main", "main:refs/heads/topic")
    client.git("--git-dir", str(repo), "pack-refs", "--all")  # the branch the link names is packed
    (repo / "HEAD").unlink()
    os.symlink("refs/heads/main", repo / "HEAD")
    os.symlink("refs/heads/topic", repo / "refs" / "heads" / "alias")  # a linked ref besides
    url = server.git_url("linked")
    for version in ("0", "2"):
        served = client.git("-c", f"protocol.version={version}", "ls-remote", "--symref", url).stdout
        by_git = client.git("-c", f"protocol.version={version}", "ls-remote", "--symref", f"file://{repo}").stdout
        assert served == by_git, version
    assert "ref: refs/heads/main\tHEAD" in served
    copy = client.cwd / "copy"
    client.git("clone", "-q", url, str(copy))
    assert client.git("symbolic-ref", "HEAD", cwd=copy).stdout.strip() == "refs/heads/main"
    commit(client, copy, "new.txt", "new\n", "after")
    client.git("push", "-q", url, "HEAD:main", cwd=copy)
    assert client.git("--git-dir", str(repo), "rev-parse", "HEAD").stdout == client.git(
        "rev-parse", "HEAD", cwd=copy).stdout
    assert (repo / "HEAD").is_symlink()  # a push to the branch leaves the link as it was
    client.git("--git-dir", str(repo), "fsck", "--full")


@pytest.mark.parametrize("target", ["../../outside", "/etc/passwd", "objects", "refs/../../../etc/passwd"])
def test_a_head_linked_elsewhere_makes_no_repository(make_server: Callable[..., RunningServer],
                                                     client: Client, target: str) -> None:
    server = make_server("fs", git=[LOOPBACK])
    repo = server.root / "odd.git"
    client.git("init", "-q", "--bare", str(repo))
    (repo / "HEAD").unlink()
    os.symlink(target, repo / "HEAD")
    if not target.startswith("refs/"):  # (git takes a link into refs/ whatever follows, and reads through it)
        assert client.git("--git-dir", str(repo), "rev-parse", "--git-dir", check=False).returncode != 0
    refused = client.git("ls-remote", server.git_url("odd"), check=False)
    assert refused.returncode != 0 and "is not a git or Mercurial repository" in refused.stderr


def test_a_head_linked_to_a_branch_never_pushed_is_repaired_by_the_first_push(
        make_server: Callable[..., RunningServer], client: Client) -> None:
    """As a ``HEAD`` file naming a missing branch: the first push points it at the pushed branch."""
    server = make_server("fs", git=[LOOPBACK])
    repo = server.root / "fresh.git"
    client.git("init", "-q", "--bare", str(repo))
    (repo / "HEAD").unlink()
    os.symlink("refs/heads/unborn", repo / "HEAD")
    work = client.cwd / "work"
    client.git("init", "-q", "-b", "main", str(work))
    _history(client, work, 2)
    client.git("push", "-q", server.git_url("fresh"), "main", cwd=work)
    served = client.git("ls-remote", "--symref", server.git_url("fresh"), "HEAD").stdout
    assert served.startswith("ref: refs/heads/main\tHEAD\n"), served
    assert client.git("--git-dir", str(repo), "symbolic-ref", "HEAD").stdout.strip() == "refs/heads/main"


def test_a_working_tree_whose_git_directory_is_elsewhere_is_refused_saying_so(
        make_server: Callable[..., RunningServer], client: Client) -> None:
    """``git clone --separate-git-dir`` leaves a ``.git`` file (``gitdir: …``) in the working tree,
    which git daemon follows; hgwire serves no such pointer (it may lead out of the root, or into
    another repository under another name), and said only "sep is not a git or Mercurial
    repository" of it, a 404 over HTTP: each transport now says what it is and what to do."""
    server = make_server("fs", git=[LOOPBACK], http=[LOOPBACK])
    work = client.cwd / "work"
    client.git("init", "-q", "-b", "main", str(work))
    _history(client, work, 2)
    (server.root / "gitdirs").mkdir()
    client.git("clone", "-q", "--separate-git-dir", str(server.root / "gitdirs" / "sep.git"), str(work),
               str(server.root / "sep"))
    assert (server.root / "sep" / ".git").read_text().startswith("gitdir: ")
    for url in (server.git_url("sep"), server.url("http", "sep")):
        refused = client.git("ls-remote", url, check=False)
        assert refused.returncode != 0
        assert ("a working tree whose git directory lies elsewhere" in refused.stderr
                and "serve the git directory it names instead" in refused.stderr), refused.stderr
    assert client.git("ls-remote", server.git_url("gitdirs/sep.git")).stdout  # the directory it names is served


def test_a_repository_with_a_commented_grafts_file_is_served(make_server: Callable[..., RunningServer],
                                                              client: Client) -> None:
    """``info/grafts`` (what git before replace refs read to join or cut a history) with a comment,
    a blank line or a line git skips as bad: git serves the repository, and clones get the history
    as stored; hgwire refused every request to it ("the repository holds an object the server
    cannot read (Invalid graftpoint b'#')", a 500 over HTTP).  (A graft that cuts a commit off from
    its parents fails git's clones: test_git_grafts_cut.py.)"""
    server, repo = _served_history(make_server, client, "grafted", 3, "main")
    ids = client.git("--git-dir", str(repo), "rev-list", "main").stdout.split()
    (repo / "info").mkdir(exist_ok=True)
    (repo / "info" / "grafts").write_text(f"# history before this was cut\n\n{ids[1]} {ids[2]}\nnot-an-id {ids[0]}\n")
    for url in (server.git_url("grafted"), server.url("http", "grafted")):
        served = client.git("ls-remote", url).stdout
        assert served == client.git("ls-remote", f"file://{repo}").stdout
        copy = client.cwd / f"copy-{url[:3]}"
        client.git("clone", "-q", url, str(copy))
        assert client.git("rev-list", "--count", "main", cwd=copy).stdout.strip() == "3"  # as stored


def test_empty_directories_where_a_pushed_ref_goes_are_removed_as_git_removes_them(
        make_server: Callable[..., RunningServer], client: Client) -> None:
    """Directories under ``refs/`` emptied by another tool (an ``rm`` of loose refs, a tool that
    leaves the directories of the refs it deletes): git's receive-pack removes the empty ones in a
    pushed ref's way.  hgwire refused such a push, for ever, with "another push created it
    meanwhile; fetch and push again" (and a packed branch with a directory at its loose file's
    place could not be moved: "Is a directory")."""
    server, repo = _served_history(make_server, client, "emptied", 2, "main", "main:refs/heads/old")
    client.git("--git-dir", str(repo), "pack-refs", "--all")
    for empty in ("topic", "nest/deeper/deepest", "old"):
        (repo / "refs" / "heads" / empty).mkdir(parents=True)
    work = client.cwd / "work"
    commit(client, work, "new.txt", "new\n", "after")
    url = server.git_url("emptied")
    pushed = client.git("push", url, "HEAD:refs/heads/topic", "HEAD:refs/heads/nest", "HEAD:refs/heads/old",
                        cwd=work, check=False)
    assert pushed.returncode == 0, pushed.stderr
    head = client.git("rev-parse", "HEAD", cwd=work).stdout.strip()
    for name in ("topic", "nest", "old"):
        assert client.git("--git-dir", str(repo), "rev-parse", f"refs/heads/{name}").stdout.strip() == head
    client.git("--git-dir", str(repo), "fsck", "--full")
