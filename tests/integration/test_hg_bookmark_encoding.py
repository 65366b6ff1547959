"""Bookmark names beyond ASCII, as ``hg serve`` takes and gives them: hg's client under
``HGENCODING=latin1`` sends a bookmark in Latin-1 in its bookmarks part; hgwire stored those
bytes, and every clone of the repository then aborted ("decoding near 'marque-\\xf6'").  Such a
push is now refused with what to do, nothing stored; a bookmarks file that holds a Latin-1 name
(an old hg's, or that earlier push's) is read as hg reads it, in Latin-1, so clones get it in
UTF-8, as from ``hg serve``."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import bcrypt

from backends.interfaces import Kind
from tests.conftest import LOOPBACK, Client, RunningServer

LATIN1_NAME = os.fsdecode(b"marque-\xf6")  # what a Latin-1 terminal types, as an argument


def test_a_latin1_bookmark_is_refused_and_a_stored_one_is_read_as_latin1(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> None:
    passwords = tmp_path / "passwords"
    passwords.write_text("alice:" + bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode() + "\n")
    server = make_server("fs", http=[LOOPBACK], htpasswd=str(passwords), allow_push_over_http=True)
    server.backend.create("h", Kind.HG)
    url = f"http://alice:pw@127.0.0.1:{server.port('http')}/h"
    work = tmp_path / "work"
    client.hg("init", str(work))
    (work / "a.txt").write_text("a\n")
    client.hg("commit", "-q", "-A", "-m", "a", "-u", "u", cwd=work)
    client.hg("push", "-q", url, cwd=work)
    stored = server.root / "h" / ".hg" / "bookmarks"

    latin1 = {"HGENCODING": "latin1"}
    client.hg("bookmark", LATIN1_NAME, cwd=work, env=latin1)
    refused = client.hg("push", "-B", LATIN1_NAME, url, cwd=work, env=latin1, check=False)
    assert refused.returncode != 0
    assert ("remote: bookmark name 'marque-\\xf6' is not UTF-8, in which hg stores names (an hg client under "
            "HGENCODING=latin1 sends it so); push it with HGENCODING=utf-8") in refused.stdout + refused.stderr
    assert not stored.exists() or b"marque" not in stored.read_bytes()
    # as told (hg push answers 1: no changesets to push, only the bookmark)
    client.hg("push", "-q", "-B", "marque-ö", url, cwd=work, env={"HGENCODING": "utf-8"}, check=False)
    assert stored.read_bytes().endswith(b" marque-\xc3\xb6\n")

    node = stored.read_bytes().split()[0]
    stored.write_bytes(node + b" ancien-\xe9\n" + node + b" marque-\xc3\xb6\n")  # as an old hg wrote it
    clone = tmp_path / "clone"
    client.hg("clone", "-q", url, str(clone))
    assert (clone / ".hg" / "bookmarks").read_bytes() == node + b" ancien-\xc3\xa9\n" + node + b" marque-\xc3\xb6\n"
