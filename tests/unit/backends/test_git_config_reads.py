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


def test_hide_refs_in_file_order_take_the_bytes_the_open_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A config whose hideRefs must be read in file order (a section written twice, an include): the
    # file and each it includes were opened and read again by every request's hidden_refs, after the
    # open had read them; the open's bytes are taken now.  A change to an included file alone (the
    # repository's config as it was) still counts at the next request, as git reads them each time.
    from backends import git as git_backend

    repo = tmp_path / "root" / "r.git"
    subprocess.run(["git", "init", "-q", "--bare", str(repo)], check=True, env=GIT_ENV)
    (repo / "hide.inc").write_text("[transfer]\n\thideRefs = refs/pull/7\n")
    with (repo / "config").open("a") as f:
        f.write("[transfer]\n\thideRefs = refs/pull\n[uploadpack]\n\thideRefs = !refs/pull\n"
                "[transfer]\n\thideRefs = refs/pull/8\n[include]\n\tpath = hide.inc\n")
    backend = FilesystemBackend(str(tmp_path / "root"))

    opened_files: list[str] = []

    def counting(name: Any, *args: Any, **kwargs: Any) -> Any:
        opened_files.append(os.fspath(name))
        return open(name, *args, **kwargs)

    monkeypatch.setattr(git_backend, "open", counting, raising=False)
    for include, shown, hidden in (("refs/pull/7", b"refs/pull/9", b"refs/pull/7"),
                                   ("refs/pull/9", b"refs/pull/7", b"refs/pull/9")):
        (repo / "hide.inc").write_text(f"[transfer]\n\thideRefs = {include}\n")
        opened = backend.open("r")
        assert isinstance(opened, DulwichGitRepository)
        try:
            opened_files.clear()
            for service in ("upload-pack", "receive-pack"):
                hides = opened.hidden_refs(service)
                assert hides(b"refs/pull/8/head") and hides(hidden)
                assert not hides(shown) if service == "upload-pack" else hides(shown)
            assert opened_files == [], "read again after the open"
        finally:
            opened.close()
