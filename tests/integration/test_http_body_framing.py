"""A request body's framing sent on a raw socket (``gateway.http.HgwireHTTPChannel``, its decoder
chosen as the ``Transfer-Encoding`` header comes): a head that frames its body two ways is refused
with nothing after it read (a proxy in front may have framed it the other way: a request smuggled
behind it would run), and a chunked body is read strictly whatever the header's case."""

from __future__ import annotations

import pytest

from tests.integration.test_http_request_head import body_of, exchange, port, status_of

__all__ = ["port"]  # (the fixture, imported for pytest)

SMUGGLED = b"GET /hgr/raw-file/tip/a.txt HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n"
HEAD = b"POST /hgr?cmd=heads HTTP/1.1\r\nHost: example.test\r\n"
BODY = b"0\r\n\r\n"

AMBIGUOUS = [
    b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
    b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
    b"content-length: 5\r\ntransfer-encoding: CHUNKED\r\n",
    b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: chunked, identity\r\n",
    b"Transfer-Encoding: gzip, chunked\r\n",
    b"Transfer-Encoding : chunked\r\n",
    b"Transfer-Encoding: chunked\r\n x\r\n",
    b"Content-Length: 5\r\nContent-Length: 6\r\n",
    b"Content-Length: +5\r\n",
]

NOT_CHUNKED = [  # a transfer coding that is not chunked: 501, the connection closed
    b"Transfer-Encoding: identity\r\n",
    b"Transfer-Encoding: identity\r\nContent-Length: 5\r\n",
    b"Content-Length: 5\r\nTransfer-Encoding: IDENTITY\r\n",
]


@pytest.mark.parametrize("framing", AMBIGUOUS + NOT_CHUNKED, ids=range(len(AMBIGUOUS + NOT_CHUNKED)))
def test_a_body_framed_two_ways_is_refused_and_nothing_after_it_runs(port: int, framing: bytes) -> None:
    answer = exchange(port, HEAD + framing + b"\r\n" + BODY + SMUGGLED)
    assert status_of(answer) == (501 if framing in NOT_CHUNKED else 400), answer
    assert answer.count(b"\r\n\r\n") == 1 and b"hi\n" not in answer, answer


@pytest.mark.parametrize("name", [b"Transfer-Encoding", b"transfer-encoding", b"TRANSFER-ENCODING",
                                  b"tRaNsFeR-eNcOdInG"])
def test_a_chunked_body_is_read_strictly_whatever_the_header_s_case(port: int, name: bytes) -> None:
    """A chunk-size line ending in LF alone: 400 at once, the request behind it never read."""
    answer = exchange(port, HEAD + name + b": chunked\r\n\r\n0\n\r\n" + SMUGGLED)
    assert status_of(answer) == 400 and b"LF alone" in body_of(answer), answer
    assert answer.count(b"\r\n\r\n") == 1 and b"hi\n" not in answer, answer
    good = exchange(port, HEAD + name + b": chunked\r\nConnection: close\r\n\r\n" + BODY)
    assert status_of(good) == 200 and len(body_of(good).strip()) == 40, good
