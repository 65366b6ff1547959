"""A pack's ``.rev`` is taken only when it is a regular file of the size its objects take whose
trailing checksum is its content's: a damaged one, one cut short or grown, and one that is a FIFO
(never waited on) are passed over and the view sorts the pack's offsets instead."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

from backends import git_packindex
from backends.git_packindex import read_index
from tests.unit.backends.test_git_packindex_table import write_idx, write_rev


def _entries(count: int) -> dict[bytes, int]:
    return {hashlib.sha1(b"%d" % i).digest(): 12 + 40 * ((i * 7919) % count) for i in range(count)}


def test_a_damaged_reverse_index_is_not_taken(tmp_path: Path) -> None:
    """A ``.rev`` whose trailing checksum is not its content's, one cut short or grown, and one that
    is a FIFO (read, it blocked the request, and every one after it waiting for the same view) are
    passed over: the view sorts the pack's offsets and answers the same."""
    entries = _entries(500)
    idx = tmp_path / "pack-x.idx"
    write_idx(idx, entries, 20)
    pack = str(idx.with_suffix(".pack"))
    count, checksum = len(entries), read_index(str(idx), pack).checksum
    rev = idx.with_suffix(".rev")
    write_rev(idx, entries, 20)
    good = rev.read_bytes()
    assert git_packindex._reverse_index(pack, count, checksum, 20) is not None
    in_order = list(read_index(str(idx), pack).names)
    for damaged in (good[:-1] + bytes([good[-1] ^ 1]), good[:-1], good + b"\0"):
        rev.write_bytes(damaged)
        assert git_packindex._reverse_index(pack, count, checksum, 20) is None
        assert list(read_index(str(idx), pack).names) == in_order
    rev.unlink()
    os.mkfifo(rev)
    answers: list[object] = []
    reader = threading.Thread(target=lambda: answers.append(git_packindex._reverse_index(pack, count, checksum, 20)),
                              daemon=True)
    reader.start()
    reader.join(10)
    blocked = reader.is_alive()
    if blocked:  # (unblock the read the test is failing on)
        with open(rev, "wb"):
            pass
        reader.join(10)
    assert not blocked and answers == [None]
