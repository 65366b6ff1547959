"""Tags of a tree or a blob (``git tag t HEAD^{tree}``, an annotated tag of a blob) on a git
repository's pages: listed on ``tags``, ``json-tags`` and the summary with their type, as gitweb
lists them (in ``git for-each-ref --sort=-creatordate``'s order), each linked to what it names."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.conftest import BACKENDS, LOOPBACK, Client, RunningServer
from tests.integration.test_hg_http import raw

BROWSER = {"Accept": "text/html"}
DATE = {"GIT_AUTHOR_DATE": "1700000000 +0000", "GIT_COMMITTER_DATE": "1700000000 +0000"}


@pytest.mark.parametrize("backend", BACKENDS)
def test_tags_of_trees_and_blobs_are_listed_with_their_type(make_server: Callable[..., RunningServer],
                                                            client: Client, backend: str) -> None:
    """They were left out of every list (each name was dated by its commit, and they have none)."""
    server = make_server(backend, git=[LOOPBACK], http=[LOOPBACK], create_on_push=True)
    work = client.cwd / "work"
    client.git("init", "-q", "-b", "main", str(work))
    (work / "a.txt").write_text("a\n")
    client.git("add", "-A", cwd=work)
    client.git("commit", "-q", "-m", "one", cwd=work, env=DATE)
    blob = client.git("hash-object", "-w", "--stdin", cwd=work, input=b"blob bytes\n").stdout.strip()
    tree = client.git("rev-parse", "HEAD^{tree}", cwd=work).stdout.strip()
    client.git("tag", "t-tree", tree, cwd=work)  # lightweight: no date, listed last
    client.git("tag", "-a", "-m", "a blob", "b-blob", blob, cwd=work, env={"GIT_COMMITTER_DATE": "1700000500 +0100"})
    client.git("tag", "-a", "-m", "a tree", "a-tree", tree, cwd=work, env={"GIT_COMMITTER_DATE": "1700000300 +0000"})
    client.git("tag", "v1", cwd=work)
    client.git("push", "-q", f"git://127.0.0.1:{server.port('git')}/r.git", "main", "--tags", cwd=work)
    gitweb_order = client.git("for-each-ref", "--sort=-creatordate", "--format=%(refname:short)", "refs/tags",
                              cwd=work).stdout.split()
    port = server.port("http")

    tags = json.loads(raw(port, "GET", "/r.git/json-tags").body)["tags"]
    assert [t["tag"] for t in tags] == gitweb_order == ["b-blob", "a-tree", "v1", "t-tree"]
    by_name = {t["tag"]: t for t in tags}
    assert by_name["b-blob"] == {"tag": "b-blob", "node": blob, "date": [1700000500.0, -3600], "type": "blob"}
    assert by_name["a-tree"] == {"tag": "a-tree", "node": tree, "date": [1700000300.0, 0], "type": "tree"}
    assert by_name["t-tree"] == {"tag": "t-tree", "node": tree, "date": None, "type": "tree"}
    assert "type" not in by_name["v1"]
    summary = json.loads(raw(port, "GET", "/r.git/json-summary").body)
    assert [t["tag"] for t in summary["tags"]] == gitweb_order

    for page in ("/r.git/tags", "/r.git/summary"):
        body = raw(port, "GET", page, BROWSER).body.decode()
        for name, kind, target in (("t-tree", "tree", tree), ("a-tree", "tree", tree), ("b-blob", "blob", blob)):
            assert f'/r.git/raw-file/{name}">{name}</a>' in body, (page, name)
            assert f"{kind} {target[:12]}" in body, (page, name)
    assert raw(port, "GET", "/r.git/raw-file/b-blob").body == b"blob bytes\n"
    listing = raw(port, "GET", "/r.git/raw-file/t-tree").body
    assert listing.strip() == b"-rw-r--r-- 2 a.txt" and listing == raw(port, "GET", "/r.git/raw-file/main").body
    assert raw(port, "GET", "/r.git/raw-file/a-tree/a.txt").body == b"a\n"
    assert raw(port, "GET", "/r.git/raw-file/b-blob/a.txt").status == 404
    assert raw(port, "GET", "/r.git/rev/t-tree", BROWSER).status == 404  # no commit to show
