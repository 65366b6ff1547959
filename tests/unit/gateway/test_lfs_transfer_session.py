"""``git-lfs-transfer``'s uploads written as they arrive (``gateway.git_lfs.LfsTransferSession``), with
the pool run by hand and a channel that, as the SSH channel does, hands what it held back while
paused over at once when it is resumed: the writes must keep the upload's order whatever comes in
between, and the input being parsed must not be run into."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from backends.interfaces import Kind
from backends.lfs import LfsStore
from gateway import git_lfs
from gateway.channel import SessionContext
from protocols import pktline
from tests.fakes import ManualPool, RecordingChannel


class HoldingChannel(RecordingChannel):
    """A channel whose input, while paused, is held and then handed over whole on resuming."""

    def __init__(self) -> None:
        super().__init__()
        self.paused = False
        self.pauses = 0
        self.held: list[bytes] = []
        self.session: git_lfs.LfsTransferSession | None = None

    def send(self, data: bytes) -> None:
        assert self.session is not None
        if self.paused:
            self.held.append(data)
        else:
            self.session.data_received(data)

    def pause_input(self) -> None:
        self.paused = True
        self.pauses += 1

    def resume_input(self) -> None:
        self.paused = False
        held, self.held = b"".join(self.held), []
        if held and self.session is not None:
            self.session.data_received(held)  # at once, inside the call


def pkt(text: str) -> bytes:
    return pktline.encode(text.encode() + b"\n")


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[git_lfs.LfsTransferSession, HoldingChannel,
                                                                       ManualPool]:
    pool = ManualPool()
    monkeypatch.setattr(git_lfs, "run_for_hooks", pool)
    monkeypatch.setattr(git_lfs, "run_blocking", pool)
    monkeypatch.setattr(git_lfs, "_store", lambda ctx, access=None, secure=True: (Kind.GIT, LfsStore(str(tmp_path))))
    ctx = SessionContext(backend=None, repo_name="media.git", transport="ssh", peer="test")  # type: ignore[arg-type]
    channel = HoldingChannel()
    channel.session = git_lfs.LfsTransferSession("git-lfs-transfer upload", ctx, channel)
    return channel.session, channel, pool


def _frames(data: bytes) -> list[bytes]:
    return [pktline.encode(data[at:at + 65516]) for at in range(0, len(data), 65516)]


def test_an_upload_keeps_its_order_through_pauses_and_what_a_resumed_channel_hands_over(
        session: tuple[git_lfs.LfsTransferSession, HoldingChannel, ManualPool], tmp_path: Path) -> None:
    _session, channel, pool = session
    data = os.urandom(3 << 20)
    oid = hashlib.sha256(data).hexdigest()
    frames = _frames(data)
    channel.send(pkt("version 1") + pktline.FLUSH + pkt(f"put-object {oid}") + pkt(f"size={len(data)}")
                 + pktline.DELIM + b"".join(frames[:12]))
    assert channel.paused, "more than the high water waits: the channel is paused"
    for frame in frames[12:]:
        channel.send(frame)  # held by the channel while paused
    channel.send(pktline.FLUSH + pkt("quit") + pktline.FLUSH)
    while pool.steps:
        pool.run_next()  # each write done lets the next go, and the channel resume (at once)
    assert channel.pauses >= 1 and not channel.paused
    stored = tmp_path / "lfs" / "objects" / oid[:2] / oid[2:4] / oid
    assert stored.read_bytes() == data
    assert channel.out.count(pkt("status 200")) == 3 and channel.finished == 0  # version, put, quit
    assert [p for p in (tmp_path / "lfs").rglob("*") if p.is_file()] == [stored]


def test_an_upload_refused_while_it_arrives_is_answered_in_its_turn_and_leaves_nothing(
        session: tuple[git_lfs.LfsTransferSession, HoldingChannel, ManualPool], tmp_path: Path) -> None:
    """Larger than its size says: the write that passes the size refuses it, the rest is dropped, its
    put-object answered 422 after the requests before it; the session goes on."""
    _session, channel, pool = session
    data = os.urandom(1 << 20)
    oid = hashlib.sha256(data).hexdigest()
    channel.send(pkt("version 1") + pktline.FLUSH + pkt(f"put-object {oid}") + pkt("size=1000")
                 + pktline.DELIM + b"".join(_frames(data)) + pktline.FLUSH + pkt("quit") + pktline.FLUSH)
    while pool.steps:
        pool.run_next()
    assert pkt("status 422") in channel.out and b"larger than the 1000 bytes" in channel.out
    assert channel.out.endswith(pkt("status 200") + pktline.FLUSH) and channel.finished == 0
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_a_session_cut_while_an_upload_is_written_removes_it(
        session: tuple[git_lfs.LfsTransferSession, HoldingChannel, ManualPool], tmp_path: Path) -> None:
    lfs_session, channel, pool = session
    data = os.urandom(1 << 20)
    oid = hashlib.sha256(data).hexdigest()
    channel.send(pkt("version 1") + pktline.FLUSH + pkt(f"put-object {oid}") + pkt(f"size={len(data)}")
                 + pktline.DELIM + b"".join(_frames(data)[:4]))
    pool.run_next()  # the version's answer
    pool.run_next()  # the writer opened
    assert [p.name[:5] for p in tmp_path.rglob("*") if p.is_file()] == [".tmp-"]
    lfs_session.connection_lost()
    while pool.steps:
        pool.run_next()
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]
