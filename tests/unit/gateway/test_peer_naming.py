"""How sessions name their peer (gateway.channel.peer_text / peer_host): unambiguous for IPv6."""

from __future__ import annotations

import pytest
from twisted.internet.address import IPv4Address, IPv6Address

from gateway.channel import peer_host, peer_text


@pytest.mark.parametrize(("address", "text", "host"), [
    (IPv4Address("TCP", "10.47.6.2", 53408), "10.47.6.2:53408", "10.47.6.2"),
    (IPv6Address("TCP", "fd47:6::2", 53408), "[fd47:6::2]:53408", "fd47:6::2"),
    (IPv6Address("TCP", "::1", 22), "[::1]:22", "::1"),
    (IPv6Address("TCP", "fe80::2%t47c", 40000), "[fe80::2%t47c]:40000", "fe80::2%t47c"),
    (IPv6Address("TCP", "2001:db8::7", 0), "[2001:db8::7]", "2001:db8::7"),
    (IPv4Address("TCP", "203.0.113.9", 0), "203.0.113.9", "203.0.113.9"),
])
def test_a_peer_is_named_so_that_its_address_and_port_can_be_told_apart(address: object, text: str, host: str) -> None:
    """``fd47:6::2:53408`` is itself an IPv6 address: a log reader (or a script) could not tell the
    port from the address; git daemon writes ``[fd47:6::2]:53408``."""
    assert peer_text(address) == text
    assert peer_host(text) == host


def test_a_git_daemon_session_names_an_ipv6_client_in_brackets() -> None:
    """The git:// log line (``git-daemon git-upload-pack r.git from [fe80::2%eth0]:50070``) and the
    session's ``peer``, as git daemon's own ``Connection from [fe80::2%eth0]:50070``."""
    from twisted.internet.testing import StringTransport

    from gateway.git_daemon import _peer

    assert _peer(StringTransport(peerAddress=IPv6Address("TCP", "fe80::2%eth0", 50070))) == "[fe80::2%eth0]:50070"
    assert _peer(StringTransport(peerAddress=IPv4Address("TCP", "10.47.6.2", 50070))) == "10.47.6.2:50070"
