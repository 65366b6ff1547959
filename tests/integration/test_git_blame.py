"""A git repository's annotate page (``/NAME.git/annotate/REF/PATH``): each line with the commit
and line number ``git blame --porcelain`` gives, for every file at every commit of a seeded
history of two branches, merges keeping lines of both sides (and some of their own), a line made
alike on both sides (the first parent's commit is named), files made and emptied, renamed as they are and with an edit, a mode changed; its lines are unique, where
git's own diff and hgwire's cannot place a change otherwise.  The page for a browser shows them, linked."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from backends.filesystem import FilesystemBackend
from backends.git_web import GitPages
from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_hg_http import raw


def _history(client: Client, work: Path) -> None:
    rng = random.Random(77)
    client.git("init", "-q", "-b", "main", str(work))
    stamp = 1_700_000_000
    fresh = 0

    def line() -> str:
        nonlocal fresh
        fresh += 1
        return f"line {fresh}\n"

    def commit(*args: str) -> None:
        nonlocal stamp
        stamp += 60
        date = {"GIT_AUTHOR_DATE": f"{stamp} +0000", "GIT_COMMITTER_DATE": f"{stamp} +0000"}
        client.git("add", "-A", cwd=work)
        client.git("commit", "-q", "--allow-empty", *args, cwd=work, env=date)

    def edit(name: str) -> None:
        path = work / name
        lines = path.read_text().splitlines(True) if path.exists() else []
        for _ in range(rng.randint(1, 3)):
            at = rng.randint(0, len(lines))
            roll = rng.random()
            if roll < 0.5 or not lines:
                lines.insert(at, line())
            elif roll < 0.8:
                del lines[min(at, len(lines) - 1)]
            else:
                lines[min(at, len(lines) - 1)] = line()
        path.write_text("".join(lines))

    for name in ("a.txt", "b.txt"):
        (work / name).write_text("".join(line() for _ in range(8)))
    commit("-m", "start")
    client.git("checkout", "-q", "-b", "side", cwd=work)
    for round_ in range(3):
        for branch in ("side", "main"):
            client.git("checkout", "-q", branch, cwd=work)
            for _ in range(2):
                for name in rng.sample(["a.txt", "b.txt"], rng.randint(1, 2)):
                    edit(name)
                commit("-m", f"{branch} {round_}")
        if round_ == 1:  # the same line made on both sides: blame names the first parent's commit
            for branch in ("side", "main"):
                client.git("checkout", "-q", branch, cwd=work)
                (work / "a.txt").write_text("twin line\n" + (work / "a.txt").read_text())
                commit("-m", f"twin on {branch}")
        side = {name: client.git("show", f"side:{name}", cwd=work).stdout for name in ("a.txt", "b.txt")}
        client.git("merge", "-q", "--no-ff", "--no-commit", "-s", "ours", "side", cwd=work)
        for name, theirs in side.items():
            ours = (work / name).read_text().splitlines(True)
            other = theirs.splitlines(True)
            cut, cut_other = rng.randint(1, len(ours)), rng.randint(0, len(other))
            kept = ours[:cut]
            # the other side's lines after all those kept, each line once: lines repeated or out of
            # order could be matched otherwise by git's diff, as rightly
            after = max([other.index(x) + 1 for x in kept if x in other] + [cut_other])
            (work / name).write_text("".join(kept + [line()] + [x for x in other[after:] if x not in kept]))
        commit("-m", f"merge {round_}")
    (work / "c.txt").write_text("".join(line() for _ in range(3)))
    edit("a.txt")
    commit("-m", "c made")
    (work / "b.txt").write_text("")
    commit("-m", "b emptied")
    client.git("mv", "c.txt", "c2.txt", cwd=work)
    commit("-m", "c renamed as it is")
    client.git("mv", "a.txt", "renamed.txt", cwd=work)
    edit("renamed.txt")
    commit("-m", "a renamed and edited")
    (work / "renamed.txt").chmod(0o755)
    commit("-m", "renamed made executable")


def _porcelain(client: Client, work: Path, commit: str, name: str) -> list[tuple[str, int, str]]:
    """(commit, line number there, path there) of each line, as git blame --line-porcelain says."""
    out = client.git("blame", "--line-porcelain", commit, "--", name, cwd=work).stdout
    heads = re.findall(r"^([0-9a-f]{40}) (\d+) \d+", out, re.MULTILINE)
    paths = re.findall(r"^filename (.*)$", out, re.MULTILINE)
    return [(node, int(number), path) for (node, number), path in zip(heads, paths, strict=True)]


def served_history(make_server: Callable[..., RunningServer], client: Client, name: str
                   ) -> tuple[RunningServer, Path, Any, GitPages]:
    """A server over HTTP holding ``_history`` as the bare ``name``: the server, the work tree,
    the repository as the backend opens it (close its ``dulwich_repo``) and its pages' data."""
    server = make_server("fs", http=[LOOPBACK])
    work = client.cwd / (name + "-work")
    _history(client, work)
    client.git("clone", "-q", "--bare", "--no-local", str(work), str(server.root / name))
    repo = FilesystemBackend(str(server.root)).open(name)
    return server, work, repo, GitPages(repo)  # type: ignore[arg-type]


