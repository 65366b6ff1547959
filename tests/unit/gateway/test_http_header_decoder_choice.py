"""Which body decoder a request's headers choose (``gateway.http.HgwireHTTPChannel``): a chunked body
gets the strict decoder, and the headers that say nothing of the body cost no look-up of it."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport

from backends import load_backend
from gateway import http as gateway_http
from gateway.config import ServiceConfig
from gateway.http import _StrictChunks, make_http_site


class _Counting:
    """``twisted.web.http`` as ``gateway.http`` sees it, counting the attributes read through it."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.read: list[str] = []

    def __getattr__(self, name: str) -> Any:
        self.read.append(name)
        return getattr(self._real, name)


def test_a_chunked_body_is_read_strictly_and_other_headers_look_nothing_up(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    counting = _Counting(gateway_http.http)  # type: ignore[attr-defined]
    monkeypatch.setattr(gateway_http, "http", counting)
    site = make_http_site(ServiceConfig(backend=load_backend("fs", str(tmp_path)), root=str(tmp_path)))
    channel = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1234))  # type: ignore[no-untyped-call]
    assert channel is not None
    channel.makeConnection(StringTransport())  # type: ignore[no-untyped-call]
    headers = b"".join(b"X-HgArg-%d: cmds=heads\r\n" % i for i in range(1, 9))
    channel.dataReceived(b"POST /r?cmd=batch HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n" + headers + b"\r\n")
    assert type(channel._transferDecoder) is _StrictChunks
    assert "_ChunkedTransferDecoder" not in counting.read  # (it was read once a header: ten times here)
    channel.connectionLost(None)
