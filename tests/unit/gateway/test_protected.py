"""Protected git refs and hg bookmarks, and the audit events of writes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from dulwich.objects import Commit, ObjectID, Tree
from twisted.logger import LogEvent

from backends import git_pack
from backends.interfaces import (
    NULL_NODE,
    ZERO_ID,
    GitRepository,
    IngestResult,
    Kind,
    Node,
    ObjectId,
    RefResult,
    RefUpdate,
    RevisionDelta,
    RevisionGroup,
    Section,
)
from backends.memory import MemoryBackend
from gateway import audit, protected
from gateway.channel import SessionContext
from gateway.policy import Protection, Protections
from protocols.errors import PermissionDenied

MAIN, TOPIC, TAG = b"refs/heads/main", b"refs/heads/topic", b"refs/tags/v1"
PROTECTIONS = Protections(refs=(Protection("refs/heads/main"), Protection("refs/tags/*"),
                                Protection("refs/heads/frozen", no_direct_push=True)),
                          bookmarks=(Protection("stable"), Protection("frozen", no_direct_push=True)))


def _commit(store: Any, parents: Sequence[bytes], message: bytes) -> ObjectId:
    tree = Tree()
    store.add_object(tree)
    commit = Commit()
    commit.tree, commit.parents, commit.message = tree.id, [ObjectID(p) for p in parents], message
    commit.author = commit.committer = b"T <t@example.com>"
    commit.author_time = commit.commit_time = 0
    commit.author_timezone = commit.commit_timezone = 0
    store.add_object(commit)
    return ObjectId(commit.id)


@pytest.fixture
def git_repo() -> tuple[GitRepository, dict[str, ObjectId]]:
    repo = MemoryBackend("").create("r.git", Kind.GIT)
    assert repo.kind is Kind.GIT
    store = repo.object_store
    base = _commit(store, [], b"base")
    ahead = _commit(store, [base], b"ahead")
    sideways = _commit(store, [base], b"sideways")
    ids = {"base": base, "ahead": ahead, "sideways": sideways}
    results = repo.update_refs([RefUpdate(MAIN, ZERO_ID, base), RefUpdate(TAG, ZERO_ID, base),
                                RefUpdate(TOPIC, ZERO_ID, base)], atomic=False)
    assert all(r.reason is None for r in results)
    return repo, ids


def test_is_ancestor(git_repo: tuple[GitRepository, dict[str, ObjectId]]) -> None:
    repo, ids = git_repo
    assert git_pack.is_ancestor(repo.object_store, ids["base"], ids["ahead"])
    assert not git_pack.is_ancestor(repo.object_store, ids["ahead"], ids["base"])
    assert not git_pack.is_ancestor(repo.object_store, ids["ahead"], ids["sideways"])


def test_protected_refs_refuse_force_push_and_deletion(git_repo: tuple[GitRepository, dict[str, ObjectId]]) -> None:
    repo, ids = git_repo
    base, ahead, sideways = ids["base"], ids["ahead"], ids["sideways"]
    updates = [
        RefUpdate(MAIN, base, sideways),         # base is an ancestor of sideways: a fast-forward
        RefUpdate(TAG, base, ZERO_ID),           # deletion of a protected tag
        RefUpdate(TOPIC, base, sideways),        # unprotected: a force-push is fine
        RefUpdate(b"refs/heads/frozen", ZERO_ID, base),
    ]
    results = protected.update_refs(repo, updates, atomic=False, protections=PROTECTIONS)
    assert results == [
        RefResult(MAIN, None),  # base -> sideways is a fast-forward
        RefResult(TAG, "protected ref: deletion is not allowed"),
        RefResult(TOPIC, None),
        RefResult(b"refs/heads/frozen", "protected branch: direct pushes are not allowed"),
    ]
    forced = protected.update_refs(repo, [RefUpdate(MAIN, sideways, ahead)], atomic=False, protections=PROTECTIONS)
    assert forced == [RefResult(MAIN, "protected branch: force-push (non-fast-forward) is not allowed")]
    assert repo.refs()[MAIN] == sideways


def test_atomic_push_with_a_protected_refusal_moves_nothing(
        git_repo: tuple[GitRepository, dict[str, ObjectId]]) -> None:
    repo, ids = git_repo
    updates = [RefUpdate(TOPIC, ids["base"], ids["ahead"]), RefUpdate(MAIN, ids["base"], ZERO_ID)]
    results = protected.update_refs(repo, updates, atomic=True, protections=PROTECTIONS)
    assert results == [RefResult(TOPIC, "atomic push failure"),
                       RefResult(MAIN, "protected branch: deletion is not allowed")]
    assert repo.refs()[TOPIC] == ids["base"]


def test_without_protections_the_backend_decides(git_repo: tuple[GitRepository, dict[str, ObjectId]]) -> None:
    repo, ids = git_repo
    deletions = [RefUpdate(MAIN, ids["base"], ZERO_ID), RefUpdate(TOPIC, ids["base"], ZERO_ID)]
    assert protected.update_refs(repo, deletions, False, None) == [
        RefResult(MAIN, "deletion of the current branch prohibited"), RefResult(TOPIC)]  # HEAD names main


class _Told:
    """Receive hooks that note what they are told; pre-receive says ``accept``."""

    def __init__(self, accept: bool) -> None:
        self.accept = accept
        self.seen: list[str] = []

    def pre_receive(self, updates: Sequence[RefUpdate]) -> bool:
        self.seen.append("pre-receive " + " ".join(u.ref.decode() for u in updates))
        return self.accept

    def update(self, update: RefUpdate) -> bool:
        self.seen.append("update " + update.ref.decode())
        return True

    def post_receive(self, updates: Sequence[RefUpdate]) -> None:
        self.seen.append("post-receive " + " ".join(u.ref.decode() for u in updates))


@pytest.mark.parametrize("atomic", [False, True])
@pytest.mark.parametrize("accept", [True, False])
def test_pre_receive_hears_of_the_commands_the_gateway_refuses(
        git_repo: tuple[GitRepository, dict[str, ObjectId]], accept: bool, atomic: bool) -> None:
    """As git's receive-pack: pre-receive is told every command as sent (a funny name, a
    protected ref's force-push) before they are refused, and a hook that declines has them all
    "pre-receive hook declined"; one that accepts is followed by git's ``error:`` line for a funny
    name.  The backend is never given them.  hgwire refused them before the hook, which never
    heard of them (and ran not at all when every command was refused)."""
    repo, ids = git_repo
    commands = [[RefUpdate(b"refs/heads/a..b", ZERO_ID, ids["base"]), RefUpdate(MAIN, ids["base"], ZERO_ID)],
                [RefUpdate(TOPIC, ids["base"], ids["ahead"]), RefUpdate(b"refs/heads/a..b", ZERO_ID, ids["base"])]]
    for updates in commands:
        hooks, said = _Told(accept), []  # type: ignore[var-annotated]
        results = protected.update_refs(repo, updates, atomic, PROTECTIONS, hooks, said)
        assert hooks.seen[0] == "pre-receive " + " ".join(u.ref.decode() for u in updates)
        assert [s for s in hooks.seen if s.startswith("pre-receive")] == hooks.seen[:1]  # once
        assert "a..b" not in " ".join(hooks.seen[1:])  # nothing else, and not the backend, heard of it
        reasons = {r.ref: r.reason for r in results}
        if not accept:
            assert set(reasons.values()) == {"pre-receive hook declined"}
            assert said == []
        else:
            assert reasons[b"refs/heads/a..b"] == "funny refname"
            assert said == [b"error: refusing to create funny ref 'refs/heads/a..b' remotely\n"]
    assert repo.refs()[TOPIC] == (ids["ahead"] if accept and not atomic else ids["base"])
    assert b"refs/heads/a..b" not in repo.refs()


def _ctx() -> SessionContext:
    return SessionContext(backend=None, repo_name="team/hg", transport="hg-ssh",  # type: ignore[arg-type]
                          peer="127.0.0.1:5", user="alice")


def test_git_push_audit_event(events: list[LogEvent]) -> None:
    updates = [RefUpdate(MAIN, ObjectId(b"1" * 40), ObjectId(b"2" * 40)), RefUpdate(TOPIC, ZERO_ID, ObjectId(b"3" * 40))]
    audit.git_push(_ctx(), updates, [RefResult(MAIN, "protected branch: deletion is not allowed"), RefResult(TOPIC)],
                   None)
    (event,) = events
    assert event["audit"] and event["user"] == "alice" and event["repo"] == "team/hg"
    assert event["proto"] == "hg-ssh" and event["peer"] == "127.0.0.1:5" and event["outcome"] == "1 refused"
    assert event["changes"][1] == {"name": "refs/heads/topic", "old": "0" * 40, "new": "3" * 40, "result": "ok"}


# --- hg -------------------------------------------------------------------------------------------

def _node(n: int) -> Node:
    return Node(bytes([n]) * 20)


class FakeHgRepo:
    """Changesets 1 <- 2 <- 3 and 1 <- 4; ``missing`` answers from that graph."""

    def __init__(self) -> None:
        self.parents = {_node(2): _node(1), _node(3): _node(2), _node(4): _node(1)}
        self.current_heads = [_node(3), _node(4)]

    def heads(self) -> list[Node]:
        return list(self.current_heads)

    def _ancestors(self, node: Node) -> set[Node]:
        found = set()
        while node in self.parents or node == _node(1):
            found.add(node)
            if node == _node(1):
                break
            node = self.parents[node]
        return found

    def missing(self, common: Sequence[Node], heads: Sequence[Node]) -> list[Node]:
        have = set().union(*(self._ancestors(c) for c in common))
        return sorted(set().union(*(self._ancestors(h) for h in heads)) - have)


class FakeTx:
    def __init__(self, repo: FakeHgRepo) -> None:
        self.repo = repo
        self.bookmarks: list[tuple[bytes, Node | None, Node | None]] = []
        self.state = "open"

    def add_changegroup(self, groups: Iterator[RevisionGroup]) -> IngestResult:
        added = [r.node for g in groups for r in g.revisions]
        return IngestResult(added, 2, 2)

    def set_bookmark(self, name: bytes, old: Node | None, new: Node | None) -> bool:
        self.bookmarks.append((name, old, new))
        return True

    def set_phase(self, phase: int, nodes: Sequence[Node]) -> None:
        pass

    def commit(self) -> None:
        self.state = "committed"
        self.repo.current_heads = [_node(5), _node(4)]

    def abort(self) -> None:
        self.state = "aborted"


def _guarded() -> tuple[protected.GuardedTransaction, FakeTx]:
    repo = FakeHgRepo()
    tx = FakeTx(repo)
    return protected.GuardedTransaction(repo, tx, _ctx(), PROTECTIONS), tx  # type: ignore[arg-type]


BOOKMARK_MOVES = [
    (b"stable", _node(2), _node(3), None),                       # fast-forward
    (b"stable", None, _node(3), None),                           # creation
    (b"stable", _node(3), _node(2), "non-fast-forward"),         # backwards
    (b"stable", _node(3), _node(4), "non-fast-forward"),         # sideways
    (b"stable", _node(3), None, "deletion is not allowed"),
    (b"frozen", _node(2), _node(3), "direct pushes are not allowed"),
    (b"other", _node(3), None, None),                            # unprotected
]


@pytest.mark.parametrize(("name", "old", "new", "refusal"), BOOKMARK_MOVES)
def test_protected_bookmarks(name: bytes, old: Node | None, new: Node | None, refusal: str | None) -> None:
    tx, inner = _guarded()
    if refusal is None:
        assert tx.set_bookmark(name, old, new)
        assert inner.bookmarks == [(name, old, new)]
    else:
        with pytest.raises(PermissionDenied, match=refusal):
            tx.set_bookmark(name, old, new)
        assert inner.bookmarks == []


def test_fast_forward_onto_changesets_of_the_same_push(events: list[LogEvent]) -> None:
    tx, _ = _guarded()
    pushed = RevisionDelta(_node(5), _node(3), NULL_NODE, _node(5), NULL_NODE, b"")
    tx.add_changegroup(iter([RevisionGroup(Section.CHANGELOG, b"", iter([pushed]))]))
    assert tx.set_bookmark(b"stable", _node(3), _node(5))
    with pytest.raises(PermissionDenied):
        tx.set_bookmark(b"stable", _node(4), _node(5))
    tx.commit()
    (event,) = events
    assert event["outcome"] == "ok" and event["action"] == "push"
    heads, bookmark = event["changes"]
    assert heads["name"] == "heads" and heads["new"].startswith(_node(5).hex())
    assert bookmark == {"name": "bookmark stable", "old": _node(3).hex(), "new": _node(5).hex(), "result": "ok"}


def test_refused_push_is_audited_on_abort(events: list[LogEvent]) -> None:
    tx, inner = _guarded()
    with pytest.raises(PermissionDenied):
        tx.set_bookmark(b"stable", _node(3), None)
    tx.abort()
    assert inner.state == "aborted"
    assert events[0]["outcome"] == 'refused: bookmark "stable" is protected: deletion is not allowed'


def test_a_backend_transaction_without_the_lock_wait_is_called_as_it_was_written() -> None:
    """A backend's ``HgRepository.transaction`` of before ``wait`` (max_text only) still opens its
    transaction; one that takes ``wait`` is given it."""
    from backends.interfaces import LockWait
    from gateway.protected import open_transaction

    calls: list[tuple[object, ...]] = []

    class Before:
        def transaction(self, max_text: int | None = None) -> object:
            calls.append((max_text,))
            return "tx"

    class After:
        def transaction(self, max_text: int | None = None, wait: LockWait | None = None) -> object:
            calls.append((max_text, wait))
            return "tx"

    wait = LockWait(timeout=5.0)
    assert open_transaction(Before(), 10, wait) == "tx"  # type: ignore[arg-type]
    assert open_transaction(After(), 10, wait) == "tx"  # type: ignore[arg-type]
    assert calls == [(10,), (10, wait)]
