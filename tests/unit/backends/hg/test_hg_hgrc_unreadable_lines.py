"""An ``.hg/hgrc`` line Mercurial's config parser takes for no setting (``[web`` unclosed, an indented
line after no setting, a name without ``=``) makes hg refuse the repository whole ("config error at
.hg/hgrc:N"); hgwire skipped the line and read the rest, so ``allow_read = alice`` under an unclosed
``[web`` restricted no one.  It is refused too now; the lines hg reads are read as before (a comment
line amid a value's continuation lines keeps them going, a first line's byte-order mark is dropped,
``%unset a=b`` is a setting, as hg takes them: ``hg config web`` gives the values asserted).  Each
text is checked beside hg's own parser (``hg root`` reads it, or says "config error at")."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from backends.hg import create_repository, open_repository
from backends.hg.keys import config_section
from protocols.errors import StorageError
from tests.hg_command_server import subprocess_run

REFUSED = [
    b"[web\nallow_read = alice\n",
    b"[web]\n  allow_read = alice\n",
    b"[web]\nallow_read = alice\ngarbage\n",
    b"[web]\n# note\n\n  description = x\n",
]
READ = [
    (b"[web]\ndescription = a\n# note\n  b\n", {b"description": b"a\nb"}),
    (b"\xef\xbb\xbf[web]\ndescription = a\n", {b"description": b"a"}),
    (b"[web]\n%unset a=b\n", {b"%unset a": b"b"}),
    (b"[web]\ndescription = a\n\n  \n; c\nname = n\n", {b"description": b"a", b"name": b"n"}),
]


def _hg_reads(tmp_path: Path, text: bytes) -> bool:
    """Whether hg itself reads a repository with ``text`` as its hgrc."""
    path = tmp_path / "theirs"
    path.mkdir()
    (path / ".hg").mkdir()
    (path / ".hg" / "requires").write_text("store\n")
    (path / ".hg" / "hgrc").write_bytes(text)
    env = {**os.environ, "HGRCPATH": os.devnull, "HGPLAIN": "1"}
    done = subprocess_run(["hg", "root", "-R", str(path)], cwd=tmp_path, env=env)  # (in hg's command server)
    assert done.returncode == 0 or b"config error at" in done.stderr, done.stderr
    return done.returncode == 0


def _ours(tmp_path: Path, text: bytes) -> Path:
    path = tmp_path / "ours"
    create_repository(str(path), "ours")
    (path / ".hg" / "hgrc").write_bytes(text)
    return path


@pytest.mark.parametrize("text", REFUSED)
def test_a_line_hg_cannot_read_refuses_the_repository_as_hg_refuses_it(tmp_path: Path, text: bytes) -> None:
    assert not _hg_reads(tmp_path, text)
    repo = open_repository(str(_ours(tmp_path, text)), "ours")
    with pytest.raises(StorageError, match="has a line hg cannot read") as refused:
        repo.check_hgrc()
    with pytest.raises(StorageError):
        repo.web_access()
    assert "fix it on the server" in str(refused.value)


@pytest.mark.parametrize("text,web", READ)
def test_the_lines_hg_reads_are_read_as_hg_reads_them(tmp_path: Path, text: bytes, web: dict[bytes, bytes]) -> None:
    assert _hg_reads(tmp_path, text)
    repo = open_repository(str(_ours(tmp_path, text)), "ours")
    repo.check_hgrc()
    assert repo.hgrc_section(b"web") == web
    assert dict(config_section(text, b"web", None)) == web
