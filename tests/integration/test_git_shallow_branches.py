"""``git clone --depth 1 --no-single-branch``: every branch tip, each without its history.  The
stored delta base of an older tip's file is a version between the tips, which is not sent; hgwire
sent those objects whole (a pack half as large again as git's); it now sends them as deltas against
the tip its stored chain reaches.  The real git client must accept the pack and fsck it."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import LOOPBACK, Client, RunningServer

FILES = [f"src/file{i}.txt" for i in range(6)]


def branches_with_history(client: Client, work: Path) -> None:
    client.git("init", "-q", "-b", "main", str(work))
    rng = random.Random(6)
    words = ["red", "green", "blue", "cyan", "magenta", "yellow", "black", "white"]
    texts = {name: [" ".join(rng.choice(words) for _ in range(12)) + "\n" for _ in range(150)] for name in FILES}
    (work / "src").mkdir()
    for n in range(24):
        for name in FILES:
            lines = texts[name]
            lines[rng.randrange(len(lines))] = f"changed in {n}\n"
            lines.insert(rng.randrange(len(lines)), f"added in {n}\n")
            (work / name).write_text("".join(lines))
        client.git("add", "-A", cwd=work)
        client.git("commit", "-q", "-m", f"c{n}", cwd=work)
        if n in (3, 11):
            client.git("branch", f"release-{n}", cwd=work)
    client.git("repack", "-adfq", "--depth=50", "--window=50", cwd=work)


def dirs_with_branches(client: Client, bare: Path) -> None:
    """Branches main, side (off main's third commit) and topic (off main~1) over 130 directories
    (enough for the walk of the tips' trees to be kept), cloned bare to ``bare`` with a bitmap."""
    work = client.cwd / "dirs-work"
    client.git("init", "-q", "-b", "main", str(work))
    for n in range(130):
        (work / f"d{n}").mkdir()
        (work / f"d{n}" / "f.txt").write_text(f"{n}\n")
    for n in range(6):
        if n == 3:
            client.git("checkout", "-q", "-b", "side", cwd=work)
        for d in (n, 40 + n, 90 + n):
            (work / f"d{d}" / "f.txt").write_text(f"{d} changed in {n}\n")
        client.git("add", "-A", cwd=work)
        client.git("commit", "-q", "-m", f"c{n}", cwd=work)
    client.git("checkout", "-q", "-b", "topic", "main~1", cwd=work)
    for n in range(3):
        (work / "topic.txt").write_text(f"t{n}\n")
        client.git("add", "-A", cwd=work)
        client.git("commit", "-q", "-m", f"topic {n}", cwd=work)
    client.git("checkout", "-q", "main", cwd=work)
    client.git("clone", "-q", "--bare", str(work), str(bare))
    client.git("repack", "-adbq", cwd=bare)


def objects(client: Client, clone: Path) -> set[str]:
    return set(client.git("cat-file", "--batch-all-objects", "--batch-check=%(objectname)", cwd=clone).stdout.split())


def received_pack_size(clone: Path) -> int:
    return sum(p.stat().st_size for p in (clone / ".git" / "objects" / "pack").glob("*.pack"))


def test_a_shallow_clone_of_every_branch_is_about_git_s_size(make_server: Callable[..., RunningServer],
                                                           client: Client) -> None:
    server = make_server("fs", git=[LOOPBACK])
    work = client.cwd / "work"
    branches_with_history(client, work)
    client.git("clone", "-q", "--bare", str(work), str(server.root / "tips.git"))
    client.git("repack", "-adfq", "--depth=50", "--window=50", cwd=server.root / "tips.git")

    ours, reference = client.cwd / "ours", client.cwd / "reference"
    client.git("clone", "-q", "--depth", "1", "--no-single-branch", server.git_url("tips"), str(ours))
    client.git("clone", "-q", "--depth", "1", "--no-single-branch", f"file://{server.root / 'tips.git'}",
               str(reference))
    client.git("fsck", "--full", "--strict", cwd=ours)
    branches = client.git("branch", "-r", cwd=ours).stdout.split()
    assert {"origin/main", "origin/release-3", "origin/release-11"} <= set(branches)
    for name in ("main", "release-3", "release-11"):
        assert (client.git("rev-parse", f"origin/{name}^{{tree}}", cwd=ours).stdout
                == client.git("rev-parse", f"origin/{name}^{{tree}}", cwd=reference).stdout)
    # sent whole, the two older tips' files made it over twice git's (29 KB against 13)
    assert received_pack_size(ours) < 1.1 * received_pack_size(reference), (
        received_pack_size(ours), received_pack_size(reference))


def test_deepening_a_shallow_clone_of_every_branch_is_git_s_deepen(make_server: Callable[..., RunningServer],
                                                                  client: Client) -> None:
    """``git fetch --deepen=1`` of such a clone: the client's tips are walked whole for what it has,
    and that walk is kept for the next client of the same tips; both clients get git's boundary
    and git's objects."""
    server = make_server("fs", git=[LOOPBACK])
    dirs_with_branches(client, server.root / "dirs.git")
    found = []
    for name, url in [("first", server.git_url("dirs")), ("second", server.git_url("dirs")),
                      ("reference", f"file://{server.root / 'dirs.git'}")]:
        clone = client.cwd / name
        client.git("clone", "-q", "-n", "--depth", "1", "--no-single-branch", url, str(clone))
        client.git("fetch", "-q", "--deepen=1", cwd=clone)
        client.git("fsck", "--full", "--strict", cwd=clone)
        found.append((sorted((clone / ".git" / "shallow").read_text().split()), objects(client, clone)))
    assert found[0] == found[2] and found[1] == found[2]


@pytest.mark.parametrize("version", ["0", "2"])
def test_deepening_after_a_branch_was_deleted_leaves_its_shallow_commit(
        make_server: Callable[..., RunningServer], client: Client, version: str) -> None:
    """``git push origin :topic``, then ``git fetch --deepen`` of a shallow clone that had topic: no
    ref reaches topic's shallow commit any more, and git's upload-pack deepens only those some ref
    reaches (hgwire sent topic's parent commit and its tree, and moved the clone's boundary there).
    A clone that deepened before the deletion had its walk of the tips kept: the clients after it
    deepen from another boundary, which the kept walks are told apart by."""
    server = make_server("fs", git=[LOOPBACK])
    dirs_with_branches(client, server.root / "dirs.git")
    clones = {}
    for name, url in [("before", server.git_url("dirs")), ("first", server.git_url("dirs")),
                      ("second", server.git_url("dirs")), ("reference", f"file://{server.root / 'dirs.git'}")]:
        clones[name] = client.cwd / name
        client.git("-c", f"protocol.version={version}", "clone", "-q", "-n", "--depth", "1", "--no-single-branch",
                   url, str(clones[name]))
    topic = client.git("rev-parse", "origin/topic", cwd=clones["reference"]).stdout.strip()
    client.git("-c", f"protocol.version={version}", "fetch", "-q", "--deepen=1", cwd=clones["before"])
    client.git("push", "-q", "origin", ":topic", cwd=clones["before"])
    found = {}
    for name in ("first", "second", "reference"):
        for deepen in ("--deepen=1", "--deepen=2"):
            client.git("-c", f"protocol.version={version}", "fetch", "-q", deepen, cwd=clones[name])
        client.git("fsck", "--full", "--strict", cwd=clones[name])
        found[name] = (sorted((clones[name] / ".git" / "shallow").read_text().split()), objects(client, clones[name]))
    assert topic in found["reference"][0]  # (git's: topic's tip stays the clone's boundary)
    assert found["first"] == found["reference"] and found["second"] == found["reference"]


@pytest.mark.parametrize("stale_bitmap", [False, True])
@pytest.mark.parametrize("version", ["0", "2"])
def test_deepening_below_a_commit_dated_after_its_children(
        make_server: Callable[..., RunningServer], client: Client, version: str, stale_bitmap: bool) -> None:
    """A commit made with its clock four years ahead (its ten children on main are older than it),
    the boundary of a clone ``--depth 11``: ``git fetch --deepen=1`` deepens it in git's upload-pack,
    whose walk goes on while the shallow commit's own history is not reached.  hgwire's walk of the
    refs stopped five commits older than the shallow commit, took main as not reaching it and
    deepened nothing (with a bitmap too, written before the commits were pushed)."""
    server = make_server("fs", git=[LOOPBACK])
    work = client.cwd / "skew-work"
    client.git("init", "-q", "-b", "main", str(work))
    for n in range(14):
        (work / "f.txt").write_text(f"{n}\n")
        client.git("add", "-A", cwd=work)
        date = "2030-01-01T00:00:00Z" if n == 3 else f"2026-01-01T00:{n:02d}:00Z"
        client.git("commit", "-q", "-m", f"c{n}", cwd=work, env={"GIT_COMMITTER_DATE": date})
    if stale_bitmap:
        client.git("init", "-q", "--bare", str(server.root / "skew.git"))
        client.git("push", "-q", str(server.root / "skew.git"), "main~12:refs/heads/main", cwd=work)
        client.git("repack", "-adbq", cwd=server.root / "skew.git")
        client.git("push", "-q", str(server.root / "skew.git"), "main", cwd=work)
    else:
        client.git("clone", "-q", "--bare", str(work), str(server.root / "skew.git"))  # (no bitmap)
    found = {}
    for name, url in [("ours", server.git_url("skew")), ("reference", f"file://{server.root / 'skew.git'}")]:
        clone = client.cwd / name
        client.git("-c", f"protocol.version={version}", "clone", "-q", "-n", "--depth", "11", url, str(clone))
        client.git("-c", f"protocol.version={version}", "fetch", "-q", "--deepen=1", cwd=clone)
        client.git("fsck", "--full", "--strict", cwd=clone)
        found[name] = (sorted((clone / ".git" / "shallow").read_text().split()), objects(client, clone))
    c2 = client.git("rev-parse", "main~11", cwd=work).stdout.strip()
    assert found["reference"][0] == [c2]
    assert found["ours"] == found["reference"]


@pytest.mark.parametrize("bitmap", [False, True])
@pytest.mark.parametrize("version", ["0", "2"])
def test_deepening_shallow_commits_reached_through_a_merge_or_a_tag_of_a_tag(
        make_server: Callable[..., RunningServer], client: Client, version: str, bitmap: bool) -> None:
    """A clone ``--depth 1 --no-single-branch`` of main, side and tagged; then on the server side
    is merged into main (a merge's second parent) and deleted, tagged's tip stays reached only by
    a tag of a tag, a tag names a tree.  ``git fetch --deepen=1`` deepens each of the clone's
    shallow commits some ref reaches as git's upload-pack does, the same objects and boundary."""
    server = make_server("fs", git=[LOOPBACK])
    work = client.cwd / "merge-work"
    client.git("init", "-q", "-b", "main", str(work))

    def commit(name: str) -> None:
        (work / f"{name}.txt").write_text(f"{name}\n")
        client.git("add", "-A", cwd=work)
        client.git("commit", "-q", "-m", name, cwd=work)

    for n in range(4):
        commit(f"base{n}")
    client.git("checkout", "-q", "-b", "side", cwd=work)
    for n in range(3):
        commit(f"side{n}")
    client.git("checkout", "-q", "-b", "tagged", "main", cwd=work)
    for n in range(3):
        commit(f"tagged{n}")
    client.git("checkout", "-q", "main", cwd=work)
    commit("main0")
    bare = server.root / "merge.git"
    client.git("clone", "-q", "--bare", str(work), str(bare))
    if bitmap:
        client.git("repack", "-adbq", cwd=bare)
    urls = {"ours": server.git_url("merge"), "reference": f"file://{bare}"}
    for name, url in urls.items():
        client.git("-c", f"protocol.version={version}", "clone", "-q", "-n", "--depth", "1", "--no-single-branch",
                   url, str(client.cwd / name))
    client.git("merge", "-q", "--no-ff", "-m", "merge side", "side", cwd=work)
    commit("main1")
    client.git("tag", "-a", "-m", "inner", "inner", "tagged", cwd=work)
    client.git("tag", "-a", "-m", "outer", "outer", "inner", cwd=work)
    client.git("tag", "-a", "-m", "a tree", "tree", "main^{tree}", cwd=work)
    client.git("push", "-q", str(bare), "main", "outer", "tree", cwd=work)
    client.git("push", "-q", str(bare), ":side", ":tagged", cwd=work)
    found = {}
    for name, url in urls.items():
        clone = client.cwd / name
        client.git("-c", f"protocol.version={version}", "fetch", "-q", "--deepen=1", cwd=clone)
        client.git("fsck", "--full", "--strict", cwd=clone)
        found[name] = (sorted((clone / ".git" / "shallow").read_text().split()), objects(client, clone))
    side1 = client.git("rev-parse", "side~1", cwd=work).stdout.strip()
    tagged1 = client.git("rev-parse", "tagged~1", cwd=work).stdout.strip()
    assert side1 in found["reference"][0] and tagged1 in found["reference"][0]
    assert found["ours"] == found["reference"]


@pytest.mark.parametrize("tree_tag", [False, True])
@pytest.mark.parametrize("version", ["0", "2"])
def test_deepening_a_shallow_clone_with_tags_after_its_clone_is_git_s_deepen(
        make_server: Callable[..., RunningServer], client: Client, version: str, tree_tag: bool) -> None:
    """``git clone --depth 1 --no-single-branch`` of branches and annotated tags (one of an older
    commit, a tag of it; a tag of a tree, whose walk is no commits'), then ``git fetch --deepen=1``:
    the clone's walk of its tips is kept as its commits' too, which are the deepen's haves; git's
    boundary and objects."""
    server = make_server("fs", git=[LOOPBACK])
    bare = server.root / "dirs.git"
    dirs_with_branches(client, bare)
    work = client.cwd / "tags-work"  # (150 directories more: a walk of the tips long enough to be kept)
    client.git("clone", "-q", str(bare), str(work))
    for n in range(150):
        (work / f"e{n}").mkdir()
        (work / f"e{n}" / "f.txt").write_text(f"e{n}\n")
    client.git("add", "-A", cwd=work)
    client.git("commit", "-q", "-m", "more directories", cwd=work)
    client.git("push", "-q", "origin", "main", cwd=work)
    client.git("tag", "-a", "-m", "old", "old", "main~2", cwd=bare)
    client.git("tag", "-a", "-m", "outer", "outer", "old", cwd=bare)
    if tree_tag:
        client.git("tag", "-a", "-m", "a tree", "tree", "main^{tree}", cwd=bare)
    client.git("repack", "-adbq", cwd=bare)
    found = {}
    for name, url in [("first", server.git_url("dirs")), ("second", server.git_url("dirs")),
                      ("reference", f"file://{bare}")]:
        clone = client.cwd / name
        client.git("-c", f"protocol.version={version}", "clone", "-q", "-n", "--depth", "1", "--no-single-branch",
                   url, str(clone))
        client.git("-c", f"protocol.version={version}", "fetch", "-q", "--deepen=1", cwd=clone)
        client.git("fsck", "--full", "--strict", cwd=clone)
        found[name] = (sorted((clone / ".git" / "shallow").read_text().split()), objects(client, clone))
    outer = client.git("rev-parse", "outer", cwd=bare).stdout.strip()
    assert outer in found["reference"][1], "the clones have the tags"
    assert found["first"] == found["reference"] and found["second"] == found["reference"]
