"""A git repository's tags on ``tags``, ``json-tags`` and the summary are ordered and dated as gitweb
lists them (``git for-each-ref --sort=-creatordate``): an annotated tag by its tagger's date, a
lightweight one by its commit's committer date, names of one date in name order.  They were ordered
and dated by the commit's author date, so a tag made today of an old commit sank to the bottom."""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_hg_http import raw

BROWSER = {"Accept": "text/html"}


def test_tags_are_in_gitweb_s_creatordate_order(make_server: Callable[..., RunningServer], client: Client) -> None:
    server = make_server("fs", git=[LOOPBACK], http=[LOOPBACK], create_on_push=True)
    work = client.cwd / "work"
    client.git("init", "-q", "-b", "main", str(work))
    for text, author, committer in (("one", 1700000000, 1700009000), ("two", 1700005000, 1700001000)):
        (work / "a.txt").write_text(text + "\n")
        client.git("add", "-A", cwd=work)
        client.git("commit", "-q", "-m", text, cwd=work, env={"GIT_AUTHOR_DATE": f"{author} +0000",
                                                              "GIT_COMMITTER_DATE": f"{committer} +0200"})
        client.git("tag", f"light-{text}", cwd=work)
    client.git("tag", "m-same", "HEAD~1", cwd=work)  # the committer date of light-one: a tie, broken by name
    client.git("tag", "b-same", "HEAD~1", cwd=work)
    client.git("tag", "-a", "-m", "new", "ann-new", "HEAD~1", cwd=work,
               env={"GIT_COMMITTER_DATE": "1800000000 -0500"})  # an old commit, tagged later
    client.git("tag", "-a", "-m", "old", "ann-old", "HEAD", cwd=work, env={"GIT_COMMITTER_DATE": "1600000000 +0000"})
    client.git("push", "-q", f"git://127.0.0.1:{server.port('git')}/r.git", "main", "--tags", cwd=work)
    gitweb_order = client.git("for-each-ref", "--sort=-creatordate", "--format=%(refname:short)", "refs/tags",
                              cwd=work).stdout.split()
    assert gitweb_order == ["ann-new", "b-same", "light-one", "m-same", "light-two", "ann-old"]
    port = server.port("http")

    tags = json.loads(raw(port, "GET", "/r.git/json-tags").body)["tags"]
    assert [t["tag"] for t in tags] == gitweb_order
    by_name = {t["tag"]: t for t in tags}
    assert by_name["ann-new"]["date"] == [1800000000.0, 18000], "the tagger's date"
    assert by_name["light-two"]["date"] == [1700001000.0, -7200], "the commit's committer date"
    summary = json.loads(raw(port, "GET", "/r.git/json-summary").body)
    assert [t["tag"] for t in summary["tags"]] == gitweb_order
    body = raw(port, "GET", "/r.git/tags", BROWSER).body.decode()
    positions = [body.index(f">{name}</a>") for name in gitweb_order]
    assert positions == sorted(positions), body
