"""A repository an operator brings holds objects git serves but git's fsck faults (a date an old
tool wrote): its refs are advertised, it clones (whole and shallow) and fetches, loose or packed,
its pages show such a commit as ``git log`` does (a date it cannot read is 0), and a page that must
show a commit no reading makes sense of says what is wrong instead of "internal error"."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import LOOPBACK, Client, RunningServer

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


def _odd_history(client: Client, repo: Path) -> list[str]:
    """Three commits in a row, the middle and the tip with committer lines git's fsck calls bad."""
    client.git("init", "-q", "--bare", str(repo))
    client.git("--git-dir", str(repo), "hash-object", "-t", "tree", "-w", "--stdin", input=b"")
    ids: list[str] = []
    for committer in ("C <c@d> 1600000000 +0000", "C <c@d> soon +0000", "C <c@d> 1600000100"):
        parent = f"parent {ids[-1]}\n" if ids else ""
        raw = f"tree {EMPTY_TREE}\n{parent}author A <a@b> 1600000000 +0000\ncommitter {committer}\n\nc{len(ids)}\n"
        ids.append(client.git("--git-dir", str(repo), "hash-object", "-t", "commit", "--literally", "-w",
                              "--stdin", input=raw.encode()).stdout.strip())
    client.git("--git-dir", str(repo), "update-ref", "refs/heads/main", ids[-1])
    client.git("--git-dir", str(repo), "symbolic-ref", "HEAD", "refs/heads/main")
    return ids


@pytest.mark.parametrize("packed", [False, True], ids=["loose", "packed"])
def test_a_history_git_serves_is_served(make_server: Callable[..., RunningServer], client: Client,
                                        packed: bool) -> None:
    server = make_server("fs", git=[LOOPBACK], http=[LOOPBACK])
    repo = server.root / "old.git"
    ids = _odd_history(client, repo)
    if packed:
        client.git("--git-dir", str(repo), "-c", "fsck.badDate=ignore", "repack", "-q", "-a", "-d")
    before = sorted(p.name for p in (repo / "objects").rglob("*") if p.is_file())
    url = server.git_url("old")
    assert client.git("ls-remote", url).stdout.split() == [ids[-1], "HEAD", ids[-1], "refs/heads/main"]
    client.git("clone", "-q", "--bare", url, "whole.git")
    assert client.git("--git-dir", "whole.git", "rev-list", "main").stdout.split() == ids[::-1]
    client.git("clone", "-q", "--bare", "--depth=1", url, "shallow.git")
    assert client.git("--git-dir", "shallow.git", "rev-list", "main").stdout.split() == [ids[-1]]
    client.git("--git-dir", "shallow.git", "fetch", "-q", "--depth=2", url, "main:main")
    assert client.git("--git-dir", "shallow.git", "rev-list", "main").stdout.split() == ids[:0:-1]
    client.git("clone", "-q", "--bare", f"{server.url('http', 'old')}.git", "over-http.git")
    assert client.git("--git-dir", "over-http.git", "rev-parse", "main").stdout.strip() == ids[-1]
    port = server.port("http")
    for page in ("log", f"rev/{ids[1]}", f"rev/{ids[-1]}", "summary"):  # shown as git log shows them
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/old.git/{page}", timeout=30) as answer:
            assert answer.status == 200, page
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/old.git/json-shortlog", timeout=30) as answer:
        entries = json.loads(answer.read())["changesets"]
    assert [(e["node"], e["desc"], e["date"]) for e in entries] == [
        (ids[2], "c2\n", [1600000000.0, 0]), (ids[1], "c1\n", [1600000000.0, 0]), (ids[0], "c0\n", [1600000000.0, 0])]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/old.git/json-rev/{ids[1]}", timeout=30) as answer:
        assert json.loads(answer.read())["node"] == ids[1]
    assert sorted(p.name for p in (repo / "objects").rglob("*") if p.is_file()) == before


def test_a_commit_no_reading_makes_sense_of_is_told_on_the_page(make_server: Callable[..., RunningServer],
                                                                client: Client) -> None:
    """Even read leniently, a commit without a tree line is nothing to show: the page says what is wrong."""
    server = make_server("fs", git=[LOOPBACK], http=[LOOPBACK])
    repo = server.root / "broken.git"
    client.git("init", "-q", "--bare", str(repo))
    raw = "author A <a@b> soon +0000\ncommitter C <c@d> 1600000000 +0000\n\nno tree\n"
    oid = client.git("--git-dir", str(repo), "hash-object", "-t", "commit", "--literally", "-w", "--stdin",
                     input=raw.encode()).stdout.strip()
    (repo / "refs" / "heads" / "main").write_text(oid + "\n")  # (update-ref refuses it)
    with pytest.raises(urllib.error.HTTPError) as page:
        urllib.request.urlopen(f"http://127.0.0.1:{server.port('http')}/broken.git/log", timeout=30)
    assert page.value.code == 500
    assert "holds an object the server cannot read" in page.value.read().decode()
