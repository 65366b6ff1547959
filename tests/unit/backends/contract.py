"""The contract every backend passes: subclass ``BackendContract`` and provide ``make_backend``."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import pytest
from dulwich.object_format import SHA1
from dulwich.objects import Blob, Commit, ObjectID, ShaFile, Tree
from dulwich.pack import write_pack_objects

from backends.interfaces import ZERO_ID, Backend, GitRepository, Kind, ObjectId, ReceiveHooks, RefUpdate
from protocols.errors import ProtocolError, RepositoryNotFound, UnsafeName

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


def _push(repo: GitRepository, objects: list[Blob | Tree | Commit], updates: list[RefUpdate],
          hooks: ReceiveHooks | None = None) -> list[str | None]:
    sink = repo.begin_pack()
    sink.write(_pack(objects))
    sink.commit()
    if hooks is None:
        return [r.reason for r in repo.update_refs(updates, atomic=False)]
    return [r.reason for r in repo.update_refs(updates, atomic=False, hooks=hooks)]  # type: ignore[call-arg]


class _Hooks:
    """Receive hooks that refuse what they are told to, and remember what they saw."""

    def __init__(self, pre_receive: bool = True, refuse: bytes = b"") -> None:
        self._accept, self._refuse = pre_receive, refuse
        self.seen: list[str] = []

    def pre_receive(self, updates: Sequence[RefUpdate]) -> bool:
        self.seen.append("pre-receive " + " ".join(u.ref.decode() for u in updates))
        return self._accept

    def update(self, update: RefUpdate) -> bool:
        self.seen.append("update " + update.ref.decode())
        return update.ref != self._refuse

    def post_receive(self, updates: Sequence[RefUpdate]) -> None:
        self.seen.append("post-receive " + " ".join(u.ref.decode() for u in updates))


def _needs_hooks(repo: object) -> None:
    """Receive hooks are given only to a repository with ``hook_location`` (``gateway.protected``):
    the tests of them are skipped for one without."""
    if not hasattr(repo, "hook_location"):
        pytest.skip("the backend's repositories run no receive hooks (no hook_location)")


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
            "atomic transaction failed", "failed to update ref: 'refs/heads/n' exists; cannot create 'refs/heads/n/m'"]
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
            None, "failed to update ref", None]
        if hasattr(repo, "take_told"):  # (optional: git's words for the pusher)
            assert b"trying to write non-commit object " + tree.id + b" to branch 'refs/heads/t'" in repo.take_told()

    def test_push_then_compare_and_swap(self, backend: Backend) -> None:
        repo = backend.create("r", Kind.GIT)
        assert repo.kind is Kind.GIT
        first, objects = _commit(b"one", [])
        assert _push(repo, objects, [RefUpdate(b"refs/heads/main", ZERO_ID, ObjectId(first.id))]) == [None]
        second, more = _commit(b"two", [first.id])
        stale = RefUpdate(b"refs/heads/main", ZERO_ID, ObjectId(second.id))
        assert _push(repo, more, [stale]) == ["failed to update ref: another push created it meanwhile; fetch and push again"]
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

    def test_each_ref_of_a_push_is_checked_for_its_own_objects(self, backend: Backend) -> None:
        """The checks of a push's refs share what they found (``update_refs``'s memo): a ref naming
        an object that is not there is refused however many refs before it passed."""
        repo = backend.create("r", Kind.GIT)
        assert repo.kind is Kind.GIT
        commit, objects = _commit(b"one", [])
        oid = ObjectId(commit.id)
        absent = ObjectId(b"1" * 40)
        updates = [RefUpdate(b"refs/heads/main", ZERO_ID, oid), RefUpdate(b"refs/tags/a", ZERO_ID, oid),
                   RefUpdate(b"refs/tags/gone", ZERO_ID, absent), RefUpdate(b"refs/tags/b", ZERO_ID, oid)]
        assert _push(repo, objects, updates) == [None, None, "missing necessary objects", None]
        assert set(backend.open("r").refs()) == {b"HEAD", b"refs/heads/main", b"refs/tags/a", b"refs/tags/b"}

    def test_a_pack_with_an_incomplete_object_lands_nothing(self, backend: Backend) -> None:
        """A pack whose objects are not all complete moves no ref and leaves nothing behind: a
        later push naming its broken commit must not find it complete in the store."""
        repo = backend.create("r", Kind.GIT)
        assert repo.kind is Kind.GIT
        good, good_objects = _commit(b"good", [])
        bad, bad_objects = _commit(b"bad", [])
        pushed = good_objects + [o for o in bad_objects if not isinstance(o, Blob)]
        updates = [RefUpdate(b"refs/heads/main", ZERO_ID, ObjectId(good.id)),
                   RefUpdate(b"refs/heads/broken", ZERO_ID, ObjectId(bad.id))]
        assert _push(repo, pushed, updates) == ["missing necessary objects"] * 2
        later = backend.open("r")
        assert later.kind is Kind.GIT
        assert dict(later.refs()) == {}
        assert ObjectID(bad.id) not in later.object_store
        naming = [RefUpdate(b"refs/heads/broken", ZERO_ID, ObjectId(bad.id))]
        assert [r.reason for r in later.update_refs(naming, atomic=False)] == ["missing necessary objects"]
        assert _push(later, good_objects, updates[:1]) == [None]

    def test_hooks_decide_and_a_declined_push_leaves_no_objects(self, backend: Backend) -> None:
        repo = backend.create("r", Kind.GIT)
        _needs_hooks(repo)
        assert repo.kind is Kind.GIT
        first, objects = _commit(b"one", [])
        hooks = _Hooks(refuse=b"refs/heads/frozen")
        updates = [RefUpdate(b"refs/heads/main", ZERO_ID, ObjectId(first.id)),
                   RefUpdate(b"refs/heads/frozen", ZERO_ID, ObjectId(first.id)),
                   RefUpdate(b"main", ZERO_ID, ObjectId(first.id))]
        assert _push(repo, objects, updates, hooks) == [None, "hook declined", "funny refname"]
        # as git's receive-pack: pre-receive hears of every command, the funny one too (refused after it)
        assert hooks.seen == ["pre-receive refs/heads/main refs/heads/frozen main", "update refs/heads/main",
                              "update refs/heads/frozen", "post-receive refs/heads/main"]
        second, more = _commit(b"two", [first.id])
        declined = backend.open("r")
        assert declined.kind is Kind.GIT
        move = [RefUpdate(b"refs/heads/main", ObjectId(first.id), ObjectId(second.id))]
        assert _push(declined, more, move, _Hooks(pre_receive=False)) == ["pre-receive hook declined"]
        assert ObjectID(second.id) not in backend.open("r").object_store  # as git's quarantine
        again = backend.open("r")  # the same objects pushed again: the first push's pack is not removed
        assert again.kind is Kind.GIT
        assert _push(again, objects, [RefUpdate(b"refs/heads/x", ZERO_ID, ObjectId(first.id))],
                     _Hooks(pre_receive=False)) == ["pre-receive hook declined"]
        after = backend.open("r")
        assert after.kind is Kind.GIT
        assert dict(after.refs())[b"refs/heads/main"] == first.id
        for obj in objects:
            assert ObjectID(obj.id) in after.object_store

    @pytest.mark.parametrize("declined_first", [False, True])
    def test_two_pushes_of_the_same_objects_one_declined_lose_nothing(self, backend: Backend,
                                                                      declined_first: bool) -> None:
        """Two sessions land the same objects (the same commit pushed to two branches at once); one
        is declined, the other accepted, in either order: the accepted branch keeps its objects."""
        repo = backend.create("r", Kind.GIT)
        assert repo.kind is Kind.GIT
        base, base_objects = _commit(b"base", [])
        _needs_hooks(repo)
        assert _push(repo, base_objects, [RefUpdate(b"refs/heads/main", ZERO_ID, ObjectId(base.id))]) == [None]
        new, objects = _commit(b"new", [base.id])
        declined, accepted = backend.open("r"), backend.open("r")
        assert declined.kind is Kind.GIT and accepted.kind is Kind.GIT
        for session in (declined, accepted):
            sink = session.begin_pack()
            sink.write(_pack(objects))
            sink.commit()

        def decline() -> None:
            refused = declined.update_refs([RefUpdate(b"refs/heads/a", ZERO_ID, ObjectId(new.id))], atomic=False,
                                           hooks=_Hooks(pre_receive=False))  # type: ignore[call-arg]
            assert [r.reason for r in refused] == ["pre-receive hook declined"]

        def accept() -> None:
            made = accepted.update_refs([RefUpdate(b"refs/heads/b", ZERO_ID, ObjectId(new.id))], atomic=False)
            assert [r.reason for r in made] == [None]

        for step in ((decline, accept) if declined_first else (accept, decline)):
            step()
        after = backend.open("r")
        assert after.kind is Kind.GIT
        assert dict(after.refs())[b"refs/heads/b"] == new.id
        for obj in objects + base_objects:
            assert ObjectID(obj.id) in after.object_store

    def test_two_declined_pushes_of_the_same_objects_leave_nothing(self, backend: Backend) -> None:
        repo = backend.create("r", Kind.GIT)
        _needs_hooks(repo)
        assert repo.kind is Kind.GIT
        new, objects = _commit(b"new", [])
        sessions = [backend.open("r"), backend.open("r")]
        for session in sessions:
            assert session.kind is Kind.GIT
            sink = session.begin_pack()
            sink.write(_pack(objects))
            sink.commit()
        for i, session in enumerate(sessions):
            assert session.kind is Kind.GIT
            refused = session.update_refs([RefUpdate(b"refs/heads/x%d" % i, ZERO_ID, ObjectId(new.id))],
                                          atomic=False, hooks=_Hooks(pre_receive=False))  # type: ignore[call-arg]
            assert [r.reason for r in refused] == ["pre-receive hook declined"]
        after = backend.open("r")
        assert after.kind is Kind.GIT
        for obj in objects:
            assert ObjectID(obj.id) not in after.object_store

    def test_a_pack_with_a_malformed_object_leaves_nothing(self, backend: Backend) -> None:
        """The whole pack is refused, and none of its objects stays for a later push to name."""
        repo = backend.create("r", Kind.GIT)
        assert repo.kind is Kind.GIT
        blob = Blob.from_string(b"fine on its own")
        bad = ShaFile.from_raw_string(1, b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n"
                                         b"author nobody\ncommitter nobody\n\nno idents\n")
        sink = repo.begin_pack()
        sink.write(_pack([blob, bad]))  # type: ignore[list-item]
        with pytest.raises(ProtocolError):
            sink.commit()
        later = backend.open("r")
        assert later.kind is Kind.GIT
        assert ObjectID(blob.id) not in later.object_store and ObjectID(bad.id) not in later.object_store

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
        assert reasons == ["atomic transaction failed", "atomic transaction failed"]
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
