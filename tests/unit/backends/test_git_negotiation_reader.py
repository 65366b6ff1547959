"""A fetch's negotiation reads the commits it walks (the client's haves, the new commits down to
them) through the packs' cached index views: dulwich's ``get_raw`` looked for a multi-pack index
(a ``stat``) and went through its own pack list for each of them, about a fifth of the server's CPU
for a fetch of 100 new commits over HTTP.  The answers are the same."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from dulwich.repo import Repo

from backends import git_pack
from backends.interfaces import ObjectId


def _git(cwd: Path, *args: str, stdin: bytes | None = None) -> bytes:
    return subprocess.run(["git", *args], cwd=cwd, input=stdin, check=True, capture_output=True).stdout


def _commits(repo: Path, count: int, start: int = 1, parent: str | None = None) -> list[ObjectId]:
    stream = []
    for i in range(start, start + count):
        msg = f"commit {i}\n".encode()
        stream.append(b"commit refs/heads/main\nmark :%d\ncommitter T <t@x> %d +0000\ndata %d\n%s"
                      % (i, 1_700_000_000 + 60 * i, len(msg), msg))
        if i > start:
            stream.append(b"from :%d\n" % (i - 1))
        elif parent is not None:
            stream.append(b"from %s\n" % parent.encode())
        stream.append(b"\n")
    _git(repo, "fast-import", "--quiet", "--force", stdin=b"".join(stream))
    return [ObjectId(line) for line in _git(repo, "rev-list", "main").split()]


@pytest.fixture
def server(tmp_path: Path) -> Path:
    path = tmp_path / "server.git"
    _git(tmp_path, "init", "-q", "--bare", str(path))
    return path


def _counting(store: Any, monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    calls: list[bytes] = []
    real = store.get_raw

    def get_raw(name: bytes) -> tuple[int, bytes]:
        calls.append(name)
        return real(name)  # type: ignore[no-any-return]

    monkeypatch.setattr(store, "get_raw", get_raw)
    return calls


def test_packed_commits_are_not_read_through_dulwich(server: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    history = _commits(server, 40)  # newest first
    _git(server, "repack", "-adq")
    store = Repo(str(server)).object_store
    calls = _counting(store, monkeypatch)
    negotiator = git_pack.Negotiator(store, [history[0]])
    answer = negotiator.negotiate([history[30], history[20]], readiness=True)
    assert [v.common for v in answer.verdicts] == [True, True]
    assert answer.ready
    assert negotiator.common == [history[30], history[20]]
    assert negotiator.ok_to_give_up()
    assert calls == []  # each have and the 21 commits down to them went through dulwich


def test_loose_commits_and_a_pack_made_between_rounds(server: Path) -> None:
    packed = _commits(server, 10)
    _git(server, "repack", "-adq")
    loose = _commits(server, 3, start=11, parent=packed[0].decode())  # fast-import leaves so few loose
    assert len(list((server / "objects").glob("??/*"))) == 3
    store = Repo(str(server)).object_store
    negotiator = git_pack.Negotiator(store, [loose[0]])
    first = negotiator.negotiate([ObjectId(b"1" * 40), loose[2]], readiness=True)
    assert [v.common for v in first.verdicts] == [False, True]
    assert first.ready
    _git(server, "repack", "-adq")  # the loose commits now packed, the old pack gone
    again = git_pack.Negotiator(store, [loose[0]])
    second = again.negotiate([packed[3]], readiness=True)
    assert [v.common for v in second.verdicts] == [True]
    assert second.ready
