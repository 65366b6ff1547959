"""protocols.git_lfs_transfer: the client's side of git-lfs's pure SSH protocol read into events
however its bytes are cut, the server's answers framed as the git-lfs client reads them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols import git_lfs_transfer as t
from protocols import pktline
from protocols.errors import ProtocolError
from protocols.git_lfs import Lock


def pkt(text: str) -> bytes:
    return pktline.encode(text.encode() + b"\n")


OID = "a" * 64
SESSION = b"".join([
    pkt("version 1"), pktline.FLUSH,
    pkt("batch"), pkt("transfer=ssh"), pkt("hash-algo=sha256"), pkt("refname=refs/heads/main"), pktline.DELIM,
    pkt(f"{OID} 5"), pkt(f"{'b' * 64} 7 x=y"), pktline.FLUSH,
    pkt(f"put-object {OID}"), pkt("size=5"), pktline.DELIM, pktline.encode(b"he"), pktline.encode(b"llo"),
    pktline.FLUSH,
    pkt(f"verify-object {OID}"), pkt("size=5"), pktline.FLUSH,
    pkt("lock"), pkt("path=dir/a b.psd"), pkt("refname=refs/heads/main"), pktline.FLUSH,
    pkt("quit"), pktline.FLUSH,
])
EVENTS = [
    t.Message("version", "1"),
    t.Message("batch", "", {"transfer": "ssh", "hash-algo": "sha256", "refname": "refs/heads/main"},
              (f"{OID} 5", f"{'b' * 64} 7 x=y")),
    t.DataStart("put-object", OID, {"size": "5"}), t.DataChunk(b"he"), t.DataChunk(b"llo"), t.DataEnd(),
    t.Message("verify-object", OID, {"size": "5"}),
    t.Message("lock", "", {"path": "dir/a b.psd", "refname": "refs/heads/main"}),
    t.Message("quit", ""),
]


def test_a_session_reads_into_its_requests() -> None:
    assert t.TransferReader().feed(SESSION) == EVENTS


@given(st.lists(st.integers(min_value=1, max_value=len(SESSION)), max_size=20))
def test_however_the_bytes_are_cut(cuts: list[int]) -> None:
    reader = t.TransferReader()
    events: list[t.Event] = []
    last = 0
    for cut in [*sorted(cuts), len(SESSION)]:
        events += reader.feed(SESSION[last:cut]) if cut > last else []
        last = max(last, cut)
    assert events + reader.feed(b"") == EVENTS


@pytest.mark.parametrize(("data", "words"), [
    (pktline.FLUSH, "must start with a command"),
    (pkt("batch") + pktline.DELIM + pktline.DELIM, "two delimiters"),
    (pkt("put-object x") + pktline.DELIM + pktline.DELIM, "special packet inside"),
    (pktline.encode(b"\xff\xfe"), "not UTF-8"),
    (pkt("batch") + b"".join(pkt(f"k{i}=v") for i in range(t.MAX_ARGS + 1)), "more than 64 arguments"),
    (b"zzzz", "bad pkt-line length"),
])
def test_what_the_protocol_does_not_allow_is_refused_after_what_came_before(data: bytes, words: str) -> None:
    reader = t.TransferReader()
    events = reader.feed(pkt("version 1") + pktline.FLUSH + data)
    assert events[0] == t.Message("version", "1")
    assert isinstance(events[-1], t.Refused) and words in events[-1].message, events
    assert reader.feed(pkt("quit") + pktline.FLUSH) == []  # nothing is read after a refusal


def test_a_request_cut_by_the_end_of_the_stream_is_refused() -> None:
    reader = t.TransferReader()
    assert reader.feed(pkt("batch") + pkt("transfer=ssh")) == []
    refused = reader.feed(b"")
    assert len(refused) == 1 and isinstance(refused[0], t.Refused) and "middle of a request" in refused[0].message


def test_answers_are_framed_as_the_client_reads_them() -> None:
    assert t.capabilities() == pkt("version=1") + pkt("locking") + pktline.FLUSH
    assert t.status(200) == pkt("status 200") + pktline.FLUSH
    assert t.status(200, ["hash-algo=sha256"], [f"{OID} 5 upload"]) == (
        pkt("status 200") + pkt("hash-algo=sha256") + pktline.DELIM + pkt(f"{OID} 5 upload") + pktline.FLUSH)
    assert t.error(404, "Object does not\nexist") == pkt("status 404") + pktline.DELIM + pkt(
        "Object does not exist") + pktline.FLUSH
    assert t.data_head(5) == pkt("status 200") + pkt("size=5") + pktline.DELIM
    big = bytes(range(256)) * 600
    framed = b"".join(t.framed([big]))
    reader = pktline.PktLineDecoder(max_buffer=1 << 22)
    reader.receive_data(framed)
    payloads = []
    while isinstance(packet := reader.next_packet(), bytes):
        payloads.append(packet)
    assert b"".join(payloads) == big and max(map(len, payloads)) == pktline.MAX_PAYLOAD


def test_batch_lines_and_locks() -> None:
    assert t.batch_objects([f"{OID} 5", f"{OID} 7 k=v"]) == [(OID, 5), (OID, 7)]
    for bad in ([OID], [f"{OID} -1"], [f"{OID} ５"]):
        with pytest.raises(ProtocolError):
            t.batch_objects(bad)
    lock = Lock("id1", "dir/a b.psd", "2026-12-03T00:00:00+00:00", "alice")
    assert t.lock_args(lock) == ["id=id1", "path=dir/a b.psd", "locked-at=2026-12-03T00:00:00+00:00",
                                 "ownername=alice"]
    assert t.lock_lines([lock], "bob")[-1] == "owner id1 theirs"
    assert t.lock_lines([lock], "alice")[1] == "path id1 dir/a b.psd"
