"""Peeled values from ``packed-refs`` (``backends.git.PackedRefs``): an advertisement peels the
packed annotated tags as the file records them, without reading a tag, as git's upload-pack does
(an advertisement of a repository git packed: ``test_git_fastpack``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from dulwich.repo import Repo

from backends import git as git_backend

A = b"a" * 40
B = b"b" * 40
C = b"c" * 40
D = b"d" * 40

@pytest.mark.parametrize(("first_line", "peeled"), [
    (b"# pack-refs with: peeled fully-peeled sorted \n", {A: A, B: A, C: C, D: D}),
    # dulwich writes this first line when it rewrites a file that had none: the tags without a
    # "^" line may be annotated ones all the same
    (b"# pack-refs with: peeled\n", {B: A}),
], ids=["fully-peeled", "peeled-only"])
def test_what_a_file_vouches_for(first_line: bytes, peeled: dict[bytes, bytes]) -> None:
    parsed = git_backend._parse_packed_refs(
        first_line
        + A + b" refs/heads/main\n"
        + B + b" refs/tags/v1\n^" + A + b"\n"
        + C + b" refs/remotes/origin/main\n"
        + D + b" refs/tags/v2\n")
    assert dict(parsed.refs) == {b"refs/heads/main": A, b"refs/tags/v1": B, b"refs/remotes/origin/main": C,
                                 b"refs/tags/v2": D}
    assert dict(parsed.peeled) == peeled


@pytest.mark.parametrize("content", [b"", A + b" refs/heads/main\n" + B + b" refs/tags/v1\n",
                                     b"# pack-refs with: sorted\n" + A + b" refs/tags/v1\n"])
def test_files_without_peeled_values_peel_nothing(content: bytes) -> None:
    parsed = git_backend._parse_packed_refs(content)
    assert dict(parsed.peeled) == {}
    assert len(parsed.refs) == content.count(b" refs/")


def test_a_peeled_line_in_a_file_that_does_not_announce_them_counts() -> None:
    """As git reads it (dulwich refused it, and hgwire the whole advertisement): for its ref alone."""
    parsed = git_backend._parse_packed_refs(A + b" refs/tags/v1\n^" + B + b"\n" + B + b" refs/tags/v2\n")
    assert dict(parsed.tags) == {b"refs/tags/v1": B} and dict(parsed.peeled) == {A: B} and not parsed.fully


def test_a_repository_without_packed_refs_knows_nothing_peeled(tmp_path: Path) -> None:
    Repo.init_bare(str(tmp_path / "e.git"), mkdir=True).close()
    repo = git_backend.DulwichGitRepository("e.git", Repo(str(tmp_path / "e.git")))
    assert dict(repo.known_peeled()) == {}
    (tmp_path / "e.git" / "packed-refs").write_bytes(b"# pack-refs with: peeled fully-peeled \n"
                                                   + A + b" refs/heads/main\n")
    assert dict(repo.known_peeled()) == {A: A}
    repo.close()
