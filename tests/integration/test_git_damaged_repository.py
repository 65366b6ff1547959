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


def bare_with_a_commit(client: Client, root: Path, name: str, push: bool = True) -> tuple[Path, Path]:
    """A bare repository ``root/name`` (``git init``, on ``main``) and a working copy with one
    commit on ``main`` (``client.cwd/src-NAME``), pushed into it unless not ``push``."""
    bare = root / name
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    work = client.cwd / f"src-{name}"
    client.git("init", "-q", str(work))
    (work / "a.txt").write_text("a\n")
    client.git("add", ".", cwd=work)
    client.git("commit", "-qm", "a", cwd=work)
    if push:
        client.git("push", "-q", str(bare), "main", cwd=work)
    return bare, work


def _repo(client: Client, root: Path, name: str) -> Path:
    return bare_with_a_commit(client, root, name)[0]


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
    told = [e for e in logged if e.get("log_level") == LogLevel.error and said in str(e.get("reason", ""))]
    assert len(told) == 2, told  # a line per clone: the session's (not the shared stream's too)
    client.git("clone", "-q", server.git_url("fine"), str(client.cwd / "fine"))


@pytest.mark.parametrize("content", ["", "not an id\n"])
def test_a_damaged_loose_ref_is_left_out_logged_and_refused(
        make_server: Callable[..., RunningServer], client: Client, logged: list[dict[str, Any]],
        content: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty or damaged ``refs/heads/NAME`` over a packed value: git reads the ref as broken; it
    is not served as the stale packed value it hides, the log names it, a push to it is refused
    saying why (it was "another push moved it meanwhile", for ever)."""
    from backends.lru import LruCache
    from gateway import git_session

    monkeypatch.setattr(git_session, "BROKEN_REFS_TOLD", LruCache(8))  # (told once every ten minutes)
    server = make_server("fs", git=[LOOPBACK])
    bare = _repo(client, server.root, "hurt.git")
    work = client.cwd / "src-hurt.git"
    client.git("push", "-q", str(bare), "main:side", cwd=work)
    subprocess.run(["git", "--git-dir", str(bare), "pack-refs", "--all"], check=True)
    (bare / "refs" / "heads").mkdir(parents=True, exist_ok=True)
    (bare / "refs" / "heads" / "side").write_text(content)
    listed = client.git("ls-remote", server.git_url("hurt")).stdout
    assert "refs/heads/main" in listed and "refs/heads/side" not in listed, listed
    warned = [e for e in logged if e.get("log_level") == LogLevel.warn and "damaged ref files" in e.get("log_format", "")]
    assert warned and warned[0]["refs"] == "refs/heads/side"
    (work / "b.txt").write_text("b\n")
    client.git("add", ".", cwd=work)
    client.git("commit", "-qm", "b", cwd=work)
    refused = client.git("push", server.git_url("hurt"), "HEAD:side", cwd=work, check=False)
    assert refused.returncode == 1
    assert "(the server's file of this ref is damaged" in refused.stderr, refused.stderr
    client.git("push", "-q", server.git_url("hurt"), "HEAD:main", cwd=work)  # the others are served


def test_a_store_failing_mid_clone_is_logged_once(make_server: Callable[..., RunningServer], client: Client,
                                                  logged: list[dict[str, Any]],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """An object store that raises while the pack goes out: the client is told "internal error" and
    the log holds one traceback, the session's (it names the repository), not the shared
    generation's as well."""
    from backends import git_fastpack

    serve_pack = git_fastpack.serve_pack

    def failing(*args: Any, **kwargs: Any) -> Iterator[bytes]:
        yield next(iter(serve_pack(*args, **kwargs)))
        raise RuntimeError("the object store broke")

    monkeypatch.setattr(git_fastpack, "serve_pack", failing)
    server = make_server("fs", git=[LOOPBACK])
    _repo(client, server.root, "shaky.git")
    cloned = client.git("clone", "-q", server.git_url("shaky"), str(client.cwd / "clone"), check=False)
    assert cloned.returncode != 0
    assert "internal error" in cloned.stderr, cloned.stderr
    tracebacks = [e for e in logged if e.get("log_failure") is not None]
    assert len(tracebacks) == 1, [e.get("log_format") for e in tracebacks]
    assert tracebacks[0]["repo"] == "shaky.git"
    assert "in failing" in tracebacks[0]["log_failure"].getTraceback()  # where the store failed
