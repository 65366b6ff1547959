"""A fetch with haves counts its pack in one walk (``Walker.closures``): the commits of the haves,
then of the wants, then the trees of both in the order their commits are stored, so that a want's
tree stored as a delta of a have's tree beside it is resolved from it (a hostile ``--deepen``
resolved 53,825 tree entries twice: the haves' walk, then the wants' 52,000 trees later).

Over random histories (subtrees and files that come back at other paths and in other commits,
merges, tags, loose commits beside the bitmapped pack, with and without a bitmap and a
commit-graph) and random haves, wants and shallow boundaries, the one walk counts what the two
walks one after the other counted (the haves' closure whole, then the wants' stopping at it), and
what ``git rev-list --objects`` with that shallow file gives."""

from __future__ import annotations

import binascii
import random
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from dulwich.repo import Repo
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backends import git_fastpack, git_objects, git_reach
from backends.git_fastpack import PackPlan, plan_pack
from tests.unit.backends.test_git_fastpack import git

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs a git binary")

FILES = ("a.txt", "b.txt", "d/c.txt", "d/e/f.txt", "d/e/g.txt", "h/i.txt", "h/d/c.txt", "k/e/f.txt")
TEXTS = tuple(f"text {n}\n" for n in range(6))


def history(seed: int, commits: int) -> bytes:
    """A fast-import stream: ``commits`` commits over two branches with merges, each setting a few
    of ``FILES`` to one of a few ``TEXTS`` or deleting one (the same blobs and subtrees come back at
    other paths and in other commits), and annotated tags."""
    rng = random.Random(seed)
    out: list[str] = []
    marks: list[int] = []
    heads = {"main": 0, "side": 0}
    for n in range(1, commits + 1):
        branch = rng.choice(("main", "side")) if n > 2 else "main"
        parents = [heads[branch]] if heads[branch] else ([marks[-1]] if marks else [])
        other = heads["side" if branch == "main" else "main"]
        if other and other not in parents and rng.random() < 0.15:
            parents.append(other)
        out.append(f"commit refs/heads/{branch}\nmark :{n}\ncommitter A <a@example.com> {1600000000 + 60 * n} +0000\n"
                   f"data 3\nc{n % 10}\n")
        out += [f"from :{parents[0]}\n"] if parents else []
        out += [f"merge :{p}\n" for p in parents[1:]]
        for _ in range(rng.randint(1, 3)):
            path = rng.choice(FILES)
            if rng.random() < 0.15:
                out.append(f"D {path}\n")
            else:
                text = rng.choice(TEXTS)
                out.append(f"M 100644 inline {path}\ndata {len(text)}\n{text}")
        out.append("\n")
        heads[branch] = n
        marks.append(n)
        if rng.random() < 0.08:
            out.append(f"tag t{n}\nfrom :{n}\ntagger A <a@example.com> {1600000000 + 60 * n} +0000\ndata 2\nt\n")
    return "".join(out).encode() + b"done\n"


VARIANTS = {  # (git commands after the import, commits made after them: loose, outside the bitmap)
    "bitmap-graph": (["repack -adbq", "commit-graph write --reachable"], 6),
    "bitmap": (["repack -adbq"], 0),
    "nobitmap": (["repack -adq"], 4),
}


