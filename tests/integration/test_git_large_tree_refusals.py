"""What a git client is told when it pushes a large tree (2,000 entries, files only or with
subtrees) that breaks one of git's fsck rules for trees: entries sorted, no name twice, names a
checkout can honour, modes written as git writes them, no null id (a submodule's: the client does
not read it).  The check of such a tree runs by C-level maps over its entries (no Python step an
entry); these transcripts pin every refusal word for word, as it was when the check walked the
entries in Python.  (A tree with an empty name or a mode written ``+100644`` no git client sends:
``test_git_large_tree_check`` has those.)"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LOOPBACK, Client
from tests.integration.test_git_daemon import started_repo

ENTRIES = 2000
BLOB = "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"  # the empty file


def _entry(mode: bytes, name: bytes, oid: str = BLOB) -> bytes:
    return mode + b" " + name + b"\0" + bytes.fromhex(oid)


def _tree(client: Client, work: Path, body: bytes) -> str:
    return subprocess.run(["git", "hash-object", "-t", "tree", "-w", "--literally", "--stdin"], cwd=work,
                          input=body, capture_output=True, check=True, env=client.env).stdout.decode().strip()


def _large(client: Client, work: Path, subtrees: bool, bad: list[tuple[bytes, bytes, str]],
           at: int = ENTRIES // 2) -> bytes:
    """``ENTRIES`` entries in git's order (every tenth a subtree when ``subtrees``), ``bad`` put in
    place of the entry at ``at`` (written as given, whatever git's order)."""
    sub = _tree(client, work, _entry(b"100644", b"x")) if subtrees else ""
    entries = []
    for n in range(ENTRIES):
        if subtrees and n % 10 == 5:
            entries.append(_entry(b"40000", b"f%05d" % n, sub))
        else:
            entries.append(_entry(b"100644", b"f%05d.txt" % n))
    entries[at:at + 1] = [_entry(mode, name, oid) for mode, name, oid in bad]
    return b"".join(entries)


CASES: list[tuple[str, list[tuple[bytes, bytes, str]], int, list[str], str]] = [
    # (case, entries in place of one, at, settings, what the client is told (tree id: {tree}))
    ("unsorted", [(b"100644", b"f01000.txt", BLOB), (b"100644", b"a.txt", BLOB)], 1000, [],
     "object {tree}: treeNotSorted: not properly sorted ('a.txt' after 'f01000.txt')"),
    ("twice", [(b"100644", b"f01000.txt", BLOB), (b"100644", b"f01000.txt", BLOB)], 1000, [],
     "object {tree}: duplicateEntries: contains duplicate file entries (tree has the entry 'f01000.txt' twice)"),
    ("file-and-dir", [(b"100644", b"f01000.txt", BLOB), (b"40000", b"f01000.txt", "{sub}")], 1000, [],
     "object {tree}: duplicateEntries: contains duplicate file entries (tree has the entry 'f01000.txt' twice)"),
    ("dot", [(b"40000", b".", "{sub}")], 0, [], "object {tree}: hasDot: contains '.'"),
    ("dotdot", [(b"40000", b"..", "{sub}")], 0, [], "object {tree}: hasDotdot: contains '..'"),
    ("dotgit", [(b"40000", b".GIT", "{sub}")], 0, [], "object {tree}: hasDotgit: contains '.git'"),
    ("slash", [(b"100644", b"f01000.txt/x", BLOB)], 1000, [], "object {tree}: fullPathname: contains full pathnames"),
    ("zero-padded", [(b"0100644", b"f01000.txt", BLOB)], 1000, ["receive.fsck.zeroPaddedFilemode=error"],
     "object {tree}: zeroPaddedFilemode: contains zero-padded file modes"),
    ("bad-mode", [(b"100664", b"f01000.txt", BLOB)], 1000, ["receive.fsck.badFilemode=error"],
     "object {tree}: badFilemode: contains bad file modes"),
    ("null-id", [(b"160000", b"f01000.txt", "0" * 40)], 1000, ["receive.fsck.nullSha1=error"],
     "object {tree}: nullSha1: contains entries pointing to null sha1"),
]


def _told(stderr: str) -> list[str]:
    """The lines a push's client printed, of the server's answer (``remote:`` and the refusals)."""
    return [line.strip() for line in stderr.splitlines()
            if line.startswith(("remote:", " ! ", "error:"))]


@pytest.mark.parametrize("subtrees", [False, True])
def test_a_large_tree_breaking_a_rule_is_refused_in_the_same_words(make_server: Any, client: Client,
                                                                   subtrees: bool) -> None:
    server = make_server("fs", git=[LOOPBACK])
    url, work = started_repo(server, client, "trees", push=True)
    bare = server.root / "trees.git"
    head = client.git("rev-parse", "HEAD", cwd=work).stdout.strip()
    subprocess.run(["git", "hash-object", "-w", "--stdin"], cwd=work, input=b"", check=True, env=client.env)
    sub = _tree(client, work, _entry(b"100644", b"x"))
    for case, bad, at, settings, refusal in CASES:
        entries = [(mode, name, sub if oid == "{sub}" else oid) for mode, name, oid in bad]
        tree = _tree(client, work, _large(client, work, subtrees, entries, at))
        commit = client.git("commit-tree", tree, "-p", head, "-m", case, cwd=work).stdout.strip()
        for setting in settings:
            key, value = setting.split("=")
            subprocess.run(["git", "--git-dir", str(bare), "config", key, value], check=True)
        try:
            pushed = client.git("push", url, f"{commit}:refs/heads/{case}", cwd=work, check=False)
        finally:
            for setting in settings:
                subprocess.run(["git", "--git-dir", str(bare), "config", "--unset", setting.split("=")[0]],
                               check=True)
        assert pushed.returncode != 0, (case, pushed.stderr)
        assert _told(pushed.stderr) == [
            f"error: remote unpack failed: the pushed pack is invalid: {refusal.format(tree=tree)}",
            f"! [remote rejected] {commit} -> {case} (unpacker error)",
            f"error: failed to push some refs to '{url}'"], (case, pushed.stderr)
