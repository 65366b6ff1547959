"""An hg push takes the repository's locks only once its whole bundle is in, as ``hg serve`` does
(``backends.hg.push_spool``): a client that stalls in the middle of its bundle (a slow link, a
laptop put to sleep) held the locks for up to the idle timeout, and every other push to the
repository waited 30 s and was refused ("locked by another write in progress").

A raw client sends its bundle in two parts and pauses between them; a real ``hg push`` lands
meanwhile; then the first push resumes, and lands or is refused as ``hg serve`` would refuse it.
The bundle waits in an unnamed file in the repository's ``.hg``, gone after every outcome.
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

import backends.hg.lock
from backends.interfaces import Kind
from tests.conftest import Client, RunningServer, SshKeys, ssh_server_settings
from tests.integration.test_full_disk import _snapshot
from tests.integration.test_git_http_live_body import _answer, _wait_for
from tests.integration.test_hg_http import PASSWORD, _settings, htpasswd  # noqa: F401

FORCE = b"666f726365"  # hex("force"): the ``heads`` of a bundle2 client, which checks heads in the bundle


def kept_bundles(repo: Path, pid: int | None = None) -> list[str]:
    """The unnamed files the server (process ``pid``, else this one, where it runs) holds open in
    ``repo``'s ``.hg``: pushed bundles being kept until they are whole."""
    hg_dir = os.path.realpath(repo / ".hg")
    fds = f"/proc/{pid or 'self'}/fd"
    found = []
    for fd in os.listdir(fds):
        try:
            target = os.readlink(f"{fds}/{fd}")
        except OSError:
            continue
        if target.endswith(" (deleted)") and os.path.dirname(target) == hg_dir:
            found.append(target)
    return found


def _started(repo: Path) -> bool:
    """The server is on the bundle sent so far: keeping it, or (as it was) applying it under the lock."""
    return bool(kept_bundles(repo)) or os.path.lexists(repo / ".hg" / "store" / "lock")


class Setup:
    """A served repository ``r`` with one changeset, and two clones each with a change of its own:
    ``stalled`` pushes by hand (its bundle, 2 MB), ``other`` with ``hg push``."""

    def __init__(self, server: RunningServer, client: Client, url: str, tmp_path: Path,
                 hg: Callable[..., subprocess.CompletedProcess[str]]) -> None:
        self.server, self.client, self.url, self.hg = server, client, url, hg
        self.repo = server.root / "r"
        seed = tmp_path / "seed"
        client.hg("init", str(seed))
        (seed / "a.txt").write_text("a\n")
        client.hg("commit", "-q", "-A", "-m", "seed", cwd=seed)
        hg("push", "-q", "-R", str(seed), url)
        self.base = client.hg("log", "-R", str(seed), "-r", "tip", "-T", "{node}").stdout
        self.stalled, self.other = tmp_path / "stalled", tmp_path / "other"
        for work, change in ((self.stalled, os.urandom(2 << 20)), (self.other, b"other\n")):
            client.hg("clone", "-q", str(seed), str(work))
            (work / f"{work.name}.bin").write_bytes(change)
            client.hg("commit", "-q", "-A", "-m", work.name, cwd=work)
        bundle = tmp_path / "stalled.hg"
        client.hg("bundle", "-q", "-t", "none-v2", "-r", "tip", "--base", "0", str(bundle), cwd=self.stalled)
        self.bundle = bundle.read_bytes()
        self.before = _snapshot(self.repo / ".hg")

    def descriptions(self) -> list[str]:
        return sorted(self.client.hg("log", "-R", str(self.repo), "-T", "{desc}\n").stdout.split())

    def other_pushes_meanwhile(self) -> None:
        """The stalled push holds no lock: ``other``'s push lands at once (it waited for the lock
        ``DEFAULT_TIMEOUT``, here 3 s, and was refused)."""
        _wait_for(lambda: _started(self.repo), "the server reads the stalled push's bundle")
        pushed = self.hg("push", "-R", str(self.other), self.url, check=False)
        assert pushed.returncode == 0, pushed.stdout + pushed.stderr
        assert self.descriptions() == ["other", "seed"]

    def verified(self) -> None:
        self.client.hg("verify", "-q", "-R", str(self.repo))
        _wait_for(lambda: not kept_bundles(self.repo), "the kept bundle is gone")


@pytest.fixture(autouse=True)
def short_lock_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backends.hg.lock, "DEFAULT_TIMEOUT", 3.0)


# ------------------------------------------------------------------ over SSH


