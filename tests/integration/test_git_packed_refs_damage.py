"""A ``packed-refs`` file git reads though it did not write it so: a line whose name is no valid ref
name, ``^`` lines under a first line that does not say ``peeled``.  hgwire refused the whole
advertisement (clone, fetch and push failed); it now serves what git's upload-pack serves, beside
git's own answer, leaving a broken name out (git lists it with the zero id, which a clone ignores:
"Ignoring funny ref"), and a push into such a repository keeps every line of the file (git's
receive-pack wrote the broken line back with the zero id; hgwire's maintenance does not run git's
pack-refs over it, which does the same)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from twisted.logger import LogLevel, globalLogPublisher

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_daemon import commit

ZERO = "0" * 40


@pytest.fixture
def logged() -> Iterator[list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)  # type: ignore[arg-type]
    yield events
    globalLogPublisher.removeObserver(events.append)  # type: ignore[arg-type]


def _packed(client: Client, root: Path, name: str) -> tuple[Path, Path, dict[str, str]]:
    """A bare repository ``root/name`` with main, b1 and an annotated tag v1, its refs packed; a
    working copy; the ids (main, b1, the tag, the commit it peels to)."""
    work = client.cwd / f"work-{name}"
    client.git("init", "-q", "-b", "main", str(work))
    first = commit(client, work, "a.txt", "a\n", "first")
    tip = commit(client, work, "b.txt", "b\n", "second")
    client.git("tag", "-a", "-m", "annotated", "v1", first, cwd=work)
    bare = root / name
    client.git("init", "-q", "--bare", "-b", "main", str(bare))
    client.git("push", "-q", str(bare), "main", f"{first}:refs/heads/b1", "v1", cwd=work)
    client.git("--git-dir", str(bare), "pack-refs", "--all")
    tag = client.git("rev-parse", "v1", cwd=work).stdout.strip()
    return bare, work, {"main": tip, "b1": first, "tag": tag, "peeled": first}


def _listed(client: Client, url: str, version: str) -> tuple[int, list[str]]:
    done = client.git("-c", f"protocol.version={version}", "ls-remote", url, check=False)
    return done.returncode, sorted(done.stdout.splitlines())


@pytest.mark.parametrize("version", ["0", "2"])
@pytest.mark.parametrize("broken", ["refs/heads/bad..name", "refs/heads/a b", "refs/heads/x.lock"])
def test_a_broken_name_in_packed_refs_is_left_out_and_the_rest_served(
        make_server: Callable[..., RunningServer], client: Client, logged: list[dict[str, Any]],
        broken: str, version: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from backends.lru import LruCache
    from gateway import git_session

    monkeypatch.setattr(git_session, "BROKEN_REFS_TOLD", LruCache(8))  # (told once every ten minutes)
    server = make_server("fs", git=[LOOPBACK])
    bare, _, ids = _packed(client, server.root, "hurt.git")
    (bare / "packed-refs").write_text(
        "# pack-refs with: peeled fully-peeled sorted \n"
        f"{ids['b1']} refs/heads/b1\n{ids['b1']} {broken}\n{ids['main']} refs/heads/main\n"
        f"{ids['tag']} refs/tags/v1\n^{ids['peeled']}\n")
    gits = _listed(client, f"file://{bare}", version)  # git's own upload-pack
    ours = _listed(client, server.git_url("hurt"), version)
    assert gits[0] == ours[0] == 0, (gits, ours)
    zeroed = [line for line in gits[1] if line.startswith(ZERO)]
    assert len(zeroed) == 1 and broken.startswith(zeroed[0].split("\t")[1]), gits  # (ls-remote cuts at a space)
    assert ours[1] == [line for line in gits[1] if not line.startswith(ZERO)]
    client.git("clone", "-q", server.git_url("hurt"), str(client.cwd / "clone"))
    client.git("fsck", "--full", cwd=client.cwd / "clone")
    server.settled()
    assert any(e.get("log_level") == LogLevel.warn and broken in str(e.get("refs", "")) for e in logged)


def test_peeled_lines_without_a_peeled_first_line_are_served_as_git_serves_them(
        make_server: Callable[..., RunningServer], client: Client) -> None:
    server = make_server("fs", git=[LOOPBACK])
    bare, _, ids = _packed(client, server.root, "bare.git")
    (bare / "packed-refs").write_text(
        f"{ids['b1']} refs/heads/b1\n{ids['main']} refs/heads/main\n{ids['tag']} refs/tags/v1\n^{ids['peeled']}\n")
    for version in ("0", "2"):
        gits = _listed(client, f"file://{bare}", version)
        assert gits[0] == 0 and f"{ids['peeled']}\trefs/tags/v1^{{}}" in gits[1], gits
        assert _listed(client, server.git_url("bare"), version) == gits
    client.git("clone", "-q", server.git_url("bare"), str(client.cwd / "clone"))


def test_a_push_into_such_a_repository_keeps_every_line(
        make_server: Callable[..., RunningServer], client: Client) -> None:
    server = make_server("fs", git=[LOOPBACK])
    bare, work, ids = _packed(client, server.root, "kept.git")
    broken = f"{ids['b1']} refs/heads/bad..name\n"
    (bare / "packed-refs").write_text(
        "# pack-refs with: peeled fully-peeled sorted \n"
        f"{ids['b1']} refs/heads/b1\n{broken}{ids['main']} refs/heads/main\n"
        f"{ids['tag']} refs/tags/v1\n^{ids['peeled']}\n")
    client.git("push", "-q", server.git_url("kept"), ":b1", cwd=work)  # a packed ref deleted: the file rewritten
    assert (bare / "packed-refs").read_text() == (
        f"# pack-refs with: peeled fully-peeled sorted \n{broken}{ids['main']} refs/heads/main\n"
        f"{ids['tag']} refs/tags/v1\n^{ids['peeled']}\n")
    client.git("push", "-q", server.git_url("kept"), "main:refs/heads/new", "main:refs/heads/b1", cwd=work)
    assert client.git("ls-remote", server.git_url("kept"), "refs/heads/new").stdout.startswith(ids["main"])
    more = [f"main:refs/heads/many/{i}" for i in range(70)]  # (created in packed-refs at once)
    client.git("push", "-q", server.git_url("kept"), *more, cwd=work)
    deleted = [f":refs/heads/many/{i}" for i in range(70)]  # (deleted from packed-refs at once)
    client.git("push", "-q", server.git_url("kept"), *deleted, cwd=work)
    assert broken in (bare / "packed-refs").read_text()

    # hgwire's maintenance would run git's pack-refs, which writes that line with the zero id
    with pytest.raises(ValueError, match="bad..name"):
        server.backend.open("kept").pack_refs()  # type: ignore[union-attr]
    assert broken in (bare / "packed-refs").read_text()
    subprocess.run(["git", "--git-dir", str(bare), "pack-refs", "--all"], check=True)
    assert f"{ZERO} refs/heads/bad..name" in (bare / "packed-refs").read_text()  # (what it would have done)
