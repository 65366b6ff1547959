"""Protected hg named branches: the pure decisions, and the guarded transaction over the real engine."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import cast

import pytest
from twisted.logger import LogEvent

import backends.hg as hgstore
from backends.hg.repository import HgRepo
from backends.interfaces import NULL_NODE, HgTransaction, IngestResult, Node, RevisionGroup
from bench.hg_storage_micro import HistoryBuilder
from gateway import protected
from gateway.channel import SessionContext
from gateway.policy import Protection, Protections
from gateway.protected import PushedChangeset
from protocols.errors import PermissionDenied

BRANCHES = (Protection("default"), Protection("release/*"), Protection("stable", no_direct_push=True))
PROTECTIONS = Protections(branches=BRANCHES)

# --- reading a changelog text ---------------------------------------------------------------------

# ``hg debugdata -c`` of changesets made by hg 7.2 (the second one with ``commit --close-branch``).
HG_DEFAULT = b"a0c8bcbbb45c63b90b70ad007bf38961f64f2af0\nT <t@example.com>\n0 0\na\n\nbase"
HG_CLOSE = (b"7a6fe5e40481b06d8a97a18270fa6dbf41c34e5c\nT <t@example.com>\n"
            b"1700000001 -3600 branch:release/1\x00close:1\na\n\nclose")
ESCAPED = (b"7a6fe5e40481b06d8a97a18270fa6dbf41c34e5c\nT <t@example.com>\n"
           b"0 0 note:a\\nb:c\x00branch:x\\\\y\\0z\n\nbranch names with escapes")


@pytest.mark.parametrize(("text", "expected"), [
    (HG_DEFAULT, (b"default", False)),       # no extras: the default branch
    (HG_CLOSE, (b"release/1", True)),        # NUL-separated extras: branch and close
    (ESCAPED, (b"x\\y\0z", False)),          # \\ and \0 unescaped; an escaped newline stays in its extra
])
def test_branch_and_close(text: bytes, expected: tuple[bytes, bool]) -> None:
    assert protected.branch_and_close(text) == expected


# --- heads and refusals -----------------------------------------------------------------------------

def _n(label: str) -> Node:
    return Node(label.encode().ljust(20, b"."))


def _cs(label: str, *parents: str, branch: bytes = b"default", closes: bool = False) -> PushedChangeset:
    p1, p2 = ([_n(p) for p in parents] + [NULL_NODE, NULL_NODE])[:2]
    return PushedChangeset(_n(label), (p1, p2), branch, closes)


HEADS_AFTER = [
    ({"A"}, [_cs("B", "A")], {"B"}),                            # fast-forward
    ({"A"}, [_cs("B", "A"), _cs("C", "B")], {"C"}),             # two in a row
    ({"A"}, [_cs("B", "X")], {"A", "B"}),                       # off an older changeset: a new head
    ({"A"}, [_cs("B", "A"), _cs("C", "A")], {"B", "C"}),        # two children of one head
    ({"A", "C"}, [_cs("M", "A", "C")], {"M"}),                  # a merge of two heads
    (set(), [_cs("B", "D")], {"B"}),                            # the branch starts off another branch
]


@pytest.mark.parametrize(("before", "pushed", "after"), HEADS_AFTER)
def test_branch_heads_after(before: set[str], pushed: list[PushedChangeset], after: set[str]) -> None:
    assert protected.branch_heads_after({_n(h) for h in before}, pushed) == {_n(h) for h in after}


HEADS = {b"default": [_n("A")], b"release/1": [_n("R")], b"stable": [_n("S")], b"feature": [_n("F")]}
REFUSALS = [
    ([_cs("B", "A")], None),
    ([_cs("B", "X")], "protected branch default: pushing a new head is not allowed"),
    ([_cs("B", "A"), _cs("C", "A")], "protected branch default: pushing a new head is not allowed"),
    ([_cs("B", "A", closes=True)], "protected branch default: closing a head is not allowed"),
    ([_cs("Q", "R", branch=b"release/1")], None),
    ([_cs("Q", "X", branch=b"release/1")], "protected branch release/1: pushing a new head is not allowed"),
    ([_cs("Q", "R", branch=b"release/1", closes=True)],
     "protected branch release/1: closing a head is not allowed"),
    ([_cs("T", "S", branch=b"stable")], "protected branch stable: direct pushes are not allowed"),
    ([_cs("T", "A", branch=b"stable2")], None),           # the pattern is exact
    ([_cs("N", "A", branch=b"release/2")], None),         # a new branch: one head may appear
    ([_cs("N", "A", branch=b"release/2"), _cs("O", "A", branch=b"release/2")],
     "protected branch release/2: pushing a new head is not allowed"),
    ([_cs("G", "X", branch=b"feature"), _cs("H", "F", branch=b"feature", closes=True)], None),  # unprotected
    ([_cs("T", "S", branch=b"stable"), _cs("B", "X")],     # the first branch by name is reported
     "protected branch default: pushing a new head is not allowed"),
]


@pytest.mark.parametrize(("pushed", "refusal"), REFUSALS)
def test_branches_refusal(pushed: list[PushedChangeset], refusal: str | None) -> None:
    assert protected.branches_refusal(BRANCHES, HEADS, pushed) == refusal


def test_an_empty_repository_takes_its_first_push() -> None:
    assert protected.branches_refusal(BRANCHES, {}, [_cs("A"), _cs("B", "A")]) is None


def test_a_new_head_next_to_a_merge_keeps_the_count() -> None:
    """Two heads merged and one new head: as many heads as before, so the push passes."""
    two_heads = {b"default": [_n("A"), _n("Z")]}
    assert protected.branches_refusal(BRANCHES, two_heads, [_cs("M", "A", "Z"), _cs("N", "X")]) is None
    assert protected.branches_refusal(BRANCHES, two_heads, [_cs("N", "X")]) is not None


# --- the guarded transaction over the real engine -------------------------------------------------

def _ctx() -> SessionContext:
    return SessionContext(backend=None, repo_name="team/hg", transport="hg-ssh",  # type: ignore[arg-type]
                          peer="127.0.0.1:5", user="alice")


@pytest.fixture(params=["fs", "memory"])
def seeded(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[HgRepo, HistoryBuilder, dict[str, Node]]:
    """default: a-b, stable: s off a; written without the guard."""
    repo = hgstore.create_repository(str(tmp_path / "r"), "r") if request.param == "fs" else \
        hgstore.MemoryHgRepository("r")
    h = HistoryBuilder()
    n = {"a": h.commit({b"f": b"a\n"}, message=b"a")}
    n["b"] = h.commit({b"f": b"b\n"}, n["a"], message=b"b")
    n["s"] = h.commit({b"s": b"s\n"}, n["a"], branch=b"stable", message=b"s")
    tx = repo.transaction()
    tx.add_changegroup(h.groups())
    tx.commit()
    return repo, h, n


def _files(repo: HgRepo) -> dict[bytes, bytes]:
    return {path: repo.store.read(path) for path in repo.store.walk()}


def _push(repo: HgRepo, groups: Iterator[RevisionGroup]) -> protected.GuardedTransaction:
    tx = protected.GuardedTransaction(repo, repo.transaction(), _ctx(), PROTECTIONS)
    tx.add_changegroup(groups)
    return tx


def test_a_new_head_is_refused_at_commit_and_rolled_back(
        seeded: tuple[HgRepo, HistoryBuilder, dict[str, Node]], events: list[LogEvent]) -> None:
    repo, h, n = seeded
    before = _files(repo)
    h.commit({b"f": b"fork\n"}, n["a"], message=b"fork")  # the whole history again: only "fork" is new
    tx = _push(repo, h.groups())
    assert repo.store.read(b"00changelog.i") == before[b"00changelog.i"]  # read back without an early flush
    with pytest.raises(PermissionDenied, match="protected branch default: pushing a new head is not allowed"):
        tx.commit()
    tx.abort()  # what the unbundle handlers do with a refusal
    assert _files(repo) == before
    assert events[-1]["outcome"] == "refused: protected branch default: pushing a new head is not allowed"


def test_a_fast_forward_and_a_new_unprotected_branch_commit(
        seeded: tuple[HgRepo, HistoryBuilder, dict[str, Node]]) -> None:
    repo, h, n = seeded
    c = h.commit({b"f": b"c\n"}, n["b"], message=b"c")
    feature = h.commit({b"g": b"g\n"}, n["a"], branch=b"feature", close=True, message=b"feature")
    _push(repo, h.groups()).commit()
    assert {k: list(v) for k, v in repo.branchmap().items()} == {
        b"default": [c], b"stable": [n["s"]], b"feature": [feature]}


@pytest.mark.parametrize(("branch", "parent", "close", "refusal"), [
    (b"default", "b", True, "protected branch default: closing a head is not allowed"),
    (b"stable", "s", False, "protected branch stable: direct pushes are not allowed"),
])
def test_closing_and_direct_pushes_are_refused(seeded: tuple[HgRepo, HistoryBuilder, dict[str, Node]],
                                               branch: bytes, parent: str, close: bool, refusal: str) -> None:
    repo, h, n = seeded
    before = _files(repo)
    h.commit({b"f": b"next\n"}, n[parent], branch=branch, close=close, message=b"next")
    tx = _push(repo, h.groups())
    with pytest.raises(PermissionDenied, match=refusal):
        tx.commit()
    tx.abort()
    assert _files(repo) == before


class NoReader:
    """A backend transaction that cannot read changesets back (not a ``ChangesetReader``)."""

    def __init__(self) -> None:
        self.ingested = False

    def add_changegroup(self, groups: Iterator[RevisionGroup]) -> IngestResult:
        self.ingested = True
        return IngestResult([], 1, 1)

    def set_bookmark(self, name: bytes, old: Node | None, new: Node | None) -> bool:
        return True

    def set_phase(self, phase: int, nodes: Sequence[Node]) -> None:
        pass

    def commit(self) -> None:
        pass

    def abort(self) -> None:
        pass


def test_without_a_reader_protected_branches_fail_closed(
        seeded: tuple[HgRepo, HistoryBuilder, dict[str, Node]]) -> None:
    repo, h, _ = seeded
    inner = NoReader()
    tx = protected.GuardedTransaction(repo, cast(HgTransaction, inner), _ctx(), PROTECTIONS)
    with pytest.raises(PermissionDenied, match="protected branches cannot be checked"):
        tx.add_changegroup(h.groups())
    assert not inner.ingested
    unprotected = protected.GuardedTransaction(repo, cast(HgTransaction, NoReader()), _ctx(), Protections())
    unprotected.add_changegroup(h.groups())
    unprotected.commit()