@pytest.fixture(scope="module", params=[(seed, variant) for seed in (1, 2) for variant in VARIANTS])
def repository(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> tuple[Path, list[bytes]]:
    seed, variant = request.param
    src = tmp_path_factory.mktemp("onewalk") / "r.git"
    git(src.parent, "init", "-q", "--bare", "-b", "main", str(src))
    git(src, "config", "pack.threads", "1")
    git(src, "fast-import", "--quiet", "--done", input=history(seed, 60))
    commands, later = VARIANTS[variant]
    for command in commands:
        git(src, *command.split())
    tip = git(src, "rev-parse", "main").strip()
    for n in range(later):  # (loose commits on main, each with a tree of its own)
        tree = git(src, "mktree", input=f"100644 blob {git(src, 'hash-object', '-w', '--stdin', input=f'loose {n}'.encode()).strip().decode()}\tl.txt\n".encode()).strip()
        tip = git(src, "commit-tree", tree.decode(), "-p", tip.decode(), "-m", f"l{n}").strip()
    git(src, "update-ref", "refs/heads/main", tip.decode())
    return src, git(src, "rev-list", "--all").split()


def sent_by(plan: PackPlan) -> set[bytes]:
    names = {binascii.hexlify(source.view.names[pos]) for source in plan.sources for pos in source.positions}
    return names | set(plan.whole)


def two_walks(self: git_reach.Walker, haves: Any, wants: Any) -> tuple[git_reach.Reached, git_reach.Reached]:
    """The counting before ``closures``: the haves' closure whole, then the wants' walk stopping at it."""
    have = self.closure(haves)
    return have, self.closure(wants, stop=have)


def counted(src: Path, wants: list[bytes], haves: list[bytes], boundary: list[bytes]) -> tuple[set[bytes], git_reach.Reached]:
    """What ``plan_pack`` sends, and the client's closure it counted, with no closure kept before."""
    git_fastpack._BITMAPS.drop_where(lambda _path: True)
    plan = plan_pack(Repo(str(src)).object_store, wants, haves, thin_pack=True, ofs_delta=True,
                     shallow_boundary=boundary)
    try:
        return sent_by(plan), plan.have
    finally:
        if plan.reader is not None:
            plan.reader.close()


def git_walk(src: Path, tips: list[bytes], boundary: list[bytes]) -> set[bytes]:
    """What git's ``rev-list --objects`` walks from ``tips`` with ``boundary`` as the shallow file."""
    if not tips:
        return set()
    shallow = src / "shallow"
    shallow.write_bytes(b"".join(b + b"\n" for b in boundary))
    try:
        out = git(src, "rev-list", "--objects", "--stdin", input=b"".join(t + b"\n" for t in tips))
    finally:
        shallow.unlink()
    return {line.split()[0] for line in out.splitlines()}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_one_walk_counts_what_two_walks_counted(repository: tuple[Path, list[bytes]], data: st.DataObject) -> None:
    src, commits = repository
    some = st.lists(st.sampled_from(commits), max_size=8, unique=True)
    haves = data.draw(some.filter(bool), label="haves")
    wants = data.draw(st.lists(st.sampled_from(commits), min_size=1, max_size=4, unique=True), label="wants")
    boundary = data.draw(some, label="boundary")
    with pytest.MonkeyPatch.context() as patch:
        if data.draw(st.booleans(), label="trees compared"):
            # (every tree compared with the large ones walked before, or with the last of its name;
            # names seen forgotten at every tree)
            patch.setattr(git_reach, "LARGE_TREE_BYTES", data.draw(st.sampled_from([1, 1 << 20]), label="large"))
            patch.setattr(git_reach, "MEDIUM_TREE_BYTES", 1)
            patch.setattr(git_reach, "SEEN_NAMES", 3)
        one, one_have = counted(src, wants, haves, boundary)
        patch.setattr(git_reach.Walker, "closures", two_walks)
        two, two_have = counted(src, wants, haves, boundary)
    assert one == two
    assert (one_have.bits, one_have.others) == (two_have.bits, two_have.others)
    assert one == git_walk(src, wants, boundary) - git_walk(src, haves, boundary)


# -- a hostile --deepen: each tree entry resolved once -----------------------------------------

LINE = 90
ROOT_FILES = 60


def line_stream() -> bytes:
    """A line of ``LINE`` commits, each changing one file of a root of ``ROOT_FILES``: each root tree
    is stored as a delta of the one beside it."""
    out = []
    for n in range(LINE):
        out.append(f"commit refs/heads/main\ncommitter A <a@example.com> {1600000000 + 60 * n} +0000\ndata 3\nc{n % 10}\n")
        changed = range(ROOT_FILES) if n == 0 else [n % ROOT_FILES]
        for f in changed:
            text = f"file {f} version {n}\n"
            out.append(f"M 100644 inline f{f:03}.txt\ndata {len(text)}\n{text}")
        out.append("\n")
    return "".join(out).encode() + b"done\n"


@pytest.fixture(scope="module")
def line(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("line") / "line.git"
    git(src.parent, "init", "-q", "--bare", "-b", "main", str(src))
    git(src, "fast-import", "--quiet", "--done", input=line_stream())
    git(src, "-c", "pack.threads=1", "repack", "-adbq", "--depth=8", "--window=10")
    git(src, "commit-graph", "write", "--reachable")
    return src


def test_a_hostile_deepen_resolves_each_tree_entry_once(line: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every third commit a shallow line and a have, each deepened by one (its parent wanted, and
    the parent's parent the new boundary); the reader keeps a few trees only, as 16 MiB keep 3,000
    of a large history's 5 KB trees: the wants' trees were resolved again, each delta chain."""
    commits = git(line, "rev-list", "main").split()
    haves = commits[1::3]
    news = commits[2::3]
    boundary = [*haves, *commits[3::3]]
    inflated: Counter[int] = Counter()
    real_entry = git_objects.PackObjectReader._entry

    def entry(self: Any, view: Any, mapped: Any, start: int) -> Any:
        inflated[start] += 1
        return real_entry(self, view, mapped, start)

    monkeypatch.setattr(git_objects, "BASE_CACHE_BYTES", 16 * ROOT_FILES * 48)
    monkeypatch.setattr(git_objects.PackObjectReader, "_entry", entry)
    sent, _ = counted(line, [commits[0], *news], haves, boundary)
    assert sent == git_walk(line, [commits[0], *news], boundary) - git_walk(line, haves, boundary)
    again = {start: times for start, times in inflated.items() if times > 1}
    assert not again, f"{len(again)} of {len(inflated)} pack entries inflated more than once"
