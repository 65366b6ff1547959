"""The visible bookmarks are parsed once per version of the bookmarks file and of the changelog's
views, across opens of the repository (CI pollers list them many times a second), and a change
of either is seen at once."""

from __future__ import annotations

import binascii
from pathlib import Path

import pytest

import backends.hg as hgstore
import backends.hg.repository as hgrepo
from backends.hg import keys
from backends.interfaces import Node
from bench.hg_storage_micro import HistoryBuilder


def _lines(marks: dict[bytes, Node]) -> bytes:
    return b"".join(b"%s %s\n" % (binascii.hexlify(node), name) for name, node in marks.items())


def _listed(path: str) -> dict[bytes, bytes]:
    return dict(hgstore.open_repository(path, "r").listkeys(b"bookmarks"))


def test_bookmarks_are_parsed_once_per_version_and_changes_are_seen(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(tmp_path / "r")
    repo = hgstore.create_repository(path, "r")
    h = HistoryBuilder()
    a = h.commit({b"f": b"a\n"}, message=b"a")
    b = h.commit({b"f": b"b\n"}, a, message=b"b")
    c = h.commit({b"f": b"c\n"}, b, message=b"c")
    tx = repo.transaction()
    tx.add_changegroup(h.groups())
    tx.commit()
    repo.plain.replace(b"hgrc", b"[phases]\npublish = False\n")
    marks = {b"ci/%04d" % i: (a, b, c)[i % 3] for i in range(300)}
    repo.bookmarks_vfs().replace(b"bookmarks", _lines(marks))

    parsed: list[int] = []
    real = keys.parse_bookmarks

    def counting(data: bytes) -> dict[bytes, Node]:
        parsed.append(len(data))
        return real(data)

    monkeypatch.setattr(hgrepo, "parse_bookmarks", counting)
    expected = {k: binascii.hexlify(v) for k, v in marks.items()}
    for _ in range(5):  # five polls, each on a repository opened afresh, as each request opens it
        assert _listed(path) == expected
    assert len(parsed) == 1

    # the file rewritten with the same size (a bookmark moved): seen
    marks[b"ci/0000"] = b if marks[b"ci/0000"] != b else c
    repo.bookmarks_vfs().replace(b"bookmarks", _lines(marks))
    assert _listed(path) == {k: binascii.hexlify(v) for k, v in marks.items()}
    assert len(parsed) == 2

    # c made secret: its bookmarks are no longer listed, though the file is the same
    repo.store.replace(b"phaseroots", b"2 %s\n" % binascii.hexlify(c))
    assert _listed(path) == {k: binascii.hexlify(v) for k, v in marks.items() if v != c}
    assert len(parsed) == 3
    assert hgstore.open_repository(path, "r").lookup(b"ci/0001") == b
    with pytest.raises(KeyError):
        hgstore.open_repository(path, "r").lookup(b"ci/0002")

    # what the caller does with its answer does not reach the next one
    first = hgstore.open_repository(path, "r").bookmarks()
    assert isinstance(first, dict)
    first.clear()
    assert len(hgstore.open_repository(path, "r").bookmarks()) == 200


def test_a_pushkey_reads_the_bookmarks_file_twice_and_writes_what_it_moved(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch of pushkeys (10,000 may come in one request) into a repository of 100,000 bookmarks
    parsed the 5 MB file three times per pushkey (0.28 s of CPU each, hg serve 0.05 s): the write
    compared the new bookmarks with the file parsed once more."""
    from protocols import hg_exchange

    path = str(tmp_path / "r")
    repo = hgstore.create_repository(path, "r")
    h = HistoryBuilder()
    a = h.commit({b"f": b"a\n"}, message=b"a")
    b = h.commit({b"f": b"b\n"}, a, message=b"b")
    tx = repo.transaction()
    tx.add_changegroup(h.groups())
    tx.commit()
    marks = {b"m%04d" % i: (a, b)[i % 2] for i in range(300)}
    marks["caf\u00e9".encode("latin-1")] = a  # an old hg's Latin-1 name, read as hg reads it
    repo.bookmarks_vfs().replace(b"bookmarks", _lines(marks) + b"not a bookmark line\n"
                                 + b"%s upper\n" % binascii.hexlify(b).upper())
    parsed: list[int] = []
    real = keys.parse_bookmarks

    def counting(data: bytes) -> dict[bytes, Node]:
        parsed.append(len(data))
        return real(data)

    monkeypatch.setattr(hgrepo, "parse_bookmarks", counting)
    opened = hgstore.open_repository(path, "r")
    assert hg_exchange.pushkey_reported(opened, b"bookmarks", b"new", b"", binascii.hexlify(b)) == (True, b"")
    assert len(parsed) <= 2
    listed = _listed(path)
    assert listed[b"new"] == listed[b"upper"] == binascii.hexlify(b)
    assert listed["caf\u00e9".encode()] == binascii.hexlify(a)
    assert len(listed) == 303
    before = repo.bookmarks_vfs().read(b"bookmarks")
    # moving a bookmark where it is already changes nothing, and writes nothing
    assert hg_exchange.pushkey_reported(hgstore.open_repository(path, "r"), b"bookmarks", b"new",
                                        binascii.hexlify(b), binascii.hexlify(b)) == (True, b"")
    assert repo.bookmarks_vfs().read(b"bookmarks") == before
