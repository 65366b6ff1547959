"""Two versions of a tree that differ only in ids (files changed, none added, removed or renamed)
are compared by their bytes in blocks (``git_deltachain.changed_ids``): counting a walk, the new
one's entries are those the old one (the last of its name, ``git_reach._differing_entries``) does
not hold at the same place, the old entry starts kept; writing a pack, the delta made from the two
trees' entries (``tree_pieces``) copies all but the changed ids.  In every case the entries
returned are all those of the new tree the old one lacks, and the pieces make the new tree."""

from __future__ import annotations

from array import array

import pytest
from dulwich.objects import parse_tree
from hypothesis import given, settings
from hypothesis import strategies as st

from backends import git_deltachain, git_reach
from backends.git_deltachain import apply_pieces, tree_pieces

RAW_LEN = 20


def _tree(entries: list[tuple[bytes, int, bytes]]) -> bytes:
    """A tree's bytes, its entries in git's order (a subtree's name sorted as if ending in ``/``)."""
    ordered = sorted(entries, key=lambda e: e[0] + b"/" if e[1] == 0o40000 else e[0])
    return b"".join(b"%o %s\0%s" % (mode, name, binsha) for name, mode, binsha in ordered)


def _listing(raw: bytes) -> git_reach._Listing:
    entries = list(parse_tree(raw, RAW_LEN))
    ends = git_reach._entry_ends(entries, 0, RAW_LEN)
    assert ends is not None
    return git_reach._Listing(raw, array("q", [0]) + ends)


def _starts(raw: bytes) -> list[int]:
    return list(_listing(raw).bounds)


def test_a_tree_whose_files_changed_keeps_the_old_entry_starts() -> None:
    """150 files, three of them changed: those three entries, and the old tree's starts taken as
    they are (on the code before, a new array of runs of them; every entry found again)."""
    entries = [(b"f%03d.txt" % n, 0o100644, bytes([n]) * RAW_LEN) for n in range(150)]
    old = _listing(_tree(entries))
    changed = list(entries)
    for n in (0, 70, 149):
        changed[n] = (changed[n][0], 0o100644, bytes([n ^ 0xFF]) * RAW_LEN)
    raw = _tree(changed)
    found = git_reach._differing_entries(raw, old, RAW_LEN)
    assert found is not None
    assert sorted(found[0]) == sorted(e for e in parse_tree(raw, RAW_LEN) if e[0] in (b"f000.txt", b"f070.txt", b"f149.txt"))
    assert found[1].bounds is old.bounds


def test_a_delta_of_changed_files_copies_all_but_their_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    """150 files, three changed: the pieces copy the bytes up to each changed id and insert it, found
    by blocks of bytes (on the code before: 150 entry ends looked for, the common runs found by
    ``common_prefix``, here counted: fails)."""
    entries = [(b"f%03d.txt" % n, 0o100644, bytes([n]) * RAW_LEN) for n in range(150)]
    base = _tree(entries)
    for n in (0, 70, 149):
        entries[n] = (entries[n][0], 0o100644, bytes([n ^ 0xFF]) * RAW_LEN)
    target = _tree(entries)
    starts = _starts(base)
    calls = []
    real = git_deltachain.common_prefix
    monkeypatch.setattr(git_deltachain, "common_prefix", lambda *args: calls.append(args) or real(*args))
    pieces = tree_pieces(target, base, RAW_LEN)
    assert apply_pieces(pieces, base) == target
    ids = [(starts[n + 1] - RAW_LEN, starts[n + 1]) for n in (0, 70, 149)]
    assert [(s, lit) for s, lit in zip(pieces.source, pieces.literal, strict=True) if s < 0] == [
        (-1, target[a:b]) for a, b in ids]
    assert len(pieces) == 6 and not calls


NAMES = st.lists(st.binary(min_size=1, max_size=6).filter(lambda n: b"\0" not in n and b"/" not in n),
                 min_size=1, max_size=40, unique=True)
MODES = st.sampled_from([0o100644, 0o100755, 0o40000, 0o120000, 0o160000])
IDS = st.binary(min_size=RAW_LEN, max_size=RAW_LEN)


def _as_list(entries: dict[bytes, tuple[int, bytes]]) -> list[tuple[bytes, int, bytes]]:
    return [(name, mode, binsha) for name, (mode, binsha) in entries.items()]


@st.composite
def versions(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """Two versions of a tree: the second with some ids changed (most often: as long as the first),
    and sometimes an entry added, removed, renamed or its mode changed."""
    names = draw(NAMES)
    entries = {name: (draw(MODES), draw(IDS)) for name in names}
    new = dict(entries)
    for name in draw(st.lists(st.sampled_from(names), max_size=8)):
        new[name] = (new[name][0], draw(IDS))
    if draw(st.booleans()):
        for _ in range(draw(st.integers(1, 3))):
            what, name = draw(st.sampled_from(["add", "remove", "rename", "mode"])), draw(st.sampled_from(names))
            if what == "add":
                new[name + b"x"] = (draw(MODES), draw(IDS))
            elif what == "remove":
                new.pop(name, None)
            elif what == "rename" and name in new:
                new[name[:-1] + bytes([name[-1] ^ 1 or 1])] = new.pop(name)
            elif what == "mode" and name in new:
                new[name] = (draw(MODES), new[name][1])
    return _tree(_as_list(entries)), _tree(_as_list(new))


@settings(max_examples=400, deadline=None)
@given(versions())
def test_the_entries_returned_are_those_the_old_tree_lacks(pair: tuple[bytes, bytes]) -> None:
    """Whatever the change: every entry of the new tree not in the old one is returned (none
    missed: its object would not be counted), nothing that is not the new tree's, and the listing
    is the new tree's entry starts; ids changed alone give exactly the entries changed."""
    old_raw, raw = pair
    old = _listing(old_raw)
    found = git_reach._differing_entries(raw, old, RAW_LEN, limit=1_000)
    assert found is not None
    entries, listing = found
    new_entries, old_entries = list(parse_tree(raw, RAW_LEN)), list(parse_tree(old_raw, RAW_LEN))
    assert set(new_entries) - set(old_entries) <= set(entries) <= set(new_entries)
    assert listing.raw == raw and list(listing.bounds) == _starts(raw)
    if len(raw) == len(old_raw) and [e[:2] for e in new_entries] == [e[:2] for e in old_entries]:
        assert sorted(entries) == sorted(e for e, o in zip(new_entries, old_entries, strict=True) if e != o)


@settings(max_examples=300, deadline=None)
@given(versions())
def test_the_pieces_make_the_new_tree(pair: tuple[bytes, bytes]) -> None:
    """Whatever the change, the delta made from the entries makes the new tree from the old, and
    ids changed alone are each one insert of the id."""
    base, target = pair
    pieces = tree_pieces(target, base, RAW_LEN)
    assert apply_pieces(pieces, base) == target
    new_entries, old_entries = list(parse_tree(target, RAW_LEN)), list(parse_tree(base, RAW_LEN))
    if len(target) == len(base) and [e[:2] for e in new_entries] == [e[:2] for e in old_entries]:
        assert [lit for src, lit in zip(pieces.source, pieces.literal, strict=True) if src < 0] == [
            bytes.fromhex(e[2].decode()) for e, o in zip(new_entries, old_entries, strict=True) if e != o]
