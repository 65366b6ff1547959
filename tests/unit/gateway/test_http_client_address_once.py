"""A request's client address and scheme (``gateway.http.BoundedRequest``): asked several times a
request (the handler, its log lines, the access line), worked out once when no proxy is trusted."""

from __future__ import annotations

import ipaddress

from twisted.internet.address import IPv4Address
from twisted.web.test.requesthelper import DummyChannel

from gateway.http import BoundedRequest
from protocols.forwarded import Trusted


def _request(peer: str, trusted: Trusted, asked: list[int]) -> BoundedRequest:
    channel = DummyChannel()  # type: ignore[no-untyped-call]
    channel.transport.getPeer = lambda: IPv4Address("TCP", peer, 4321)  # type: ignore[method-assign]

    def trusted_proxies() -> Trusted:
        asked.append(1)
        return trusted

    channel.site.trusted_proxies = trusted_proxies  # type: ignore[attr-defined]
    request = BoundedRequest(channel)  # type: ignore[no-untyped-call]
    request.requestHeaders.setRawHeaders(b"x-forwarded-for", [b"203.0.113.9"])
    request.requestHeaders.setRawHeaders(b"x-forwarded-proto", [b"https"])
    return request


def test_a_peer_no_proxy_rule_trusts_is_the_client_worked_out_once() -> None:
    asked: list[int] = []
    request = _request("198.51.100.7", Trusted((ipaddress.ip_network("10.0.0.0/8"),)), asked)
    for _ in range(5):
        assert request.getClientAddress().host == "198.51.100.7"  # type: ignore[attr-defined]
    assert asked == [1]  # the headers it sent count for nothing: not looked at again
    assert not request.isSecure()


def test_a_trusted_proxy_s_headers_still_name_the_client_and_scheme() -> None:
    asked: list[int] = []
    request = _request("10.1.2.3", Trusted((ipaddress.ip_network("10.0.0.0/8"),)), asked)
    for _ in range(3):
        assert request.getClientAddress().host == "203.0.113.9"  # type: ignore[attr-defined]
    assert request.isSecure()
