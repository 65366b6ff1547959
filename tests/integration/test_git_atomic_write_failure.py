"""``git push --atomic`` where one ref cannot be written once the others were (a name too long for
the file system, a full disk): git's receive-pack makes none of them ("atomic transaction
failed" for each); hgwire made the others and refused only that one."""

from __future__ import annotations

from collections.abc import Callable

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_damaged_repository import bare_with_a_commit


def test_an_atomic_push_whose_ref_cannot_be_written_makes_none(make_server: Callable[..., RunningServer],
                                                               client: Client) -> None:
    server = make_server("fs", git=[LOOPBACK])
    bare, work = bare_with_a_commit(client, server.root, "atomic.git")
    before = client.git("--git-dir", str(bare), "for-each-ref").stdout
    client.git("commit", "-q", "--allow-empty", "-m", "b", cwd=work)
    long_name = "refs/heads/" + "x" * 1000  # (a valid ref name; no file system takes it: NAME_MAX is 255)
    pushed = client.git("push", "--atomic", server.git_url("atomic"), "main", "main:refs/heads/side",
                        f"main:{long_name}", cwd=work, check=False)
    assert pushed.returncode != 0
    rejected = [line for line in pushed.stderr.splitlines() if "[remote rejected]" in line]
    assert len(rejected) == 3 and all(line.endswith("(atomic transaction failed)") for line in rejected), \
        pushed.stderr
    assert client.git("--git-dir", str(bare), "for-each-ref").stdout == before  # main did not move, side is not there
    client.git("--git-dir", str(bare), "fsck", "--full")
    client.git("push", "-q", "--atomic", server.git_url("atomic"), "main", "main:refs/heads/side", cwd=work)
    assert len(client.git("--git-dir", str(bare), "for-each-ref").stdout.splitlines()) == 2
