"""``lookup`` of a name (what ``hg id -r NAME`` asks) takes the bookmarks, the tags and the branch
tips from the one changelog snapshot and views it opened: each of them opened the changelog and
its views again, reading the stamps of their files anew (17 for a branch name, now 4)."""

from __future__ import annotations

import binascii
from pathlib import Path

import pytest

import backends.hg as hgstore
from backends.hg.vfs import FsVfs
from bench.hg_storage_micro import HistoryBuilder


def test_a_name_is_looked_up_in_one_snapshot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(tmp_path / "r")
    repo = hgstore.create_repository(path, "r")
    h = HistoryBuilder()
    a = h.commit({b"f": b"a\n"}, message=b"a")
    b = h.commit({b"f": b"b\n", b".hgtags": b"%s v1\n" % binascii.hexlify(a)}, a, message=b"b")
    c = h.commit({b"f": b"c\n", b".hgtags": b"%s v1\n" % binascii.hexlify(a)}, b, message=b"c")
    tx = repo.transaction()
    tx.add_changegroup(h.groups())
    tx.commit()
    repo.bookmarks_vfs().replace(b"bookmarks", b"%s mark\n" % binascii.hexlify(b))

    stamps: list[bytes] = []
    real = FsVfs.stamp

    def counting(self: FsVfs, name: bytes) -> object:
        stamps.append(name)
        return real(self, name)

    expected = {b"default": c, b"v1": a, b"mark": b, b"tip": c}
    for key, node in expected.items():  # (the first reads parse and keep what the next ones reuse)
        assert hgstore.open_for_reading(path, "r").lookup(key) == node
    monkeypatch.setattr(FsVfs, "stamp", counting)
    for key, node in expected.items():
        opened = hgstore.open_for_reading(path, "r")
        stamps.clear()
        assert opened.lookup(key) == node
        assert len(stamps) <= 4, (key, stamps)
    with pytest.raises(KeyError):
        hgstore.open_for_reading(path, "r").lookup(b"nothing-of-that-name")
