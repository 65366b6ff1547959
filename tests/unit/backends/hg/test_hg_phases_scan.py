"""Whether a stream clone is allowed (asked by every ``capabilities``: each pull, push and poll) is
found without walking every changeset's phase in Python (1.6-4 ms a request for 200,000)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from backends.hg import open_repository
from tests import hg_command_server
from tests.conftest import VENV_BIN

ENV = {**os.environ, "HGRCPATH": "", "HGPLAIN": "1", "HGUSER": "t <t@example.com>"}


class _Walked(bytearray):
    walks = 0

    def __iter__(self) -> Iterator[int]:
        _Walked.walks += 1
        return super().__iter__()


def _hg(path: Path, *args: str) -> None:
    hg_command_server.subprocess_run([os.path.join(VENV_BIN, "hg"), "-R", str(path), *args], cwd=path, env=ENV,
                                     check=True)


def test_the_stream_clone_check_does_not_walk_the_phases(tmp_path: Path) -> None:
    path = tmp_path / "r"
    path.mkdir()
    _hg(path, "init")
    for n in range(3):
        (path / "f").write_text(f"{n}\n")
        _hg(path, "commit", "-q", "-A", "-m", f"c{n}")
    _hg(path, "phase", "-p", "-r", "0")  # public, then draft ones
    repo = open_repository(str(path), "r")
    views = repo.views()
    views.phases = _Walked(views.phases)
    assert repo.stream_clone_allowed()
    assert _Walked.walks == 0

    _hg(path, "phase", "-f", "-s", "-r", "2")
    assert not open_repository(str(path), "r").stream_clone_allowed()
    _hg(path, "phase", "-f", "-d", "-r", "2")
    assert open_repository(str(path), "r").stream_clone_allowed()
