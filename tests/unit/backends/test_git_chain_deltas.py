"""Shallow fetches of several branch tips: an object whose stored delta base is not sent goes as a
delta against an ancestor of its stored chain that is sent (``git_fastpack._ChainDeltas``), not
whole; real git must accept the pack (``index-pack``, ``fsck --full``)."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest
from dulwich.repo import Repo

from backends.git_fastpack import WriteStats, _open_maps, plan_pack, write_pack
from tests.unit.backends.test_git_fastpack import GIT_ENV

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs a git binary")

FILES = [f"dir{i % 3}/file{i}.txt" for i in range(8)]


def git(cwd: Path, *args: str, input: bytes | None = None) -> bytes:
    done = subprocess.run(["git", *args], cwd=cwd, input=input, env={**os.environ, **GIT_ENV, "HOME": str(cwd)},
                          capture_output=True, check=False)
    if done.returncode:
        raise AssertionError(f"git {' '.join(args)}: {done.stderr.decode(errors='replace')}")
    return done.stdout


def history(root: Path) -> Path:
    """30 commits growing 8 files a little each; branch ``old`` at the 5th, ``mid`` at the 15th;
    repacked so that older versions are deltas in chains that end at the newest."""
    work = root / "work"
    git(root, "init", "-q", "-b", "main", str(work))
    rng = random.Random(47)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
    texts = {name: [" ".join(rng.choice(words) for _ in range(10)) + "\n" for _ in range(200)] for name in FILES}
    for n in range(30):
        for name in FILES:
            lines = texts[name]
            for _ in range(3):
                lines[rng.randrange(len(lines))] = " ".join(rng.choice(words) for _ in range(10)) + f" {n}\n"
            lines.insert(rng.randrange(len(lines)), f"line {n} of {name}\n")
            path = work / name
            path.parent.mkdir(exist_ok=True)
            path.write_text("".join(lines))
        # peak.txt is largest at c10, which git's repack then stores whole: every tip's copy is a
        # chain ending at a version no shallow fetch of the tips sends
        peak = [f"version {n}\n"] + [f"peak line {i}\n" for i in range(600 - 25 * abs(n - 10))]
        (work / "peak.txt").write_text("".join(peak))
        git(work, "add", "-A")
        git(work, "commit", "-q", "-m", f"c{n}")
        if n == 4:
            git(work, "branch", "old")
        if n == 14:
            git(work, "branch", "mid")
    git(work, "repack", "-adfq", "--depth=50", "--window=50")
    return work / ".git"


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return history(tmp_path_factory.mktemp("chain"))


def shallow_pack(src: Path, names: list[str], *, ofs_delta: bool = True) -> tuple[bytes, WriteStats, list[bytes]]:
    tips = [git(src, "rev-parse", name).strip() for name in names]
    repo = Repo(str(src))
    plan = plan_pack(repo.object_store, tips, [], thin_pack=True, ofs_delta=ofs_delta, shallow_boundary=tips)
    stats = WriteStats()
    pack = b"".join(write_pack(plan, _open_maps(plan), chunk_size=4096, stats=stats))
    assert stats.verbatim + stats.rebased + stats.whole == plan.count == int.from_bytes(pack[8:12], "big")
    return pack, stats, tips


def accepted(root: Path, pack: bytes, tips: list[bytes]) -> Path:
    client = root / f"client-{len(list(root.iterdir()))}"
    git(root, "init", "-q", "--bare", str(client))
    git(client, "index-pack", "--stdin", input=pack)
    (client / "shallow").write_bytes(b"".join(t + b"\n" for t in sorted(tips)))
    for i, tip in enumerate(tips):
        git(client, "update-ref", f"refs/heads/b{i}", tip.decode())
    git(client, "fsck", "--full", "--strict", "--no-dangling")
    return client


def delta_bases(client: Path) -> dict[bytes, bytes]:
    """Object -> its delta base, in the pack the client received (``git verify-pack -v``)."""
    (idx,) = (client / "objects" / "pack").glob("*.idx")
    listed = git(client, "verify-pack", "-v", str(idx))
    return {fields[0]: fields[6] for fields in map(bytes.split, listed.splitlines()) if len(fields) == 7}


@pytest.mark.parametrize("ofs_delta", [True, False])
def test_a_shallow_fetch_of_three_tips_sends_older_versions_as_deltas(source: Path, tmp_path: Path,
                                                                      ofs_delta: bool) -> None:
    pack, stats, tips = shallow_pack(source, ["main", "mid", "old"], ofs_delta=ofs_delta)
    # 3 commits, 3 x (1 + 3 trees), 3 x 8 blobs; the tips' blobs of mid and old used to go whole
    # (their stored bases, the versions between, are not sent)
    assert stats.composed >= 2 * len(FILES)
    assert stats.whole <= 6, stats
    accepted(tmp_path, pack, tips)


def test_the_pack_is_about_the_size_of_git_s_own(source: Path, tmp_path: Path) -> None:
    pack, _stats, tips = shallow_pack(source, ["main", "mid", "old"])
    # git's own: a delta search over what it sends
    reference = git(source, "pack-objects", "--stdout", "-q", "--shallow", "--revs",
                    input=b"".join(t + b"\n" for t in tips) + b"--shallow " + b"\n--shallow ".join(tips) + b"\n")
    assert len(pack) < 1.1 * len(reference), (len(pack), len(reference))  # whole: 1.5 times
    accepted(tmp_path, pack, tips)


@pytest.mark.parametrize("ofs_delta", [True, False])
def test_a_version_whose_chain_ends_at_an_unsent_object_is_a_delta_against_a_sibling(
        source: Path, tmp_path: Path, ofs_delta: bool) -> None:
    # peak.txt of c4 (old) and c14 (mid) are both stored against c10's (the largest, stored whole,
    # not sent): mid's goes whole, old's as a delta against mid's
    pack, stats, tips = shallow_pack(source, ["main", "mid", "old"], ofs_delta=ofs_delta)
    client = accepted(tmp_path, pack, tips)
    old, mid = (git(source, "rev-parse", f"{name}:peak.txt").strip() for name in ("old", "mid"))
    bases = delta_bases(client)
    assert old in bases, "old's peak.txt was sent whole"
    assert bases[old] in {mid, git(source, "rev-parse", "main:peak.txt").strip()}
    assert stats.whole <= 2


def test_a_single_tip_is_still_reused_verbatim(source: Path, tmp_path: Path) -> None:
    pack, stats, tips = shallow_pack(source, ["main"])
    # main's peak.txt is stored against c10's, not sent, and has no sibling: whole, as git sends it
    assert stats.composed == 0 and stats.whole == 1 and stats.rebased == 0
    accepted(tmp_path, pack, tips)
