"""The pages show a commit made under ``i18n.commitEncoding`` (its ``encoding`` header) as ``git
log`` shows it: its message and author converted from that charset to UTF-8, not as U+FFFD; and
the log's search finds it by the words ``git log`` shows."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from backends import load_backend
from backends.git_web import GitPages

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs a git binary")

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


def _git(repo: Path, *args: str, data: bytes | None = None) -> bytes:
    env = {**os.environ, "LC_ALL": "C.UTF-8"}
    return subprocess.run(["git", "--git-dir", str(repo), *args], input=data, capture_output=True,
                          check=True, env=env).stdout


def _commit(repo: Path, person: bytes, header: bytes, message: bytes) -> str:
    raw = (b"tree " + EMPTY_TREE.encode() + b"\nauthor " + person + b" 1600000000 +0000\ncommitter " + person
           + b" 1600000000 +0000\n" + header + b"\n" + message)
    oid = _git(repo, "hash-object", "-t", "commit", "-w", "--stdin", data=raw).decode().strip()
    _git(repo, "update-ref", "refs/heads/main", oid)
    return oid


@pytest.mark.parametrize(("charset", "person", "message"), [
    ("ISO-8859-1", "Renée <r@x>", "révision été\n\nçà et là\n"),
    ("latin1", "Jürgen <j@x>", "Grüße\n"),
    ("Shift_JIS", "山田 <y@x>", "日本語のコミット\n"),
    ("UTF-8", "Zoë <z@x>", "déjà UTF-8\n"),
])
def test_a_commit_in_another_charset_reads_as_git_log_shows_it(
        tmp_path: Path, charset: str, person: str, message: str) -> None:
    repo = tmp_path / "r.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(repo)], check=True)
    oid = _commit(repo, person.encode(charset), b"encoding " + charset.encode() + b"\n", message.encode(charset))
    shown = _git(repo, "log", "-1", "--format=%an <%ae>%n%B", oid).decode()
    pages = GitPages(load_backend("fs", str(tmp_path)).open("r.git"))  # type: ignore[arg-type]
    entry = pages.entry(oid.encode())
    assert (entry["user"], entry["desc"]) == (person, message)
    assert shown.startswith(person + "\n" + message)  # what git log shows, converted to UTF-8
    word = message.split()[0].lower()
    assert [e["node"] for e in pages.search(word.encode(), 10)["entries"]] == [oid]
    assert [e["node"] for e in pages.search(person.split()[0].encode(), 10)["entries"]] == [oid]


def test_an_unknown_or_odd_charset_and_bytes_not_in_it_are_read_as_utf8(tmp_path: Path) -> None:
    repo = tmp_path / "r.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(repo)], check=True)
    load = load_backend("fs", str(tmp_path))
    for header, message, desc in [
        (b"encoding x-no-such-charset\n", "caf\u00e9\n".encode(), "caf\u00e9\n"),
        (b"encoding punycode\n", b"bcher-kva\n", "bcher-kva\n"),  # a codec, not a charset: as written
        (b"encoding UTF-8\n", b"caf\xe9\n", "caf\ufffd\n"),  # not valid in its charset
        (b"", b"caf\xe9\n", "caf\ufffd\n"),  # no header: UTF-8
    ]:
        oid = _commit(repo, b"A <a@b>", header, message)
        assert GitPages(load.open("r.git")).entry(oid.encode())["desc"] == desc  # type: ignore[arg-type]
