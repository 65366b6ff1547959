"""The writer of a shallow fetch weighs the stored bases of the deltas it sends by their pack
position (``PackPlan.base_usable_at``): whether one is sent or the client's answered by the position
itself, not by its name read from pack order and looked up in the index again, twice (a shallow
clone's first ``git fetch --deepen=1`` of 40,000 commits weighed 7,000 bases so).  It answers as
``base_usable`` of the base's name, and the pack written is the one written before."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from dulwich.repo import Repo

from backends import git_packindex
from backends.git_fastpack import PackPlan, _open_maps, plan_pack, write_pack
from backends.git_objects import PackMaps
from tests.unit.backends.test_git_fastpack import git

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs a git binary")

LINE = 60


def line_stream() -> bytes:
    """A line of ``LINE`` commits, each changing one file of a root of 40 and one of a directory of
    40: each tree stored as a delta of another version of it."""
    out = []
    for n in range(LINE):
        out.append(f"commit refs/heads/main\ncommitter A <a@example.com> {1600000000 + 60 * n} +0000\ndata 3\nc{n % 10}\n")
        changed = range(40) if n == 0 else [n % 40]
        for f in changed:
            for path in (f"f{f:03}.txt", f"d/g{f:03}.txt"):
                text = f"{path} version {n}\n"
                out.append(f"M 100644 inline {path}\ndata {len(text)}\n{text}")
        out.append("\n")
    return "".join(out).encode() + b"done\n"


@pytest.fixture(scope="module")
def line(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("bases") / "line.git"
    git(src.parent, "init", "-q", "--bare", "-b", "main", str(src))
    git(src, "fast-import", "--quiet", "--done", input=line_stream())
    git(src, "-c", "pack.threads=1", "repack", "-adbq", "--depth=50", "--window=50")
    return src


def deepen_plan(src: Path, *, thin_pack: bool, ofs_delta: bool, maps: PackMaps | None = None) -> PackPlan:
    """Old commits, each a shallow line, fetched by a client that has older ones: their trees are
    stored as deltas of newer trees, which are neither sent nor the client's (weighed, passed over)."""
    commits = git(src, "rev-list", "main").split()
    wants = commits[30:50:4]
    haves = commits[52:]
    return plan_pack(Repo(str(src)).object_store, wants, haves, thin_pack=thin_pack, ofs_delta=ofs_delta,
                     shallow_boundary=[*wants, commits[52]], maps=maps)


@pytest.mark.parametrize("thin_pack", [True, False])
def test_a_base_weighed_by_position_is_weighed_as_by_name(line: Path, thin_pack: bool) -> None:
    plan = deepen_plan(line, thin_pack=thin_pack, ofs_delta=True)
    if plan.reader is not None:
        plan.reader.close()
    view = plan.sources[0].view
    answers = set()
    for index in range(len(plan.sources) + 1):
        for same_pack_ok in (False, True):
            by_position = [plan.base_usable_at(view, pos, index, same_pack_ok=same_pack_ok) for pos in range(len(view))]
            by_name = [plan.base_usable(view.names[pos], index, same_pack_ok=same_pack_ok) for pos in range(len(view))]
            assert by_position == by_name
            answers.update(by_name)
    assert answers == {True, False}


@pytest.mark.parametrize("ofs_delta", [True, False])
def test_the_writer_reads_a_base_name_only_to_write_it(line: Path, monkeypatch: pytest.MonkeyPatch,
                                                      ofs_delta: bool) -> None:
    maps = PackMaps()
    plan = deepen_plan(line, thin_pack=True, ofs_delta=ofs_delta, maps=maps)
    read: Counter[int] = Counter()
    real = git_packindex._PackOrderNames.__getitem__

    def named(self: Any, pos: Any) -> Any:
        read[pos] += 1
        return real(self, pos)

    monkeypatch.setattr(git_packindex._PackOrderNames, "__getitem__", named)
    pack = b"".join(write_pack(plan, _open_maps(plan, maps)))
    monkeypatch.undo()
    # (a name is read to write it, or to read a tree sent or the client's whole: never for a base
    # weighed and passed over, neither sent nor the client's)
    source = plan.sources[0]
    have = plan.have.bits.to_bytes((len(source.view) + 7) // 8, "little")
    passed_over = [pos for pos in read if not source.selected[pos] and not have[pos >> 3] >> (pos & 7) & 1]
    assert read and not passed_over, (len(read), len(passed_over))
    assert int.from_bytes(pack[8:12], "big") == len(source.positions) + len(plan.whole)
