"""``backends.git_diff``: changes placed where git's own diff places them, checked against ``git
diff --no-index`` on seeded random texts full of repeated lines (small and large: the cleanup of
lines with many equals, the search's cost limits), and ``git blame``'s cut of the common end."""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from backends import git_diff
from backends.git_diff import blame_blocks, blocks, unified_hunks
from backends.hg import linediff
from backends.hg.linediff import split_lines

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs a git binary")

REPEATED = [b"\n", b"}\n", b"{\n", b"    return x;\n", b"  }\n", b"\tif (x) {\n", b"\t}\n", b"    pass\n", b"end\n"]
ENV = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@example.com",
       "GIT_COMMITTER_NAME": "a", "GIT_COMMITTER_EMAIL": "a@example.com"}


def _changed(found: list[tuple[int, int, int, int]]) -> tuple[set[int], set[int]]:
    """The old lines deleted and the new lines added between the equal runs."""
    deleted: set[int] = set()
    added: set[int] = set()
    a_end = b_end = 0
    for a1, a2, b1, b2 in found:
        deleted.update(range(a_end, a1))
        added.update(range(b_end, b1))
        a_end, b_end = a2, b2
    return deleted, added


def _git_changed(tmp: Path, old: bytes, new: bytes) -> tuple[set[int], set[int]]:
    """The lines ``git diff`` (three lines of context: no cut of the common end) marks."""
    (tmp / "old").write_bytes(old)
    (tmp / "new").write_bytes(new)
    out = subprocess.run(["git", "diff", "--no-index", "--no-color", "-U3", str(tmp / "old"), str(tmp / "new")],
                         capture_output=True, env={**ENV, "HOME": str(tmp)}, check=False).stdout.decode("latin-1")
    deleted: set[int] = set()
    added: set[int] = set()
    i = j = -1
    for line in out.split("\n"):
        header = re.match(r"@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@", line)
        if header:
            i = int(header[1]) - (1 if header[2] != "0" else 0)
            j = int(header[3]) - (1 if header[4] != "0" else 0)
        elif i < 0 or line.startswith("\\"):
            continue
        elif line.startswith("-"):
            deleted.add(i)
            i += 1
        elif line.startswith("+"):
            added.add(j)
            j += 1
        elif line.startswith(" "):
            i += 1
            j += 1
    return deleted, added


def _texts(rng: random.Random, size: int, edits: int, burst: int) -> tuple[bytes, bytes]:
    pool = REPEATED + [b"line %d\n" % rng.randint(0, 30) for _ in range(6)]
    old = [rng.choice(pool) for _ in range(rng.randint(0, size))]
    new = list(old)
    for _ in range(rng.randint(1, edits)):
        at, roll = rng.randint(0, len(new)), rng.random()
        if roll < 0.4:
            new[at:at] = [rng.choice(pool) for _ in range(rng.randint(1, burst))]
        elif roll < 0.8 and new:
            del new[at:at + rng.randint(1, 4)]
        elif new:
            new[min(at, len(new) - 1)] = rng.choice(pool)
    if rng.random() < 0.3:
        new = [rng.choice(pool) for _ in range(rng.randint(0, size))]  # another text altogether
    newer = b"".join(new)
    return b"".join(old), newer.rstrip(b"\n") if rng.random() < 0.1 else newer


@pytest.mark.parametrize(("seed", "cases", "size", "edits", "burst"), [
    (1, 300, 60, 8, 5),         # small texts
    (2, 12, 3000, 300, 40),     # large ones: lines with many equals set aside, the costly searches cut short
])
def test_changes_are_where_git_diff_puts_them(tmp_path: Path, seed: int, cases: int, size: int, edits: int,
                                              burst: int) -> None:
    rng = random.Random(seed)
    for case in range(cases):
        old, new = _texts(rng, size, edits, burst)
        old_lines, new_lines = split_lines(old), split_lines(new)
        found = blocks(old_lines, new_lines)
        assert found[-1] == (len(old_lines), len(old_lines), len(new_lines), len(new_lines))
        for a1, a2, b1, b2 in found:
            assert old_lines[a1:a2] == new_lines[b1:b2]
        assert _changed(found) == _git_changed(tmp_path, old, new), case


