"""hgweb's annotate pages (``json-annotate/REV/PATH``, ``annotate/REV/PATH?style=raw`` and the page
for browsers) side by side with the real ``hg serve``: every file at every revision of a seeded
history byte for byte.

The history is made to be hard on an annotation: files edited on two named branches drawn from a
few repeated lines (where equally good alignments abound, so the line matching must be hg's),
merges that keep lines of both sides (the second parent wins where both match), a rename and a
copy then edited (lines keep their source's changeset and path), the same file revision made on
both branches (its linkrev names the other branch: hg names the changeset through the ancestors),
a binary file, a file without a last newline and an emptied file."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import LOOPBACK, Client, RunningServer, hg_history_served
from tests.integration.test_hg_archive import _hg_serve
from tests.integration.test_hg_http import raw

WORDS = [b"{\n", b"}\n", b"\n", b"return x\n", b"x = 1\n", b"pass\n"]


def _edit(rng: random.Random, text: bytes, stamp: int) -> bytes:
    lines = text.splitlines(True)
    for _ in range(rng.randint(1, 4)):
        at = rng.randint(0, len(lines))
        roll = rng.random()
        fresh = rng.choice(WORDS) if rng.random() < 0.6 else b"line %d.%d\n" % (stamp, at)
        if roll < 0.45 or not lines:
            lines.insert(at, fresh)
        elif roll < 0.75:
            del lines[min(at, len(lines) - 1)]
        else:
            lines[min(at, len(lines) - 1)] = fresh
    return b"".join(lines)


def _blend(rng: random.Random, ours: bytes, theirs: bytes) -> bytes:
    """A merge's text: runs of lines of each side, in order."""
    a, b = ours.splitlines(True), theirs.splitlines(True)
    cut_a, cut_b = rng.randint(0, len(a)), rng.randint(0, len(b))
    return b"".join(a[:cut_a] + b[cut_b:]) if rng.random() < 0.5 else b"".join(b[:cut_b] + a[cut_a:])


def _history(client: Client, repo: Path) -> None:
    rng = random.Random(4242)
    hg = ("-R", str(repo))
    client.hg("init", str(repo))
    texts = {f"f{n}.txt": b"".join(rng.choice(WORDS) for _ in range(12)) for n in range(3)}
    stamp = 1_700_000_000

    def commit(message: str) -> None:
        nonlocal stamp
        stamp += 100
        client.hg("commit", "-q", "-A", *hg, "-u", f"u{stamp % 7}", "-d", f"{stamp} 0", "-m", message)

    def write(name: str, data: bytes) -> None:
        (repo / name).write_bytes(data)

    for name, data in texts.items():
        write(name, data)
    write("bin.dat", b"\0\1\2")
    commit("start")
    client.hg("branch", "-q", *hg, "side")
    write("f0.txt", _edit(rng, texts["f0.txt"], stamp))
    commit("side starts")
    for round_ in range(3):
        for branch in ("side", "default"):
            client.hg("update", "-q", "-C", *hg, branch)
            for _ in range(3):
                for name in rng.sample(sorted(texts), 2):
                    write(name, _edit(rng, (repo / name).read_bytes(), stamp))
                commit(f"{branch} edit")
        if round_ == 1:  # the same file revision made on both branches
            for branch in ("side", "default"):
                client.hg("update", "-q", "-C", *hg, branch)
                write("same.txt", b"made twice\n{\n}\n")
                commit(f"same on {branch}")
        client.hg("update", "-q", "-C", *hg, "default")
        side = {name: client.hg("cat", *hg, "-r", "side", str(repo / name)).stdout.encode() for name in texts}
        client.hg("merge", "-q", "--tool", ":local", *hg, "side")
        for name in texts:
            write(name, _blend(rng, (repo / name).read_bytes(), side[name]))
        commit(f"merge {round_}")
    client.hg("mv", "-q", *hg, str(repo / "f1.txt"), str(repo / "moved.txt"))
    write("moved.txt", _edit(rng, (repo / "moved.txt").read_bytes(), stamp))
    commit("rename and edit")
    client.hg("copy", "-q", *hg, str(repo / "f2.txt"), str(repo / "copy.txt"))
    write("copy.txt", _edit(rng, (repo / "copy.txt").read_bytes(), stamp) + b"no end")
    write("same.txt", b"made twice\n{\nchanged\n}\n")
    commit("copy and edit")
    write("f0.txt", b"")
    commit("emptied")


@pytest.fixture
def served(make_server: Callable[..., RunningServer], client: Client) -> tuple[RunningServer, Path]:
    return hg_history_served(make_server, client, "ann", _history)


