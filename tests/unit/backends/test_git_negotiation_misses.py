"""Haves the server does not hold (a rewritten history's old commits, a fork's own work): dulwich
looked for each in every pack, the multi-pack index, its loose file and its alternates, then listed
the pack directory again and looked once more, for every one of them.  A round's haves are now
looked up together: the pack directory listed once, each index looked in once for all of them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from dulwich.repo import Repo

from backends import git_pack
from backends.interfaces import ObjectId

MISSING = 400


def _git(cwd: Path, *args: str, stdin: bytes | None = None) -> bytes:
    return subprocess.run(["git", *args], cwd=cwd, input=stdin, check=True, capture_output=True).stdout


def _commits(repo: Path, count: int, label: str) -> list[ObjectId]:
    stream = []
    for i in range(1, count + 1):
        msg = f"{label} {i}\n".encode()
        stream.append(b"commit refs/heads/main\nmark :%d\ncommitter T <t@x> %d +0000\ndata %d\n%s"
                      % (i, 1_700_000_000 + 60 * i, len(msg), msg))
        if i > 1:
            stream.append(b"from :%d\n" % (i - 1))
        stream.append(b"\n")
    stream.append(b"get-mark :%d\n" % count)
    _git(repo, "fast-import", "--quiet", stdin=b"".join(stream))
    return [ObjectId(line) for line in _git(repo, "rev-list", "main").split()]


@pytest.fixture
def server(tmp_path: Path) -> Path:
    path = tmp_path / "server.git"
    _git(tmp_path, "init", "-q", "--bare", str(path))
    return path


def test_missing_haves_do_not_list_the_pack_directory_each(server: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ours = _commits(server, 20, "server")
    absent = [ObjectId(b"%040x" % (0xABC0000 + i)) for i in range(MISSING)]
    store = Repo(str(server)).object_store
    negotiator = git_pack.Negotiator(store, [ours[0]])
    listed = []
    real_listdir = os.listdir

    def counting_listdir(path: str = ".") -> list[str]:
        listed.append(path)
        return real_listdir(path)

    monkeypatch.setattr(os, "listdir", counting_listdir)
    answer = negotiator.negotiate([*absent, ours[5]], readiness=False)
    assert [v.common for v in answer.verdicts] == [False] * MISSING + [True]
    assert negotiator.common == [ours[5]]
    assert len(listed) <= 4, len(listed)  # was one listing (or more) for every missing have


def test_loose_packed_borrowed_and_absent_haves(server: Path, tmp_path: Path) -> None:
    packed = _commits(server, 3, "packed")
    _git(server, "update-ref", "refs/heads/other", packed[0].decode())
    blob = ObjectId(_git(server, "hash-object", "-w", "--stdin", stdin=b"a loose blob\n").strip())
    lender = tmp_path / "lender.git"
    _git(tmp_path, "init", "-q", "--bare", str(lender))
    borrowed = _commits(lender, 2, "lender")
    (server / "objects" / "info" / "alternates").write_text(str(lender / "objects") + "\n")
    store = Repo(str(server)).object_store
    haves = [ObjectId(b"1" * 40), packed[1], blob, borrowed[0], ObjectId(b"not hex")]
    assert git_pack.stored_among(store, haves) == {packed[1], blob, borrowed[0]}
    answer = git_pack.Negotiator(store, [packed[0]]).negotiate(haves, readiness=True)
    assert [v.common for v in answer.verdicts] == [False, True, True, True, False]
    assert answer.ready
