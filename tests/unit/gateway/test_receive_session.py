"""ReceivePackSession and its pack sink: a pack that will never be committed is aborted, once.

The pool is replaced by a queue the test runs by hand, so that a client can go
away at the worst moment: while a piece of its pack is being written.
"""

from __future__ import annotations

import hashlib

import pytest

from backends.interfaces import ZERO_ID, PackedObject, RefResult
from gateway import git_session, pump
from gateway.channel import SessionContext
from protocols import pktline
from protocols.git_receive import PackScanner
from tests.fakes import ManualPool, RecordingChannel, manual_pool


class Sink:
    def __init__(self) -> None:
        self.written = b""
        self.aborts = 0
        self.commits = 0

    def write(self, data: bytes, objects: object = None) -> None:
        self.written += data

    def commit(self) -> None:
        self.commits += 1

    def abort(self) -> None:
        self.aborts += 1


class Repo:
    name = "r"

    def __init__(self) -> None:
        self.sink = Sink()

    def begin_pack(self) -> Sink:
        return self.sink


Channel = RecordingChannel


@pytest.fixture
def pool(monkeypatch: pytest.MonkeyPatch) -> ManualPool:
    return manual_pool(monkeypatch, pump, git_session)


def started(pool: ManualPool, monkeypatch: pytest.MonkeyPatch) -> tuple[git_session.ReceivePackSession, Repo]:
    repo = Repo()
    monkeypatch.setattr(git_session, "_open_for_receive", lambda ctx, stateless=False: git_session._Receiving(repo, {}))
    ctx = SessionContext(backend=None, repo_name="r", transport="git-daemon", peer="test")  # type: ignore[arg-type]
    session = git_session.ReceivePackSession(ctx, Channel())
    session.start()
    pool.run_all()  # the advertisement
    return session, repo


def pack_of_one_blob() -> bytes:
    import zlib

    body = b"PACK\x00\x00\x00\x02\x00\x00\x00\x01" + bytes([0x30 | 5]) + zlib.compress(b"hello")
    return body + hashlib.sha1(body).digest()


OK_X = RefResult(b"refs/heads/x")
"""The result of the one command ``commands()`` sends."""


def commands() -> bytes:
    new = b"1" * 40
    return pktline.encode(ZERO_ID + b" " + new + b" refs/heads/x\0report-status") + pktline.FLUSH


def test_a_client_gone_while_a_piece_is_written_has_its_pack_aborted_after_the_write(
        pool: ManualPool, monkeypatch: pytest.MonkeyPatch) -> None:
    session, repo = started(pool, monkeypatch)
    pack = pack_of_one_blob()
    session.data_received(commands() + pack[:10])
    assert pool.run_next() == "_begin_pack"
    assert [f for f, _, _ in pool.steps] == [git_session._write_pack], "the first piece is being written"
    session.eof_received()
    session.connection_lost()
    assert repo.sink.aborts == 0, "not while the write may still use the file"
    pool.run_all()
    assert repo.sink.written == pack[:10]
    assert (repo.sink.aborts, repo.sink.commits) == (1, 0)


def test_a_client_gone_between_pieces_has_its_pack_aborted(pool: ManualPool, monkeypatch: pytest.MonkeyPatch) -> None:
    session, repo = started(pool, monkeypatch)
    session.data_received(commands() + pack_of_one_blob()[:10])
    pool.run_all()
    session.connection_lost()
    pool.run_all()
    assert (repo.sink.aborts, repo.sink.commits) == (1, 0)


