"""``info/grafts`` (deprecated by git for replace refs) that takes a commit's own parent from it:
git 2.39's upload-pack applies it, sending the history it gives, and the client, which checks each
commit's own parents, refuses that pack ("did not receive expected object"; a shallow clone "remote
did not send all necessary objects"), while ``ls-remote`` and pushes are served.  hgwire passed over
the file and served the commits' own history, handing out what the operator's graft cut off.  It
now refuses such a fetch's pack, saying why and what to run (``git replace --convert-graft-file``,
after which both serve the history and its replace ref); a graft that only adds a parent changes
nothing a client sees and is served as before (git's pack has an object more, no ref reaches it)."""

from __future__ import annotations

from collections.abc import Callable

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_daemon import commit

SAYS = ("the repository's info/grafts cuts commit {cut} off from its own parents, so git would send its history "
        "cut and a clone would fail; tell the server's operator to run 'git replace --convert-graft-file' in the "
        "repository")


def test_a_graft_that_cuts_history_refuses_the_fetch_as_git_fails_it(
        make_server: Callable[..., RunningServer], client: Client) -> None:
    server = make_server("fs", git=[LOOPBACK], http=[LOOPBACK])
    work, bare = client.cwd / "work", server.root / "g.git"
    client.git("init", "-q", "-b", "main", str(work))
    first = commit(client, work, "f", "1\n", "c1")
    commit(client, work, "f", "2\n", "c2")
    third = commit(client, work, "f", "3\n", "c3")
    client.git("clone", "-q", "--bare", str(work), str(bare))
    client.git("config", "advice.graftFileDeprecated", "false", cwd=bare)
    (bare / "info" / "grafts").write_text(f"# cut at c2\n{third} {first}\n")
    for url in (f"file://{bare}", server.git_url("g")):
        tag = "git" if url.startswith("file:") else "ours"
        assert "refs/heads/main" in client.git("ls-remote", url).stdout
        for how in ((), ("--depth", "3")):  # (a pack that stops at c3 is git's too: test_git_grafts_shallow_tip)
            cloned = client.git("clone", "-q", *how, url, str(client.cwd / f"{tag}{len(how)}"), check=False)
            assert cloned.returncode != 0, (tag, how)
            if tag == "ours":
                assert SAYS.format(cut=third) in cloned.stderr, cloned.stderr
        commit(client, work, "f", f"4 {tag}\n", f"c4 {tag}")
        client.git("push", "-q", url, "main", cwd=work)  # (pushes are served)
    for version in ("0", "2"):  # (over HTTP too, both protocols)
        cloned = client.git("-c", f"protocol.version={version}", "clone", "-q", server.url("http", "g"),
                            str(client.cwd / f"http{version}"), check=False)
        assert cloned.returncode != 0 and SAYS.format(cut=third) in cloned.stderr, cloned.stderr

    client.git("replace", "--convert-graft-file", cwd=bare)  # what the message says to run
    for url in (f"file://{bare}", server.git_url("g")):
        clone = client.cwd / f"converted-{url[:3]}"
        client.git("clone", "-q", url, str(clone))
        client.git("fsck", "--full", cwd=clone)
        assert client.git("ls-remote", url, "refs/replace/*").stdout.split()[1] == f"refs/replace/{third}"
    client.git("--git-dir", str(bare), "fsck", "--full")


def test_a_graft_that_only_adds_a_parent_is_served(make_server: Callable[..., RunningServer], client: Client) -> None:
    server = make_server("fs", git=[LOOPBACK])
    work, bare = client.cwd / "work", server.root / "a.git"
    client.git("init", "-q", "-b", "main", str(work))
    first = commit(client, work, "f", "1\n", "c1")
    second = commit(client, work, "f", "2\n", "c2")
    client.git("checkout", "-q", "--orphan", "side", cwd=work)
    side = commit(client, work, "s", "s\n", "side")
    client.git("checkout", "-q", "main", cwd=work)
    client.git("clone", "-q", "--bare", str(work), str(bare))
    client.git("config", "advice.graftFileDeprecated", "false", cwd=bare)
    (bare / "info" / "grafts").write_text(f"{second} {first} {side}\n")
    for url in (f"file://{bare}", server.git_url("a")):
        clone = client.cwd / f"c-{url[:3]}"
        client.git("clone", "-q", url, str(clone))
        assert client.git("rev-list", "main", cwd=clone).stdout.split() == [second, first]
        client.git("fsck", "--full", cwd=clone)
