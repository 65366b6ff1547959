"""A seeded random sequence of counted packs over one repository, each checked against git's own
walk (``git rev-list --objects`` with the boundary as a shallow file): the closures kept between
requests (by their tips and boundary, or by their tips alone when every tip is a boundary commit;
a clone's with its tags, also without them), the tree entries a walk has seen (forgotten past a
bound, here a tiny one), each tree read as where it differs from the last of its name (with one
seed), and haves found in the packs' index views, while the repository grows
(loose objects, a second pack) and is repacked between requests.

The requests are those of shallow clones and their deepens (the clone's tips as haves, their
parents wanted and added to the boundary), of other clients naming the same tips with another
boundary or none, of a clone of the same commits without their tags fetching them, and stray ones: haves that are trees, blobs, tags, or unknown."""

from __future__ import annotations

import binascii
import random
import shutil
from pathlib import Path

import pytest
from dulwich.repo import Repo

from backends import git_reach
from backends.git_fastpack import PackPlan, plan_pack
from tests.unit.backends.test_git_fastpack import git

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs a git binary")

ROUNDS = 70


def commit(work: Path, rng: random.Random, message: str) -> None:
    for _ in range(rng.randint(1, 3)):
        d = work / f"d{rng.randrange(8)}" / "s"
        d.mkdir(parents=True, exist_ok=True)
        (d.parent / "f.txt").write_text(f"{message} {rng.random()}\n")
        if rng.random() < 0.3:
            (d / "g.txt").write_text(f"{message}\n")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", message)


def grow(work: Path, rng: random.Random, commits: int) -> None:
    """Commits on random branches, a new branch, a merge, and annotated tags of a commit, a tree,
    a blob and another tag."""
    for n in range(commits):
        name = f"{n}-{rng.randrange(1 << 30)}"
        branches = git(work, "for-each-ref", "--format=%(refname:short)", "refs/heads").decode().split()
        branch = rng.choice(branches)
        git(work, "checkout", "-q", branch)
        roll = rng.random()
        if roll < 0.1:
            git(work, "branch", f"b{name}", rng.choice(all_commits(work)))
        elif roll < 0.2 and len(branches) > 1:
            other = rng.choice([b for b in branches if b != branch])
            git(work, "merge", "-q", "--no-edit", "-s", "ours", other)
        else:
            commit(work, rng, name)
        if rng.random() < 0.2:
            target = rng.choice(all_commits(work))
            blob = git(work, "ls-tree", "-r", target).split()[2].decode()
            tags = git(work, "tag").decode().split()
            spec = rng.choice([target, f"{target}^{{tree}}", blob, *(tags[-1:] if tags else [])])
            git(work, "tag", "-a", "-m", name, f"t{name}", spec)


def all_commits(path: Path) -> list[str]:
    return git(path, "rev-list", "--all").decode().split()


def walk_of(src: Path, tips: list[str], boundary: list[str]) -> set[str]:
    """Every object ``tips`` reach in a repository whose shallow commits are ``boundary`` (git's)."""
    if not tips:
        return set()
    shallow = src / "shallow"
    shallow.write_text("".join(f"{b}\n" for b in boundary))
    try:
        out = git(src, "rev-list", "--objects", "--stdin", input="".join(f"{t}\n" for t in tips).encode())
    finally:
        shallow.unlink()
    return {line.split()[0] for line in out.decode().splitlines() if line}


def sent(plan: PackPlan) -> set[str]:
    names = {binascii.hexlify(s.view.names[p]).decode() for s in plan.sources for p in s.positions}
    return names | {w.decode() for w in plan.whole}


def parents(src: Path, commit: str) -> list[str]:
    return git(src, "rev-list", "--parents", "-n1", commit).decode().split()[1:]


