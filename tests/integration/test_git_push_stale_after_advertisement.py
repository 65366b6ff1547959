"""A push whose refs move on the server between its advertisement and its commands (the pusher's
pre-push hook runs there; over smart HTTP the GET's advertisement and the POST are two requests):
another push moves ``main``, deletes the packed-only ``d``, and ``git pack-refs`` rewrites the
file.  Every command, whose old value is the advertisement's, is refused, as git's receive-pack
refuses it, ``--force-with-lease`` and ``--atomic`` ones too, and nothing the other push did is
undone: the push's session holds no read of the refs from its advertisement (it lets go of it), the
update reads and checks each ref again."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import bcrypt
import pytest

from tests.conftest import LOOPBACK, Client, RunningServer

GATE = """#!/bin/sh
mkdir "{dir}/waiting"
while [ ! -e "{dir}/release" ]; do sleep 0.05; done
"""

PUSHES = {
    "plain": ["HEAD:main", ":d"],
    "lease": ["--force-with-lease", "+HEAD:main", "+HEAD:e"],
    "atomic": ["--atomic", "HEAD:main", "HEAD:e"],
}


def _refs(client: Client, bare: Path) -> dict[str, str]:
    out = client.git("--git-dir", str(bare), "for-each-ref", "--format=%(refname) %(objectname)").stdout
    return dict(line.split() for line in out.splitlines())


def _held_push(client: Client, url: str, work: Path, gate: Path, args: list[str],
               meanwhile: Callable[[], None]) -> tuple[int, str]:
    hook = work / ".git" / "hooks" / "pre-push"
    hook.write_text(GATE.format(dir=gate))
    hook.chmod(0o755)
    outcome = []
    pusher = threading.Thread(target=lambda: outcome.append(client.git("push", url, *args, cwd=work, check=False)))
    pusher.start()
    try:
        deadline = time.monotonic() + 120
        while not (gate / "waiting").is_dir():
            assert pusher.is_alive() and time.monotonic() < deadline, outcome and outcome[0].stderr
            time.sleep(0.02)
        meanwhile()
    finally:
        (gate / "release").touch()
        pusher.join(120)
    hook.unlink()
    shutil.rmtree(gate)
    gate.mkdir()
    return outcome[0].returncode, outcome[0].stderr


@pytest.mark.parametrize("transport", ["git", "http"])
@pytest.mark.parametrize("kind", sorted(PUSHES))
def test_refs_moved_after_the_advertisement_refuse_the_push(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path, transport: str, kind: str) -> None:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("alice:" + bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode() + "\n")
    server = make_server("fs", git=[LOOPBACK], http=[LOOPBACK], htpasswd=str(htpasswd))
    bare = server.root / "r.git"
    client.git("init", "-q", "--bare", "-b", "main", str(bare))
    first, second = tmp_path / "a", tmp_path / "b"
    client.git("init", "-q", "-b", "main", str(first))
    client.git("commit", "-q", "--allow-empty", "-m", "base", cwd=first)
    lines = "".join(f"create refs/tags/t{i:04d} HEAD\n" for i in range(600))  # a packed-refs to splice
    client.git("update-ref", "--stdin", cwd=first, input=lines.encode())
    client.git("push", "-q", str(bare), "main", "main:d", "main:e", "refs/tags/*", cwd=first)
    client.git("--git-dir", str(bare), "pack-refs", "--all", "--prune")
    client.git("clone", "-q", str(bare), str(second))
    client.git("commit", "-q", "--allow-empty", "-m", "a", cwd=first)
    client.git("commit", "-q", "--allow-empty", "-m", "b", cwd=second)
    url = (server.git_url("r") if transport == "git"
           else server.url("http", "r").replace("http://", "http://alice:s3cret@"))
    client.git("fetch", "-q", url, "+refs/heads/*:refs/remotes/origin/*", cwd=first)  # (the lease's values)
    gate = tmp_path / "gate"
    gate.mkdir()

    def other_push() -> None:
        client.git("push", "-q", url, "+HEAD:main", "+HEAD:e", ":d", cwd=second)
        client.git("--git-dir", str(bare), "pack-refs", "--all", "--prune")

    code, stderr = _held_push(client, url, first, gate, PUSHES[kind], other_push)
    after = _refs(client, bare)
    theirs = client.git("rev-parse", "HEAD", cwd=second).stdout.strip()
    assert code != 0, stderr
    assert after["refs/heads/main"] == theirs and after["refs/heads/e"] == theirs, stderr
    assert "refs/heads/d" not in after
    assert len([line for line in stderr.splitlines() if line.startswith(" ! ")]) == 2, stderr
    client.git("--git-dir", str(bare), "fsck", "--full")


HOOK = """#!/bin/sh
{{ echo "$(basename "$0") $*"; cat; }} >> "{log}"
"""


@pytest.mark.parametrize("transport", ["git", "http", "file"])
def test_refs_repacked_after_the_advertisement_are_pushed_and_hooks_told_their_old_values(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path, transport: str) -> None:
    """Only ``git pack-refs`` between the advertisement and the commands (the refs as advertised,
    now packed): the push lands, and pre-receive, update and post-receive are told what git's are
    told (``file``: git's own receive-pack)."""
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("alice:" + bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode() + "\n")
    server = make_server("fs", git=[LOOPBACK], http=[LOOPBACK], htpasswd=str(htpasswd))
    bare = server.root / "r.git"
    client.git("init", "-q", "--bare", "-b", "main", str(bare))
    work = tmp_path / "a"
    client.git("init", "-q", "-b", "main", str(work))
    client.git("commit", "-q", "--allow-empty", "-m", "base", cwd=work)
    client.git("push", "-q", str(bare), "main", "main:d", "main:e", cwd=work)
    client.git("--git-dir", str(bare), "update-ref", "refs/heads/loose", "main")  # packed below, then loose again
    client.git("--git-dir", str(bare), "pack-refs", "--all", "--prune")
    client.git("--git-dir", str(bare), "update-ref", "refs/heads/e", "main")  # loose over its packed value
    client.git("commit", "-q", "--allow-empty", "-m", "a", cwd=work)
    log = tmp_path / "hooks.log"
    for name in ("pre-receive", "update", "post-receive"):
        (bare / "hooks" / name).write_text(HOOK.format(log=log))
        (bare / "hooks" / name).chmod(0o755)
    url = {"git": server.git_url("r"), "file": f"file://{bare}",
           "http": server.url("http", "r").replace("http://", "http://alice:s3cret@")}[transport]
    gate = tmp_path / "gate"
    gate.mkdir()

    def repack() -> None:
        client.git("--git-dir", str(bare), "pack-refs", "--all", "--prune")

    code, stderr = _held_push(client, url, work, gate, ["HEAD:main", ":d", "HEAD:e", ":loose"], repack)
    assert code == 0, stderr
    base = client.git("rev-parse", "HEAD~1", cwd=work).stdout.strip()
    head = client.git("rev-parse", "HEAD", cwd=work).stdout.strip()
    zero = "0" * 40
    told = [f"{base} {new} refs/heads/{ref}" for ref, new in (("d", zero), ("e", head), ("loose", zero),
                                                                ("main", head))]
    assert log.read_text().splitlines() == [
        "pre-receive ", *told, *(f"update refs/heads/{line.split()[2].rsplit('/', 1)[1]} {line.split()[0]} "
                                  f"{line.split()[1]}" for line in told), "post-receive ", *told], log.read_text()
    assert _refs(client, bare) == {"refs/heads/e": head, "refs/heads/main": head}
