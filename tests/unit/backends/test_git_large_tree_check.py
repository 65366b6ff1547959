"""The check of a large whole tree and its links run no Python step per entry: git's fsck rules for
trees (sorted entries, no name twice, names and modes), the tree's shape for the deltas of it
(``TreeShape``: size, entry offsets) and its links by type (``PushLinks.link_entries``) are each a
few C-level maps over the parsed entries.  A new root commit over a stored directory of 100,000
files spent 0.1 s of server CPU in Python loops over them (a generator step an entry for the
offsets, a tuple and an ``unhexlify`` a link).  The answers are those of the plain rules."""

from __future__ import annotations

import binascii
import gc
import itertools
import os
import random
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

import pytest

from backends import git_ingest
from backends.git_dotfiles import DotFiles

BLOB = bytes.fromhex("e69de29bb2d1d6434b8b29ae775ad8c2e48c5391")
SUB = bytes.fromhex("4b825dc642cb6eb9a060e54bf8d69288fbee4904")


def _entry(mode: bytes, name: bytes, oid: bytes = BLOB) -> bytes:
    return mode + b" " + name + b"\0" + oid


def _large(n: int, subtrees: bool = False, gitlinks: bool = False) -> bytes:
    entries = []
    for i in range(n):
        if subtrees and i % 10 == 5:
            entries.append(_entry(b"40000", b"f%06d" % i, SUB))
        elif gitlinks and i % 10 == 7:
            entries.append(_entry(b"160000", b"f%06d" % i, bytes(range(i % 200, i % 200 + 20))))
        else:
            entries.append(_entry(b"100755" if i % 3 == 0 else b"100644", b"f%06d.txt" % i,
                                  bytes((i + k) % 256 for k in range(20))))
    return b"".join(entries)


def _python_calls(call: Callable[[], Any]) -> int:
    """Python-level calls (and generator steps) of hgwire's code made by ``call`` (no collection of
    garbage meanwhile: the finalizers of what earlier tests left would count)."""
    count = 0

    def profile(frame: FrameType, event: str, _arg: object) -> None:
        nonlocal count
        if event == "call" and os.sep + "backends" + os.sep in frame.f_code.co_filename:
            count += 1

    gc.collect()
    gc.disable()
    sys.setprofile(profile)
    try:
        call()
    finally:
        sys.setprofile(None)
        gc.enable()
    return count


@pytest.mark.parametrize("subtrees", [False, True])
def test_a_large_tree_is_checked_and_linked_without_a_python_step_an_entry(subtrees: bool) -> None:
    """Ten times the entries, the same Python calls: before, the offsets took a generator step an
    entry and the links a tuple an entry."""

    def check_and_link(n: int) -> int:
        raw = _large(n, subtrees)

        def run() -> None:
            shape, clean = git_ingest.check_tree(raw, oid=b"c" * 40, dotfiles=DotFiles(),
                                                 warnings=git_ingest.FsckWarnings())
            assert clean and shape.offsets is not None
            git_ingest.PushLinks().link_entries(shape.entries)

        return _python_calls(run)

    small, large = check_and_link(500), check_and_link(5000)
    assert large - small < 20, f"{small} Python calls for 500 entries, {large} for 5,000"


def _plain_offsets(raw: bytes) -> list[int]:
    offsets, at = [0], 0
    while at < len(raw):
        at = raw.index(b"\0", at) + 21
        offsets.append(at)
    return offsets


def _plain_links(raw: bytes) -> dict[int, set[bytes]]:
    links: dict[int, set[bytes]] = {git_ingest.TREE: set(), git_ingest.BLOB: set()}
    at = 0
    while at < len(raw):
        space, nul = raw.index(b" ", at), raw.index(b"\0", at)
        mode = int(raw[at:space], 8)
        if mode & 0o170000 != 0o160000:
            links[git_ingest.TREE if mode & 0o170000 == 0o040000 else git_ingest.BLOB].add(raw[nul + 1:nul + 21])
        at = nul + 21
    return links


@pytest.mark.parametrize(("subtrees", "gitlinks"), [(False, False), (True, False), (False, True), (True, True)])
def test_the_shape_and_links_are_those_of_the_plain_rules(subtrees: bool, gitlinks: bool) -> None:
    raw = _large(3000, subtrees, gitlinks)
    shape, clean = git_ingest.check_tree(raw, warnings=git_ingest.FsckWarnings())
    assert clean
    assert shape.size == len(raw) and shape.offsets == _plain_offsets(raw)
    assert shape.offsets == git_ingest.entry_offsets(shape.entries, 20)
    linked = git_ingest.PushLinks()
    linked.link_entries(shape.entries)
    one_by_one = git_ingest.PushLinks()
    one_by_one.link(git_ingest.tree_links(shape.entries))
    assert linked._sets == one_by_one._sets
    plain = _plain_links(raw)
    assert linked._sets is not None
    assert linked._sets[git_ingest.TREE] == plain[git_ingest.TREE]
    assert linked._sets[git_ingest.BLOB] == plain[git_ingest.BLOB]


def test_links_added_after_the_lookups_are_looked_up_again() -> None:
    """``link_entries`` after ``mismatch`` (a deferred tree's links): each is among those ``closed``
    looks up, as ``link`` has them."""
    links = git_ingest.PushLinks()
    assert links.mismatch(lambda sha: 3, lambda ids: {3: set(ids)}) is None
    raw = _large(50, subtrees=True)
    shape, _clean = git_ingest.check_tree(raw)
    links.link_entries(shape.entries)
    assert links._unfound == set().union(*_plain_links(raw).values())


