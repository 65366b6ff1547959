"""A git request's opening of its repository parses the repository's config once: the open, its
object format and the request's settings each parsed the file (three times a request)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from dulwich import config as dulwich_config

from backends.filesystem import FilesystemBackend
from backends.git import DulwichGitRepository

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs a git binary")

GIT_ENV = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}


def test_an_open_and_its_settings_parse_the_config_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "root" / "r.git"
    subprocess.run(["git", "init", "-q", "--bare", str(repo)], check=True, env=GIT_ENV)
    subprocess.run(["git", "-C", str(repo), "config", "transfer.hideRefs", "refs/hidden"], check=True, env=GIT_ENV)
    backend = FilesystemBackend(str(tmp_path / "root"))

    parsed: list[str] = []
    real = dulwich_config.ConfigFile.from_path.__func__  # type: ignore[attr-defined]

    def counting(cls: Any, path: Any, *args: Any, **kwargs: Any) -> Any:
        parsed.append(os.fspath(path))
        return real(cls, path, *args, **kwargs)

    monkeypatch.setattr(dulwich_config.ConfigFile, "from_path", classmethod(counting))
    opened = backend.open("r")
    assert isinstance(opened, DulwichGitRepository)
    try:
        assert opened.hidden_refs("upload-pack")(b"refs/hidden/x")
        assert not opened.hidden_refs("upload-pack")(b"refs/heads/main")
    finally:
        opened.close()
    assert len(parsed) == 1, parsed

    # the next request's open reads the file as it is then
    subprocess.run(["git", "-C", str(repo), "config", "--unset", "transfer.hideRefs"], check=True, env=GIT_ENV)
    opened = backend.open("r")
    assert isinstance(opened, DulwichGitRepository)
    try:
        assert not opened.hidden_refs("upload-pack")(b"refs/hidden/x")
    finally:
        opened.close()
    assert len(parsed) == 2, parsed
