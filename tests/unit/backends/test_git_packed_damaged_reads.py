"""A ``packed-refs`` file dulwich refuses but git reads (a line whose name is no valid ref name,
``^`` lines under a first line that does not say ``peeled``): the refs container's packed refs
(``LinkedRefsContainer.get_packed_refs``) are read once per version of the file, as for any
other file.  dulwich's parse, failing, ran again at every look-up of a ref: a push updating 20
branches of a mirror of 100,000 refs with one such line took 85 s instead of 17."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dulwich.refs
import pytest
from dulwich.refs import Ref
from dulwich.repo import Repo

from backends import git as git_backend

A = b"a" * 40
B = b"b" * 40
C = b"c" * 40


@pytest.mark.parametrize("content", [
    b"# pack-refs with: peeled fully-peeled sorted \n" + A + b" refs/heads/a..b\n" + B + b" refs/heads/main\n"
    + C + b" refs/tags/v1\n^" + A + b"\n",
    b"# pack-refs with: sorted \n" + B + b" refs/heads/main\n" + C + b" refs/tags/v1\n^" + A + b"\n",
], ids=["broken-name", "caret-without-peeled"])
def test_a_file_dulwich_refuses_is_parsed_once_per_version(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes) -> None:
    repo = Repo.init_bare(str(tmp_path / "r.git"), mkdir=True)
    refs = repo.refs
    git_backend.adopt_refs(refs)
    assert isinstance(refs, git_backend.LinkedRefsContainer)
    path = os.path.join(refs.path, b"packed-refs")
    with open(path, "wb") as f:
        f.write(content)
    parses: list[str] = []
    for name in ("read_packed_refs", "read_packed_refs_with_peeled"):
        real = getattr(dulwich.refs, name)

        def counted(f: object, real: Any = real, name: str = name) -> Any:
            parses.append(name)
            return real(f)

        monkeypatch.setattr(dulwich.refs, name, counted)
    main, new = Ref(b"refs/heads/main"), Ref(b"refs/heads/new")
    for _ in range(5):
        assert refs.get_packed_refs() == {b"refs/heads/main": B, b"refs/tags/v1": C}
        assert refs[main] == B
    assert len(parses) == 1
    with open(path, "ab") as f:  # a new version of the file is read again
        f.write(A + b" refs/heads/new\n")
    assert refs.get_packed_refs()[new] == A
    assert len(parses) == 2
