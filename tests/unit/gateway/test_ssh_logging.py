"""What the SSH front door writes to the log: its own session lines, and Conch's problems only."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from twisted.conch.ssh import transport
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, globalLogPublisher

from gateway.ssh import ExecChannel, HgwireConnection, HgwireServerTransport, HgwireSSHFactory, HgwireUserAuth


@pytest.fixture
def events() -> Iterator[list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(seen.append)
    try:
        yield seen
    finally:
        globalLogPublisher.removeObserver(seen.append)


@pytest.mark.parametrize("cls", [HgwireServerTransport, HgwireUserAuth, HgwireConnection, ExecChannel,
                                 HgwireSSHFactory])
def test_conch_chatter_is_dropped_and_its_problems_are_kept(cls: type, events: list[dict[str, Any]]) -> None:
    conch_log = cls._log  # type: ignore[attr-defined]  # what Conch's own methods log through
    conch_log.debug("kex alg={alg}", alg=b"curve25519-sha256")
    conch_log.info("connection lost")
    assert events == []
    conch_log.warn("unexpected channel data")
    conch_log.error("bad packet")
    assert [(e["log_level"], e["log_format"]) for e in events] == [
        (LogLevel.warn, "unexpected channel data"), (LogLevel.error, "bad packet")]
    assert events[0]["log_namespace"] == f"{cls.__module__}.{cls.__name__}"


def transport_from(host: str) -> HgwireServerTransport:
    proto = HgwireServerTransport()
    proto.transport = StringTransport(peerAddress=IPv4Address("TCP", host, 2222))
    return proto


def test_a_client_that_hangs_up_leaves_no_error_in_the_log(events: list[dict[str, Any]]) -> None:
    transport_from("10.0.0.1").receiveError(transport.DISCONNECT_BY_APPLICATION, b"disconnected by user")
    assert events == []


def test_a_client_that_disconnects_for_a_reason_says_it_at_info(events: list[dict[str, Any]]) -> None:
    transport_from("10.0.0.2").receiveError(transport.DISCONNECT_HOST_KEY_NOT_VERIFIABLE,
                                            b"host key verification failed\xff")
    assert len(events) == 1
    assert events[0]["log_level"] == LogLevel.info
    assert events[0]["peer"] == "10.0.0.2"
    assert events[0]["code"] == transport.DISCONNECT_HOST_KEY_NOT_VERIFIABLE
    assert events[0]["reason"] == "host key verification failed\ufffd"
