"""A want named many times (a hostile client may send a million lines wanting one commit, as many
as ``max_wants``) costs the pack's planning one look-up: each loose want was looked up in the store
once a line (dulwich lists the pack directory at each: 17 s of server CPU for a million lines,
where git daemon's upload-pack marks a want seen and takes 1.3 s)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from dulwich.object_store import DiskObjectStore
from dulwich.repo import Repo

from backends import git_fastpack
from backends.git import DulwichGitRepository
from protocols.errors import ProtocolError
from protocols.git_upload import parse_oid


def git(cwd: Path, *args: str) -> bytes:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          env={"GIT_CONFIG_NOSYSTEM": "1", "HOME": str(cwd), "GIT_AUTHOR_NAME": "a",
                               "GIT_AUTHOR_EMAIL": "a@b", "GIT_COMMITTER_NAME": "a",
                               "GIT_COMMITTER_EMAIL": "a@b", "PATH": "/usr/bin:/bin"}).stdout


def test_a_loose_want_named_many_times_is_looked_up_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "w"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    for n in range(2):
        (work / "f").write_text(f"{n}\n")
        git(work, "add", "f")
        git(work, "commit", "-qm", f"c{n}")
    head = git(work, "rev-parse", "HEAD").strip()  # every object loose, as a small push leaves them
    repo = DulwichGitRepository("w", Repo(str(work)), owns_repo=True)
    store = repo.object_store
    assert isinstance(store, DiskObjectStore)
    lookups: list[Any] = []
    contains = DiskObjectStore.__contains__

    def looking(store: DiskObjectStore, sha: Any) -> bool:
        lookups.append(sha)
        return contains(store, sha)

    monkeypatch.setattr(DiskObjectStore, "__contains__", looking)
    chunks = git_fastpack.generate_pack_fast(store, [head] * 5000, [], refs={})
    assert chunks is not None and b"".join(chunks).startswith(b"PACK")
    assert len(lookups) < 20, len(lookups)  # the want once, and what the walk reads (7)
    repo.close()


def test_an_object_id_is_hex_digits_of_its_length() -> None:
    assert parse_oid(b"AB" * 20) == b"ab" * 20
    for bad in (b"g" * 40, b"0" * 39 + b"\xe0", b"0" * 39 + b" ", b"0" * 41, b"0" * 39, b"-" + b"0" * 39):
        with pytest.raises(ProtocolError, match="expected an object id"):
            parse_oid(bad)
    assert parse_oid(b"0" * 64, 64) == b"0" * 64