def test_a_mode_that_is_no_subtree_but_holds_its_bits_is_linked_as_git_links_it() -> None:
    """A ``40755`` entry (a subtree's type bits) is a tree link, a ``0`` mode a blob link, as
    ``tree_links`` has them."""
    raw = _entry(b"100644", b"a") + _entry(b"40755", b"b", SUB) + _entry(b"0", b"c", bytes(20 * [7]))
    shape, _clean = git_ingest.check_tree(raw, rules=git_ingest.fsck_rules([(b"badFilemode", b"ignore")]))
    linked, one_by_one = git_ingest.PushLinks(), git_ingest.PushLinks()
    linked.link_entries(shape.entries)
    one_by_one.link(git_ingest.tree_links(shape.entries))
    assert linked._sets == one_by_one._sets and linked._sets is not None and linked._sets[git_ingest.TREE] == {SUB}


OID = b"c" * 40
TWICE = f"object {OID.decode()}: duplicateEntries: contains duplicate file entries (tree has the entry 'f001000.txt' twice)"
# what the client is told (``the pushed pack is invalid: `` and this), word for word, of a large tree
REFUSALS: list[tuple[str, list[bytes], list[tuple[bytes, bytes]], str]] = [
    ("unsorted", [_entry(b"100644", b"f001000.txt"), _entry(b"100644", b"a.txt")], [],
     f"object {OID.decode()}: treeNotSorted: not properly sorted ('a.txt' after 'f001000.txt')"),
    ("twice", [_entry(b"100644", b"f001000.txt"), _entry(b"100644", b"f001000.txt")], [],
     TWICE),
    ("file-then-dir", [_entry(b"100644", b"f001000.txt"), _entry(b"40000", b"f001000.txt", SUB)], [],
     TWICE),
    ("empty-name", [_entry(b"100644", b"")], [], f"object {OID.decode()}: badTree: empty filename in tree entry"),
    ("signed-mode", [_entry(b"+100644", b"f001000.txt")], [],
     f"object {OID.decode()}: badTree: malformed mode in tree entry"),
    ("slash", [_entry(b"100644", b"f001000.txt/x")], [], f"object {OID.decode()}: fullPathname: contains full pathnames"),
    ("dotgit", [_entry(b"40000", b".GIT", SUB)], [], f"object {OID.decode()}: hasDotgit: contains '.git'"),
    ("dot", [_entry(b"40000", b".", SUB)], [], f"object {OID.decode()}: hasDot: contains '.'"),
    ("dotdot", [_entry(b"40000", b"..", SUB)], [], f"object {OID.decode()}: hasDotdot: contains '..'"),
    ("dir-after-file", [_entry(b"40000", b"f001000.txt", SUB), _entry(b"100644", b"f001000.txt")], [],
     f"object {OID.decode()}: treeNotSorted: not properly sorted ('f001000.txt' after 'f001000.txt/')"),
    ("zero-padded", [_entry(b"0100644", b"f001000.txt")], [(b"zeroPaddedFilemode", b"error")],
     f"object {OID.decode()}: zeroPaddedFilemode: contains zero-padded file modes"),
    ("bad-mode", [_entry(b"100664", b"f001000.txt")], [(b"badFilemode", b"error")],
     f"object {OID.decode()}: badFilemode: contains bad file modes"),
    ("null-id", [_entry(b"100644", b"f001000.txt", bytes(20))], [(b"nullSha1", b"error")],
     f"object {OID.decode()}: nullSha1: contains entries pointing to null sha1"),
]


@pytest.mark.parametrize("subtrees", [False, True])
@pytest.mark.parametrize(("case", "bad", "settings", "refusal"), REFUSALS, ids=[case[0] for case in REFUSALS])
def test_a_large_tree_breaking_a_rule_is_refused_in_the_same_words(subtrees: bool, case: str, bad: list[bytes],
                                                                   settings: list[tuple[bytes, bytes]],
                                                                   refusal: str) -> None:
    entries = [_entry(b"40000" if subtrees and i % 10 == 5 else b"100644",
                      b"f%06d" % i if subtrees and i % 10 == 5 else b"f%06d.txt" % i,
                      SUB if subtrees and i % 10 == 5 else BLOB) for i in range(2000)]
    at = 0 if case.startswith(("dot", "dotdot")) else 1000  # ('.' sorts first)
    entries[at:at + 1] = bad
    raw = b"".join(entries)
    with pytest.raises(git_ingest.FsckError) as refused:
        git_ingest.check_tree(raw, git_ingest.fsck_rules(settings), OID, DotFiles(), git_ingest.FsckWarnings())
    assert str(refused.value) == refusal


def test_the_plain_rules_agree_on_shuffled_large_trees() -> None:
    """Random large trees, sorted or with two entries swapped: refused exactly when the plain rule
    (strictly increasing keys, a subtree's ``name/``) says."""
    rng = random.Random(7)
    for _ in range(20):
        names = sorted({b"n%d" % rng.randrange(10**6) for _ in range(800)})
        dirs = {name for name in names if rng.random() < 0.2}
        keyed = sorted(names, key=lambda name: name + b"/" if name in dirs else name)
        if rng.random() < 0.5:
            i, j = rng.randrange(len(keyed)), rng.randrange(len(keyed))
            keyed[i], keyed[j] = keyed[j], keyed[i]
        keys = [name + b"/" if name in dirs else name for name in keyed]
        expected_ok = all(a < b for a, b in itertools.pairwise(keys))
        raw = b"".join(_entry(b"40000", name, SUB) if name in dirs else _entry(b"100644", name) for name in keyed)
        try:
            git_ingest.check_tree(raw)
        except git_ingest.FsckError as exc:
            assert not expected_ok and "treeNotSorted" in str(exc), binascii.hexlify(raw[:40])
        else:
            assert expected_ok