def test_annotations_are_git_blame_s(make_server: Callable[..., RunningServer], client: Client) -> None:
    server, work, repo, pages = served_history(make_server, client, "b.git")
    commits = client.git("rev-list", "main", cwd=work).stdout.split()
    assert len(commits) > 15
    compared = 0
    origins: set[str] = set()
    for commit in commits:
        for name in client.git("ls-tree", "--name-only", commit, cwd=work).stdout.split():
            data = pages.annotate(commit, name)
            ours = [(line["node"], line["targetline"], line["abspath"]) for line in data["annotate"]]
            assert ours == _porcelain(client, work, commit, name), (commit, name)
            origins |= {node for node, _, _ in ours}
            compared += 1
    assert compared > 30 and len(origins) > 12  # lines come from many commits, merges among them
    renamed = pages.annotate("main", "renamed.txt")["annotate"]
    assert "a.txt" in {line["abspath"] for line in renamed}  # followed through the rename
    repo.dulwich_repo.close()  # type: ignore[attr-defined]

    port = server.port("http")
    page = raw(port, "GET", "/b.git/annotate/main/renamed.txt", {"Accept": "text/html"})
    assert page.status == 200
    body = page.body.decode()
    previous = None
    for node, target, path in _porcelain(client, work, "main", "renamed.txt"):
        if node != previous:  # a run of lines from one commit: its first is linked
            assert f"/b.git/annotate/{node}/{path}#l{target}" in body
        previous = node
    assert "/b.git/annotate/" in raw(port, "GET", "/b.git/file/main/c2.txt", {"Accept": "text/html"}).body.decode()
    assert raw(port, "GET", "/b.git/annotate/main/no/such", {"Accept": "text/html"}).status == 404


CODE_LINES = ["\n", "}\n", "{\n", "    return x;\n", "  }\n", "\tif (x) {\n", "\t}\n", "    pass\n", "end\n",
              "        i += 1\n", "\n"]


