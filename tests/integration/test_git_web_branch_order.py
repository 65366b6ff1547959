"""A git repository's branches on ``branches``, ``json-branches`` and the summary are ordered and
dated as gitweb lists them (``git for-each-ref --sort=-committerdate refs/heads``): by their commit's
committer date, names of one date in name order.  They were ordered and dated by the commit's author
date, so a branch rebased today onto an old author date sank to the bottom, and ties went by name
backwards."""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_hg_http import raw

BROWSER = {"Accept": "text/html"}


def test_branches_are_in_gitweb_s_committerdate_order(make_server: Callable[..., RunningServer],
                                                       client: Client) -> None:
    server = make_server("fs", git=[LOOPBACK], http=[LOOPBACK], create_on_push=True)
    work = client.cwd / "work"
    client.git("init", "-q", "-b", "main", str(work))
    # (branch, author date, committer date): authored-order and committed-order disagree
    for branch, author, committer in (("main", 1700000000, 1700009000), ("old-rebased", 1600000000, 1800000000),
                                      ("new-authored", 1790000000, 1650000000), ("b-tie", 1700003000, 1700009000)):
        if branch != "main":
            client.git("checkout", "-q", "-b", branch, "main", cwd=work)
        (work / f"{branch}.txt").write_text(branch + "\n")
        client.git("add", "-A", cwd=work)
        client.git("commit", "-q", "-m", branch, cwd=work, env={"GIT_AUTHOR_DATE": f"{author} +0000",
                                                                "GIT_COMMITTER_DATE": f"{committer} +0200"})
    client.git("branch", "z-tie", "main", cwd=work)  # main's commit: a tie with main and b-tie, broken by name
    client.git("checkout", "-q", "main", cwd=work)
    client.git("push", "-q", f"git://127.0.0.1:{server.port('git')}/r.git", "--all", cwd=work)
    gitweb_order = client.git("for-each-ref", "--sort=-committerdate", "--format=%(refname:short)", "refs/heads",
                              cwd=work).stdout.split()
    assert gitweb_order == ["old-rebased", "b-tie", "main", "z-tie", "new-authored"]
    port = server.port("http")

    branches = json.loads(raw(port, "GET", "/r.git/json-branches").body)["branches"]
    assert [b["branch"] for b in branches] == gitweb_order
    by_name = {b["branch"]: b for b in branches}
    assert by_name["old-rebased"]["date"] == [1800000000.0, -7200], "the commit's committer date"
    assert by_name["new-authored"]["date"] == [1650000000.0, -7200]
    summary = json.loads(raw(port, "GET", "/r.git/json-summary").body)
    assert [b["branch"] for b in summary["branches"]] == gitweb_order
    body = raw(port, "GET", "/r.git/branches", BROWSER).body.decode()
    positions = [body.index(f">{name}</a>") for name in gitweb_order]
    assert positions == sorted(positions), body
