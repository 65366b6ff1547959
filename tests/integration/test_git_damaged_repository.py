"""A damaged repository (a ref naming a missing object, a bad ``packed-refs`` line) fails a clone
with one sentence that names the damage, over git:// and HTTP, and one log line, not "internal
error" and a traceback per clone; the service goes on serving others."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from twisted.logger import LogLevel, globalLogPublisher

from tests.conftest import LOOPBACK, Client, RunningServer


@pytest.fixture
def logged() -> Iterator[list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)  # type: ignore[arg-type]
    yield events
    globalLogPublisher.removeObserver(events.append)  # type: ignore[arg-type]


def _repo(client: Client, root: Path, name: str) -> Path:
    bare = root / name
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    work = client.cwd / f"src-{name}"
    client.git("init", "-q", str(work))
    (work / "a.txt").write_text("a\n")
    client.git("add", ".", cwd=work)
    client.git("commit", "-qm", "a", cwd=work)
    client.git("push", "-q", str(bare), "main", cwd=work)
    return bare


@pytest.mark.parametrize("damage", ["missing object", "packed-refs"])
def test_a_damaged_repository_is_named_as_such(make_server: Callable[..., RunningServer], client: Client,
                                               logged: list[dict[str, Any]], damage: str) -> None:
    server = make_server("fs", git=[LOOPBACK], http=[LOOPBACK])
    bare = _repo(client, server.root, "broken.git")
    _repo(client, server.root, "fine.git")
    if damage == "missing object":
        (bare / "refs" / "heads" / "gone").write_text("1" * 40 + "\n")
        said = "the repository lacks object " + "1" * 40
    else:
        (bare / "packed-refs").write_text("main~2 refs/heads/zzz\n")
        said = "the repository's packed-refs file is damaged"
    for url in (server.git_url("broken"), f"http://127.0.0.1:{server.port('http')}/broken.git"):
        cloned = client.git("clone", "-q", url, str(client.cwd / f"clone-{len(logged)}"), check=False)
        assert cloned.returncode != 0
        assert said in cloned.stderr and "internal error" not in cloned.stderr, (url, cloned.stderr)
    assert not [e for e in logged if e.get("log_level") == LogLevel.critical or e.get("log_failure")]
    assert [e for e in logged if e.get("log_level") == LogLevel.error and said in str(e.get("reason", ""))]
    client.git("clone", "-q", server.git_url("fine"), str(client.cwd / "fine"))
