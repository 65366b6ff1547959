"""A push that deletes packed refs leaves ``packed-refs`` byte for byte as git's receive-pack
leaves it, with the real git client: git's first line (``# pack-refs with: peeled fully-peeled
sorted``; the deletion wrote ``# pack-refs with: peeled``, so every reader peeled each packed ref
again), the remaining refs and the lines that peel them."""

from __future__ import annotations

import shutil
from collections.abc import Callable

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_daemon import commit


def test_deleting_packed_refs_leaves_packed_refs_as_git_does(make_server: Callable[..., RunningServer],
                                                              client: Client) -> None:
    server = make_server("fs", git=[LOOPBACK])
    served, twin = server.root / "packed.git", client.cwd / "twin.git"
    work = client.cwd / "work"
    client.git("init", "-q", "-b", "main", str(work))
    commit(client, work, "a.txt", "a\n", "first")
    for branch in ("gone", "twice", "kept", "z/last"):
        client.git("branch", branch, cwd=work)
    client.git("tag", "-a", "-m", "annotated", "v1", cwd=work)
    client.git("tag", "light", cwd=work)
    client.git("init", "-q", "--bare", str(served))
    client.git("push", "-q", str(served), "--all", cwd=work)
    client.git("push", "-q", str(served), "--tags", cwd=work)
    client.git("--git-dir", str(served), "pack-refs", "--all")
    commit(client, work, "b.txt", "b\n", "second")
    client.git("push", "-q", str(served), "HEAD:refs/heads/twice", cwd=work)  # loose over its packed value
    shutil.copytree(served, twin, symlinks=True)
    for repo in (served, twin):
        client.git("--git-dir", str(repo), "config", "receive.denyDeleteCurrent", "ignore")

    for deletion in ([":gone"], [":twice", ":refs/tags/v1"], [":main", ":kept", ":z/last", ":light"]):
        client.git("push", "-q", server.git_url("packed"), *deletion, cwd=work)
        client.git("push", "-q", f"file://{twin}", *deletion, cwd=work)  # git's own receive-pack
        assert (served / "packed-refs").read_bytes() == (twin / "packed-refs").read_bytes(), deletion
        client.git("--git-dir", str(served), "fsck", "--full")
    assert not (served / "refs" / "heads" / "twice").exists()
    assert (served / "packed-refs").read_bytes() == b"# pack-refs with: peeled fully-peeled sorted \n"


def test_a_file_that_says_less_is_not_made_to_say_more(make_server: Callable[..., RunningServer],
                                                       client: Client) -> None:
    """A ``packed-refs`` without ``fully-peeled`` (another tool's) keeps its traits: a ref with no
    ``^`` line there may be an annotated tag, which the file then does not peel."""
    server = make_server("fs", git=[LOOPBACK])
    served = server.root / "less.git"
    work = client.cwd / "work"
    client.git("init", "-q", "-b", "main", str(work))
    tip = commit(client, work, "a.txt", "a\n", "first")
    client.git("init", "-q", "--bare", str(served))
    client.git("push", "-q", str(served), "main", "main:gone", cwd=work)
    (served / "refs" / "heads" / "gone").unlink()
    (served / "packed-refs").write_text(f"# pack-refs with: peeled \n{tip} refs/heads/gone\n")
    client.git("push", "-q", server.git_url("less"), ":gone", cwd=work)
    assert (served / "packed-refs").read_text() == "# pack-refs with: peeled sorted \n"
    client.git("--git-dir", str(served), "fsck", "--full")
