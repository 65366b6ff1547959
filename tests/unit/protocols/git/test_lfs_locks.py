"""protocols.git_lfs's locking requests and answers, and backends.lfs.LfsLocks: one lock per path
however many ask at once, only the owner unlocks unless forced, pages that cover every lock once."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backends.lfs import LfsLocks, LockConflict, LockNotFound, LockNotOwned
from protocols import git_lfs
from protocols.errors import ProtocolError, StorageError
from protocols.git_lfs import Lock


@pytest.mark.parametrize("path", ["a.psd", "dir/sub/a b.psd", "ü.bin"])
def test_paths_relative_to_the_top_are_taken(path: str) -> None:
    assert git_lfs.parse_lock_create(json.dumps({"path": path, "ref": {"name": "refs/heads/main"}}).encode()) == path


@pytest.mark.parametrize("body", [b"", b"[]", b"{", b'{"path": 3}', b'{"path": ""}', b'{"path": "/etc/passwd"}',
                                  b'{"path": "a/../../b"}', b'{"path": "./a"}', b'{"path": "a//b"}',
                                  b'{"path": "a\\u0000b"}', b'{"path": "' + b"x" * 5000 + b'"}'])
def test_anything_else_is_refused_422(body: bytes) -> None:
    with pytest.raises(ProtocolError) as refused:
        git_lfs.parse_lock_create(body)
    assert refused.value.http_status == 422


def test_verify_unlock_and_list_requests() -> None:
    assert git_lfs.parse_lock_verify(b'{"ref": {"name": "refs/heads/main"}}') == (None, git_lfs.LOCK_PAGE)
    assert git_lfs.parse_lock_verify(b'{"cursor": "abc", "limit": 100000}') == ("abc", git_lfs.MAX_LOCK_PAGE)
    assert git_lfs.parse_unlock(b'{"force": true}') is True and git_lfs.parse_unlock(b"{}") is False
    assert git_lfs.parse_lock_query({"path": "a.psd", "limit": "5", "refspec": "x"}) == ("a.psd", None, None, 5)
    for bad in ({"limit": "many"}, {"limit": "-1"}, {"path": "../a"}):
        with pytest.raises(ProtocolError):
            git_lfs.parse_lock_query(bad)
    with pytest.raises(ProtocolError):
        git_lfs.parse_unlock(b'{"force": "yes"}')
    with pytest.raises(ProtocolError) as too_big:
        git_lfs.parse_unlock(b" " * (git_lfs.MAX_LOCK_BODY + 1))
    assert too_big.value.http_status == 413


@given(st.integers(min_value=0, max_value=30), st.integers(min_value=1, max_value=7))
def test_pages_cover_every_lock_once_in_order(count: int, limit: int) -> None:
    locks = [Lock(f"id{i}", f"p{i}", "2026-12-03T00:00:00+00:00", "a") for i in range(count)]
    seen: list[Lock] = []
    cursor = None
    while True:
        page, cursor = git_lfs.lock_page(locks, cursor, limit)
        assert len(page) <= limit
        seen += page
        if cursor is None:
            break
    assert seen == locks


def test_verify_sorts_the_callers_locks_from_the_others() -> None:
    mine, theirs = Lock("1", "a", "t", "alice"), Lock("2", "b", "t", "bob")
    answer = json.loads(git_lfs.verify_response([mine, theirs], "alice", None))
    assert [lock["id"] for lock in answer["ours"]] == ["1"] and [lock["id"] for lock in answer["theirs"]] == ["2"]
    assert answer["theirs"][0]["owner"] == {"name": "bob"} and "next_cursor" not in answer


def test_one_lock_per_path_however_many_ask_at_once(tmp_path: Path) -> None:
    won: list[Lock] = []
    lost: list[LockConflict] = []

    def take(owner: str) -> None:
        try:
            won.append(LfsLocks(str(tmp_path)).create("a.psd", owner))
        except LockConflict as conflict:
            lost.append(conflict)

    threads = [threading.Thread(target=take, args=(f"user{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1 and len(lost) == 7 and all(c.lock == won[0] for c in lost)
    assert LfsLocks(str(tmp_path)).all() == won


def test_only_the_owner_unlocks_unless_forced(tmp_path: Path) -> None:
    locks = LfsLocks(str(tmp_path))
    assert locks.all() == []  # no file yet: nothing locked, nothing written
    assert not (tmp_path / "lfs").exists()
    lock = locks.create("a.psd", "alice")
    with pytest.raises(LockNotOwned):
        locks.remove(lock.id, "bob", force=False)
    with pytest.raises(LockNotFound):
        locks.remove("nosuch", "alice", force=False)
    assert locks.remove(lock.id, "bob", force=True) == lock
    assert locks.all() == []
    (tmp_path / "lfs" / "locks.json").write_text("{broken")
    with pytest.raises(StorageError, match="damaged"):
        locks.all()
