"""Side-band framing and the git:// request line."""

from __future__ import annotations

import pytest

from protocols import sideband
from protocols.errors import ProtocolError, UnsafeName, UnsupportedFeature
from protocols.git_request import (
    Service,
    is_daemon_request,
    is_http_request,
    parse_daemon_request,
    parse_git_protocol,
    protocol_version,
)

from .transcript import load


def test_sideband_splits_at_the_limits() -> None:
    data = b"x" * 70000
    framed = sideband.encode(sideband.Band.DATA, data, sideband.MAX_PAYLOAD_64K)
    assert framed[:5] == b"fff0\x01" and len(framed) == 65520 + 4 + 1 + (70000 - 65515)
    small = sideband.encode(sideband.Band.PROGRESS, b"y" * 1000, sideband.MAX_PAYLOAD_SMALL)
    assert small[:5] == b"03e8\x02"


def test_sideband_matches_a_recorded_report() -> None:
    report = b"000eunpack ok\n0017ok refs/heads/main\n0000"
    recorded = [d for t, d in load("push-ff") if t == "s"][-2]
    assert sideband.encode(sideband.Band.DATA, report, sideband.MAX_PAYLOAD_64K) == recorded


def test_parses_recorded_request_lines() -> None:
    v0 = parse_daemon_request(load("clone-v0")[0][1][4:])
    assert (v0.service, v0.repo_name, v0.host, v0.protocol_version) == (
        Service.UPLOAD_PACK, "r.git", "127.0.0.1:29500", 0)
    v2 = parse_daemon_request(load("ls-remote-v2-request")[0][1][4:])
    assert (v2.repo_name, v2.extra, v2.protocol_version) == ("empty.git", (b"version=2",), 2)
    push = parse_daemon_request(load("push-ff")[0][1][4:])
    assert push.service is Service.RECEIVE_PACK


@pytest.mark.parametrize("line, error", [
    (b"git-upload-pack\0host=x\0", ProtocolError),
    (b"rm -rf /\0", UnsupportedFeature),
    (b"git-upload-pack r.git\0", UnsafeName),
    (b"git-upload-pack /\xff.git\0", UnsafeName),
    (b"git-upload-pack /r.git\0" + b"\0".join([b"a=b"] * 40), ProtocolError),
])
def test_rejects_bad_request_lines(line: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_daemon_request(line)


def test_protocol_version_takes_the_highest_known() -> None:
    assert protocol_version(parse_git_protocol(b"version=1:version=2:version=9:x=y")) == 2
    assert protocol_version([b"version=abc"]) == 0


def test_a_git_request_and_an_http_request_line_are_told_apart() -> None:
    """What each listener checks its first bytes for: the other scheme's client."""
    assert is_daemon_request(b"0033git-upload-pack /r.git\0host=h\0")
    assert is_daemon_request(b"0035git-receive-pack /r.git\0")
    for other in (b"GET / HTTP/1.1\r\n", b"0033", b"0033gi", b"zzzzgit-upload-pack", b"\x16\x03\x01"):
        assert not is_daemon_request(other), other
    assert is_http_request(b"GET ") and is_http_request(b"POST /r.git/git-upload-pack HTTP/1.1")
    assert not is_http_request(b"0033git-upload-pack /r.git\0")


def test_a_daemon_request_s_first_bytes_are_held_until_they_tell() -> None:
    """git writes the pkt-line length and the payload apart: every prefix of a git:// request
    shorter than eight bytes may still become one; an HTTP request line is told by its third byte
    at the latest (``DELETE``: D and E are hex digits), a TLS handshake by its first."""
    from protocols.git_request import may_become_daemon_request

    request = b"0033git-upload-pack /r.git\0host=h\0"
    for n in range(1, 8):
        assert may_become_daemon_request(request[:n]), n
    assert not may_become_daemon_request(request[:8]) and is_daemon_request(request[:8])
    for line in (b"GET / HTTP/1.1\r\n", b"DELETE /x HTTP/1.1\r\n", b"POST /", b"\x16\x03\x01"):
        assert not may_become_daemon_request(line[:3]) and not may_become_daemon_request(line[:8]), line
    assert not may_become_daemon_request(b"0033gix") and not may_become_daemon_request(b"0033git-")