def test_a_complete_pack_is_committed_not_aborted(pool: ManualPool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(git_session, "_finish_push", lambda repo, sink, *_: (sink.commit(), (None, [OK_X], b""))[1])
    session, repo = started(pool, monkeypatch)
    pack = pack_of_one_blob()
    session.data_received(commands() + pack)
    pool.run_all()
    session.connection_lost()
    pool.run_all()
    assert repo.sink.written == pack
    assert (repo.sink.aborts, repo.sink.commits) == (0, 1)


def test_the_sink_is_told_the_objects_the_scan_found(pool: ManualPool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(git_session, "_finish_push", lambda *_: (None, [OK_X], b""))
    session, repo = started(pool, monkeypatch)
    seen: list[object] = []
    repo.sink.write = lambda data, objects=None: seen.append(objects)  # type: ignore[method-assign]
    session.data_received(commands() + pack_of_one_blob())
    pool.run_all()
    found = [o for objects in seen for o in objects]  # type: ignore[attr-defined]
    assert len(found) == 1 and isinstance(found[0], PackedObject)
    assert found[0].sha == hashlib.sha1(b"blob 5\0hello").digest()


# -- the pack is scanned in the pool, not on the reactor -------------------------------------


def _begun(pool: ManualPool, monkeypatch: pytest.MonkeyPatch) -> tuple[git_session.ReceivePackSession, Repo]:
    """A session whose commands are read and whose sink is open: the pack comes in later reads."""
    session, repo = started(pool, monkeypatch)
    session.data_received(commands())
    assert pool.run_next() == "_begin_pack"
    assert not pool.steps
    return session, repo


def test_pack_bytes_of_a_later_read_are_scanned_and_written_in_one_pool_step(
        pool: ManualPool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(git_session, "_finish_push", lambda repo, sink, *_: (sink.commit(), (None, [OK_X], b""))[1])
    session, repo = _begun(pool, monkeypatch)
    pack = pack_of_one_blob()
    scanned_here: list[bytes] = []
    real_feed = PackScanner.feed

    def feed(scanner: PackScanner, data: bytes) -> int:
        scanned_here.append(data)
        return real_feed(scanner, data)

    monkeypatch.setattr(PackScanner, "feed", feed)
    session.data_received(pack)
    assert scanned_here == [], "nothing scanned on the reactor"
    assert [f.__name__ for f, _, _ in pool.steps] == ["_scan_and_write"]
    pool.run_next()
    assert scanned_here == [pack] and repo.sink.written == pack
    pool.run_all()  # the refs
    assert (repo.sink.aborts, repo.sink.commits) == (0, 1)
    assert b"unpack ok" in session.channel.out  # type: ignore[attr-defined]


def test_bytes_arriving_during_a_scan_wait_for_it_and_keep_their_order(
        pool: ManualPool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(git_session, "_finish_push", lambda repo, sink, *_: (sink.commit(), (None, [OK_X], b""))[1])
    session, repo = _begun(pool, monkeypatch)
    pack = pack_of_one_blob()
    session.data_received(pack[:7])
    session.data_received(pack[7:15])  # the first scan has not run: no second step alongside it
    session.data_received(pack[15:])
    assert len(pool.steps) == 1
    pool.run_next()
    assert repo.sink.written == pack[:7]
    assert [f.__name__ for f, _, _ in pool.steps] == ["_scan_and_write"], "then the rest, in one step"
    pool.run_all()
    assert repo.sink.written == pack
    assert (repo.sink.aborts, repo.sink.commits) == (0, 1)


def test_a_malformed_pack_in_a_later_read_is_reported_and_aborted(
        pool: ManualPool, monkeypatch: pytest.MonkeyPatch) -> None:
    session, repo = _begun(pool, monkeypatch)
    session.data_received(b"PACK\x00\x00\x00\x09" + b"\x00" * 20)  # version 9
    pool.run_all()
    out = session.channel.out  # type: ignore[attr-defined]
    assert b"unpack " in out and b"unpack ok" not in out
    assert b"ng refs/heads/x" in out
    assert (repo.sink.aborts, repo.sink.commits) == (1, 0)


def test_eof_during_a_scan_is_a_truncated_pack_after_it(pool: ManualPool, monkeypatch: pytest.MonkeyPatch) -> None:
    session, repo = _begun(pool, monkeypatch)
    pack = pack_of_one_blob()
    session.data_received(pack[:10])
    session.eof_received()
    pool.run_all()
    out = session.channel.out  # type: ignore[attr-defined]
    assert repo.sink.written == pack[:10]
    assert b"truncated" in out and b"ng refs/heads/x" in out
    assert (repo.sink.aborts, repo.sink.commits) == (1, 0)


class PausingChannel(Channel):
    def __init__(self) -> None:
        super().__init__()
        self.paused = False
        self.pauses = 0

    def pause_input(self) -> None:
        self.paused = True
        self.pauses += 1

    def resume_input(self) -> None:
        self.paused = False


def test_the_client_goes_on_sending_during_a_scan_up_to_a_bound(
        pool: ManualPool, monkeypatch: pytest.MonkeyPatch) -> None:
    """While the pool scans a piece of the pack, the session takes what comes (the next step scans
    all of it at once) until ``SCAN_AHEAD`` bytes wait; then the client is paused, and let go again
    once the scan has taken them."""
    monkeypatch.setattr(git_session, "SCAN_AHEAD", 100)
    session, _repo = _begun(pool, monkeypatch)
    channel = PausingChannel()
    session.channel = channel
    import random
    import zlib

    text = random.Random(7).randbytes(300)  # an incompressible blob: its deflated bytes are many
    pack = b"PACK\x00\x00\x00\x02\x00\x00\x00\x01" + bytes([0x80 | 0x30 | 300 & 0xF, 300 >> 4]) + zlib.compress(text)
    session.data_received(pack[:20])
    assert [f.__name__ for f, _, _ in pool.steps] == ["_scan_and_write"] and not channel.paused
    session.data_received(pack[20:80])
    assert not channel.paused, "a scan under way does not stop the client"
    session.data_received(pack[80:150])
    assert channel.paused and channel.pauses == 1, "past the bound it does"
    pool.run_next()  # the first scan ends; the next takes both pieces at once, the client still paused
    assert [f.__name__ for f, _, _ in pool.steps] == ["_scan_and_write"]
    assert pool.steps[0][1][2] == [pack[20:80], pack[80:150]]
    assert channel.paused
    pool.run_next()
    assert not channel.paused, "all taken: the client may send again"
