"""A fetch of a rewritten history by a client that still has the old one (``git filter-repo`` then
``git push --mirror --force``; the second user's ``git fetch --prune``): every wanted branch tip is
new, none reaches what the client has, and the server's ``ok_to_give_up`` walked all the new
commits again for each tip, each round, reading each from the store (200 branches over 3,000
commits: a v0 fetch took 112 s of the server where git's upload-pack took 2 s).  The walks of one
question share what they found, and a negotiation reads each commit once."""

from __future__ import annotations

from dulwich.objects import Blob, Commit, Tree
from dulwich.repo import MemoryRepo

from backends import git_pack
from backends.interfaces import ObjectId
from tests.unit.backends.test_git_pack import CountingStore

LENGTH = 120
BRANCHES = 40


def _history(store: object, label: bytes, start: int) -> list[bytes]:
    """A chain of ``LENGTH`` commits, one a minute from ``start``."""
    chain: list[bytes] = []
    for i in range(LENGTH):
        blob = Blob.from_string(label + b" %d\n" % i)
        tree = Tree()
        tree.add(b"f.txt", 0o100644, blob.id)
        commit = Commit()
        commit.tree, commit.parents = tree.id, list(chain[-1:])  # type: ignore[arg-type]
        commit.author = commit.committer = b"T <t@example.com>"
        commit.author_time = commit.commit_time = start + 60 * i
        commit.author_timezone = commit.commit_timezone = 0
        commit.message = label + b" %d\n" % i
        for obj in (blob, tree, commit):
            store.add_object(obj)  # type: ignore[attr-defined]
        chain.append(commit.id)
    return chain


def test_a_rewritten_history_is_walked_once_a_negotiation() -> None:
    repo = MemoryRepo()
    old = _history(repo.object_store, b"old", 1_700_000_000)  # what the client has (the server kept it)
    new = _history(repo.object_store, b"new", 1_700_000_000)  # the same changes, rewritten
    wants = [ObjectId(new[-1 - i]) for i in range(BRANCHES)]  # branch tips along the new history
    store = CountingStore(repo.object_store)
    negotiator = git_pack.Negotiator(store, wants)  # type: ignore[arg-type]

    newest_first = old[::-1]
    rounds = [newest_first[i:i + 16] for i in range(0, LENGTH, 16)]
    for haves in rounds:  # git's client sends its haves newest first, in growing rounds
        answer = negotiator.negotiate([ObjectId(h) for h in haves], readiness=True)
        assert not answer.ready and all(v.common for v in answer.verdicts)

    sent = sum(len(haves) for haves in rounds)
    # each have read once to ack it (twice when it is a commit: its raw text, then its links),
    # each new commit once; it was every new commit again for each branch, each round
    assert store.reads <= 2 * sent + LENGTH + BRANCHES, store.reads


def test_the_answer_is_unchanged() -> None:
    """A want that reaches a have through a commit an earlier walk found dead-ended elsewhere is
    still found; one that reaches none is not."""
    repo = MemoryRepo()
    base = _history(repo.object_store, b"base", 1_700_000_000)
    other = _history(repo.object_store, b"other", 1_600_000_000)
    negotiator = git_pack.Negotiator(repo.object_store, [ObjectId(other[-1]), ObjectId(base[-1])])
    assert not negotiator.negotiate([ObjectId(base[10])], readiness=True).ready  # other reaches no have
    negotiator = git_pack.Negotiator(repo.object_store, [ObjectId(base[-1]), ObjectId(base[-5])])
    assert negotiator.negotiate([ObjectId(base[3])], readiness=True).ready
