"""The stress of test_hg_concurrent_push_pull_stress (hg clients pushing and pulling at once over
HTTP and SSH, some pushes refused by a hook) with a budget of kept repositories so small that the
engine's caches give way while the pushes and pulls run; and pushes whose client goes away once the
server's transaction began.  A module of its own so that two test processes share the stress (with
``--dist loadfile`` a module runs in one): each half is some 35 s on a 2-core CI host."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Client, RunningServer, SshKeys, ssh_server_settings
from tests.integration.test_hg_concurrent_push_pull_stress import _pushes_and_pulls
from tests.integration.test_hg_http import HgHttp, _settings, htpasswd  # noqa: F401
from tests.integration.test_hg_ssh import HgSsh


def test_concurrent_pushes_and_pulls_with_a_small_kept_budget_stay_consistent(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys,
        htpasswd: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """150,000 bytes of parsed indexes and views kept for reuse between reads (``READ_REUSE_BUDGET``):
    the caches evict while the pushes and pulls run."""
    _pushes_and_pulls(make_server, client, ssh_keys, htpasswd, tmp_path, 150_000, monkeypatch)


@pytest.mark.parametrize("kind", ["http", "ssh"])
def test_an_interrupted_push_leaves_no_snapshot_behind(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys,
        htpasswd: Path, tmp_path: Path, kind: str) -> None:  # noqa: F811
    """A push whose client goes away once the server's transaction began (the bundle is spooled
    whole before the lock, ``backends.hg.push_spool``, so it is then applied, over HTTP and SSH
    alike): the next pulls and pushes see the repository as the files say, and ``hg verify`` passes."""
    server = make_server("fs", **_settings(htpasswd), **ssh_server_settings(ssh_keys))
    http = HgHttp(server, client)
    ssh = HgSsh(server, client, ssh_keys.command(server.port("ssh")))
    peer: Any = http if kind == "http" else ssh
    url = http.push_url("r") if kind == "http" else ssh.url("r")
    served = server.root / "r"
    client.hg("init", str(served))
    client.hg("debugbuilddag", "-q", "-R", str(served), "+200")
    work = tmp_path / "work"
    peer.hg("clone", "-q", url, str(work))
    for n in range(3):
        (work / f"big{n}").write_bytes(os.urandom(12 << 20))
        client.hg("commit", "-q", "-A", "-m", f"big {n}", cwd=work)
    hg = Path(sys.executable).parent / "hg"
    args = [str(hg), "push", "-f", url] if kind == "http" else \
        [str(hg), "--config", f"ui.ssh={ssh.ssh}", "push", "-f", url]
    proc = subprocess.Popen(args, cwd=work, env=client.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not (served / ".hg" / "store" / "journal").exists() and proc.poll() is None \
            and time.monotonic() < deadline:  # (the server began its transaction)
        time.sleep(0.001)
    assert proc.poll() is None, "the push ended before it could be interrupted"
    proc.kill()
    proc.wait()
    if kind == "http":  # (hg's bundle for the HTTP request, left by the killed client in its TMPDIR, not the host's)
        assert list(Path(client.env["TMPDIR"]).glob("hg-bundle-*")), "the killed push's bundle is not in its TMPDIR"
    while (served / ".hg" / "store" / "journal").exists() and time.monotonic() < deadline:
        time.sleep(0.01)  # (a bundle received whole before the client went is applied, as by hg serve)
    before = client.hg("log", "-R", str(served), "-T", "{node}\n").stdout
    pulled = tmp_path / "pulled"
    http.hg("clone", "-q", "-U", http.url("r"), str(pulled))
    assert client.hg("log", "-R", str(pulled), "-T", "{node}\n").stdout == before
    (work / "small").write_text("s\n")
    client.hg("commit", "-q", "-A", "-m", "small", cwd=work)
    peer.hg("push", "-q", "-f", url, cwd=work)
    http.hg("pull", "-q", http.url("r"), cwd=pulled)
    assert client.hg("log", "-R", str(pulled), "-T", "{node}\n").stdout \
        == client.hg("log", "-R", str(served), "-T", "{node}\n").stdout
    client.hg("verify", "-q", "-R", str(served))
    client.hg("verify", "-q", "-R", str(pulled))
