"""Protocol v2 ``fetch`` of a shallow clone over HTTP is a round of haves a request, each repeating
the shallow lines and the deepen request.  git's upload-pack plans the shallow boundary only in
the round that sends the pack (``send_shallow_info``); hgwire planned it in every round, a walk of
the refs' history for ``--deepen`` (10,000 shallow lines over 50,000 commits: 0.4 s a round),
of the wants' for ``--shallow-since``, then dropped it unsent."""

from __future__ import annotations

import pytest
from dulwich.objects import Blob, Commit, Tree
from dulwich.repo import MemoryRepo

from backends import git_pack
from backends.interfaces import ObjectId
from gateway import git_session
from protocols import git_v2
from protocols.errors import ProtocolError
from protocols.git_upload import FetchRequest


class _Repo:
    def __init__(self) -> None:
        self.repo = MemoryRepo()
        self.object_store = self.repo.object_store
        self.ids: list[ObjectId] = []
        commits: list[Commit] = []
        for n in range(5):
            blob = Blob.from_string(b"%d\n" % n)
            tree = Tree()
            tree.add(b"f.txt", 0o100644, blob.id)
            commit = Commit()
            commit.tree, commit.parents = tree.id, [c.id for c in commits[-1:]]
            commit.author = commit.committer = b"T <t@example.com>"
            commit.author_time = commit.commit_time = 1_700_000_000 + n
            commit.author_timezone = commit.commit_timezone = 0
            commit.message = b"c%d\n" % n
            for obj in (blob, tree, commit):
                self.object_store.add_object(obj)
            commits.append(commit)
            self.ids.append(ObjectId(commit.id))

    def refs(self) -> dict[bytes, ObjectId]:
        return {b"HEAD": self.ids[-1], b"refs/heads/main": self.ids[-1]}

    def symrefs(self) -> dict[bytes, bytes]:
        return {b"HEAD": b"refs/heads/main"}


@pytest.fixture
def planned(monkeypatch: pytest.MonkeyPatch) -> list[FetchRequest]:
    calls: list[FetchRequest] = []
    plan = git_pack.plan_shallow

    def counted(store: object, request: FetchRequest, *args: object) -> git_pack.ShallowPlan:
        calls.append(request)
        return plan(store, request, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(git_pack, "plan_shallow", counted)
    return calls


def test_a_round_of_haves_answered_without_a_pack_plans_no_boundary(planned: list[FetchRequest]) -> None:
    repo = _Repo()
    request = FetchRequest((repo.ids[-1],), frozenset({b"deepen-relative"}), (repo.ids[3],), depth=1)
    unknown = ObjectId(b"1" * 40)
    prepared = git_session._prepare_v2_fetch(repo, git_v2.Fetch(request, haves=(unknown,)))  # type: ignore[arg-type]
    assert not prepared.ready and not planned
    prepared = git_session._prepare_v2_fetch(repo, git_v2.Fetch(request, haves=(unknown,), done=True))  # type: ignore[arg-type]
    assert planned == [request]
    assert prepared.shallow.shallow == (repo.ids[2],)  # (main reaches c3: deepened by one)


def test_a_round_that_gets_ready_plans_the_boundary(planned: list[FetchRequest]) -> None:
    repo = _Repo()
    request = FetchRequest((repo.ids[-1],), frozenset({b"deepen-relative"}), (repo.ids[3],), depth=1)
    prepared = git_session._prepare_v2_fetch(repo, git_v2.Fetch(request, haves=(repo.ids[3],)))  # type: ignore[arg-type]
    assert prepared.ready and planned == [request]
    assert prepared.shallow.shallow == (repo.ids[2],)


def test_a_deepen_not_naming_no_ref_is_refused_in_a_round_of_haves(planned: list[FetchRequest]) -> None:
    repo = _Repo()
    request = FetchRequest((repo.ids[-1],), frozenset(), deepen_not=(b"nothing",))
    with pytest.raises(ProtocolError, match="ambiguous deepen-not: nothing"):
        git_session._prepare_v2_fetch(repo, git_v2.Fetch(request, haves=(ObjectId(b"1" * 40),)))  # type: ignore[arg-type]
