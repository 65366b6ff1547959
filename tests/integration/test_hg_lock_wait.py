"""A push that waits in vain for a Mercurial lock says whose it is and what to do: a holder on this
server is another write; one on another host (another machine or container sharing the disk, or this
one under an older name) may be long gone, and only the operator can tell."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

import backends.hg.lock
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
    assert (f"remote: the repository is locked by another write in progress (process {os.getppid()} on this "
            "server); try again later") in pushed.stdout + pushed.stderr
    assert lock.is_symlink()
