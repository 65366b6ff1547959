"""A shallow fetch of several tips walks each stored delta link once: the objects of one family
follow the same chain to the ancestor they go as a delta against, and each step of each walk
parsed the link's entry header and looked its base up again (``_ChainDeltas._link`` keeps them);
and a family's whole root, which the objects rebased on a sibling read, was inflated again for
each of them.  An entry's header is read at most three times (by the writer, by the chain walks,
and to inflate it: a delta to be composed, a root to rebase on); the pack is as it was, and git
accepts it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from backends import git_fastpack
from tests.unit.backends.test_git_chain_deltas import accepted, history, shallow_pack


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return history(tmp_path_factory.mktemp("links"))


@pytest.mark.parametrize("ofs_delta", [True, False])
def test_each_stored_link_is_read_once_by_the_chain_walks(source: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch, ofs_delta: bool) -> None:
    reads: Counter[int] = Counter()
    parse_entry = git_fastpack.parse_entry

    def counted(mapped: Any, offset: int, *args: Any) -> Any:
        reads[offset] += 1
        return parse_entry(mapped, offset, *args)

    monkeypatch.setattr(git_fastpack, "parse_entry", counted)
    pack, stats, tips = shallow_pack(source, ["main", "mid", "old"], ofs_delta=ofs_delta)
    assert stats.composed > 0  # chains were walked
    assert max(reads.values()) <= 3, reads.most_common(3)
    monkeypatch.undo()
    assert pack == shallow_pack(source, ["main", "mid", "old"], ofs_delta=ofs_delta)[0]
    accepted(tmp_path, pack, tips)
