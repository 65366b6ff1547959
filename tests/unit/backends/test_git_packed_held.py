"""A ``packed-refs`` too big to keep parsed for every request (``backends.git._PACKED_REFS``) is
parsed once a request: the refs and their peeled values of one advertisement come from one parse
(a mirror's 100,000 tags took 0.35 s a parse, twice), held until the repository object is closed."""

from __future__ import annotations

from pathlib import Path

import pytest
from dulwich.repo import Repo

from backends import git as git_backend
from backends.lru import LruCache

A = b"a" * 40
B = b"b" * 40


def test_one_parse_a_request_of_a_file_too_big_to_keep(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a budget whose quarter two refs and a peeled value overflow: the file is never kept across requests
    monkeypatch.setattr(git_backend, "_PACKED_REFS", LruCache(8, git_backend._packed_cost))
    parses: list[bytes] = []
    parse = git_backend._parse_packed_refs

    def counted(data: bytes) -> git_backend.PackedRefs:
        parses.append(data)
        return parse(data)

    monkeypatch.setattr(git_backend, "_parse_packed_refs", counted)
    Repo.init_bare(str(tmp_path / "m.git"), mkdir=True).close()
    packed = tmp_path / "m.git" / "packed-refs"
    packed.write_bytes(b"# pack-refs with: peeled fully-peeled sorted \n"
                       + A + b" refs/heads/main\n" + B + b" refs/tags/v1\n^" + A + b"\n")

    def request() -> git_backend.DulwichGitRepository:
        return git_backend.DulwichGitRepository("m.git", Repo(str(tmp_path / "m.git")), owns_repo=True)

    repo = request()
    refs, _symrefs = repo.refs_and_symrefs()
    assert dict(repo.known_peeled()) == {A: A, B: A}
    assert refs[b"refs/tags/v1"] == B
    assert repo.symref_targets([b"refs/tags/v1"]) == {}
    assert len(parses) == 1
    packed.write_bytes(packed.read_bytes() + B + b" refs/tags/v2\n^" + A + b"\n")  # a push packed one more
    assert b"refs/tags/v2" in repo.refs()
    assert len(parses) == 2
    repo.close()
    assert not repo._held_packed  # not held past the request
    again = request()
    again.known_peeled()
    assert len(parses) == 3
    again.close()