def _ssh_setup(make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys,
               tmp_path: Path) -> tuple[Setup, list[str]]:
    server = make_server("fs", **ssh_server_settings(ssh_keys))
    server.backend.create("r", Kind.HG)
    ssh = ssh_keys.command(server.port("ssh"))
    url = f"ssh://alice@127.0.0.1:{server.port('ssh')}/r"

    def hg(*args: str, **kw: object) -> subprocess.CompletedProcess[str]:
        return client.hg("--config", f"ui.ssh={ssh}", *args, **kw)  # type: ignore[arg-type]

    return Setup(server, client, url, tmp_path, hg), [*ssh.split(), "alice@127.0.0.1", "hg -R r serve --stdio"]


def _ssh_half_push(argv: list[str], bundle: bytes, heads: bytes) -> subprocess.Popen[bytes]:
    """``unbundle`` over a raw ``hg serve --stdio`` session, the first half of the bundle sent."""
    half = len(bundle) // 2
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write(b"hello\nunbundle\nheads %d\n%s" % (len(heads), heads) + b"%d\n" % half + bundle[:half])
    proc.stdin.flush()
    return proc


def _ssh_rest(proc: subprocess.Popen[bytes], bundle: bytes) -> tuple[int, bytes, bytes]:
    half = len(bundle) // 2
    out, err = proc.communicate(b"%d\n" % (len(bundle) - half) + bundle[half:] + b"0\n", timeout=60)
    return proc.returncode, out, err


def test_a_stalled_push_over_ssh_holds_up_no_other_and_is_refused_as_raced_once_resumed(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, tmp_path: Path) -> None:
    """The stalled push was made against the heads before the other landed: once it resumes, it is
    refused as raced (hg checks the heads under the lock, as the bundle is applied)."""
    setup, argv = _ssh_setup(make_server, client, ssh_keys, tmp_path)
    proc = _ssh_half_push(argv, setup.bundle, setup.base.encode())
    try:
        setup.other_pushes_meanwhile()
    finally:
        code, out, err = _ssh_rest(proc, setup.bundle)
    assert code == 0, err
    assert b"repository changed while preparing changes - please try again" in out, out[-400:]
    assert setup.descriptions() == ["other", "seed"]
    setup.verified()


def test_a_push_over_ssh_cut_off_in_the_middle_of_its_bundle_leaves_nothing(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, tmp_path: Path) -> None:
    setup, argv = _ssh_setup(make_server, client, ssh_keys, tmp_path)
    proc = _ssh_half_push(argv, setup.bundle, FORCE)
    _wait_for(lambda: kept_bundles(setup.repo), "the bundle is kept while it arrives")
    assert not os.path.lexists(setup.repo / ".hg" / "store" / "lock")
    assert not os.path.lexists(setup.repo / ".hg" / "wlock")
    assert _snapshot(setup.repo / ".hg") == setup.before, "nothing of the push is in the repository yet"
    proc.kill()
    proc.communicate(timeout=30)
    _wait_for(lambda: not kept_bundles(setup.repo), "the kept bundle is gone")
    assert _snapshot(setup.repo / ".hg") == setup.before
    setup.hg("push", "-q", "-R", str(setup.stalled), setup.url)
    assert setup.descriptions() == ["seed", "stalled"]
    setup.verified()


# ------------------------------------------------------------------ over HTTP


def _http_head(port: int, length: int) -> bytes:
    auth = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    return (f"POST /r?cmd=unbundle HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Basic {auth}\r\n"
            "X-HgArg-1: heads=666f726365\r\nContent-Type: application/mercurial-0.1\r\n"
            f"Content-Length: {length}\r\nConnection: close\r\n\r\n").encode()


def test_a_stalled_push_over_http_holds_up_no_other_and_lands_once_resumed(
        make_server: Callable[..., RunningServer], client: Client, htpasswd: Path,  # noqa: F811
        tmp_path: Path) -> None:
    server = make_server("fs", **_settings(htpasswd))
    server.backend.create("r", Kind.HG)
    url = f"http://alice:{PASSWORD}@127.0.0.1:{server.port('http')}/r"
    setup = Setup(server, client, url, tmp_path, client.hg)
    half = len(setup.bundle) // 2
    with socket.create_connection(("127.0.0.1", server.port("http")), timeout=60) as sock:
        sock.sendall(_http_head(server.port("http"), len(setup.bundle)) + setup.bundle[:half])
        try:
            setup.other_pushes_meanwhile()
        finally:
            sock.sendall(setup.bundle[half:])
            answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]
    assert setup.descriptions() == ["other", "seed", "stalled"]
    setup.verified()
