"""``[limits] git_kept_refs_bytes``: what git's kept ``packed-refs`` parses may hold between requests
(``backends.git._PACKED_REFS``: up to 300 MB by default, which an operator could not lower), applied
as the policy is read and at each reload, a lowered value letting go of the least recently used at
once, 0 keeping nothing."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from dulwich.repo import Repo

from backends import git as git_backend
from backends.lru import LruCache
from gateway.auth import Authorizer
from gateway.limits import apply_kept_budgets
from gateway.policy import Policy, PolicyError, PolicyFile, PolicyReloader, load_policy

RULES = '[[repo]]\npattern = "*"\n'
A = b"a" * 40
Kept = tuple[tuple[int, int, int, int], git_backend.PackedRefs]


@pytest.fixture
def packed_cache(monkeypatch: pytest.MonkeyPatch) -> LruCache[bytes, Kept]:
    cache: LruCache[bytes, Kept] = LruCache(git_backend.MAX_PACKED_REFS_KEPT, git_backend._packed_cost)
    monkeypatch.setattr(git_backend, "_PACKED_REFS", cache)
    return cache


def _mirror(root: Path, name: str, refs: int) -> bytes:
    """A bare repository whose packed-refs names ``refs`` branches; its packed-refs path."""
    Repo.init_bare(str(root / name), mkdir=True).close()
    lines = b"".join(A + b" refs/heads/b%05d\n" % i for i in range(refs))
    (root / name / "packed-refs").write_bytes(b"# pack-refs with: peeled fully-peeled sorted \n" + lines)
    return os.fsencode(root / name / "packed-refs")


def _read(root: Path, name: str) -> None:
    repo = git_backend.DulwichGitRepository(name, Repo(str(root / name)), owns_repo=True)
    try:
        repo.refs()
    finally:
        repo.close()


def _loaded(tmp_path: Path, text: str) -> Policy:
    path = tmp_path / "rules.toml"
    path.write_text(RULES + text)
    return load_policy(path)


def test_the_key_is_read_and_may_be_zero(tmp_path: Path) -> None:
    assert _loaded(tmp_path, "[limits]\ngit_kept_refs_bytes = 1000\n").limits.git_kept_refs_bytes == 1000
    assert _loaded(tmp_path, "[limits]\ngit_kept_refs_bytes = 0\n").limits.git_kept_refs_bytes == 0
    with pytest.raises(PolicyError, match="limits.git_kept_refs_bytes: must be 0 or a positive integer"):
        _loaded(tmp_path, "[limits]\ngit_kept_refs_bytes = -1\n")
    assert _loaded(tmp_path, "[limits]\nhg_kept_repositories_bytes = 0\n").limits.hg_kept_repositories_bytes == 0
    with pytest.raises(PolicyError, match="limits.hg_kept_repositories_bytes: must be 0 or a positive integer"):
        _loaded(tmp_path, "[limits]\nhg_kept_repositories_bytes = -1\n")


def test_the_budget_is_applied_as_the_policy_loads_and_lowered_at_once_at_reload(
        tmp_path: Path, packed_cache: LruCache[bytes, Kept]) -> None:
    policy_path = tmp_path / "policy.toml"
    policy_path.write_text(RULES + "[limits]\ngit_kept_refs_bytes = 2500000\n")  # 10,000 units
    policy = PolicyFile(policy_path)
    authorizer = Authorizer(policy=policy)
    apply_kept_budgets(authorizer)  # (as gateway.service.build_service does)
    assert packed_cache.budget == 10_000
    paths = [_mirror(tmp_path, f"m{i}.git", 1000) for i in range(5)]
    for i in range(5):
        _read(tmp_path, f"m{i}.git")
    assert list(packed_cache._entries) == paths
    _read(tmp_path, "m0.git")  # the first is now the most recently used
    assert git_backend.packed_refs_kept() == (5, packed_cache.held * git_backend.PACKED_REF_BYTES)

    each = packed_cache.held // 5  # (five files of one size)
    room_for_four = each * 4 + 3  # (each within a quarter of it)
    reloader = PolicyReloader(policy, in_force=lambda: apply_kept_budgets(authorizer))
    policy_path.write_text(RULES + f"[limits]\ngit_kept_refs_bytes = {room_for_four * git_backend.PACKED_REF_BYTES}\n")
    assert reloader._refresh(True)
    assert packed_cache.budget == room_for_four
    assert list(packed_cache._entries) == [*paths[2:], paths[0]], "the least recently used went at the reload"
    assert packed_cache.held <= room_for_four

    policy_path.write_text(RULES + "[limits]\ngit_kept_refs_bytes = 0\n")
    assert reloader._refresh(True)
    assert not packed_cache._entries and packed_cache.held == 0
    _read(tmp_path, "m0.git")
    assert not packed_cache._entries, "0 keeps nothing: each request parses"

    policy_path.write_text(RULES)  # the key taken out: the default again
    time.sleep(0.01)
    assert reloader._refresh(True)
    assert packed_cache.budget == git_backend.MAX_PACKED_REFS_KEPT
    _read(tmp_path, "m0.git")
    assert list(packed_cache._entries) == [paths[0]]


def test_without_a_policy_file_the_default_is_applied(packed_cache: LruCache[bytes, Kept]) -> None:
    packed_cache.resize(40)
    apply_kept_budgets(Authorizer())
    assert packed_cache.budget == git_backend.MAX_PACKED_REFS_KEPT
    assert git_backend.KEPT_REFS_BYTES == 300_000_000


def test_a_lowered_budget_drops_a_value_over_its_quarter() -> None:
    cache: LruCache[str, int] = LruCache(100, lambda value: value)
    cache.put("a", 20)
    cache.put("b", 5)
    cache.resize(40)  # "a" costs more than 10: it goes though the two fit within 40
    assert list(cache._entries) == ["b"] and cache.held == 5
