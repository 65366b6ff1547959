"""Replace refs (``git replace A B``, ``git replace --graft``) pushed as ``refs/replace/*``: a git
repository's log, graph and commit pages show the history ``git log`` in the repository shows, and
gitweb, each replaced commit under its own id with its replacement's message, tree and parents;
with ``core.useReplaceRefs = false`` the history as it is."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import BACKENDS, LOOPBACK, Client, RunningServer
from tests.integration.test_hg_http import raw


def _commit(client: Client, work: Path, text: str, when: int) -> str:
    (work / "f").write_text(text)
    client.git("add", "f", cwd=work)
    stamp = {"GIT_AUTHOR_DATE": f"{when} +0000", "GIT_COMMITTER_DATE": f"{when} +0000"}
    client.git("commit", "-q", "-m", f"commit {text}", cwd=work, env=stamp)
    return client.git("rev-parse", "HEAD", cwd=work).stdout.strip()


def _shortlog(port: int) -> list[tuple[str, str, list[str]]]:
    changesets = json.loads(raw(port, "GET", "/r.git/json-shortlog").body)["changesets"]
    return [(c["node"], c["desc"].strip(), c["parents"]) for c in changesets]


def _git_log(client: Client, *args: str) -> list[tuple[str, str, list[str]]]:
    out = client.git(*args, "log", "--format=%H%x00%s%x00%P", "main").stdout
    return [(node, subject, parents.split()) for node, subject, parents in
            (line.split("\0") for line in out.splitlines())]


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_log_follows_replaced_commits_as_git_log_does(make_server: Callable[..., RunningServer],
                                                          client: Client, backend: str) -> None:
    """The pages read every commit as it is stored: a graft pushed to join a history to its
    past, or a commit's message corrected by a replacement, showed nowhere."""
    server = make_server(backend, git=[LOOPBACK], http=[LOOPBACK], create_on_push=True)
    work = client.cwd / "work"
    client.git("init", "-q", "-b", "main", str(work))
    first = _commit(client, work, "1", 1_700_000_001)
    second = _commit(client, work, "2", 1_700_000_002)
    _commit(client, work, "3", 1_700_000_003)
    fourth = _commit(client, work, "4", 1_700_000_004)
    client.git("replace", "--graft", fourth, first, cwd=work)  # 4's parent is 1: 2 and 3 are left out
    client.git("checkout", "-q", "--orphan", "fix", cwd=work)
    better = _commit(client, work, "1, corrected", 1_700_000_000)
    client.git("checkout", "-q", "main", cwd=work)
    client.git("replace", first, better, cwd=work)
    url = f"git://127.0.0.1:{server.port('git')}/r.git"
    client.git("push", "-q", url, "main", "refs/replace/*:refs/replace/*", cwd=work)
    port = server.port("http")

    expected = _git_log(client, "-C", str(work))
    assert [e[0] for e in expected] == [fourth, first] and expected[1][1] == "commit 1, corrected"
    assert _shortlog(port) == expected
    rev = json.loads(raw(port, "GET", f"/r.git/json-rev/{first}").body)
    assert (rev["node"], rev["desc"].strip()) == (first, "commit 1, corrected")
    assert raw(port, "GET", f"/r.git/raw-file/{first}/f").body == b"1, corrected"
    assert raw(port, "GET", f"/r.git/raw-file/{second}/f").body == b"2"  # still there, by its id
    graph = json.loads(raw(port, "GET", "/r.git/json-graph").body)["changesets"]
    assert [c["node"] for c in graph] == [fourth, first]
    if backend == "fs":  # as git log in the repository on the server shows it
        bare = server.root / "r.git"
        assert _shortlog(port) == _git_log(client, "--git-dir", str(bare))
        subprocess.run(["git", "--git-dir", str(bare), "config", "core.useReplaceRefs", "false"], check=True)
        plain = _git_log(client, "--git-dir", str(bare))
        assert len(plain) == 4 and _shortlog(port) == plain


def test_the_log_follows_an_info_grafts_file_as_git_log_does(make_server: Callable[..., RunningServer],
                                                             client: Client) -> None:
    """``info/grafts``, which older tools wrote to join a history to its past or to cut it (git
    reads it still, as gitweb does, whatever ``core.useReplaceRefs`` says): the pages read every
    commit as stored, where ``git log`` in the repository shows the grafted history."""
    server = make_server("fs", git=[LOOPBACK], http=[LOOPBACK], create_on_push=True)
    work = client.cwd / "work"
    client.git("init", "-q", "-b", "main", str(work))
    first = _commit(client, work, "1", 1_700_000_001)
    _commit(client, work, "2", 1_700_000_002)
    third = _commit(client, work, "3", 1_700_000_003)
    fourth = _commit(client, work, "4", 1_700_000_004)
    url = f"git://127.0.0.1:{server.port('git')}/r.git"
    client.git("push", "-q", url, "main", cwd=work)
    bare = server.root / "r.git"
    (bare / "info").mkdir(exist_ok=True)
    (bare / "info" / "grafts").write_text(  # 3's parent is 1; a comment, a line git refuses, a second line for 3
        f"# joined by hand\n{third} {first}\n{fourth}  {first}\n{third}\n")
    port = server.port("http")

    expected = _git_log(client, "--git-dir", str(bare))
    assert [e[0] for e in expected] == [fourth, third, first]
    assert _shortlog(port) == expected
    graph = json.loads(raw(port, "GET", "/r.git/json-graph").body)["changesets"]
    assert [c["node"] for c in graph] == [fourth, third, first]
    rev = json.loads(raw(port, "GET", f"/r.git/json-rev/{third}").body)
    assert rev["parents"] == [first]
    subprocess.run(["git", "--git-dir", str(bare), "config", "core.useReplaceRefs", "false"], check=True)
    assert _shortlog(port) == _git_log(client, "--git-dir", str(bare)) == expected
