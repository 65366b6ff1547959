"""The HTTP listener's URL an SSH session hands out (``git-lfs-authenticate``) when that listener is
on every address: the address the SSH client reached, bracketed for IPv6, where the family fits."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from twisted.internet.address import IPv4Address, IPv6Address

from gateway.ssh import reached_http_url


def _config(bound: str) -> Any:
    return SimpleNamespace(http_every=("https", bound, 8443))


def test_reached_http_url_brackets_ipv6_and_keeps_families_apart() -> None:
    def at(host: str) -> Any:  # the SSH connection's own end, as Twisted gives it
        return IPv6Address("TCP", host, 22) if ":" in host else IPv4Address("TCP", host, 22)

    assert reached_http_url(_config("::"), at("2001:db8::5")) == "https://[2001:db8::5]:8443"
    assert reached_http_url(_config("::"), at("::ffff:192.0.2.7")) == "https://192.0.2.7:8443"
    assert reached_http_url(_config("0.0.0.0"), at("192.0.2.7")) == "https://192.0.2.7:8443"
    assert reached_http_url(_config("0.0.0.0"), at("2001:db8::5")) is None  # an IPv4 listener: the host name
    nothing: Any = SimpleNamespace(http_every=None)
    assert reached_http_url(nothing, at("192.0.2.7")) is None  # one address: its URL
