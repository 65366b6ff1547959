"""A ref update that lost a race with another push (its ref no longer what the push saw when
it was checked): the reason hgwire gives, and the ``error:`` line git's receive-pack gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.filesystem import FilesystemBackend
from backends.git import DulwichGitRepository
from backends.interfaces import ZERO_ID, Kind, ObjectId, RefUpdate
from backends.memory import MemoryBackend
from tests.unit.backends.contract import _commit, _push


@pytest.mark.parametrize("make", [MemoryBackend, FilesystemBackend])
def test_a_deletion_of_a_ref_deleted_meanwhile_is_not_warned_of_as_non_existent(
        tmp_path: Path, make: type[MemoryBackend | FilesystemBackend]) -> None:
    repo = make(str(tmp_path)).create("r", Kind.GIT)
    assert isinstance(repo, DulwichGitRepository)
    commit, objects = _commit(b"one", [])
    oid = ObjectId(commit.id)
    _push(repo, objects, [RefUpdate(b"refs/heads/main", ZERO_ID, oid), RefUpdate(b"refs/heads/d", ZERO_ID, oid)])
    deletion = RefUpdate(b"refs/heads/d", oid, ZERO_ID)
    assert [r.reason for r in repo.update_refs([deletion], atomic=False)] == [None]  # the winner
    repo.take_told()
    # the loser saw the ref before the winner deleted it: git warns of nothing, its lock fails
    assert [r.reason for r in repo.update_refs([deletion], atomic=False)] == [
        "failed to update ref: another push deleted it meanwhile"]
    assert repo.take_told() == b"error: cannot lock ref 'refs/heads/d': unable to resolve reference 'refs/heads/d'\n"
    nothing = RefUpdate(b"refs/tags/nope", ZERO_ID, ZERO_ID)  # a deletion of what never was: git's warning
    assert [r.reason for r in repo.update_refs([nothing], atomic=False)] == [None]
    assert repo.take_told() == b"warning: deleting a non-existent ref\n"
