"""A repository shared by several users gets, from hgwire's pushes, the permissions the reference
gives: a ``git init --shared`` one those of git's own receive-pack (``core.sharedRepository``: ref
files and the directories made for them open to the group, or everybody, or given the explicit mode;
the pushed packs' files likewise, read-only; hgwire's ref-update lock file as a ref file), a Mercurial one made
group-writable those hg gives (the store directory's mode, for every file and directory it makes),
so the other users can go on writing there."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import LOOPBACK, Client, RunningServer, SshKeys, ssh_server_settings
from tests.integration.test_git_daemon import commit


def _modes(repo: Path) -> dict[str, int]:
    """The permission bits of every ref file and directory under ``refs/``, of HEAD, and of the
    pushed packs' files (by their kind: the two servers need not name a pack alike)."""
    found = {p.relative_to(repo).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in (repo / "refs").rglob("*")}
    found["HEAD"] = stat.S_IMODE((repo / "HEAD").stat().st_mode)
    for kind in ("pack", "idx"):
        modes = {stat.S_IMODE(p.stat().st_mode) for p in (repo / "objects" / "pack").glob(f"*.{kind}")}
        found[f"*.{kind}"] = modes.pop() if len(modes) == 1 else -len(modes)
    return found


@pytest.fixture
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """The process's umask for one test (the server runs in it, and git's children inherit it)."""
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


@pytest.mark.parametrize(("shared", "umask"), [("group", 0o022), ("all", 0o022), ("false", 0o022), ("0640", 0o022),
                                               ("0600", 0o022), ("false", 0o027), ("group", 0o077)],
                         indirect=["umask"])
def test_pushed_refs_get_git_s_shared_permissions(make_server: Callable[..., RunningServer], client: Client,
                                                  shared: str, umask: int) -> None:
    server = make_server("fs", git=[LOOPBACK])
    served, twin = server.root / "shared.git", client.cwd / "twin.git"
    for repo in (served, twin):
        client.git("init", "-q", "--bare", f"--shared={shared}", str(repo))
        client.git("--git-dir", str(repo), "symbolic-ref", "HEAD", "refs/heads/unborn")  # HEAD repaired by the push
    client.git("--git-dir", str(twin), "config", "receive.unpackLimit", "1")  # git keeps the pack, as hgwire does
    work = client.cwd / "work"
    client.git("init", "-q", "-b", "main", str(work))
    commit(client, work, "f", "x\n", "first")
    specs = ["HEAD:refs/heads/main", "HEAD:refs/heads/deep/topic/x", "HEAD:refs/tags/v/1"]
    client.git("push", "-q", server.git_url("shared"), *specs, cwd=work)
    client.git("push", "-q", str(twin), *specs, cwd=work)  # git's own receive-pack, for the modes it gives
    assert _modes(served) == _modes(twin)
    lock = served / "hgwire-refs.lock"  # every user who pushes locks it (was 0644 whatever the setting)
    assert stat.S_IMODE(lock.stat().st_mode) == _modes(twin)["refs/heads/main"]
    if shared not in ("false", "0600"):
        assert _modes(served)["refs/heads/deep/topic/x"] & stat.S_IRGRP
        assert _modes(served)["refs/heads/deep"] & stat.S_ISGID
    client.git("push", "-q", server.git_url("shared"), ":refs/heads/deep/topic/x", cwd=work)
    client.git("push", "-q", str(twin), ":refs/heads/deep/topic/x", cwd=work)
    assert _modes(served) == _modes(twin)
    client.git("--git-dir", str(served), "fsck", "--full")


def _hg_modes(repo: Path) -> dict[str, int]:
    dot_hg = repo / ".hg"
    return {p.relative_to(dot_hg).as_posix(): stat.S_IMODE(p.lstat().st_mode) for p in dot_hg.rglob("*")}


def test_hg_pushes_give_the_store_s_mode(make_server: Callable[..., RunningServer], client: Client,
                                          ssh_keys: SshKeys) -> None:
    server = make_server("fs", **ssh_server_settings(ssh_keys))
    served, twin = server.root / "shared", client.cwd / "twin"
    for repo in (served, twin):  # what a group of users does to share one: the group may write all of it
        client.hg("init", str(repo))
        for path in [repo / ".hg", *(repo / ".hg").rglob("*")]:
            path.chmod(stat.S_IMODE(path.stat().st_mode) | 0o060 | (stat.S_ISGID if path.is_dir() else 0))
    work = client.cwd / "work"
    client.hg("init", str(work))
    for name in ("top.txt", "deep/er/file.txt"):
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(name + "\n")
    client.hg("commit", "-q", "-A", "-R", str(work), "-m", "shared", "-u", "u")
    client.hg("bookmark", "-q", "-R", str(work), "mark")
    url = f"ssh://alice@127.0.0.1:{server.port('ssh')}/shared"
    client.hg("push", "-q", "-B", "mark", "-R", str(work), "-e", ssh_keys.command(server.port("ssh")), url)
    client.hg("push", "-q", "-B", "mark", "-R", str(work), str(twin))  # hg's own push, for the modes it gives
    ours, hgs = _hg_modes(served), _hg_modes(twin)
    common = sorted(set(ours) & set(hgs))
    assert {"store/data/deep/er/file.txt.i", "store/data/deep", "store/00manifest.i", "bookmarks"} <= set(common)
    assert {p: ours[p] for p in common} == {p: hgs[p] for p in common}
    assert ours["store/data/deep/er"] & stat.S_IWGRP and ours["store/data/top.txt.i"] & stat.S_IWGRP
    client.hg("verify", "-q", "-R", str(served))
