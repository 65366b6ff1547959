"""hgweb's annotate built on the stored deltas (``backends.hg.linediff.hinted_blocks``), side by side
with the real ``hg serve`` on a seeded history made to tempt a shortcut into another answer than
hg's: files drawn from a few repeated lines, edits of several hunks at once, blocks of lines moved
and duplicated (where a delta keeps other copies than hg's line matching would), merges, a rename and
a copy edited afterwards, a file emptied and refilled, a last line without its newline, and a file
long enough (1,200 lines) that the popular-line threshold and the proof of the longest run matter."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Client, RunningServer, hg_history_served
from tests.integration.test_hg_archive import _hg_serve
from tests.integration.test_hg_http import raw

WORDS = [b"{\n", b"}\n", b"\n", b"return x\n", b"x = 1\n"]


def _lines(rng: random.Random, count: int, stamp: int) -> list[bytes]:
    return [rng.choice(WORDS) if rng.random() < 0.5 else b"line %d.%d\n" % (stamp, n) for n in range(count)]


def _edit(rng: random.Random, text: bytes, stamp: int) -> bytes:
    lines = text.splitlines(True)
    if lines and not lines[-1].endswith(b"\n"):
        lines[-1] += b"\n"
    for _ in range(rng.randint(1, 5)):  # several hunks
        at = rng.randint(0, len(lines))
        roll = rng.random()
        if roll < 0.3 or not lines:
            lines[at:at] = _lines(rng, rng.randint(1, 3), stamp)
        elif roll < 0.5:
            del lines[at:at + rng.randint(1, 3)]
        elif roll < 0.7:  # a block moved
            first = rng.randrange(len(lines))
            block = lines[first:first + rng.randint(1, 6)]
            del lines[first:first + len(block)]
            to = rng.randint(0, len(lines))
            lines[to:to] = block
        elif roll < 0.85:  # a block duplicated
            first = rng.randrange(len(lines))
            to = rng.randint(0, len(lines))
            lines[to:to] = lines[first:first + rng.randint(1, 6)]
        else:
            lines[min(at, len(lines) - 1)] = rng.choice(WORDS)
    text = b"".join(lines)
    return text[:-1] if text and rng.random() < 0.15 else text  # no last newline


def _history(client: Client, repo: Path) -> None:
    rng = random.Random(7331)
    hg = ("-R", str(repo))
    client.hg("init", str(repo))
    stamp = 1_700_000_000

    def commit(message: str) -> None:
        nonlocal stamp
        stamp += 100
        client.hg("commit", "-q", "-A", *hg, "-u", f"u{stamp % 5}", "-d", f"{stamp} 0", "-m", message)

    names = ["a.txt", "b.txt", "long.txt"]
    (repo / "a.txt").write_bytes(b"".join(_lines(rng, 15, 0)))
    (repo / "b.txt").write_bytes(b"".join(_lines(rng, 8, 0)))
    (repo / "long.txt").write_bytes(b"".join(_lines(rng, 1200, 0)))
    commit("start")
    client.hg("branch", "-q", *hg, "side")
    commit("side")
    for round_ in range(3):
        for branch in ("side", "default"):
            client.hg("update", "-q", "-C", *hg, branch)
            for _ in range(3):
                for name in rng.sample(names, 2):
                    (repo / name).write_bytes(_edit(rng, (repo / name).read_bytes(), stamp))
                commit(f"{branch} edit")
        client.hg("update", "-q", "-C", *hg, "default")
        client.hg("merge", "-q", "--tool", ":local", *hg, "side")
        for name in names:  # each side's edits, some of the other's lines kept too
            (repo / name).write_bytes(_edit(rng, (repo / name).read_bytes(), stamp))
        commit(f"merge {round_}")
    client.hg("mv", "-q", *hg, str(repo / "a.txt"), str(repo / "moved.txt"))
    (repo / "moved.txt").write_bytes(_edit(rng, (repo / "moved.txt").read_bytes(), stamp))
    client.hg("copy", "-q", *hg, str(repo / "long.txt"), str(repo / "copy.txt"))
    (repo / "copy.txt").write_bytes(_edit(rng, (repo / "copy.txt").read_bytes(), stamp))
    commit("rename, copy and edit")
    (repo / "b.txt").write_bytes(b"")
    commit("emptied")
    for _ in range(3):
        for name in ("b.txt", "moved.txt", "copy.txt", "long.txt"):
            (repo / name).write_bytes(_edit(rng, (repo / name).read_bytes(), stamp))
        commit("after")


@pytest.fixture
def served(make_server: Callable[..., RunningServer], client: Client) -> tuple[RunningServer, Path]:
    return hg_history_served(make_server, client, "deltas", _history)


def test_annotations_over_stored_deltas_are_hg_serve_s(served: tuple[RunningServer, Path], client: Client) -> None:
    server, repo = served
    revs = client.hg("log", "-R", str(repo), "-T", "{rev}\n").stdout.split()
    pages = []
    for rev in revs[::2] + [revs[0]]:
        files = client.hg("files", "-R", str(repo), "-r", rev, "-T", "{path}\\n").stdout.split()
        pages += [f"json-annotate/{rev}/{name}" for name in files]
    pages += ["annotate/tip/long.txt?style=raw", "json-annotate/tip/copy.txt?ignorewsamount=1"]
    origins: set[str] = set()
    with _hg_serve(client, repo) as port:
        for page in pages:
            ours = raw(server.port("http"), "GET", f"/deltas/{page}")
            theirs = raw(port, "GET", f"/{page}")
            assert (ours.status, ours.body) == (theirs.status, theirs.body), page
            if page.startswith("json-annotate/tip/"):
                origins |= {line["node"] for line in json.loads(ours.body)["annotate"]}
    assert len(origins) > 10  # lines from many changesets
