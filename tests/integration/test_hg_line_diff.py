"""hgwire's diffs cut where ``hg diff``'s do (``backends.hg.linediff``): 400 seeded pairs of texts
drawn from a few repeated lines (where equally good alignments abound), each written as a file of
one repository; one real ``hg diff`` prints them all and every file's hunks must equal
``unified_hunks``' byte for byte.  Many of the pairs are cut otherwise by difflib, so a return
to a generic longest-match diff fails here."""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path

from backends.hg.linediff import blocks, generic_runs, split_lines
from backends.hg.web import unified_hunks
from tests.conftest import VENV_BIN, Client

PAIRS = 400


def _pair(rng: random.Random) -> tuple[bytes, bytes]:
    alphabet = [b"x\n", b"y\n", b"}\n", b"\n", b"a\n", b"b\n", b"{\n", b"    return\n"][: rng.randint(2, 8)]
    old = [rng.choice(alphabet) for _ in range(rng.randint(0, 80))]
    new = list(old)
    for _ in range(rng.randint(1, 10)):
        at = rng.randint(0, len(new))
        roll = rng.random()
        if roll < 0.4 or not new:
            new.insert(at, rng.choice(alphabet))
        elif roll < 0.8:
            del new[min(at, len(new) - 1)]
        else:
            new[min(at, len(new) - 1)] = rng.choice(alphabet)
    tail_old = b"end" if rng.random() < 0.2 else b""
    tail_new = b"end" if rng.random() < 0.2 else b""
    return b"".join(old) + tail_old, b"".join(new) + tail_new


def _hg_hunks(output: bytes) -> dict[str, bytes]:
    """Each file's hunks (everything after its ``+++`` line) in ``hg diff --nodates``' output."""
    found: dict[str, bytes] = {}
    for part in output.split(b"diff -r ")[1:]:
        header, _, rest = part.partition(b"\n")
        name = header.split(b" ", 1)[1].decode()
        _old, _new, hunks = rest.split(b"\n", 2)
        found[name] = hunks
    return found


def test_diffs_cut_as_hg_diff_cuts_them(client: Client, tmp_path: Path) -> None:
    rng = random.Random(20261204)
    pairs = {f"f{n:03d}": _pair(rng) for n in range(PAIRS)}
    repo = tmp_path / "lines"
    client.hg("init", repo)
    for name, (old, _new) in pairs.items():
        (repo / name).write_bytes(old)
    client.hg("commit", "-q", "-A", "-m", "old", cwd=repo)
    for name, (_old, new) in pairs.items():
        (repo / name).write_bytes(new)
    output = subprocess.run([os.path.join(VENV_BIN, "hg"), "diff", "--nodates"], cwd=repo, env=client.env,
                            capture_output=True, check=True).stdout  # bytes: the texts end without newlines
    theirs = _hg_hunks(output)
    differ_from_difflib = 0
    for name, (old, new) in pairs.items():
        ours = b"".join(unified_hunks(old, new))
        assert ours == theirs.get(name, b""), (name, old, new)
        a, b = split_lines(old), split_lines(new)
        generic = [tuple(run) for run in generic_runs(a, b)] + [(len(a), len(a), len(b), len(b))]
        differ_from_difflib += [r for r in blocks(a, b) if r[0] < r[1]] != [r for r in generic if r[0] < r[1]]
    assert differ_from_difflib > PAIRS // 10