@pytest.mark.parametrize("object_format", ["sha1", "sha256"])
@pytest.mark.parametrize("seed", [1, 2])
def test_random_shallow_requests_send_what_git_s_walk_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           seed: int, object_format: str) -> None:
    monkeypatch.setattr(git_reach, "KEEP_CLOSURE_STEPS", 1)  # (every walk kept)
    monkeypatch.setattr(git_reach, "SEEN_NAMES", 5)  # (forgotten at every tree)
    if seed == 2:  # (every tree compared with the last one of its name, where it differs parsed)
        monkeypatch.setattr(git_reach, "MEDIUM_TREE_BYTES", 1)
    rng = random.Random(seed)
    work, src = tmp_path / "work", tmp_path / "src.git"
    git(tmp_path, "init", "-q", "-b", "main", f"--object-format={object_format}", str(work))
    commit(work, rng, "root")
    grow(work, rng, 25)
    git(tmp_path, "clone", "-q", "--mirror", str(work), str(src))
    git(src, "repack", "-adbq")
    git(work, "remote", "add", "src", str(src))
    clones: list[tuple[list[str], list[str]]] = []  # (wants, boundary) of the requests without haves
    kept_hits = 0
    real_kept = git_reach.PackBitmap.kept_closure

    def kept_closure(self: git_reach.PackBitmap, key: object) -> object:
        nonlocal kept_hits
        found = real_kept(self, key)  # type: ignore[arg-type]
        kept_hits += found is not None
        return found

    monkeypatch.setattr(git_reach.PackBitmap, "kept_closure", kept_closure)
    for n in range(ROUNDS):
        roll = rng.random()
        if roll < 0.06:  # pushed: loose objects, then, some rounds later, a second pack or a new bitmap
            grow(work, rng, rng.randint(1, 3))
            git(work, "push", "-q", "--mirror", "src")
            continue
        if roll < 0.09:
            git(src, "repack", "-dq", "--no-write-bitmap-index")
            continue
        if roll < 0.11:
            git(src, "repack", "-adbq")
            continue
        kinds = dict(line.split() for line in git(
            src, "cat-file", "--batch-all-objects", "--batch-check=%(objectname) %(objecttype)").decode().splitlines())
        commits = [o for o, k in kinds.items() if k == "commit"]
        refs = git(src, "for-each-ref", "--format=%(objectname)").decode().split()
        heads = git(src, "for-each-ref", "--format=%(objectname)", "refs/heads").decode().split()
        style = rng.random()
        haves: list[str] = []
        if style < 0.3 or not clones:  # a shallow clone: its tips' commits are its boundary
            tips = heads if rng.random() < 0.6 else refs  # (branches only, or tags too)
            wants = rng.sample(tips, rng.randint(1, min(5, len(tips))))
            peeled = git(src, "rev-parse", *[f"{w}^{{}}" for w in wants]).decode().split()
            boundary = [p for p in peeled if kinds.get(p) == "commit"]
            if rng.random() < 0.3:
                boundary += rng.sample(commits, 2)
        elif style < 0.6:  # its deepen: its tips (or their commits) as haves, their parents wanted
            tips, _ = rng.choice(clones)
            tipped = [t for t in git(src, "rev-parse", *[f"{t}^{{}}" for t in tips]).decode().split()
                      if kinds.get(t) == "commit"]
            grown = {p for c in tipped for p in parents(src, c)}
            haves = tips if rng.random() < 0.5 else tipped
            wants = sorted(set(tipped) | grown) or tips
            boundary = sorted(set(tipped) | grown | (set(rng.sample(commits, 2)) if rng.random() < 0.3 else set()))
            if rng.random() < 0.25:  # or a client of those commits without the tags: its fetch of them
                haves, wants, boundary = tipped, tips, tipped
        elif style < 0.8:  # another client of the same tips: another boundary, or none
            tips, boundary = rng.choice(clones)
            haves = tips
            wants = rng.sample(refs, rng.randint(1, 3))
            boundary = rng.choice([sorted(set(boundary) | set(rng.sample(commits, 2))), rng.sample(commits, 2), []])
        else:  # anything: haves that are no commits, or unknown
            wants = rng.sample(refs, rng.randint(1, 3))
            haves = rng.sample(sorted(kinds), rng.randint(1, 4))
            if rng.random() < 0.5:
                haves.append(binascii.hexlify(rng.randbytes(len(commits[0]) // 2)).decode())
            boundary = rng.sample(commits, rng.randint(0, 3))
        boundary = sorted(set(boundary))
        if not haves:
            clones.append((wants, boundary))
        expected = (walk_of(src, wants, boundary)
                    - walk_of(src, [h for h in haves if h in kinds], boundary))
        plan = plan_pack(Repo(str(src)).object_store, [w.encode() for w in wants], [h.encode() for h in haves],
                         thin_pack=True, ofs_delta=True, shallow_boundary=[b.encode() for b in boundary])
        if plan.reader is not None:
            plan.reader.close()
        got = sent(plan)
        assert got == expected, (f"round {n}: wants {wants} haves {haves} boundary {boundary}: "
                                 f"missing {sorted(expected - got)[:5]}, more {sorted(got - expected)[:5]}")
    assert kept_hits, "some walks were kept ones"
