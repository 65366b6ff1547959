"""The contract every backend passes: subclass ``BackendContract`` and provide ``make_backend``."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from dulwich.objects import Blob, Commit, Tree
from dulwich.object_format import SHA1
from dulwich.pack import write_pack_objects

from backends.interfaces import ZERO_ID, Backend, GitRepository, Kind, ObjectId, RefUpdate
from protocols.errors import RepositoryNotFound, UnsafeName

HOSTILE_NAMES = ["../x", "a/../../x", "/../etc", "-x", "--upload-pack=touch pwned", "a/-b", "a\0b",
                 "a\nb", "a\x7fb", ".hg", "a/.git/config", "~root/x", "", "/", "a//b", "a\\b"]


def _commit(message: bytes, parents: list[bytes]) -> tuple[Commit, list[Blob | Tree | Commit]]:
    blob = Blob.from_string(b"content of " + message)
    tree = Tree()
    tree.add(b"file.txt", 0o100644, blob.id)
    commit = Commit()
    commit.tree = tree.id
    commit.parents = parents
    commit.author = commit.committer = b"Test <test@example.com>"
    commit.author_time = commit.commit_time = 1700000000
    commit.author_timezone = commit.commit_timezone = 0
    commit.message = message
    return commit, [blob, tree, commit]


def _pack(objects: list[Blob | Tree | Commit]) -> bytes:
    buf = io.BytesIO()
    write_pack_objects(buf.write, [(o, None) for o in objects], SHA1)
    return buf.getvalue()


def _push(repo: GitRepository, objects: list[Blob | Tree | Commit], updates: list[RefUpdate]) -> list[str | None]:
    sink = repo.begin_pack()
    sink.write(_pack(objects))
    sink.commit()
    return [r.reason for r in repo.update_refs(updates, atomic=False)]


class BackendContract:
    """Behaviour common to every backend; ``tmp_path`` is pytest's."""

    def make_backend(self, root: Path) -> Backend:
        raise NotImplementedError

    @pytest.fixture
    def backend(self, tmp_path: Path) -> Backend:
        return self.make_backend(tmp_path / "root")

    def test_create_then_open_by_either_name(self, backend: Backend) -> None:
        backend.create("team/app", Kind.GIT)
        for name in ("team/app", "team/app.git", "/team/app.git", "team/app/"):
            repo = backend.open(name)
            assert repo.kind is Kind.GIT
        assert backend.exists("team/app")
        assert [n for n in backend.list() if "app" in n]

    def test_missing_repository(self, backend: Backend) -> None:
        with pytest.raises(RepositoryNotFound):
            backend.open("nope")
        assert not backend.exists("nope")

    @pytest.mark.parametrize("name", HOSTILE_NAMES)
    def test_hostile_names_refused(self, backend: Backend, name: str) -> None:
        with pytest.raises(UnsafeName):
            backend.open(name)
        with pytest.raises(UnsafeName):
            backend.create(name, Kind.GIT)

    def test_new_repository_is_empty_with_unborn_head(self, backend: Backend) -> None:
        repo = backend.create("empty", Kind.GIT)
        assert repo.kind is Kind.GIT
        assert dict(repo.refs()) == {}
        assert repo.symrefs() == {b"HEAD": b"refs/heads/main"}

    def test_funny_ref_names_and_deleting_the_current_branch_are_refused_as_git_does(
            self, backend: Backend) -> None:
        repo = backend.create("r", Kind.GIT)
        assert repo.kind is Kind.GIT
        commit, objects = _commit(b"one", [])
        oid = ObjectId(commit.id)
        created = [RefUpdate(name, ZERO_ID, oid) for name in (b"refs/heads/main", b"refs/foo", b"refs/heads/x")]
        assert _push(repo, objects, created) == [None, "funny refname", None]
        deletions = [RefUpdate(b"refs/heads/main", oid, ZERO_ID), RefUpdate(b"refs/heads/x", oid, ZERO_ID)]
        assert [r.reason for r in repo.update_refs(deletions, atomic=False)] == [
            "deletion of the current branch prohibited", None]
        assert set(repo.refs()) == {b"HEAD", b"refs/heads/main"}

    def test_a_ref_cannot_be_a_directory_of_another(self, backend: Backend) -> None:
        """``dev`` and ``dev/x`` cannot both exist (git could not clone the repository)."""
        repo = backend.create("r", Kind.GIT)
        assert repo.kind is Kind.GIT
        commit, objects = _commit(b"one", [])
        oid = ObjectId(commit.id)
        created = [RefUpdate(b"refs/heads/main", ZERO_ID, oid), RefUpdate(b"refs/heads/dev", ZERO_ID, oid),
                   RefUpdate(b"refs/heads/dev/x", ZERO_ID, oid), RefUpdate(b"refs/heads/main/y", ZERO_ID, oid)]
        assert _push(repo, objects, created) == [
            None, None, "failed to update ref: 'refs/heads/dev' exists; cannot create 'refs/heads/dev/x'",
            "failed to update ref: 'refs/heads/main' exists; cannot create 'refs/heads/main/y'"]
        below = [RefUpdate(b"refs/heads/a/b/c", ZERO_ID, oid), RefUpdate(b"refs/heads/a", ZERO_ID, oid)]
        assert [r.reason for r in repo.update_refs(below, atomic=False)] == [
            None, "failed to update ref: 'refs/heads/a/b/c' exists; cannot create 'refs/heads/a'"]
        atomic = [RefUpdate(b"refs/heads/n", ZERO_ID, oid), RefUpdate(b"refs/heads/n/m", ZERO_ID, oid)]
        assert [r.reason for r in repo.update_refs(atomic, atomic=True)] == [
            "atomic push failed", "failed to update ref: 'refs/heads/n' exists; cannot create 'refs/heads/n/m'"]
        room = [RefUpdate(b"refs/heads/dev", oid, ZERO_ID), RefUpdate(b"refs/heads/dev/x", ZERO_ID, oid)]
        assert [r.reason for r in repo.update_refs(room, atomic=True)] == [None, None]  # a deletion makes room
        assert set(repo.refs()) == {b"HEAD", b"refs/heads/main", b"refs/heads/dev/x", b"refs/heads/a/b/c"}

    def test_a_branch_names_a_commit(self, backend: Backend) -> None:
        repo = backend.create("r", Kind.GIT)
        assert repo.kind is Kind.GIT
        commit, objects = _commit(b"one", [])
        tree = next(o for o in objects if isinstance(o, Tree))
        updates = [RefUpdate(b"refs/heads/main", ZERO_ID, ObjectId(commit.id)),
                   RefUpdate(b"refs/heads/t", ZERO_ID, ObjectId(tree.id)),
                   RefUpdate(b"refs/tags/t", ZERO_ID, ObjectId(tree.id))]  # a tag may name a tree
        assert _push(repo, objects, updates) == [
            None, "failed to update ref: a branch must name a commit, not a tree, blob or tag", None]

    def test_push_then_compare_and_swap(self, backend: Backend) -> None:
        repo = backend.create("r", Kind.GIT)
        assert repo.kind is Kind.GIT
        first, objects = _commit(b"one", [])
        assert _push(repo, objects, [RefUpdate(b"refs/heads/main", ZERO_ID, ObjectId(first.id))]) == [None]
        second, more = _commit(b"two", [first.id])
        stale = RefUpdate(b"refs/heads/main", ZERO_ID, ObjectId(second.id))
        assert _push(repo, more, [stale]) == ["stale info"]
        good = RefUpdate(b"refs/heads/main", ObjectId(first.id), ObjectId(second.id))
        assert [r.reason for r in repo.update_refs([good], atomic=True)] == [None]
        reopened = backend.open("r")
        assert reopened.kind is Kind.GIT
        assert reopened.refs()[b"refs/heads/main"] == second.id
        assert reopened.refs()[b"HEAD"] == second.id

    def test_first_push_of_other_branch_repoints_head(self, backend: Backend) -> None:
        repo = backend.create("r", Kind.GIT)
        assert repo.kind is Kind.GIT
        commit, objects = _commit(b"one", [])
        _push(repo, objects, [RefUpdate(b"refs/heads/master", ZERO_ID, ObjectId(commit.id))])
        assert repo.symrefs() == {b"HEAD": b"refs/heads/master"}

    def test_pack_missing_objects_moves_no_ref(self, backend: Backend) -> None:
        repo = backend.create("r", Kind.GIT)
        assert repo.kind is Kind.GIT
        commit, objects = _commit(b"one", [])
        incomplete = [o for o in objects if not isinstance(o, Blob)]
        update = RefUpdate(b"refs/heads/main", ZERO_ID, ObjectId(commit.id))
        assert _push(repo, incomplete, [update]) == ["missing necessary objects"]
        assert dict(backend.open("r").refs()) == {}

    def test_bad_ref_names_refused(self, backend: Backend) -> None:
        repo = backend.create("r", Kind.GIT)
        assert repo.kind is Kind.GIT
        commit, objects = _commit(b"one", [])
        names = [b"HEAD", b"refs/heads/a..b", b"refs/heads/x.lock", b"main", b"refs/heads/a b"]
        updates = [RefUpdate(n, ZERO_ID, ObjectId(commit.id)) for n in names]
        assert _push(repo, objects, updates) == ["funny refname"] * len(names)

    def test_atomic_push_is_all_or_nothing(self, backend: Backend) -> None:
        repo = backend.create("r", Kind.GIT)
        assert repo.kind is Kind.GIT
        commit, objects = _commit(b"one", [])
        _push(repo, objects, [RefUpdate(b"refs/heads/main", ZERO_ID, ObjectId(commit.id))])
        updates = [RefUpdate(b"refs/heads/new", ZERO_ID, ObjectId(commit.id)),
                   RefUpdate(b"refs/heads/main", ZERO_ID, ObjectId(commit.id))]
        reasons = [r.reason for r in repo.update_refs(updates, atomic=True)]
        assert reasons == ["atomic push failed", "stale info"]
        assert b"refs/heads/new" not in backend.open("r").refs()

    def test_delete_branch(self, backend: Backend) -> None:
        repo = backend.create("r", Kind.GIT)
        assert repo.kind is Kind.GIT
        commit, objects = _commit(b"one", [])
        _push(repo, objects, [RefUpdate(b"refs/heads/main", ZERO_ID, ObjectId(commit.id)),
                              RefUpdate(b"refs/heads/topic", ZERO_ID, ObjectId(commit.id))])
        delete = RefUpdate(b"refs/heads/topic", ObjectId(commit.id), ZERO_ID)
        assert [r.reason for r in repo.update_refs([delete], atomic=False)] == [None]
        assert b"refs/heads/topic" not in backend.open("r").refs()
