"""A chain of ``MAX_PEEL`` tags of tags: ``peel_many`` (the advertisement of a packed-refs without
``^`` lines) peeled it, where ``peel`` (a loose ref's tag, include-tag's filter) raised "tag chain
longer than 32", one object short; git peels it.  Both now take chains of ``MAX_PEEL`` tags and
refuse longer ones alike."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from dulwich.repo import Repo

from backends import git_pack
from backends.interfaces import ObjectId
from protocols.errors import ProtocolError


def git(cwd: Path, *args: str, input: bytes | None = None) -> bytes:
    return subprocess.run(["git", "-c", "pack.threads=1", *args], cwd=cwd, input=input, check=True,
                          capture_output=True,
                          env={"GIT_CONFIG_NOSYSTEM": "1", "HOME": str(cwd), "GIT_AUTHOR_NAME": "a",
                               "GIT_AUTHOR_EMAIL": "a@b", "GIT_COMMITTER_NAME": "a",
                               "GIT_COMMITTER_EMAIL": "a@b", "PATH": "/usr/bin:/bin"}).stdout


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes, list[bytes]]:
    """A packed repository whose tags ``t1``..``t{MAX_PEEL + 1}`` each name the one before, ``t1``
    the commit main: (its path, main, the tags' ids in order)."""
    tmp = tmp_path_factory.mktemp("chain")
    repo = tmp / "c.git"
    git(tmp, "init", "-q", "--bare", str(repo))
    git(repo, "fast-import", "--quiet", input=(
        b"blob\nmark :1\ndata 2\nb\ncommit refs/heads/main\nmark :2\ncommitter a <a@b> 1700000000 +0000\n"
        b"data 2\nc\nM 644 :1 f\n"))
    main = git(repo, "rev-parse", "main").strip()
    tags: list[bytes] = []
    target, kind = main, b"commit"
    for n in range(1, git_pack.MAX_PEEL + 2):
        target = git(repo, "hash-object", "-w", "-t", "tag", "--stdin", input=(
            b"object %s\ntype %s\ntag t%d\ntagger a <a@b> 1700000000 +0000\n\nt\n" % (target, kind, n))).strip()
        tags.append(target)
        kind = b"tag"
    git(repo, "repack", "-adq")
    return repo, main, tags


def _peel_both(repo: Path, oid: bytes) -> tuple[object, object]:
    """What ``peel`` and ``peel_many`` answer for ``oid`` (or the error each raises)."""
    opened = Repo(str(repo))
    try:
        store = opened.object_store
        answers: list[object] = []
        for many in (False, True):
            git_pack._peeled.clear()
            types = git_pack._stored_types(store)
            try:
                if many:
                    answers.append(git_pack.peel_many(store, [ObjectId(oid)], types)[ObjectId(oid)])
                else:
                    answers.append(git_pack.peel(store, ObjectId(oid), types))
            except ProtocolError as exc:
                answers.append(type(exc))
            finally:
                if types is not None:
                    types.close()
        return answers[0], answers[1]
    finally:
        opened.close()


def test_a_chain_of_max_peel_tags_is_peeled_by_both(chain: tuple[Path, bytes, list[bytes]],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(git_pack, "_peeled", {})
    repo, main, tags = chain
    assert git(repo, "rev-parse", f"{tags[git_pack.MAX_PEEL - 1].decode()}^{{}}").strip() == main
    assert _peel_both(repo, tags[git_pack.MAX_PEEL - 1]) == (main, main)


def test_a_longer_chain_is_refused_by_both(chain: tuple[Path, bytes, list[bytes]],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(git_pack, "_peeled", {})
    repo, _main, tags = chain
    assert _peel_both(repo, tags[git_pack.MAX_PEEL]) == (ProtocolError, ProtocolError)
