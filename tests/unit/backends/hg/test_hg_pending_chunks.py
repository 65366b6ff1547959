"""A writer's buffered chunks read back the same from memory and from its spool file."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends.hg import revlog as revlog_mod
from backends.hg.revlog import PendingChunks


@settings(max_examples=60, deadline=None)
@given(chunks=st.lists(st.binary(max_size=40), max_size=30), spill=st.integers(0, 100), spooled=st.booleans())
def test_chunks_from_any_start_are_those_appended(tmp_path_factory: pytest.TempPathFactory, chunks: list[bytes],
                                                  spill: int, spooled: bool) -> None:
    spool = bytes(tmp_path_factory.mktemp("spool")) if spooled else None
    held = revlog_mod.SPILL_BYTES
    revlog_mod.SPILL_BYTES = spill
    try:
        pending = PendingChunks(spool)
        for chunk in chunks:
            pending.append(chunk)
    finally:
        revlog_mod.SPILL_BYTES = held
    assert len(pending) == len(chunks)
    assert pending.total == sum(map(len, chunks))
    for start in range(len(chunks) + 1):
        assert list(pending.chunks(start)) == chunks[start:]
    pending.close()
    assert len(pending) == 0 and list(pending.chunks()) == []


def test_chunks_past_the_limit_leave_memory_for_an_unnamed_file(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(revlog_mod, "SPILL_BYTES", 10)
    pending = PendingChunks(bytes(tmp_path))
    for i in range(5):
        pending.append(bytes([i]) * 4)
    assert pending._spilled == 3 and len(pending._memory) == 2  # 12 bytes went, 8 stay
    assert list(tmp_path.iterdir()) == []  # nothing a reader of the store could see
    assert b"".join(pending.chunks(1)) == b"\1" * 4 + b"\2" * 4 + b"\3" * 4 + b"\4" * 4
    unspooled = PendingChunks(None)
    for i in range(5):
        unspooled.append(bytes([i]) * 4)
    assert unspooled._spilled == 0
