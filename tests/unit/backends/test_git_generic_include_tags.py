"""include-tag on the generic pack path (a store not on disk, ``tree:<depth>`` and ``object:type=``
filters): every annotated tag a tag ref names whose chain ends at an object being sent goes in
the pack, with the tags of its chain, as git's pack-objects adds them (``git daemon`` sends all
three of two tags of one commit and a tag of a tag whose inner tag has no ref; the generic path
sent one tag an object, dulwich's ``get_tagged`` mapping an object to one tag)."""

from __future__ import annotations

import io

from dulwich.object_format import DEFAULT_OBJECT_FORMAT
from dulwich.object_store import PackCapableObjectStore
from dulwich.objects import Blob, Commit, Tag, Tree
from dulwich.pack import PackData
from dulwich.repo import MemoryRepo

from backends import git_pack
from backends.interfaces import ObjectId


def _tag(store: object, name: bytes, target: Commit | Tag) -> Tag:
    tag = Tag()
    tag.name, tag.message, tag.tagger = name, name + b"\n", b"T <t@example.com>"
    tag.object = (type(target), target.id)
    tag.tag_time, tag.tag_timezone = 1_700_000_000, 0
    store.add_object(tag)  # type: ignore[attr-defined]
    return tag


def _ids(chunks: list[bytes]) -> set[bytes]:
    data = PackData.from_file(io.BytesIO(b"".join(chunks)), object_format=DEFAULT_OBJECT_FORMAT)
    return {entry[0].hex().encode() for entry in data.iterentries()}


def _history() -> tuple[PackCapableObjectStore, Commit, Commit, Tag, Tag, Tag, Tag]:
    """A store of three commits, two tags of the newest (``one``, ``two``) and a tag (``outer``) of a
    tag of it (``inner``, named by no ref): (store, newest, its parent, one, two, inner, outer)."""
    store = MemoryRepo().object_store
    commits: list[Commit] = []
    for i in range(3):
        blob = Blob.from_string(b"%d\n" % i)
        tree = Tree()
        tree.add(b"f", 0o100644, blob.id)
        commit = Commit()
        commit.tree, commit.parents = tree.id, [c.id for c in commits[-1:]]
        commit.author = commit.committer = b"T <t@example.com>"
        commit.author_time = commit.commit_time = 1_700_000_000 + i
        commit.author_timezone = commit.commit_timezone = 0
        commit.message = b"c%d" % i
        for obj in (blob, tree, commit):
            store.add_object(obj)
        commits.append(commit)
    new, old = commits[2], commits[1]
    one, two = _tag(store, b"one", new), _tag(store, b"two", new)
    inner = _tag(store, b"inner", new)  # no ref of its own
    outer = _tag(store, b"outer", inner)
    return store, new, old, one, two, inner, outer


def test_every_tag_of_a_sent_object_is_sent() -> None:
    store, new, old, one, two, inner, outer = _history()
    known = _tag(store, b"known", old)  # of an object the client has: not sent
    refs = {b"refs/heads/main": ObjectId(new.id), b"refs/tags/one": ObjectId(one.id),
            b"refs/tags/two": ObjectId(two.id), b"refs/tags/outer": ObjectId(outer.id),
            b"refs/tags/known": ObjectId(known.id), b"refs/heads/not-a-tag-ref": ObjectId(one.id)}
    plan = git_pack.PackPlan((ObjectId(new.id),), (ObjectId(old.id),), git_pack.ShallowPlan(), False, True, True)
    sent = _ids(list(git_pack.generate_pack(store, plan, refs)))
    tags = {one.id, two.id, inner.id, outer.id, known.id}
    assert sent & tags == {one.id, two.id, inner.id, outer.id}
    assert len(sent) == 3 + 4  # the commit, its tree and blob, and the tags
    without = git_pack.PackPlan((ObjectId(new.id),), (ObjectId(old.id),), git_pack.ShallowPlan(), False, True, False)
    assert not _ids(list(git_pack.generate_pack(store, without, refs))) & tags
