"""The generic pack path's search for reusable deltas by index lookups (``git_pack._LookedUp``) makes
the pack dulwich's own search makes, byte for byte, with either of its ways (a pack read whole, or
its objects looked up one by one: ``SCAN_SHARE``), SHA-1 and SHA-256, thin or not, OFS or REF
deltas asked: over a store of several packs, one of REF_DELTAs, one made from a thin pack (its bases
appended), and objects stored in two packs (a full one and another of the same objects)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from dulwich.pack import OFS_DELTA, REF_DELTA
from dulwich.repo import Repo

from backends import git_pack
from backends.interfaces import ObjectId
from tests.unit.backends.test_git_generic_pack_lookups import _git


@pytest.mark.parametrize(("fmt", "thin", "ofs"), [("sha1", True, True), ("sha1", False, False), ("sha256", True, False)])
def test_the_looked_up_search_makes_dulwichs_pack_over_several_packs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str, thin: bool, ofs: bool) -> None:
    work = tmp_path / "w"
    _git(tmp_path, "init", "-q", "-b", "main", f"--object-format={fmt}", str(work))
    text = "".join(f"line {i}\n" for i in range(2000))
    for n in range(40):
        text = text.replace(f"line {n}\n", f"line {n} changed\n")
        (work / "f.txt").write_text(text)
        (work / f"g{n % 7}.txt").write_text(f"{n}\n")
        _git(work, "add", "-A")
        _git(work, "commit", "-q", "-m", f"c{n}")
        if n == 19:  # first half: REF_DELTAs
            _git(work, "-c", "repack.useDeltaBaseOffset=false", "repack", "-adq", "--depth=50", "--window=50")
    # second half in a pack of its own whose deltas may use bases of the first (thin, fixed by index-pack)
    rev = _git(work, "rev-list", "--objects", "HEAD~20..HEAD")  # (what the second pack holds)
    pack = subprocess.run(["git", "-c", "pack.threads=1", "pack-objects", "--thin", "--stdout", "--revs"],
                          input=b"HEAD\n^HEAD~20\n", cwd=work, capture_output=True, check=True).stdout
    subprocess.run(["git", "index-pack", "--stdin", "--fix-thin"], input=pack, cwd=work, check=True, capture_output=True)
    # duplicates: a full repack of everything as another pack, kept beside
    subprocess.run(["git", "-c", "pack.threads=1", "repack", "-aq", "--window=5"], cwd=work, check=True)  # (no -d)
    assert rev
    packs = list((work / ".git" / "objects" / "pack").glob("*.pack"))
    assert len(packs) >= 3
    stored = Repo(str(work)).object_store.packs
    assert sum(len(p.index) for p in stored) > len({sha for p in stored for sha in p.index})  # (some in two)
    kinds = {u.pack_type_num for p in stored for u in p.data.iter_unpacked()}
    assert {REF_DELTA, OFS_DELTA} <= kinds
    heads = _git(work, "rev-parse", "HEAD", "HEAD~3", "HEAD~25", "HEAD~30").split()
    store = Repo(str(work)).object_store
    for want, have in ((heads[0], heads[1]), (heads[0], heads[3]), (heads[2], heads[3]), (heads[0], heads[2])):
        plan = git_pack.PackPlan((ObjectId(want.encode()),), (ObjectId(have.encode()),), git_pack.ShallowPlan(),
                                 thin, ofs, False)
        for share in (1, 8, 10_000):
            monkeypatch.setattr(git_pack, "SCAN_SHARE", share)
            looked_up = b"".join(git_pack.generate_pack(store, plan, {}))
            with monkeypatch.context() as m:
                m.setattr(git_pack, "_LookedUp", lambda store: store)
                assert b"".join(git_pack.generate_pack(store, plan, {})) == looked_up, (want, have, share)
