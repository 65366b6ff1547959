"""``[clone_cache]``: a finished full clone's answer is kept and sent again, with real clients.

The second identical clone must be served from the kept answer (no new
generation) and be as complete as the first (``git fsck --full``, ``hg
verify``); a push changes the repository's state, so the clone after it is
computed anew and has the pushed commit.  Without the table nothing is kept
(every other integration test runs that way).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gateway.shared_streams import SHARED
from tests.conftest import LOOPBACK, Client, RunningServer, SshKeys, ssh_server_settings
from tests.integration.test_git_daemon import commit
from tests.integration.test_git_shared_clones import refs_of, serve_history
from tests.integration.test_hg_shared_clones import history  # noqa: F401 (a module fixture)
from tests.integration.test_hg_ssh import HgSsh, _commit

POLICY = "[clone_cache]\nmax_bytes = 67108864\nmax_age = 600\n"


@pytest.fixture
def policy(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "policy.toml"
    path.write_text(POLICY)
    yield path
    SHARED.forget_kept()


def _counts() -> tuple[int, int, int]:
    return SHARED.started, SHARED.joined, SHARED.reused


def _delta(before: tuple[int, int, int]) -> tuple[int, int, int]:
    now = _counts()
    return now[0] - before[0], now[1] - before[1], now[2] - before[2]


@pytest.mark.parametrize("transport", ["git", "http", "ssh"])
def test_a_second_git_clone_reads_the_kept_pack(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, policy: Path,
        tmp_path: Path, transport: str) -> None:
    server, url, src = serve_history(make_server, client, ssh_keys, tmp_path, transport, config_file=str(policy))
    expected = refs_of(client, src)

    before = _counts()
    first, second = tmp_path / "first", tmp_path / "second"
    client.git("clone", "-q", "--mirror", url, str(first))
    client.git("clone", "-q", "--mirror", url, str(second))
    assert _delta(before) == (1, 0, 1)
    for dest in (first, second):
        assert refs_of(client, dest) == expected
        client.git("fsck", "--full", "--strict", cwd=dest)

    tip = commit(client, src, "after.txt", "after\n", "after the kept clone")
    client.git("push", "-q", str(server.root / "proj.git"), "main", cwd=src)  # writes need rules here
    client.git("fsck", "--full", "--strict", cwd=server.root / "proj.git")
    before = _counts()
    later = tmp_path / "later"
    client.git("clone", "-q", "--mirror", url, str(later))
    assert _delta(before) == (1, 0, 0)
    assert client.git("rev-parse", "main", cwd=later).stdout.strip() == tip
    client.git("fsck", "--full", "--strict", cwd=later)


@pytest.mark.parametrize("transport", ["http", "ssh"])
def test_a_second_hg_clone_reads_the_kept_bundle(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, history: Path,  # noqa: F811
        policy: Path, tmp_path: Path, transport: str) -> None:
    settings = {"http": [LOOPBACK]} if transport == "http" else ssh_server_settings(ssh_keys)
    server = make_server("fs", config_file=str(policy), **settings)
    hgssh = HgSsh(server, client, ssh_keys.command(server.port("ssh")) if transport == "ssh" else "ssh")
    url = server.url("http", "c") if transport == "http" else hgssh.url("c")
    client.hg("clone", "-q", "-U", str(history), str(server.root / "c"))

    before = _counts()
    first, second = tmp_path / "first", tmp_path / "second"
    hgssh.hg("clone", "-q", "-U", url, str(first))
    hgssh.hg("clone", "-q", "-U", url, str(second))
    assert _delta(before) == (1, 0, 1)
    expected = hgssh.log(history).replace(" draft ", " public ")  # the server's copy is publishing
    for dest in (first, second):
        assert hgssh.log(dest) == expected
        client.hg("verify", "-q", "-R", str(dest))

    work = tmp_path / "pusher"
    shutil.copytree(first, work)
    client.hg("update", "-q", "-R", str(work), "default")
    _commit(client, work, "after.txt", "after\n", "after the kept clone")
    client.hg("push", "-q", "-R", str(work), str(server.root / "c"))
    client.hg("verify", "-q", "-R", str(server.root / "c"))
    before = _counts()
    later = tmp_path / "later"
    hgssh.hg("clone", "-q", "-U", url, str(later))
    assert _delta(before) == (1, 0, 0)
    assert "after the kept clone" in client.hg("log", "-R", str(later), "-T", "{desc}\n").stdout
    client.hg("verify", "-q", "-R", str(later))


@pytest.mark.parametrize("transport", ["git", "ssh"])
def test_a_second_identical_git_archive_reads_the_kept_one(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, policy: Path,
        tmp_path: Path, transport: str) -> None:
    """``git archive --remote`` of a release tag, fetched again and again by a CI fleet, was built
    anew each time (0.21 s of server CPU for 1,500 files, where git daemon's costs 0.11 s); keyed
    on what its bytes depend on (tree, commit, format, prefix, level, pathspecs), it shares one
    generation and, with ``[clone_cache]``, is kept: the next is sent as it was (0.014 s).  Another
    prefix or format is another archive; the bytes are git's own either way."""
    server, url, src = serve_history(make_server, client, ssh_keys, tmp_path, transport, config_file=str(policy))
    client.git("--git-dir", str(server.root / "proj.git"), "config", "daemon.uploadarch", "true")
    def archive(*options: str) -> bytes:
        return subprocess.run(["git", "-C", str(src), "archive", *options, "v1"], env=client.env,
                              capture_output=True, check=True).stdout

    theirs = archive("--format=tar", "--prefix=p/")
    remote = f"--remote={url}"

    before = _counts()
    first, second = archive(remote, "--format=tar", "--prefix=p/"), archive(remote, "--format=tar", "--prefix=p/")
    assert _delta(before) == (1, 0, 1)
    assert first == second == theirs
    before = _counts()
    archive(remote, "--format=tar", "--prefix=q/")
    archive(remote, "--format=zip", "--prefix=p/")
    assert _delta(before) == (2, 0, 0)
