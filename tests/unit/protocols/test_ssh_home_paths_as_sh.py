"""An SSH exec path hgwire takes names the directory sshd would open for it, the root standing for the home.

Over sshd the command line goes through ``sh`` (a bare leading ``~`` is the home, quotes and
backslashes are removed) and then git's ``enter_repo`` or hg's ``-R`` (a leading ``~``/``~/`` left
literal by quoting is the home too; a relative path is the home's).  Every path spelled from the
pieces below (bare, quoted and escaped ``~``, ``/``, ``.``, ``..``: 8,000 spellings) that hgwire
accepts must name what that chain names, and never ``~user``'s home; what it refuses is not
checked here (hgwire refuses more than sh: hidden names, ``..``).  The one reading sh has not:
``/~/NAME``, which git-lfs sends for ``ssh://host/~/NAME``, is the home's ``NAME``.
"""

from __future__ import annotations

import itertools
import posixpath
import shutil
import subprocess

import pytest

from backends.names import validate_name
from protocols.errors import HgwireError
from protocols.ssh_exec import from_home, parse_exec

HOME = "/home/git"
PIECES = ["~", "~/", "/", "//", ".", "./", "..", "../", "a", "b.git", "x~", "-a", ".h", "''", "'~'", "'~/'", "'/'",
          "\\~", "\\/", "'.'"]


def _as_git_opens(expanded: str) -> str | None:
    """The directory git-upload-pack (``enter_repo``) or ``hg -R`` opens for a path sh handed it,
    as a path under HOME; None for another user's home.  An absolute path outside HOME is read as
    hgwire reads ``ssh://host/NAME``'s ``/NAME``: NAME under the root."""
    if expanded == "~" or expanded.startswith("~/"):
        return posixpath.normpath(HOME + expanded[1:])
    if expanded.startswith("~"):
        return None
    if expanded == HOME or expanded.startswith(HOME + "/"):
        return posixpath.normpath(expanded)
    return posixpath.normpath(f"{HOME}/{expanded.lstrip('/')}")


def _accepted() -> list[tuple[str, str]]:
    taken = []
    for count in (1, 2, 3):
        for pieces in itertools.product(PIECES, repeat=count):
            word = "".join(pieces)
            try:
                request = parse_exec(f"git-upload-pack {word}".encode())
                taken.append((word, validate_name(from_home(request.path.removeprefix("/")))))
            except HgwireError:
                continue
    return taken


SH = shutil.which("sh")


@pytest.mark.skipif(SH is None, reason="no sh to compare with")
def test_every_path_taken_names_what_sh_and_git_open() -> None:
    assert SH is not None
    taken = _accepted()
    assert len(taken) > 500  # the pieces still make paths hgwire takes
    script = "".join(f"printf '%s\\0' {word}\n" for word, _ in taken)
    said = subprocess.run([SH, "-c", script], env={"HOME": HOME}, capture_output=True,
                          check=True).stdout.decode().split("\0")[:-1]
    assert len(said) == len(taken)
    differ = []
    for (word, name), expanded in zip(taken, said, strict=True):
        if expanded.startswith("/~/"):  # git-lfs's ssh://host/~/NAME: the home's NAME, as git reads ~/NAME
            assert posixpath.normpath(f"{HOME}/{name}") == _as_git_opens(expanded[1:]), word
            continue
        if posixpath.normpath(f"{HOME}/{name}") != _as_git_opens(expanded):
            differ.append((word, expanded, name))
    assert differ == []
