"""While a push's pack is checked and committed and its hooks run, the client gets git's
keepalive (an empty band-1 packet every ``receive.keepAlive`` seconds), over git:// and over
HTTP, so that a proxy or a firewall does not drop a long, quiet push; ``0`` turns it off."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import bcrypt
import pytest

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_daemon import commit


@pytest.mark.parametrize(("transport", "keepalive"), [("git", "1"), ("http", "1"), ("git", "0")])
def test_a_slow_push_hears_keepalives(make_server: Callable[..., RunningServer], client: Client, tmp_path: Path,
                                      transport: str, keepalive: str) -> None:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("alice:" + bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode() + "\n")
    server = make_server("fs", git=[LOOPBACK], http=[LOOPBACK], htpasswd=str(htpasswd))
    served = server.root / "slow.git"
    client.git("init", "-q", "--bare", str(served))
    client.git("--git-dir", str(served), "config", "receive.keepAlive", keepalive)
    hook = served / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\nsleep 2.6\n")  # a slow check, as a large pack's index-pack is slow
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR)
    work = client.cwd / "work"
    client.git("init", "-q", "-b", "main", str(work))
    pushed = commit(client, work, "f", "1\n", "first")
    url = server.git_url("slow") if transport == "git" else f"http://alice:pw@127.0.0.1:{server.port('http')}/slow.git"
    traced = client.git("push", url, "HEAD:main", cwd=work, env={"GIT_TRACE_PACKET": "1"})
    sideband = [line.split("packet:", 1)[1].strip() for line in traced.stderr.splitlines() if "sideband<" in line]
    alive = [line for line in sideband if line == "sideband< \\1"]
    assert (len(alive) >= 2) if keepalive != "0" else not alive, sideband
    assert client.git("--git-dir", str(served), "rev-parse", "main").stdout.strip() == pushed
    client.git("--git-dir", str(served), "fsck", "--full")


@pytest.mark.parametrize(("protocol", "transport"), [("0", "git"), ("2", "git"), ("2", "http")])
def test_a_slowly_counted_pack_is_preceded_by_keepalives(make_server: Callable[..., RunningServer], client: Client,
                                                         monkeypatch: pytest.MonkeyPatch, protocol: str,
                                                         transport: str) -> None:
    """A pack whose counting takes a while (a large history without a bitmap): the client hears
    git's keepalive every ``uploadpack.keepAlive`` seconds until the pack starts, in v0 (with
    side-band) and in v2's packfile section, and the clone is whole."""
    import threading

    from gateway import git_session, threads

    real = git_session.pack_stream
    real_tick = threads.IteratorProducer._tick
    ticks: list[None] = []
    two_ticks = threading.Event()

    def counted_tick(producer: threads.IteratorProducer) -> None:
        sends = not producer._wrote and not producer._paused and producer._keepalive is not None
        real_tick(producer)
        if sends and not producer._stopped:
            ticks.append(None)
            if len(ticks) >= 2:
                two_ticks.set()

    def slowly_counted(*args: object) -> object:
        def chunks() -> object:
            # (in the pool, as the counting walk runs there) until two keepalives went out: a fixed
            # 2.6 s let a reactor late on a loaded host send its second one after the pack
            assert two_ticks.wait(60), "no two keepalives while the pack was counted"
            yield from real(*args)  # type: ignore[arg-type]
        return chunks()

    monkeypatch.setattr(threads.IteratorProducer, "_tick", counted_tick)
    monkeypatch.setattr(git_session, "pack_stream", slowly_counted)
    server = make_server("fs", git=[LOOPBACK], http=[LOOPBACK])
    served = server.root / "counted.git"
    client.git("init", "-q", "--bare", str(served))
    client.git("--git-dir", str(served), "config", "uploadpack.keepAlive", "1")
    work = client.cwd / "work"
    client.git("init", "-q", "-b", "main", str(work))
    pushed = commit(client, work, "f", "1\n", "first")
    client.git("push", "-q", str(served), "HEAD:main", cwd=work)
    url = server.git_url("counted") if transport == "git" else f"http://127.0.0.1:{server.port('http')}/counted.git"
    traced = client.git("-c", f"protocol.version={protocol}", "clone", "--bare", url, "copy.git",
                        env={"GIT_TRACE_PACKET": "1"})
    sideband = [line.split("packet:", 1)[1].strip() for line in traced.stderr.splitlines() if "sideband<" in line]
    first_pack = next(i for i, line in enumerate(sideband) if "PACK" in line)
    assert sum(line == "sideband< \\1" for line in sideband[:first_pack]) >= 2, sideband[:5]
    assert client.git("--git-dir", "copy.git", "rev-parse", "main").stdout.strip() == pushed
    client.git("--git-dir", "copy.git", "fsck", "--full")
