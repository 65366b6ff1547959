"""A v0 upload-pack connection over git:// (or SSH) reads its advertisement and may wait before its
wants (a slow client).  Each such connection kept its own ``RefSnapshot`` dicts until then: ten to
a mirror of 100,000 annotated tags took the server from 73 to 570 MB of RSS (ten
``git-upload-pack`` processes hold 232 MB).  They now keep the compact ``git_pack.KeptRefs``,
one for the connections that saw the same refs, and a want is still judged, and served, by what
that connection was shown: a ref moved meanwhile is served as advertised, as git serves it."""

from __future__ import annotations

import gc
import socket
import struct
import subprocess
import time
from collections.abc import Callable
from typing import Any

import pytest

from backends import git as git_backend
from backends import git_pack
from gateway import git_session
from protocols import pktline
from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_v2_idle_packed_refs import _Reader

TAGS = 50
MARK = b"refs/tags/kept-idle-000"
WAIT = 30  # seconds: a bound for a broken run only


def _stream() -> str:
    out = ["blob\nmark :1\ndata 2\nb\n",
           "commit refs/heads/main\nmark :2\ncommitter a <a@b> 1700000000 +0000\ndata 2\nc\nM 644 :1 f\n",
           "commit refs/heads/next\nmark :3\ncommitter a <a@b> 1700000001 +0000\ndata 2\nd\nfrom :2\nM 644 :1 g\n"]
    out += [f"tag kept-idle-{n:03d}\nfrom :2\ntagger a <a@b> 1700000000 +0000\ndata 2\nt\n" for n in range(TAGS)]
    return "".join(out)


def _kept_alive() -> tuple[int, int]:
    """The ``RefSnapshot``s and the ``KeptRefs`` of this test's refs that something holds."""
    gc.collect()
    objects = gc.get_objects()
    snapshots = sum(1 for obj in objects if isinstance(obj, git_pack.RefSnapshot) and MARK in obj.refs)
    kept = sum(1 for obj in objects if isinstance(obj, git_pack.KeptRefs) and MARK in obj.names)
    return snapshots, kept


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_idle_v0_connections_keep_one_compact_form_and_are_served_what_they_were_shown(
        make_server: Callable[..., RunningServer], client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(git_session, "KEEP_REFS_AFTER", 0)  # (a client idle from the start)
    server = make_server("fs", git=[LOOPBACK])
    repo = server.root / "t.git"
    client.git("init", "-q", "--bare", str(repo))
    client.git("fast-import", "--quiet", cwd=repo, input=_stream().encode())
    client.git("pack-refs", "--all", cwd=repo)
    shown, moved = (client.git("rev-parse", ref, cwd=repo).stdout.strip() for ref in ("main", "next"))

    port = server.port("git")
    with socket.create_connection(("127.0.0.1", port), timeout=60) as one, \
            socket.create_connection(("127.0.0.1", port), timeout=60) as two:
        readers = []
        for sock in (one, two):
            sock.sendall(pktline.encode(b"git-upload-pack /t.git\0host=x\0"))
            readers.append(_Reader(sock))
        shown_one, shown_two = (reader.packets() for reader in readers)
        assert shown_one == shown_two
        assert f"{shown} refs/heads/main\n".encode() in shown_one
        assert sum(line.endswith(b"^{}\n") for line in shown_one) == TAGS
        _until(lambda: _kept_alive() == (0, 1), "both idle connections hold one compact form of what they were shown")

        client.git("update-ref", "refs/heads/main", moved, cwd=repo)  # meanwhile

        one.sendall(pktline.encode(f"want {shown} side-band-64k ofs-delta include-tag\n".encode())
                    + pktline.FLUSH + pktline.encode(b"done\n"))
        answer = readers[0].packets()
        assert answer[0] == b"NAK\n"
        pack = b"".join(line[1:] for line in answer[1:] if line[:1] == b"\x01")

        unknown = "1234567890" * 4
        two.sendall(pktline.encode(f"want {unknown} side-band-64k\n".encode()) + pktline.FLUSH
                    + pktline.encode(b"done\n"))
        refused = readers[1].sock.recv(65536)
        assert f"not our ref {unknown}".encode() in refused

    fetched = client.cwd / "fetched.git"
    client.git("init", "-q", "--bare", str(fetched))
    subprocess.run(["git", "index-pack", "--stdin"], input=pack, cwd=fetched, env=client.env, check=True,
                   capture_output=True, timeout=60)
    objects = client.git("cat-file", "--batch-all-objects", "--batch-check=%(objectname) %(objecttype)",
                         cwd=fetched).stdout.split("\n")
    assert f"{shown} commit" in objects and f"{moved} commit" not in objects, "the advertised main, not the new one"
    assert sum(line.endswith(" tag") for line in objects) == TAGS, "include-tag: the tags it was shown"


def _keep_calls_pending(reactor: Any) -> int:
    """The delayed calls that would make some connection's refs compact (``_keep_refs``), read on the reactor's thread."""
    from twisted.internet.threads import blockingCallFromThread

    def count() -> int:
        return sum(1 for call in reactor.getDelayedCalls()
                   if getattr(call.func, "__func__", None) is git_session.UploadPackSession._keep_refs)

    return int(blockingCallFromThread(reactor, count))


def test_a_client_gone_before_its_wants_leaves_nothing_of_its_refs_behind(
        reactor: Any, make_server: Callable[..., RunningServer], client: Client,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A client that reads the advertisement of a kept parse and whose connection is then reset (killed,
    # dropped by a proxy or a firewall: no end of input read) left its session and the dicts of the
    # refs it was shown (some 10 MB for a mirror of 100,000 tags) to the pending timer until it fired,
    # KEEP_REFS_AFTER later: 30 such resets took the server from 200 to 530 MB of RSS (before the
    # timer, 218 to 283).  The timer goes with the connection now.
    monkeypatch.setattr(git_session, "KEEP_REFS_AFTER", 3600)  # (long after the clients have gone)
    monkeypatch.setattr(git_backend, "RUN_MIN_REFS", 1)  # the advertisement spliced from the kept parse
    server = make_server("fs", git=[LOOPBACK])
    repo = server.root / "t.git"
    client.git("init", "-q", "--bare", str(repo))
    client.git("fast-import", "--quiet", cwd=repo, input=_stream().encode())
    client.git("pack-refs", "--all", cwd=repo)
    before = _keep_calls_pending(reactor)
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", server.port("git")), timeout=60) as sock:
            sock.sendall(pktline.encode(b"git-upload-pack /t.git\0host=x\0"))
            assert any(line.startswith(MARK, 41) for line in _Reader(sock).packets())
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # a reset
    server.settled()
    assert _keep_calls_pending(reactor) == before, "a gone connection's timer still pending"
    _until(lambda: _kept_alive() == (0, 0), "nothing holds the refs the gone clients were shown")