def test_blame_cuts_the_common_end_first_as_git_blame_does(tmp_path: Path) -> None:
    """Past 1 KiB of common end, git blame compares only what comes before it: the blank line
    among the changed lines at the start has 41 equals in the whole texts (set aside among the
    changes) but one in what is compared (kept, so matched), as ``git blame`` says."""
    tail = b"".join(b"    long_common_line_%03d(with, several, arguments, to, fill, it)\n" % n for n in range(20))
    tail += b"".join(b"\n    later_common_line_%03d(with, several, arguments, too)\n" % n for n in range(40))
    old = b"one\ntwo\nthree\n\nfour\nfive\nsix\nseven\n" + tail
    new = b"uno\ndos\n\ntres\ncuatro\ncinco\nseis\nsiete\nocho\nnueve\n" + tail
    work = tmp_path / "repo"
    env = {**ENV, "HOME": str(tmp_path)}
    subprocess.run(["git", "init", "-q", str(work)], check=True, env=env)
    (work / "f").write_bytes(old)
    subprocess.run(["git", "-C", str(work), "add", "f"], check=True, env=env)
    subprocess.run(["git", "-C", str(work), "commit", "-qm", "old"], check=True, env=env)
    (work / "f").write_bytes(new)
    subprocess.run(["git", "-C", str(work), "commit", "-qam", "new"], check=True, env=env)
    porcelain = subprocess.run(["git", "-C", str(work), "blame", "--porcelain", "HEAD", "--", "f"],
                               capture_output=True, check=True, env=env).stdout.decode()
    first = subprocess.run(["git", "-C", str(work), "rev-parse", "HEAD~1"], capture_output=True, check=True,
                           env=env).stdout.decode().strip()
    from_old = {int(m[2]) - 1 for m in re.finditer(r"^([0-9a-f]{40}) \d+ (\d+)", porcelain, re.MULTILINE)
                if m[1] == first}

    found = blame_blocks(old, new)
    kept = {b1 + k for _a1, a2, b1, b2 in found for k in range(b2 - b1)}
    assert kept == from_old
    assert 2 in kept  # the blank line: matched
    assert 2 not in {b1 + k for _a1, _a2, b1, b2 in blocks(split_lines(old), split_lines(new))
                     for k in range(b2 - b1)}  # as git diff with context leaves it changed


def test_hunks_are_git_diffs_byte_for_byte(tmp_path: Path) -> None:
    """Headers (a count of one left out, an empty side's start the line before), the default
    function line (a line starting with a letter, ``_`` or ``$``, 80 bytes at most, carried to
    the next hunk when none is nearer), hunks joined across six lines or fewer, and a last line
    without its end."""
    rng = random.Random(5)
    functions = [b"def foo():\n", b"class A:\n", b"_private = 1\n", b"$var\n",
                 b"function_with_a_long_name(" + b"argument, " * 12 + b")  \n"]
    for case in range(300):
        old, new = _texts(rng, 200, 10, 5)
        old_lines = split_lines(old)
        for _ in range(rng.randint(0, 6)):  # function lines among the repeated ones
            old_lines.insert(rng.randint(0, len(old_lines)), rng.choice(functions))
        old = b"".join(old_lines).rstrip(b"\n") if rng.random() < 0.1 else b"".join(old_lines)
        (tmp_path / "old").write_bytes(old)
        (tmp_path / "new").write_bytes(new)
        out = subprocess.run(["git", "diff", "--no-index", "--no-color", str(tmp_path / "old"), str(tmp_path / "new")],
                             capture_output=True, env={**ENV, "HOME": str(tmp_path)}, check=False).stdout
        at = out.find(b"\n@@ ")
        assert b"".join(unified_hunks(old, new)) == (out[at + 1:] if at >= 0 else b""), case


def test_past_its_step_budget_the_comparison_is_mercurial_s(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unlike texts of many repeated lines would hold a page for minutes: past ``MAX_STEPS`` the
    answer is hg's matching (valid runs, changes maybe placed elsewhere)."""
    rng = random.Random(3)
    old = [b"%d\n" % rng.randint(0, 9) for _ in range(400)]
    new = [b"%d\n" % rng.randint(0, 9) for _ in range(400)]
    monkeypatch.setattr(git_diff, "MAX_STEPS", 1000)
    found = blocks(old, new)
    assert found == linediff.blocks(old, new)
    monkeypatch.undo()
    assert blocks(old, new) != found  # within the budget, git's own answer
