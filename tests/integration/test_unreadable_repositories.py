"""A repository the service may not read (a directory, its ``.hg`` or its git ``objects`` of mode
000) is told as that, with what to do, on every transport: not "not a git or Mercurial
repository" or "not found", which sent its users looking for a mistyped name.

The service runs in a subprocess; as root it runs without the capabilities that let root read
any file (``setpriv``), so that the file modes apply to it as to any other user.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Client
from tests.integration.test_cli import TWISTD, read_log, stop_twistd

WITHOUT_ROOT_READS = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]
TOLD = "cannot be read by the server (Permission denied); tell the server's operator"


@pytest.fixture
def served(tmp_path: Path, client: Client) -> Iterator[dict[str, str]]:
    """The URLs of an hgwire over ``root`` (git://, HTTP) whose repositories' modes apply to it."""
    root = tmp_path / "root"
    root.mkdir()
    prefix = WITHOUT_ROOT_READS if os.geteuid() == 0 else []
    proc = subprocess.Popen([*prefix, TWISTD, "-n", "--pidfile=", "hgwire", "--root", str(root), "--git",
                             "tcp:0:interface=127.0.0.1", "--http", "tcp:0:interface=127.0.0.1"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        seen = "".join(read_log(proc, r"worker threads"))
        urls = dict(re.findall(r"hgwire serves (\w+) at (\S+)/NAME", seen))
        assert urls.keys() == {"git", "http"}, seen
        yield {"root": str(root), **urls}
    finally:
        stop_twistd(proc)
        for path in root.rglob("*"):  # (give the test's files back to their cleanup)
            if path.is_dir() and not path.is_symlink():
                path.chmod(0o755)


def _git_repository(client: Client, root: Path, name: str) -> Path:
    bare = root / name
    client.git("init", "-q", "--bare", str(bare))
    work = client.cwd / f"src-{name}"
    client.git("init", "-q", str(work))
    (work / "a.txt").write_text("a\n")
    client.git("add", ".", cwd=work)
    client.git("commit", "-qm", "a", cwd=work)
    client.git("push", "-q", str(bare), "main", cwd=work)
    return bare


@pytest.mark.parametrize("closed", [".", "objects"])
def test_an_unreadable_git_repository_says_so(served: dict[str, str], client: Client, closed: str) -> None:
    bare = _git_repository(client, Path(served["root"]), "app.git")
    (bare / closed).chmod(0)
    for url in (served["git"] + "/app.git", served["http"] + "/app.git"):
        cloned = client.git("clone", url, str(client.cwd / f"clone-{url[:3]}"), check=False)
        assert cloned.returncode != 0
        assert f"repository app.git {TOLD}" in cloned.stderr, (url, cloned.stderr)
        assert "not a git or Mercurial repository" not in cloned.stderr


@pytest.mark.parametrize("closed", [".", ".hg"])
def test_an_unreadable_mercurial_repository_says_so(served: dict[str, str], client: Client, closed: str) -> None:
    repo = Path(served["root"]) / "proj"
    client.hg("init", str(repo))
    (repo / closed).chmod(0)
    cloned = client.hg("clone", served["http"] + "/proj", str(client.cwd / "clone"), check=False)
    assert cloned.returncode != 0
    assert f"repository proj {TOLD}" in cloned.stderr, cloned.stderr
