"""``hg strip`` on the server's disk, then revisions added again, that leaves the changelog's old
last revision back where it was: what hgwire keeps across requests (a split index grown by its new
entries, the branch of each revision, the views) must not take the revisions before it for the
stripped ones."""

from __future__ import annotations

import binascii
import os
from pathlib import Path

from backends.hg import open_for_reading
from tests import hg_command_server
from tests.conftest import VENV_BIN

ENV = {**os.environ, "HGRCPATH": "", "HGPLAIN": "1", "HGUSER": "t <t@example.com>"}


def hg(path: Path, *args: str) -> str:
    done = hg_command_server.subprocess_run(
        [os.path.join(VENV_BIN, "hg"), "-R", str(path), "--config", "extensions.strip=", *args],
        cwd=path, env=ENV, check=True, text=True)
    return str(done.stdout)


def commit(path: Path, name: str, text: str, message: str, branch: str | None = None) -> None:
    if branch is not None:
        hg(path, "branch", "-q", "-f", branch)
    (path / name).write_text(text)
    hg(path, "commit", "-q", "-A", "-m", message, "-d", "0 0")


def swap_first_of_two_heads(path: Path, base: int, branch: str | None = None) -> None:
    """Revisions ``base + 1`` (A) and ``base + 2`` (B), both children of ``base``, become C and B:
    both stripped, C committed, B unbundled from its backup (its index entry as it was)."""
    hg(path, "strip", "-q", "-r", str(base + 1))  # A (B takes its place)
    hg(path, "strip", "-q", "-r", str(base + 1))  # B, alone in this backup
    backup = max((path / ".hg" / "strip-backup").iterdir(), key=os.path.getmtime)
    hg(path, "update", "-q", "-C", str(base))
    commit(path, "a", "c\n", "message C", branch)  # the length of A's: B's entry gets its old offset back
    hg(path, "unbundle", "-q", str(backup))


def nodes(path: Path) -> list[str]:
    return hg(path, "log", "-r", "0:", "-T", "{node}\n").split()


def test_a_split_changelog_rewritten_under_its_last_entry_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "r"
    hg_command_server.subprocess_run([os.path.join(VENV_BIN, "hg"), "init", str(path)], cwd=tmp_path, env=ENV,
                                     check=True)
    hg(path, "debugbuilddag", "+1500")  # a changelog past the inline limit: split, grown by appends
    assert (path / ".hg" / "store" / "00changelog.d").exists()
    hg(path, "update", "-q", "1499")
    commit(path, "a", "a\n", "message A")
    hg(path, "update", "-q", "1499")
    commit(path, "b", "b\n", "message B")
    repo = open_for_reading(str(path), "r")
    assert [binascii.hexlify(n).decode() for n in repo.changelog().index.nodemap()][-2:] == nodes(path)[-2:]
    before = repo.changelog().index
    swap_first_of_two_heads(path, 1499)
    hg(path, "update", "-q", "1501")
    commit(path, "b", "d\n", "message D")  # grown past the old last entry, which is back in its place
    expected = nodes(path)
    repo = open_for_reading(str(path), "r")
    cl = repo.changelog()
    assert [binascii.hexlify(cl.node(rev)).decode() for rev in range(1500, 1503)] == expected[1500:]
    assert sorted(binascii.hexlify(n).decode() for n in repo.heads()) == sorted(expected[1500:1501] + expected[-1:])
    assert cl.index.entries[0] is not before.entries[0]  # (parsed again)
    grown_from = cl.index
    commit(path, "e", "e\n", "message E")  # a plain append is still read as one: only its new entry parsed
    again = open_for_reading(str(path), "r").changelog()
    assert again.index.entries[0] is grown_from.entries[0] and len(again.index.entries) == 1504
    assert binascii.hexlify(again.node(1503)).decode() == nodes(path)[-1]


def test_branches_of_revisions_rewritten_under_the_last_one_are_read_again(tmp_path: Path) -> None:
    path = tmp_path / "r"
    hg_command_server.subprocess_run([os.path.join(VENV_BIN, "hg"), "init", str(path)], cwd=tmp_path, env=ENV,
                                     check=True)
    commit(path, "f", "0\n", "root")
    commit(path, "a", "a\n", "message A", branch="A")
    hg(path, "update", "-q", "0")
    commit(path, "b", "b\n", "message B", branch="B")
    repo = open_for_reading(str(path), "r")
    assert sorted(repo.branchmap()) == [b"A", b"B", b"default"]
    swap_first_of_two_heads(path, 0, branch="C")
    repo = open_for_reading(str(path), "r")
    assert {name.decode(): [binascii.hexlify(n).decode() for n in heads] for name, heads in repo.branchmap().items()} == {
        "default": [nodes(path)[0]], "C": [nodes(path)[1]], "B": [nodes(path)[2]]}
