"""``export-subst``'s placeholders against ``git log --format`` of the same commit."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from dulwich.repo import Repo

from backends.git_pretty import pretty

CODES = ["%H", "%h", "%T", "%t", "%P", "%p", "%an", "%ae", "%ad", "%aD", "%ai", "%aI", "%as", "%at", "%cn",
         "%ce", "%cd", "%cD", "%ci", "%cI", "%cs", "%ct", "%s", "%b", "%B", "%e", "%%", "%x41", "%n",
         "%q", "100%", "a %an, b %ce"]


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pretty")
    env = {"GIT_AUTHOR_NAME": "Ann Author", "GIT_AUTHOR_EMAIL": "ann@example.com",
           "GIT_COMMITTER_NAME": "Cy Committer", "GIT_COMMITTER_EMAIL": "cy@example.com",
           "GIT_AUTHOR_DATE": "2026-01-01T00:00:00+0130", "GIT_COMMITTER_DATE": "2026-01-02T03:04:05-0800",
           "PATH": "/usr/bin:/bin", "HOME": str(path)}
    subprocess.run(["git", "init", "-q", str(path)], check=True, env=env)
    for n, message in enumerate(["first", "a subject,\nwrapped\n\nand a body\nof two lines\n"]):
        (path / "f").write_text(str(n))
        subprocess.run(["git", "add", "f"], cwd=path, check=True, env=env)
        subprocess.run(["git", "commit", "-q", "-m", message], cwd=path, check=True, env=env)
    return path


@pytest.mark.parametrize("code", CODES)
def test_placeholders_expand_as_git_log_expands_them(repo: Path, code: str) -> None:
    theirs = subprocess.run(["git", "log", "-1", f"--format={code}"], cwd=repo, capture_output=True,
                            check=True).stdout.removesuffix(b"\n")
    dulwich_repo = Repo(str(repo))
    assert pretty(dulwich_repo[dulwich_repo.head()], code.encode()) == theirs
