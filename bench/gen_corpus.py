"""Deterministic synthetic git history, written as a ``git fast-import`` stream.

Standard library only.  The same arguments always give the same bytes (and so
the same commit ids once imported), which is what makes benchmark corpora
comparable across machines and runs.  Usage::

    python3 bench/gen_corpus.py --commits 5000 --files 1500 --binaries 6 | git -C big.git fast-import --quiet
    python3 bench/gen_corpus.py --commits 50 --files 20 --binaries 0 --seed 7 | git -C small.git fast-import
    python3 bench/gen_corpus.py --extend 100 --from-ref refs/heads/main | git -C big.git fast-import

The history has nested directories, text files of mixed sizes (most 1-20 KB)
edited a little in each commit, a few 1 MB binaries replaced or partially
rewritten a few times, feature branches merged back with real merge commits,
a release branch, an unmerged ``dev`` branch and annotated tags every ~500
mainline commits.  With the default arguments it reproduces the corpus the
reference anchors (issue 7) were measured on.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO

ZERO_ID = b"0" * 40
AUTHORS = ("Alice Example", "Bob Builder", "Carol Coder", "Dan Dev", "Eve Engineer", "Frank Fixer")
TOP_DIRS = ("src", "lib", "docs", "tests", "tools", "web", "core", "contrib")
EXTENSIONS = (".py", ".py", ".c", ".h", ".txt", ".md", ".js")

Change = tuple[str, bytes | None]  # (path, new content or None to delete)
Parent = int | bytes | None  # a mark, a literal "from ..." line, or none


@dataclass(frozen=True)
class CorpusSpec:
    """The parameters of one generated history."""

    commits: int = 5000
    files: int = 1500
    binaries: int = 6
    seed: int = 42


class Writer:
    """A fast-import stream writer that produces text deterministically from one seed."""

    def __init__(self, seed: int, out: IO[bytes]) -> None:
        self.r = random.Random(seed)
        self.out = out
        letters = "abcdefghijklmnopqrstuvwxyz"
        r = self.r
        self.vocab = ["".join(r.choice(letters) for _ in range(r.randint(2, 10))) for _ in range(3000)]
        self.mark = 0
        self.t = 1420070400  # 2015-01-01

    # -- stream primitives ---------------------------------------------------------------
    def w(self, chunk: bytes) -> None:
        self.out.write(chunk)

    def data(self, payload: bytes) -> None:
        self.w(b"data %d\n" % len(payload))
        self.w(payload)
        self.w(b"\n")

    # -- content -------------------------------------------------------------------------
    def line(self) -> str:
        r = self.r
        ind = " " * (4 * r.choice([0, 0, 1, 1, 1, 2, 2, 3]))
        words = " ".join(r.choice(self.vocab) for _ in range(r.randint(3, 12)))
        kind = r.random()
        if kind < 0.25:
            return f"{ind}def {r.choice(self.vocab)}_{r.choice(self.vocab)}({words.replace(' ', ', ')[:60]}):\n"
        if kind < 0.45:
            return f"{ind}# {words}\n"
        if kind < 0.7:
            return f"{ind}{r.choice(self.vocab)} = {r.randint(0, 99999)}  # {words[:40]}\n"
        return f"{ind}{words}\n"

    def text(self, size: int) -> bytes:
        parts: list[str] = []
        n = 0
        while n < size:
            piece = self.line()
            parts.append(piece)
            n += len(piece)
        return "".join(parts).encode()

    def edit(self, content: bytes) -> bytes:
        r = self.r
        lines = content.decode().splitlines(keepends=True)
        for _ in range(r.randint(1, 4)):
            op = r.random()
            pos = r.randrange(len(lines) + 1)
            if op < 0.45 and lines:
                lines[min(pos, len(lines) - 1)] = self.line()
            elif op < 0.85:
                for _ in range(r.randint(1, 16)):
                    lines.insert(pos, self.line())
            elif len(lines) > 20:
                del lines[pos:pos + r.randint(1, 5)]
        return "".join(lines).encode()

    def who(self) -> bytes:
        name = self.r.choice(AUTHORS)
        self.t += self.r.randint(600, 36000)
        return f"{name} <{name.split()[0].lower()}@example.com> {self.t} +0000".encode()

    # -- commands ------------------------------------------------------------------------
    def commit(self, ref: str, parent: Parent, merge: int | None, changes: Iterable[Change], msg: str) -> int:
        self.mark += 1
        mark = self.mark
        self.w(b"commit " + ref.encode() + b"\n")
        self.w(b"mark :%d\n" % mark)
        who = self.who()
        self.w(b"author " + who + b"\n")
        self.w(b"committer " + who + b"\n")
        self.data(msg.encode())
        if isinstance(parent, bytes):
            self.w(parent + b"\n")
        elif parent is not None:
            self.w(b"from :%d\n" % parent)
        if merge is not None:
            self.w(b"merge :%d\n" % merge)
        for path, content in changes:
            if content is None:
                self.w(b"D " + path.encode() + b"\n")
            else:
                self.w(b"M 100644 inline " + path.encode() + b"\n")
                self.data(content)
        self.w(b"\n")
        return mark

    def delete_ref(self, ref: str) -> None:
        self.w(b"reset " + ref.encode() + b"\nfrom " + ZERO_ID + b"\n\n")

    def tag(self, name: str, mark: int, message: str) -> None:
        self.w(b"tag %s\nfrom :%d\ntagger %s\n" % (name.encode(), mark, self.who()))
        self.data(message.encode())

    def reset(self, ref: str, mark: int) -> None:
        self.w(b"reset %s\nfrom :%d\n\n" % (ref.encode(), mark))


def make_paths(r: random.Random, nfiles: int) -> list[str]:
    tops = TOP_DIRS[: max(2, min(8, nfiles // 10 or 2))]
    paths: set[str] = set()
    while len(paths) < nfiles:
        depth = r.choice([1, 2, 2, 3, 3, 3])
        parts = [r.choice(tops)] + [f"d{r.randint(0, 5)}" for _ in range(depth - 1)]
        ext = r.choice(EXTENSIONS)
        paths.add("/".join(parts) + f"/f{r.randint(0, 999)}{ext}")
    return sorted(paths)


class History:
    """The generator of a full history (see the module docstring)."""

    def __init__(self, spec: CorpusSpec, out: IO[bytes]) -> None:
        self.spec = spec
        self.g = Writer(spec.seed, out)
        self.r = self.g.r
        self.state: dict[str, bytes] = {}
        self.text_paths: list[str] = []
        self.bins: list[str] = []
        self.made = 0
        self.tip = 0

    def small_change(self, st: dict[str, bytes], pool: list[str]) -> list[Change]:
        changes: list[Change] = []
        for p in self.r.sample(pool, k=min(len(pool), self.r.choice([1, 1, 2, 2, 3, 4, 6]))):
            st[p] = self.g.edit(st[p])
            changes.append((p, st[p]))
        return changes

    def initial(self) -> None:
        r, g = self.r, self.g
        paths = make_paths(r, self.spec.files)
        for p in paths:
            size = int(min(60000, max(800, r.lognormvariate(8.9, 0.7))))  # median ~7.3 KB
            self.state[p] = g.text(size)
        self.bins = [f"assets/blob{i}.bin" for i in range(self.spec.binaries)]
        for b in self.bins:
            self.state[b] = r.randbytes(1 << 20)
        self.tip = g.commit("refs/heads/main", None, None, sorted(self.state.items()), "Initial import\n")
        self.made = 1
        self.text_paths = list(paths)

    def feature_branch(self) -> None:
        """k commits on a disjoint subset, j commits on main, then a merge."""
        r, g = self.r, self.g
        name = f"refs/heads/feature/{r.choice(g.vocab)}"
        fpool = r.sample(self.text_paths, k=min(len(self.text_paths), 12))
        mpool = [p for p in self.text_paths if p not in fpool]
        fstate = dict(self.state)
        ftip = self.tip
        for i in range(r.randint(3, 20)):
            ftip = g.commit(name, ftip, None, self.small_change(fstate, fpool), f"{name[11:]}: step {i}\n")
            self.made += 1
        for _ in range(r.randint(1, 10)):
            self.tip = g.commit("refs/heads/main", self.tip, None, self.small_change(self.state, mpool),
                                f"main work {self.made}\n")
            self.made += 1
        merged: list[Change] = []
        for p in fpool:
            if fstate[p] != self.state[p]:
                self.state[p] = fstate[p]
                merged.append((p, self.state[p]))
        self.tip = g.commit("refs/heads/main", self.tip, ftip, merged, f"Merge branch '{name[11:]}'\n")
        self.made += 1
        if r.random() < 0.8:  # most feature branches are deleted after merge
            g.delete_ref(name)

    def mainline_commit(self, roll: float) -> None:
        r, g, state = self.r, self.g, self.state
        ch = self.small_change(state, self.text_paths)
        if r.random() < 0.03:  # occasional large rewrite of one file
            p = r.choice(self.text_paths)
            state[p] = g.text(len(state[p]))
            ch = [c for c in ch if c[0] != p] + [(p, state[p])]
        if roll < 0.05:  # add a file
            p = make_paths(r, 1)[0].replace("/f", "/n")
            if p not in state:
                state[p] = g.text(r.randint(1000, 15000))
                self.text_paths.append(p)
                ch.append((p, state[p]))
        elif roll < 0.06 and len(self.text_paths) > 10:  # delete a file
            p = r.choice(self.text_paths)
            self.text_paths.remove(p)
            del state[p]
            ch = [c for c in ch if c[0] != p] + [(p, None)]
        if self.bins and r.random() < 3.0 * len(self.bins) / self.spec.commits:  # ~3 rewrites per binary
            b = r.choice(self.bins)
            if r.random() < 0.5:
                state[b] = r.randbytes(1 << 20)
            else:
                off = r.randrange(0, (1 << 20) - 65536)
                state[b] = state[b][:off] + r.randbytes(65536) + state[b][off + 65536:]
            ch.append((b, state[b]))
        self.tip = g.commit("refs/heads/main", self.tip, None, ch,
                            f"Change {self.made}: {' '.join(r.sample(g.vocab, 5))}\n")
        self.made += 1

    def side_branch(self, ref: str, count: int, pool: list[str], msg: str) -> None:
        tip = self.tip
        st = dict(self.state)
        for i in range(count):
            tip = self.g.commit(ref, tip, None, self.small_change(st, pool), f"{msg} {i}\n")
            self.made += 1

    def generate(self) -> None:
        commits = self.spec.commits
        self.initial()
        release_done = dev_done = False
        tagno = 0
        while self.made < commits:
            roll = self.r.random()
            if roll < 0.04 and commits - self.made > 40:
                self.feature_branch()
                continue
            self.mainline_commit(roll)
            if self.made >= commits // 2 and not release_done:
                release_done = True
                self.side_branch("refs/heads/release-1.x", min(25, commits // 20), self.text_paths[:50],
                                 "release fix")
            if self.made >= commits - 30 and not dev_done and commits > 100:
                dev_done = True
                self.side_branch("refs/heads/dev", 15, self.text_paths, "wip")
            if self.made // 500 > tagno:
                tagno = self.made // 500
                self.g.tag(f"v0.{tagno}", self.tip, f"Release v0.{tagno}\n")
        self.g.reset("refs/heads/main", self.tip)


def write_history(spec: CorpusSpec, out: IO[bytes]) -> None:
    """Write the whole history of ``spec`` as a fast-import stream."""
    History(spec, out).generate()


def write_extension(count: int, out: IO[bytes], seed: int = 42, from_ref: str = "refs/heads/main") -> None:
    """Append ``count`` linear commits on top of ``from_ref`` (the client side of the push case)."""
    g = Writer(seed + 1000, out)
    r = g.r
    g.t = 1800000000
    parent: Parent = b"from " + from_ref.encode() + b"^0"
    for i in range(count):
        path = f"newwork/d{i % 7}/file{i}.txt"
        parent = g.commit(from_ref, parent, None, [(path, g.text(r.randint(2000, 12000)))], f"pushed commit {i}\n")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--commits", type=int, default=5000)
    ap.add_argument("--files", type=int, default=1500)
    ap.add_argument("--binaries", type=int, default=6)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--extend", type=int, default=0, help="write N linear commits on top of --from-ref instead")
    ap.add_argument("--from-ref", default="refs/heads/main")
    a = ap.parse_args(argv)
    out = sys.stdout.buffer
    if a.extend:
        write_extension(a.extend, out, a.seed, a.from_ref)
    else:
        write_history(CorpusSpec(a.commits, a.files, a.binaries, a.seed), out)
    out.flush()


if __name__ == "__main__":
    main()
