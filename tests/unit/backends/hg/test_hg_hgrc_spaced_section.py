"""A section header with spaces inside its brackets (``[ web ]``) names the section `` web ``
for Mercurial (``config.parse`` keeps the name as written), not ``[web]``; hgwire stripped the
spaces, so ``allow_read = alice`` under ``[ web ]`` kept every other user out of a repository
``hg serve`` serves to all, and ``allow_read = *`` there opened one its ``[web]`` closes.  Each
text's ``[web]`` is checked beside hg's own reading (``hg config web``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from backends.hg import create_repository, open_repository
from backends.hg.keys import config_section
from tests.hg_command_server import subprocess_run

TEXTS = [
    (b"[ web ]\nallow_read = alice\n", {}, {"allow_read": None}),
    (b"[ web ]\ndeny_read = bob\n", {}, {"deny_read": None}),
    (b"[web]\nallow_read = alice\n[ web ]\nallow_read = *\n", {b"allow_read": b"alice"}, {"allow_read": ["alice"]}),
    (b"[web ]\ndeny_read = bob\n[web]\nname = x\n", {b"name": b"x"}, {"deny_read": None}),
]


def _hg_web(tmp_path: Path, text: bytes) -> dict[bytes, bytes]:
    """The ``[web]`` settings hg itself reads from a repository with ``text`` as its hgrc."""
    path = tmp_path / "theirs"
    path.mkdir()
    (path / ".hg").mkdir()
    (path / ".hg" / "requires").write_text("store\n")
    (path / ".hg" / "hgrc").write_bytes(text)
    env = {**os.environ, "HGRCPATH": os.devnull, "HGPLAIN": "1"}
    done = subprocess_run(["hg", "config", "-R", str(path), "web"], cwd=tmp_path, env=env)
    assert done.returncode in (0, 1), done.stderr  # (1: nothing set)
    return dict(line.partition(b"=")[::2] for line in done.stdout.splitlines())  # type: ignore[misc]


@pytest.mark.parametrize(("text", "web", "lists"), TEXTS)
def test_a_spaced_section_header_is_not_web(tmp_path: Path, text: bytes, web: dict[bytes, bytes],
                                            lists: dict[str, list[str] | None]) -> None:
    assert {k.removeprefix(b"web."): v for k, v in _hg_web(tmp_path, text).items()} == web
    assert dict(config_section(text, b"web", None)) == web
    path = tmp_path / "ours"
    create_repository(str(path), "ours")
    (path / ".hg" / "hgrc").write_bytes(text)
    access = open_repository(str(path), "ours").web_access()
    assert {key: access[key] for key in lists} == lists
