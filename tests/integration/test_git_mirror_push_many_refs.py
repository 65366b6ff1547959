"""Moving a repository to hgwire the usual way (``git clone --mirror old`` then ``git push --mirror
new``) names every ref of it in one push.  A mirror of a CI that tags every build holds tens of
thousands of tags: such a push was refused "more than 16384 ref updates in one push" where git's
receive-pack (git daemon, sshd, http-backend) takes it, and hgwire itself serves the clone of such a
mirror (``max_wants``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from backends.interfaces import Kind
from tests.conftest import Client, RunningServer
from tests.integration.test_git_daemon import commit

TAGS = 20_000


def test_a_mirror_push_of_20000_tags_is_taken_as_git_takes_it(
        make_server: Any, client: Client, tmp_path: Path) -> None:
    server: RunningServer = make_server("fs")
    server.backend.create("moved", Kind.GIT)
    work = tmp_path / "old"
    client.git("init", "-q", "-b", "main", str(work))
    commit(client, work, "f.txt", "one\n", "first")
    commit(client, work, "f.txt", "two\n", "second")
    lines = "".join(f"create refs/tags/build-{i:05d} HEAD~{i % 2}\n" for i in range(TAGS))
    client.git("update-ref", "--stdin", cwd=work, input=lines.encode())

    pushed = client.git("push", "--mirror", server.git_url("moved"), cwd=work, check=False, timeout=600)

    assert pushed.returncode == 0, pushed.stderr
    served = server.root / "moved.git"
    listed = client.git("--git-dir", str(served), "for-each-ref", "--format=%(refname)").stdout.split()
    assert len(listed) == TAGS + 1 and "refs/tags/build-19999" in listed
    client.git("--git-dir", str(served), "fsck", "--full")
    advertised = client.git("ls-remote", "--tags", server.git_url("moved")).stdout.splitlines()
    assert len(advertised) == TAGS
