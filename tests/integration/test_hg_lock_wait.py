"""A push that waits in vain for a Mercurial lock says whose it is and what to do: a holder on this
server is another write; one on another host (another machine or container sharing the disk, or this
one under an older name) may be long gone, and only the operator can tell."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import backends.hg.lock
from protocols.errors import StorageError
from tests.conftest import Client, RunningServer
from tests.integration.test_hg_http import HgHttp, _settings, htpasswd  # noqa: F401


def _repo_with_a_change(client: Client, server_root: Path, tmp_path: Path) -> Path:
    client.hg("init", str(server_root / "r"))
    work = tmp_path / "w"
    client.hg("init", str(work))
    (work / "a").write_text("a\n")
    client.hg("commit", "-q", "-A", "-m", "a", cwd=work)
    return work


@pytest.mark.parametrize("which", ["lock", "wlock"])
def test_a_lock_held_on_another_host_names_it_and_how_to_free_it(
        make_server: Callable[..., RunningServer], client: Client, htpasswd: Path,  # noqa: F811
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, which: str) -> None:
    monkeypatch.setattr(backends.hg.lock, "DEFAULT_TIMEOUT", 0.5)
    http = HgHttp(make_server("fs", **_settings(htpasswd)), client)
    work = _repo_with_a_change(client, http.server.root, tmp_path)
    lock = http.server.root / "r" / ".hg" / ("store/lock" if which == "lock" else "wlock")
    os.symlink("buildhost-7/4026531836:4242", lock)
    before = sorted(p.name for p in (http.server.root / "r" / ".hg" / "store").iterdir())

    pushed = client.hg("push", "-R", str(work), http.push_url("r"), check=False)

    assert pushed.returncode != 0
    assert ("remote: the repository is locked by process 4242 on host 'buildhost-7', which this server cannot "
            "check; if it stays locked, ask the server's operator to free it "
            f"(hg debuglocks --force-free-{which})\n") in pushed.stdout + pushed.stderr
    assert os.readlink(lock) == "buildhost-7/4026531836:4242", "a lock of another host is never broken"
    assert sorted(p.name for p in (http.server.root / "r" / ".hg" / "store").iterdir()) == before
    os.unlink(lock)
    client.hg("push", "-q", "-R", str(work), http.push_url("r"))
    client.hg("verify", "-q", "-R", str(http.server.root / "r"))


def test_a_lock_held_by_a_live_process_here_is_another_write(
        make_server: Callable[..., RunningServer], client: Client, htpasswd: Path,  # noqa: F811
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backends.hg.lock, "DEFAULT_TIMEOUT", 0.5)
    http = HgHttp(make_server("fs", **_settings(htpasswd)), client)
    work = _repo_with_a_change(client, http.server.root, tmp_path)
    lock = http.server.root / "r" / ".hg" / "store" / "lock"
    os.symlink(f"{backends.hg.lock.lock_prefix()}:{os.getppid()}", lock)  # (a live process: pytest's parent)

    pushed = client.hg("push", "-R", str(work), http.push_url("r"), check=False)

    assert pushed.returncode != 0
    assert (f"remote: the repository is locked by another write in progress (held by process {os.getppid()} "
            "on this host); try again later") in pushed.stdout + pushed.stderr
    assert lock.is_symlink()


def test_a_lock_this_server_left_in_a_moved_repository_is_taken_back(
        make_server: Callable[..., RunningServer], client: Client, htpasswd: Path,  # noqa: F811
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A repository renamed on disk while a push of this server wrote to it carries that push's
    lock files (``HOST:PID`` of this very process), which nothing would ever release: every push
    after waited and was refused until a restart.  No thread here holds them, so they are broken."""
    monkeypatch.setattr(backends.hg.lock, "DEFAULT_TIMEOUT", 0.5)
    http = HgHttp(make_server("fs", **_settings(htpasswd)), client)
    work = _repo_with_a_change(client, http.server.root, tmp_path)
    me = f"{backends.hg.lock.lock_prefix()}:{os.getpid()}"
    os.symlink(me, http.server.root / "r" / ".hg" / "wlock")
    os.symlink(me, http.server.root / "r" / ".hg" / "store" / "lock")
    client.hg("push", "-q", "-R", str(work), http.push_url("r"))
    client.hg("verify", "-q", "-R", str(http.server.root / "r"))
    assert not (http.server.root / "r" / ".hg" / "wlock").is_symlink()


def test_a_lock_released_after_its_repository_moved_lets_the_write_end_cleanly(tmp_path: Path) -> None:
    from backends.hg.lock import FileLock

    (tmp_path / "a" / ".hg").mkdir(parents=True)
    lock = FileLock(str(tmp_path / "a" / ".hg" / "wlock"), timeout=0.5)
    lock.acquire()
    os.rename(tmp_path / "a", tmp_path / "b")  # (an operator's mv while the push writes)
    lock.release()  # its file went with the repository: nothing to release, no error
    moved = FileLock(str(tmp_path / "b" / ".hg" / "wlock"), timeout=0.5)
    moved.acquire()  # the leftover file of this process is taken back at once
    moved.release()


def test_two_spellings_of_one_repository_share_its_lock(tmp_path: Path) -> None:
    """A symbolic link to a repository (an alias served without --config) is the same lock: a
    write through one name is never taken for a leftover by a write through the other."""
    from backends.hg.lock import FileLock

    (tmp_path / "real" / ".hg").mkdir(parents=True)
    os.symlink(tmp_path / "real", tmp_path / "alias")
    held = FileLock(str(tmp_path / "real" / ".hg" / "wlock"), timeout=0.5)
    held.acquire()
    try:
        assert not FileLock(str(tmp_path / "alias" / ".hg" / "wlock"), timeout=0.5).try_acquire()
        with pytest.raises(StorageError):
            FileLock(str(tmp_path / "alias" / ".hg" / "wlock"), timeout=0.3).acquire()
    finally:
        held.release()


def test_how_long_a_push_waits_for_a_lock_comes_from_the_config_file(
        make_server: Callable[..., RunningServer], client: Client, htpasswd: Path,  # noqa: F811
        tmp_path: Path) -> None:
    """``[limits] hg_lock_timeout``: an operator whose hooks are slow waits longer (hg waits 600 s,
    hgwire two minutes by default), one who would rather refuse at once shorter."""
    policy = tmp_path / "policy.toml"
    policy.write_text('[[repo]]\npattern = "*"\nwrite = ["*"]\n[limits]\nhg_lock_timeout = 0.5\n')
    http = HgHttp(make_server("fs", **_settings(htpasswd), config_file=str(policy)), client)
    work = _repo_with_a_change(client, http.server.root, tmp_path)
    sleeper = subprocess.Popen(["sleep", "60"])  # (a live process of this host: a real hg holding it)
    try:
        os.symlink(f"{backends.hg.lock.lock_prefix()}:{sleeper.pid}", http.server.root / "r" / ".hg" / "store" / "lock")
        start = time.monotonic()
        pushed = client.hg("push", "-R", str(work), http.push_url("r"), check=False)
        assert time.monotonic() - start < 10
    finally:
        sleeper.kill()
        sleeper.wait()
    assert pushed.returncode != 0
    assert (f"remote: the repository is locked by another write in progress (held by process {sleeper.pid} "
            "on this host); try again later") in pushed.stdout + pushed.stderr
    os.unlink(http.server.root / "r" / ".hg" / "store" / "lock")
    client.hg("push", "-q", "-R", str(work), http.push_url("r"))
    client.hg("verify", "-q", "-R", str(http.server.root / "r"))
