"""Config forms git reads that dulwich's parser did not read as git: a subsection header with two
spaces or a tab before its quotes, or a header followed by another on its line, refused the whole
repository ("the repository's git config cannot be read") where git serves it; a value continued
on a line that starts with spaces lost them (``hideRefs = refs/heads/ma\\`` then `` in`` hid
refs/heads/main, which git, reading "refs/heads/ma in", shows).  Each is answered as git's own
ls-remote over file:// answers it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from backends.git import _hide_rules, read_config
from protocols.errors import StorageError
from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_daemon import commit

FORMS = [
    b'[remote  "origin"]\n\turl = https://example.com/x.git\n',
    b'[remote\t"origin"]\n\turl = https://example.com/x.git\n',
    b'[remote "origin"][uploadpack]\n\thideRefs = refs/heads/main\n',
    b"[uploadpack]\n\thideRefs = refs/heads/ma\\\n in\n",
    b"[uploadpack]\n\thideRefs = refs/heads/main\n[Uploadpack.X]\n\thideRefs = refs/tags\n",
]


@pytest.mark.parametrize("form", FORMS)
def test_a_config_form_git_reads_is_read_as_git_reads_it(make_server: Callable[..., RunningServer],
                                                           client: Client, form: bytes) -> None:
    server = make_server("fs", git=[LOOPBACK])
    served = server.root / "r.git"
    work = client.cwd / "work"
    client.git("init", "-q", "-b", "main", str(work))
    commit(client, work, "a.txt", "a\n", "first")
    client.git("init", "-q", "--bare", str(served))
    client.git("push", "-q", str(served), "main", "main:side", cwd=work)
    with (served / "config").open("ab") as config:
        config.write(form)
    theirs = client.git("ls-remote", f"file://{served}")
    ours = client.git("ls-remote", server.git_url("r"), check=False)
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == theirs.stdout


def test_a_refusal_names_the_line_of_the_file_as_written(tmp_path: Path) -> None:
    """What dulwich is given is git's settings in one form; what a message names is the file's own
    line (its comments and blank lines counted)."""
    config = tmp_path / "config"
    config.write_bytes(b"[core]\n\tbare = true\n# a note\n\n[uploadpack]\n\thideRefs = refs/a\n[uploadpack]\n\thideRefs\n")
    with pytest.raises(StorageError, match=r"'uploadpack.hiderefs' without a value \(line 8 of config\)"):
        _hide_rules(read_config(str(config)), (b"uploadpack",))
