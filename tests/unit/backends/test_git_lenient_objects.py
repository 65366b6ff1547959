"""Commits and tags dulwich cannot parse, read for the web pages as ``git log`` shows them
(``backends.git_web.lenient_object``): a date that is no number, or has no zone, is 0 +0000; the
rest is as stored, and the object keeps its own id."""

from __future__ import annotations

import hashlib

import pytest
from dulwich.objects import Commit, Tag

from backends.git_web import lenient_object
from backends.interfaces import SHA1_FORMAT

TREE = b"4b825dc642cb6eb9a060e54bf8d69288fbee4904"


class RawStore:
    object_format = SHA1_FORMAT

    def __init__(self) -> None:
        self.raw: dict[bytes, tuple[int, bytes]] = {}

    def add(self, type_num: int, text: bytes) -> bytes:
        kind = {1: b"commit", 4: b"tag"}[type_num]
        oid = hashlib.sha1(kind + b" %d\0" % len(text) + text).hexdigest().encode()
        self.raw[oid] = (type_num, text)
        return oid

    def get_raw(self, oid: bytes) -> tuple[int, bytes]:
        return self.raw[oid]


@pytest.mark.parametrize(("committer", "time", "zone"), [
    (b"C <c@d> soon +0000", 0, 0),
    (b"C <c@d> 1600000100", 0, 0),
    (b"C <c@d> 1600000100 +01", 0, 0),
    (b"C <c@d> 1600000100 -0130", 1600000100, -5400),
    (b"C <c@d>", 0, 0),
])
def test_an_unreadable_date_is_read_as_git_log_reads_it(committer: bytes, time: int, zone: int) -> None:
    store = RawStore()
    text = (b"tree " + TREE + b"\nauthor A <a@b> 1600000000 +0200\ncommitter " + committer +
            b"\ngpgsig -----BEGIN-----\n author X <x@y> never\n -----END-----\n\nmessage\n")
    oid = store.add(Commit.type_num, text)
    commit = lenient_object(store, oid)
    assert isinstance(commit, Commit) and commit.id == oid
    assert commit.committer == committer.split(b">")[0] + b">"
    assert (commit.commit_time, commit.commit_timezone) == (time, zone)
    assert (commit.author_time, commit.author_timezone) == (1600000000, 7200)
    assert commit.message == b"message\n" and commit.gpgsig == b"-----BEGIN-----\nauthor X <x@y> never\n-----END-----"


def test_a_tag_and_what_makes_no_sense_even_so() -> None:
    store = RawStore()
    tag = store.add(Tag.type_num, b"object " + TREE + b"\ntype tree\ntag t\ntagger T <t@u> later\n\nsaid\n")
    read = lenient_object(store, tag)
    assert isinstance(read, Tag) and read.id == tag and read.tag_time == 0 and read.name == b"t"
    assert lenient_object(store, store.add(Commit.type_num, b"author A <a@b> soon +0000\n\nno tree\n")) is None
    assert lenient_object(store, b"0" * 40) is None
