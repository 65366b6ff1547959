"""A second shallow fetch from the same pack walks the stored delta links the first one read
without reading their entry headers again: a pack's links never change, and each fetch that sent
objects as deltas against an ancestor of their stored chains (``_ChainDeltas._link``), or looked
for their siblings (a ``--shallow-exclude`` of 8,000 commits: 37,000 headers for two siblings),
parsed every header on those chains again.  The pack is as it was, and git accepts it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from backends import git_fastpack
from tests.unit.backends.test_git_chain_deltas import accepted, history, shallow_pack


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return history(tmp_path_factory.mktemp("kept-links"))


def test_a_second_shallow_fetch_reads_no_stored_link_again(source: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    names = ["main", "mid", "old"]
    first, first_stats, tips = shallow_pack(source, names)
    assert first_stats.composed > 0  # chains were walked
    link_reads: Counter[int] = Counter()
    parse_entry = git_fastpack.parse_entry
    link = git_fastpack._ChainDeltas._link

    def counted_link(self: Any, mapped: Any, pos: int) -> int:
        def counted(mapped: Any, offset: int, *args: Any) -> Any:
            link_reads[offset] += 1
            return parse_entry(mapped, offset, *args)
        monkeypatch.setattr(git_fastpack, "parse_entry", counted)
        try:
            return link(self, mapped, pos)
        finally:
            monkeypatch.setattr(git_fastpack, "parse_entry", parse_entry)

    monkeypatch.setattr(git_fastpack._ChainDeltas, "_link", counted_link)
    second, second_stats, _ = shallow_pack(source, names)
    assert second_stats.composed == first_stats.composed
    assert not link_reads, link_reads.most_common(3)
    assert second == first
    accepted(tmp_path, second, tips)