def test_every_annotation_is_what_hg_serve_writes(served: tuple[RunningServer, Path], client: Client) -> None:
    server, repo = served
    pages = []
    revs = client.hg("log", "-R", str(repo), "-T", "{rev}\n").stdout.split()
    for rev in revs:
        files = client.hg("files", "-R", str(repo), "-r", rev, "-T", "{path}\\n").stdout.split()
        pages += [f"json-annotate/{rev}/{name}" for name in files]
        pages += [f"annotate/{rev}/{name}?style=raw" for name in files[:2]]
    assert len(revs) > 25 and len(pages) > 150
    origins: set[tuple[str, str]] = set()
    with _hg_serve(client, repo) as port:
        for page in pages:
            ours = raw(server.port("http"), "GET", f"/ann/{page}")
            theirs = raw(port, "GET", f"/{page}")
            assert (ours.status, ours.body) == (theirs.status, theirs.body), page
            assert ours.headers["content-type"].lower() == theirs.headers["content-type"].lower(), page
            if page.startswith("json-"):
                origins |= {(line["node"], line["abspath"]) for line in json.loads(ours.body)["annotate"]}
    # the test is worth its name: lines come from many changesets, through the rename and the copy
    assert len({node for node, _ in origins}) > 20
    assert {"f1.txt", "f2.txt", "moved.txt", "copy.txt"} <= {path for _, path in origins}


def test_the_page_for_browsers_shows_each_line_s_origin(served: tuple[RunningServer, Path]) -> None:
    server, _repo = served
    answer = raw(server.port("http"), "GET", "/ann/annotate/tip/moved.txt", {"Accept": "text/html"})
    assert answer.status == 200 and answer.headers["content-type"] == "text/html; charset=UTF-8"
    body = answer.body.decode()
    data = json.loads(raw(server.port("http"), "GET", "/ann/json-annotate/tip/moved.txt").body)
    for line in data["annotate"]:
        assert f'<tr id="l{line["lineno"]}">' in body
    first = data["annotate"][0]
    assert f'/ann/annotate/{first["node"]}/{first["abspath"]}#l{first["targetline"]}' in body
    assert "/annotate/" in body and "/f1.txt#l" in body  # lines from before the rename link to their source
    tip_file = raw(server.port("http"), "GET", "/ann/file/tip/moved.txt", {"Accept": "text/html"}).body.decode()
    assert "/ann/annotate/" in tip_file


SWITCHES = ["", "?ignorews=1", "?ignorewsamount=true", "?ignorewseol=on", "?ignorews=0", "?ignoreblanklines=1",
            "?ignorews=maybe", "?ignorewsamount=1&ignorewseol=1", "?ignorews=&ignorews=no"]


def test_whitespace_switches_are_hg_s(make_server: Callable[..., RunningServer], client: Client) -> None:
    """A file changed by its whitespace only (indentation, runs, line ends, blank lines) keeps its
    lines' first changesets under hgweb's switches, as hg serve says, given in the query or by the
    hgrc's [annotate]."""
    server = make_server("fs", http=[LOOPBACK])
    repo = server.root / "ws"
    client.hg("init", str(repo))
    versions = [b"def f():\n    return 1\nx = 2\n\ny = 3\n", b"def f():\n\treturn 1\nx  =  2\n\ny = 3   \n",
                b"def f():\n\treturn 1\r\nx = 2\n\n\ny = 3\n", b"def  f( ):\n  return 1\r\nx = 2\n\n\ny=3\n"]
    for number, text in enumerate(versions):
        (repo / "f.py").write_bytes(text)
        client.hg("commit", "-q", "-A", "-R", str(repo), "-u", f"u{number}", "-d", f"{1_700_000_000 + number} 0",
                  "-m", f"v{number}")
    pages = [f"json-annotate/{rev}/f.py{switch}" for rev in range(len(versions)) for switch in SWITCHES]
    pages += [f"annotate/3/f.py?style=raw&{switch[1:]}" for switch in SWITCHES]
    seen: set[bytes] = set()
    with _hg_serve(client, repo) as port:
        for page in pages:
            ours, theirs = raw(server.port("http"), "GET", f"/ws/{page}"), raw(port, "GET", f"/{page}")
            assert (ours.status, ours.body) == (theirs.status, theirs.body), page
            seen.add(ours.body)
    assert len(seen) > len(versions) * 3  # the switches change the answers
    (repo / ".hg" / "hgrc").write_text("[annotate]\nignorews = true\n")
    with _hg_serve(client, repo) as port:
        for page in ("json-annotate/3/f.py", "json-annotate/3/f.py?ignorews=0"):
            ours, theirs = raw(server.port("http"), "GET", f"/ws/{page}"), raw(port, "GET", f"/{page}")
            assert ours.body == theirs.body, page
    assert raw(server.port("http"), "GET", "/ws/json-annotate/3/f.py").body != \
        raw(server.port("http"), "GET", "/ws/json-annotate/3/f.py?ignorews=0").body