def _code_history(client: Client, work: Path, seed: int, commits: int) -> None:
    """A history of code-like files whose lines repeat (blank lines, braces, returns), large enough
    past 1 KiB for git blame's cut of the common end, edited at random and merged once."""
    rng = random.Random(seed)
    client.git("init", "-q", "-b", "main", str(work))
    stamp = 1_700_000_000
    fresh = 0

    def line() -> str:
        nonlocal fresh
        if rng.random() < 0.6:
            return rng.choice(CODE_LINES)
        fresh += 1
        return f"    call_{fresh}(x)\n"

    def commit(message: str) -> None:
        nonlocal stamp
        stamp += 60
        date = {"GIT_AUTHOR_DATE": f"{stamp} +0000", "GIT_COMMITTER_DATE": f"{stamp} +0000"}
        client.git("add", "-A", cwd=work)
        client.git("commit", "-q", "--allow-empty", "-m", message, cwd=work, env=date)

    def edit(name: str) -> None:
        path = work / name
        lines = path.read_text().splitlines(True)
        for _ in range(rng.randint(1, 6)):
            at = rng.randint(0, len(lines))
            roll = rng.random()
            if roll < 0.5 or not lines:
                lines[at:at] = [line() for _ in range(rng.randint(1, 4))]
            elif roll < 0.8:
                del lines[at:at + rng.randint(1, 3)]
            else:
                lines[min(at, len(lines) - 1)] = line()
        path.write_text("".join(lines))

    names = ["a.c", "b.py"]
    for name in names:
        (work / name).write_text("".join(line() for _ in range(rng.randint(60, 160))))
    commit("start")
    for n in range(commits):
        if n == commits // 2:
            client.git("checkout", "-q", "-b", "side", "HEAD~2", cwd=work)
            edit("b.py")
            commit("side")
            client.git("checkout", "-q", "main", cwd=work)
            merged = client.git("merge", "-q", "--no-edit", "side", cwd=work, check=False)  # before any rename
            if merged.returncode != 0:  # a conflict: take main's file
                client.git("checkout", "--ours", "--", "b.py", cwd=work)
                commit("merge side")
        if n == commits - 4:  # renamed as it is, and renamed with an edit (git show pairs both)
            client.git("mv", "a.c", "z.c", cwd=work)
            names[0] = "z.c"
        if n == commits - 2:
            client.git("mv", "b.py", "a.py", cwd=work)
            names[1] = "a.py"
        for name in rng.sample(names, rng.randint(1, 2)) if n != commits - 4 else [names[1]]:
            edit(name)
        if n % 5 == 1:  # a binary file made, then changed: git shows no hunks but a sentence
            (work / "data.bin").write_bytes(b"\0binary %d\n" % n)
        commit(f"edit {n}")


@pytest.mark.parametrize("seed", [3, 14])
def test_annotations_and_diffs_of_repeated_lines_are_git_s(make_server: Callable[..., RunningServer],
                                                           client: Client, seed: int) -> None:
    """Where lines repeat, which of the equal lines a change keeps is a choice: the annotation of
    every file at every commit is ``git blame``'s, and each commit's diff is ``git show``'s, byte
    for byte but for the lines the pages leave out (``diff --git``, ``index``): git's own
    comparison and hunks (``backends.git_diff``), renames paired (one as it is, one edited), a
    binary file's sentence."""
    server = make_server("fs", http=[LOOPBACK])
    work = client.cwd / "code-work"
    _code_history(client, work, seed, 14)
    client.git("clone", "-q", "--bare", "--no-local", str(work), str(server.root / "code.git"))
    repo = FilesystemBackend(str(server.root)).open("code.git")
    pages = GitPages(repo)  # type: ignore[arg-type]
    commits = client.git("rev-list", "main", cwd=work).stdout.split()
    renames = 0
    for commit in commits:
        for name in client.git("ls-tree", "--name-only", commit, cwd=work).stdout.split():
            data = pages.annotate(commit, name)
            ours = [(line["node"], line["targetline"], line["abspath"]) for line in data["annotate"]]
            assert ours == _porcelain(client, work, commit, name), (commit, name)
        if len(client.git("rev-list", "--parents", "-n", "1", commit, cwd=work).stdout.split()) != 2:
            continue  # the root commit or a merge: git show's diff is another
        shown = client.git("show", "--format=", "--no-color", commit, cwd=work).stdout
        theirs_diff = [_without_git_headers(part) for part in shown.split("diff --git ")[1:]]
        ours_diff = ["".join(line["l"] for line in block["lines"]) for block in pages.changeset(commit)["diff"]]
        assert ours_diff == theirs_diff, commit
        changeset = pages.changeset(commit)
        for entry, block in zip(changeset["files"], changeset["diff"], strict=True):
            if entry["status"] == "renamed":  # its own diff page pairs it too
                renames += 1
                assert pages.filediff(commit, entry["file"])["diff"][0]["lines"] == block["lines"]
    assert renames == 2  # as it is, and with an edit
    repo.dulwich_repo.close()  # type: ignore[attr-defined]


