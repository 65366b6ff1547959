"""backends.git_ingest: a pushed blob that no delta is built on needs nothing more than its scan
gave (its id), so naming the pack's objects makes no Python step for it (``_not_bare``: C-level
maps, a chunk of the pack at a time); and the scan's records go into the columns without a step a
record (``_record``).  The bases of OFS_DELTAs and REF_DELTAs, wherever they lie, are still found."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from dulwich.objects import ObjectID
from dulwich.repo import Repo

from backends import git_ingest
from protocols.git_receive import PackScanner
from tests.unit.backends.test_git_ingest_tiny_objects import _tiny_blobs_pack

COUNT = 5000


def _counted(run: object) -> Counter[str]:
    counts: Counter[str] = Counter()

    def counted(_frame: object, event: str, _arg: object) -> None:
        counts[event] += 1

    sys.setprofile(counted)
    try:
        run()  # type: ignore[operator]
    finally:
        sys.setprofile(None)
    return counts


def test_naming_a_pack_of_blobs_makes_no_python_step_for_each(tmp_path: Path) -> None:
    data, commit = _tiny_blobs_pack(COUNT, per_tree=COUNT)
    subprocess.run(["git", "init", "-q", "--bare", str(tmp_path / "s.git")], check=True)
    store = Repo(str(tmp_path / "s.git")).object_store
    links = git_ingest.PushLinks()
    ingest = git_ingest.PackIngest(store, links)
    scanner = PackScanner()
    used = scanner.feed(data)
    objects = scanner.take_objects()
    recorded = _counted(lambda: ingest.write(data[:used], objects))
    assert recorded["c_call"] < COUNT // 10, f"{recorded['c_call']} calls to record {COUNT} objects"
    committed = _counted(ingest.commit)
    ingest.abort()
    assert committed["call"] < COUNT // 2, f"{committed['call']} Python calls to name {COUNT} blobs"
    assert links.closed(git_ingest.PushedObjects(), lambda _hexsha: False)
    store = Repo(str(tmp_path / "s.git")).object_store
    assert store[ObjectID(commit)].type_num == 1 and len(list(store)) == COUNT + 3


@pytest.mark.parametrize("ofs", [True, False])
def test_the_bases_of_deltas_are_found_among_thousands_of_blobs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   ofs: bool) -> None:
    """Blobs in a pack of more than ``ID_CHUNK`` objects, a few of them the bases of deltas (by
    offset, or by id when ``ofs`` is False): every object is named, git reads the pack as hgwire
    indexed it."""
    monkeypatch.setattr(git_ingest, "PARALLEL_MIN_OBJECTS", 1 << 30)  # (this process names all)
    work = tmp_path / "w"
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(tmp_path), "GIT_AUTHOR_NAME": "A",
           "GIT_AUTHOR_EMAIL": "a@example.com", "GIT_COMMITTER_NAME": "A", "GIT_COMMITTER_EMAIL": "a@example.com"}

    def git(*args: str, stdin: bytes | None = None) -> bytes:
        return subprocess.run(["git", "-C", str(work), *args], check=True, capture_output=True, input=stdin,
                              env=env).stdout

    subprocess.run(["git", "init", "-q", str(work)], check=True, env=env)
    for n in range(4500):
        (work / f"f{n:05d}").write_bytes(b"small %d\n" % n)
    text = b"".join(b"line %d of a larger file\n" % i for i in range(400))
    for n in range(12):
        (work / f"big{n:02d}").write_bytes(text.replace(b"line %d " % (n * 30), b"LINE %d " % n))
    git("add", "-A")
    git("commit", "-q", "-m", "many")
    args = ["pack-objects", "--stdout", "-q", "--window=20"] + (["--delta-base-offset"] if ofs else [])
    data = git(*args, stdin=git("rev-list", "--objects", "--all"))
    subprocess.run(["git", "init", "-q", "--bare", str(tmp_path / "s.git")], check=True)
    store = Repo(str(tmp_path / "s.git")).object_store
    ingest = git_ingest.PackIngest(store, git_ingest.PushLinks())
    scanner = PackScanner()
    for at in range(0, len(data), 1 << 15):
        chunk = data[at:at + (1 << 15)]
        ingest.write(chunk[:scanner.feed(chunk)], scanner.take_objects())
    assert any(kind >= 6 for kind in ingest._kinds), "the pack has deltas"
    pack = ingest.commit()
    ingest.abort()
    assert pack is not None
    listed = subprocess.run(["git", "verify-pack", "-v", pack._idx_path], check=True, capture_output=True,
                            env=env).stdout
    assert listed.count(b" blob ") == 4512
