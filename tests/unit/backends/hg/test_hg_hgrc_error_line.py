"""The refusal of an hgrc line hg cannot read named no file and no line, where hg says ``config error
at FILE:N``; it now gives that form first: ``.hg/hgrc`` and its own line number (also when the
operator's ``[hg] hgrc`` is read before it), or the file an ``%include`` read and that file's line.
Each number is checked beside hg's own (``hg root`` in a repository with the same files)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from backends.hg import create_repository, open_repository
from protocols.errors import StorageError


def _hg_says(path: Path, base: Path | None) -> str:
    """Where hg itself says the error is: ``FILE:N`` with FILE as hg names it (its full path); a process of
    its own, not the command server, which reads ``HGRCPATH`` once."""
    env = {**os.environ, "HGRCPATH": str(base) if base else os.devnull, "HGPLAIN": "1"}
    done = subprocess.run(["hg", "root", "-R", str(path)], cwd=path, env=env, capture_output=True, check=False)
    found = re.search(rb"config error at (\S+):(\d+):", done.stderr)
    assert found is not None, done.stderr
    return f"{os.fsdecode(found.group(1))}:{int(found.group(2))}"


def _repo(tmp_path: Path, hgrc: bytes) -> Path:
    path = tmp_path / "ours"
    create_repository(str(path), "ours")
    (path / ".hg" / "hgrc").write_bytes(hgrc)
    return path


def _ours(path: Path, base: Path | None) -> str:
    repo = open_repository(str(path), "ours")
    repo.base_hgrc = os.fsencode(base) if base else None
    with pytest.raises(StorageError) as refused:
        repo.check_hgrc()
    found = re.match(r"config error at (\S+):(\d+): .*has a line hg cannot read", str(refused.value))
    assert found is not None, refused.value
    return f"{found.group(1)}:{found.group(2)}"


@pytest.mark.parametrize("with_base", [False, True])
def test_a_line_of_the_own_hgrc_is_numbered_as_hg_numbers_it(tmp_path: Path, with_base: bool) -> None:
    base = tmp_path / "base.rc"
    base.write_bytes(b"[ui]\nusername = x\n\n")
    path = _repo(tmp_path, b"[web]\ndescription = a\n\n[web\nallow_read = alice\n")
    theirs = _hg_says(path, base if with_base else None)
    assert theirs == f"{path}/.hg/hgrc:4"
    assert _ours(path, base if with_base else None) == ".hg/hgrc:4"


def test_a_line_of_an_included_file_or_the_base_names_that_file(tmp_path: Path) -> None:
    path = _repo(tmp_path, b"[web]\n%include extra.rc\n")
    (path / ".hg" / "extra.rc").write_bytes(b"# extra\n[web]\n  name = x\n")
    assert _hg_says(path, None) == f"{path}/.hg/extra.rc:3"
    assert _ours(path, None) == ".hg/extra.rc:3"
    base = tmp_path / "base.rc"
    base.write_bytes(b"[ui]\n\ngarbage\n")
    (path / ".hg" / "hgrc").write_bytes(b"[web]\nname = x\n")
    assert _hg_says(path, base) == f"{base}:3"
    assert _ours(path, base) == f"{base}:3"