def _without_git_headers(part: str) -> str:
    """A file's part of ``git show`` without what the pages leave out (its ``diff --git``,
    ``index``, mode and similarity lines): a rename's two lines, then its ``---``/``+++`` and
    hunks, or git's binary sentence."""
    lines = part.splitlines(keepends=True)[1:]
    kept = [line for line in lines if line.startswith(("rename from ", "rename to "))]
    body = next((i for i, line in enumerate(lines) if line.startswith(("--- ", "Binary files "))), len(lines))
    return "".join(kept + lines[body:])


def test_a_git_repository_has_hgweb_s_json_pages(make_server: Callable[..., RunningServer], client: Client) -> None:
    """Scripts read a git repository as they read an hg one: ``json-rev``, the logs (a file's too,
    and the search), ``json-file``/``json-manifest``, ``json-diff``, ``json-annotate``, the names,
    the graph and the summary, in hgweb's names and shapes, with what the git pages show; JSON
    errors; the pages hg has only in other styles stay hg's."""
    server, work, repo, pages = served_history(make_server, client, "j.git")
    port = server.port("http")
    head = client.git("rev-parse", "HEAD", cwd=work).stdout.strip()

    def get(page: str) -> Any:
        answer = raw(port, "GET", f"/j.git/{page}")
        assert answer.status == 200 and answer.headers["content-type"] == "application/json", (page, answer.body)
        return json.loads(answer.body)

    assert get("json-rev") == get(f"json-rev/{head}") == pages.changeset(head)
    assert get("rev/main?style=json")["node"] == head
    log = get("json-shortlog?revcount=3")
    assert log["node"] == head and [c["node"] for c in log["changesets"]] == \
        client.git("rev-list", "-n", "3", "main", cwd=work).stdout.split()
    assert get("json-filelog/main/c2.txt")["entries"] == pages.log("main", 60, "c2.txt")
    assert get("json-log/main/renamed.txt?revcount=2")["entries"] == pages.log("main", 2, "renamed.txt")
    assert get("json-manifest/main")["files"] and get("json-file/main/c2.txt")["lines"]
    assert get("json-diff/main/renamed.txt")["diff"] == pages.filediff("main", "renamed.txt")["diff"]
    assert [line["node"] for line in get("json-annotate/main/renamed.txt")["annotate"]] == \
        [node for node, _, _ in _porcelain(client, work, "main", "renamed.txt")]
    assert [b["branch"] for b in get("json-branches")["branches"]] == ["main", "side"]
    assert get("json-tags") == {"tags": pages.names("tags")}
    assert get("json-graph?revcount=5") == pages.graph("", 5)
    summary = get("json-summary")
    assert summary["shortlog"][0]["node"] == head and summary["clone"] == f"git clone http://127.0.0.1:{port}/j.git"
    assert get("json-log?rev=merge")["entries"] == pages.search(b"merge", 60)["entries"]
    missing = raw(port, "GET", "/j.git/json-rev/nosuch")
    assert missing.status == 404 and "error" in json.loads(missing.body)
    assert raw(port, "GET", "/j.git/json-comparison/main/c2.txt").status == 404
    assert raw(port, "GET", "/j.git/raw-rev/main").status == 404  # hg's raw style: for hg repositories
    feed = raw(port, "GET", "/j.git/atom-log/main/c2.txt")  # and its feeds: said so, not "not Mercurial"
    assert feed.status == 404 and b"'j.git' is a git repository, and hgweb's atom-log page is served for " \
        b"Mercurial repositories only" in feed.body, feed.body
    repo.dulwich_repo.close()
