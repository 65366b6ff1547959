"""Forks that borrow their history (``objects/info/alternates``, as ``git clone --shared`` makes
them, as hosts keep forks): the borrowed loose objects are read in the fork's own object format
and as stored when dulwich cannot parse them, and a loop of alternates is followed as git follows
it (each store once), not until Python gives up."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_daemon import commit
from tests.integration.test_git_odd_objects import _odd_history


def _files(repo: Path) -> dict[str, bytes]:
    return {p.relative_to(repo).as_posix(): p.read_bytes() for p in sorted(repo.rglob("*")) if p.is_file()}


def test_a_sha256_fork_borrowing_loose_objects_is_served(make_server: Callable[..., RunningServer],
                                                        client: Client) -> None:
    server = make_server("fs", git=[LOOPBACK])
    base, fork = server.root / "base.git", server.root / "fork.git"
    client.git("init", "-q", "--bare", "--object-format=sha256", str(base))
    work = client.cwd / "work"
    client.git("init", "-q", "--object-format=sha256", "-b", "main", str(work))
    for step in range(3):
        commit(client, work, f"f{step}.txt", f"{step}\n", f"step {step}")
    client.git("push", "-q", str(base), "main", cwd=work)  # fewer than 100 objects: git stores them loose
    assert not list((base / "objects" / "pack").glob("*.pack"))
    client.git("--git-dir", str(base), "symbolic-ref", "HEAD", "refs/heads/main")
    client.git("clone", "-q", "--bare", "--shared", str(base), str(fork))
    base_before = _files(base)
    url = server.git_url("fork")
    tip = client.git("rev-parse", "main", cwd=work).stdout.strip()
    assert len(tip) == 64
    assert client.git("ls-remote", url, "refs/heads/main").stdout.split() == [tip, "refs/heads/main"]
    copy = client.cwd / "copy"
    client.git("clone", "-q", url, str(copy))
    assert (copy / "f2.txt").read_text() == "2\n"
    commit(client, copy, "own.txt", "own\n", "the fork's own commit")
    client.git("push", "-q", "origin", "HEAD:main", cwd=copy)
    client.git("fetch", "-q", url, "main", cwd=work)
    assert client.git("rev-parse", "FETCH_HEAD", cwd=work).stdout.strip() == client.git(
        "rev-parse", "HEAD", cwd=copy).stdout.strip()
    client.git("--git-dir", str(fork), "fsck", "--full")
    assert _files(base) == base_before  # the base is only read


def test_a_fork_borrowing_loose_objects_dulwich_cannot_parse_is_served(
        make_server: Callable[..., RunningServer], client: Client) -> None:
    server = make_server("fs", git=[LOOPBACK])
    base, fork = server.root / "old.git", server.root / "fork.git"
    ids = _odd_history(client, base)  # loose commits with committer dates git's fsck faults
    client.git("clone", "-q", "--bare", "--shared", str(base), str(fork))
    url = server.git_url("fork")
    assert client.git("ls-remote", url, "refs/heads/main").stdout.split() == [ids[-1], "refs/heads/main"]
    client.git("clone", "-q", "--bare", url, "whole.git")
    assert client.git("--git-dir", "whole.git", "rev-list", "main").stdout.split() == ids[::-1]


def test_alternates_in_a_loop_are_followed_once(make_server: Callable[..., RunningServer], client: Client) -> None:
    server = make_server("fs", git=[LOOPBACK])
    one, two = server.root / "one.git", server.root / "two.git"
    work = client.cwd / "work"
    client.git("init", "-q", "-b", "main", str(work))
    commit(client, work, "a.txt", "a\n", "first")
    client.git("init", "-q", "--bare", str(one))
    client.git("push", "-q", str(one), "main", cwd=work)
    client.git("clone", "-q", "--bare", "--shared", str(one), str(two))
    (one / "objects" / "info" / "alternates").write_text(f"{two / 'objects'}\n")  # one borrows from two too
    for name in ("one", "two"):
        client.git("clone", "-q", server.git_url(name), str(client.cwd / f"{name}-copy"))
        assert (client.cwd / f"{name}-copy" / "a.txt").read_text() == "a\n"
        missing = client.git("--git-dir", str(server.root / f"{name}.git"), "cat-file", "-e",
                             "HEAD:nothing.txt", check=False)
        assert missing.returncode != 0
    copy = client.cwd / "one-copy"
    commit(client, copy, "b.txt", "b\n", "second")
    client.git("push", "-q", "origin", "HEAD:main", cwd=copy)
    client.git("--git-dir", str(one), "fsck", "--full")
