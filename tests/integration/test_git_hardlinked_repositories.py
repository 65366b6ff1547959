"""A push into a bare git repository copied with ``cp -al`` (every file hardlinked to the other's)
leaves the other repository as it was, with the real git client: ref updates, ``packed-refs``
and objects are written to new files renamed into place, never into an existing file."""

from __future__ import annotations

from collections.abc import Callable

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_daemon import commit
from tests.integration.test_git_forks import _files


def test_a_push_leaves_the_hardlinked_copy_as_it_was(make_server: Callable[..., RunningServer],
                                                      client: Client) -> None:
    server = make_server("fs", git=[LOOPBACK])
    a, b = server.root / "gA.git", server.root / "gB.git"
    client.git("init", "-q", "--bare", str(a))
    work = client.cwd / "work"
    client.git("init", "-q", "-b", "main", str(work))
    for step in range(3):
        commit(client, work, f"f{step}.txt", f"{step}\n", f"step {step}")
    client.git("branch", "packed", cwd=work)
    client.git("push", "-q", str(a), "main", "packed", cwd=work)
    client.git("--git-dir", str(a), "pack-refs", "--all")  # packed-refs, then one loose ref beside it
    client.git("push", "-q", str(a), "HEAD~1:refs/heads/loose", cwd=work)
    client.git("--git-dir", str(a), "repack", "-q", "-d")  # a pack beside loose objects
    commit(client, work, "f3.txt", "3\n", "step 3")
    client.git("push", "-q", str(a), "main", cwd=work)
    client.run("cp", "-al", a, b)
    before = _files(b)

    commit(client, work, "new.txt", "new\n", "pushed through hgwire")
    client.git("push", "-q", server.git_url("gA"), "main", "main:packed", "main:loose", "main:created", cwd=work)
    client.git("push", "-q", server.git_url("gA"), ":packed", cwd=work)  # a deletion rewrites packed-refs

    assert _files(b) == before
    for repo in (a, b):
        client.git("--git-dir", str(repo), "fsck", "--full", "--strict")
    tip = client.git("rev-parse", "main", cwd=work).stdout.strip()
    assert client.git("--git-dir", str(a), "rev-parse", "main", "loose", "created").stdout.split() == [tip] * 3
    assert "packed" not in client.git("--git-dir", str(a), "for-each-ref", "--format=%(refname)").stdout
    assert client.git("--git-dir", str(b), "for-each-ref", "--format=%(refname)").stdout.split() == [
        "refs/heads/loose", "refs/heads/main", "refs/heads/packed"]
