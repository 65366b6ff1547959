"""A subsection holding a tab or a backspace (``[includeIf "gitdir:/srv/a<TAB>b/"]``) is read as
git reads it: the form dulwich is given (``canonical_config``) wrote it with a value's escapes
(``\\t``), which a header reads as the letter (git's parser and dulwich's alike), so the section was
``includeif.gitdir:/srv/atb/``, a place no repository is."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from backends.git import read_config


@pytest.mark.parametrize("subsection", [b"a\tb", b"a\bb", b'a\\"b', b"a\\\\b", b"a b\t"])
def test_a_subsection_s_bytes_are_read_as_git_reads_them(tmp_path: Path, subsection: bytes) -> None:
    config = tmp_path / "config"
    config.write_bytes(b'[core]\n\tbare = true\n[remote "' + subsection + b'"]\n\turl = x\n')
    listed = subprocess.run(["git", "config", "-f", str(config), "--list", "-z"], check=True,
                            capture_output=True).stdout
    name = next(item.partition(b"\n")[0] for item in listed.split(b"\0") if item.endswith(b"\nx"))
    as_git = name.removeprefix(b"remote.").removesuffix(b".url")
    assert read_config(str(config)).get((b"remote", as_git), b"url") == b"x"
