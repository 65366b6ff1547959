"""The first branch map after a start takes the branch heads ``.hg/cache/branch2-served`` holds (as
``hg serve`` does) where the file still holds for the changelog, and brings them up to the
changesets added after it; anywhere it does not hold (its tip gone, a head named on another
branch, a changeset filtered, no file), every revision is walked, as before."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from backends.hg import graph, open_repository, revlog
from backends.interfaces import Node
from tests.conftest import VENV_BIN

ENV = {**os.environ, "HGRCPATH": "", "HGPLAIN": "1", "HGUSER": "t <t@example.com>"}
DAG = "+30 :fork +10 :main @stable <fork +9 :st /main +3 <st +2"


def _hg(repo: Path, *args: str) -> str:
    done = subprocess.run([os.path.join(VENV_BIN, "hg"), "-R", str(repo), *args], env=ENV, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _expected(repo: Path) -> dict[bytes, list[Node]]:
    """hg's own branch map: every branch's heads, closed ones too, ascending."""
    out: dict[bytes, list[Node]] = {}
    for line in _hg(repo, "log", "-r", "sort(head(), rev)", "-T", "{branch} {node}\n").splitlines():
        name, node = line.split(" ")
        out.setdefault(name.encode(), []).append(Node(bytes.fromhex(node)))
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The history with hg's saved branch heads, made once for the module (four hg processes):
    each test changes its own copy."""
    path = tmp_path_factory.mktemp("saved-branch-heads") / "r"
    subprocess.run([os.path.join(VENV_BIN, "hg"), "init", str(path)], env=ENV, check=True)
    _hg(path, "debugbuilddag", "-q", DAG)
    _hg(path, "phase", "-q", "-p", "-r", "heads(all())")
    _hg(path, "debugupdatecaches")
    assert (path / ".hg" / "cache" / "branch2-served").exists()
    return path


@pytest.fixture
def repo(built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(revlog, "LAZY_ENTRIES", 8)
    path = tmp_path / "r"
    shutil.copytree(built, path)
    return path


def _branchmap(path: Path, walks: bool, monkeypatch: pytest.MonkeyPatch) -> dict[bytes, list[Node]]:
    """The branch map of a fresh open (its heads, the first thing a push asks, checked against
    hg's); ``walks`` says whether they may read every revision's parents."""
    walked = []
    iterate, marks = graph.ParentColumns.__iter__, graph.ParentColumns.child_marks

    def spy(self: graph.ParentColumns):  # type: ignore[no-untyped-def]
        walked.append(len(self))
        return iterate(self)

    def marks_spy(self: graph.ParentColumns, visible: bytearray | None = None) -> bytearray:
        walked.append(len(self))
        return marks(self, visible)

    with monkeypatch.context() as patch:
        patch.setattr(graph.ParentColumns, "__iter__", spy)
        patch.setattr(graph.ParentColumns, "child_marks", marks_spy)
        repo = open_repository(str(path), "r")
        heads = sorted(repo.heads())
        found = {name: list(nodes) for name, nodes in repo.branchmap().items()}
    assert bool(walked) == walks, walked
    assert heads == sorted(bytes.fromhex(node) for node in _hg(
        path, "log", "-r", "heads(not secret())", "-T", "{node}\n").split())
    return found


def test_the_branch_heads_hg_saved_are_taken_without_a_walk(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _branchmap(repo, False, monkeypatch) == _expected(repo)


def test_changesets_after_the_saved_tip_bring_its_heads_up_to_date(
        repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    saved = (repo / ".hg" / "cache" / "branch2-served").read_bytes()
    for parent, name in (("54", "on-stable"), ("39", "on-default"), ("52", "closing")):  # (a head moves on,
        _hg(repo, "update", "-q", "-r", parent)  # default's has a child on its branch, a head closes)
        (repo / name).write_text(name)
        _hg(repo, "commit", "-q", "-A", "-m", name, *(("--close-branch",) if name == "closing" else ()))
    (repo / ".hg" / "cache" / "branch2-served").write_bytes(saved)  # (as it was before them)
    assert _branchmap(repo, False, monkeypatch) == _expected(repo)


@pytest.mark.parametrize("damage", ["tip", "branch", "closed", "garbage", "hash", "gone"])
def test_a_file_that_does_not_hold_is_walked_past(repo: Path, monkeypatch: pytest.MonkeyPatch, damage: str) -> None:
    path = repo / ".hg" / "cache" / "branch2-served"
    lines = path.read_bytes().splitlines(keepends=True)
    if damage == "tip":  # (stripped and replaced: the node at its place is another)
        lines[0] = b"0" * 40 + lines[0][40:]
    elif damage == "branch":
        lines[1] = lines[1].replace(b" default", b" stable")
    elif damage == "closed":
        lines[1] = lines[1].replace(b" o ", b" c ")
    elif damage == "garbage":
        lines[1] = b"not a line\n"
    elif damage == "hash":  # (hg's file for a repository with filtered changesets)
        lines[0] = lines[0].rstrip(b"\n") + b" " + b"1" * 40 + b"\n"
    if damage == "gone":
        path.unlink()
    else:
        path.write_bytes(b"".join(lines))
    assert _branchmap(repo, True, monkeypatch) == _expected(repo)


def test_a_secret_changeset_is_walked_past(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _hg(repo, "phase", "-q", "-f", "-s", "-r", "tip")
    saved = (repo / ".hg" / "cache" / "branch2-served").read_bytes()
    found = _branchmap(repo, True, monkeypatch)
    assert (repo / ".hg" / "cache" / "branch2-served").read_bytes() == saved
    served = {name: [Node(bytes.fromhex(node)) for node in _hg(
        repo, "log", "-r", f"sort(heads(branch({name.decode()}) - secret()), rev)", "-T", "{node}\n").split()]
        for name in (b"default", b"stable")}
    assert found == served
