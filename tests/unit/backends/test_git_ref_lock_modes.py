"""The ref-update lock file (``hgwire-refs.lock``) of a repository several users share
(``core.sharedRepository``) is one each of them can lock: made with the modes git gives a file
there, widened when an older hgwire left it narrower, and locked for reading when it is another
user's that this one may not write (it was refused "the server could not lock the repository's
refs (Permission denied)")."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from backends.filesystem import FilesystemBackend
from backends.git import DulwichGitRepository
from backends.interfaces import ZERO_ID, ObjectId, RefResult, RefUpdate

_GIT_ENV = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@x",
            "GIT_COMMITTER_NAME": "a", "GIT_COMMITTER_EMAIL": "a@x", "HOME": os.devnull}


def _git(repo: Path, *args: str, stdin: str = "") -> str:
    return subprocess.run(["git", "--git-dir", str(repo), *args], input=stdin, capture_output=True, text=True,
                          env=_GIT_ENV, check=True).stdout.strip()


def _shared_repo(root: Path) -> tuple[Path, ObjectId]:
    """A ``git init --shared=group`` repository with one commit, no ref naming it yet."""
    repo = root / "shared.git"
    subprocess.run(["git", "init", "-q", "--bare", "--shared=group", str(repo)], env=_GIT_ENV, check=True)
    tree = _git(repo, "mktree")
    return repo, ObjectId(_git(repo, "commit-tree", tree, "-m", "one").encode())


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_lock_file_left_too_narrow_is_given_the_shared_modes(tmp_path: Path) -> None:
    repo, commit = _shared_repo(tmp_path)
    lock = repo / "hgwire-refs.lock"
    lock.touch()
    lock.chmod(0o644)  # as every hgwire before left it
    served = FilesystemBackend(str(tmp_path)).open("shared")
    assert isinstance(served, DulwichGitRepository)
    assert served.update_refs([RefUpdate(b"refs/heads/x", ZERO_ID, commit)], atomic=False) == [
        RefResult(b"refs/heads/x")]
    assert _mode(lock) == _mode(repo / "refs" / "heads" / "x")
    assert _mode(lock) & stat.S_IWGRP


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory another user may enter (``tmp_path``'s parents are the tester's own)."""
    made = Path(tempfile.mkdtemp(prefix="hgwire-lock-"))
    try:
        made.chmod(0o755)
        yield made
    finally:
        shutil.rmtree(made)


_PUSH_AS_ANOTHER_USER = """
import sys
from backends.filesystem import FilesystemBackend
from backends.interfaces import ZERO_ID, ObjectId, RefUpdate
served = FilesystemBackend(sys.argv[1]).open("shared")
print([(r.ref.decode(), r.reason) for r in served.update_refs(
    [RefUpdate(b"refs/heads/y", ZERO_ID, ObjectId(sys.argv[2].encode()))], atomic=False)])
"""


def test_another_user_s_lock_file_it_may_not_write_does_not_refuse_a_push(open_dir: Path) -> None:
    """A member of the repository's group, not the owner of a lock file made ``0644`` (a push of the
    owner's before the repository was shared), updates a ref: its lock is taken for reading."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.fail("this test acts as another user: it needs root and setpriv")
    repo, commit = _shared_repo(open_dir)
    lock = repo / "hgwire-refs.lock"
    lock.touch()
    lock.chmod(0o644)
    source = str(Path(__file__).resolve().parents[3])
    pushed = subprocess.run(
        ["setpriv", "--reuid=65534", f"--regid={repo.stat().st_gid}", "--clear-groups",
         sys.executable, "-c", _PUSH_AS_ANOTHER_USER, str(open_dir), commit.decode()],
        capture_output=True, text=True, env={**_GIT_ENV, "PYTHONPATH": source}, cwd=source, check=False)
    assert pushed.returncode == 0, pushed.stderr
    assert pushed.stdout.strip() == "[('refs/heads/y', None)]"  # updated, no reason to refuse
    assert _git(repo, "rev-parse", "refs/heads/y") == commit.decode()
    assert lock.stat().st_uid == 0 and _mode(lock) == 0o644  # not this user's to change
    _git(repo, "fsck", "--full")
