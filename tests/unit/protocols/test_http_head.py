"""The HTTP/1.1 request-head checks twisted.web does not make (RFC 9112), bytes in, verdict out."""

from __future__ import annotations

import pytest

from protocols.errors import ProtocolError
from protocols.http_head import (
    check_framing,
    check_host,
    connection_options,
    line_ends_in_bare_lf,
    origin_form,
    reason_phrase,
    request_line_target,
    request_line_version,
)


@pytest.mark.parametrize(("method", "target", "expected"), [
    (b"GET", b"/hgr/raw-file/tip/a.txt", (b"/hgr/raw-file/tip/a.txt", None)),
    (b"GET", b"http://evil.example/hgr/a?x=1", (b"/hgr/a?x=1", b"evil.example")),
    (b"POST", b"HTTPS://[::1]:8443/r?cmd=unbundle", (b"/r?cmd=unbundle", b"[::1]:8443")),
    (b"GET", b"http://host.test", (b"/", b"host.test")),
    (b"GET", b"http://host.test?cmd=heads", (b"/?cmd=heads", b"host.test")),
    (b"OPTIONS", b"*", (b"*", None)),
])
def test_origin_and_absolute_forms_give_the_path(method: bytes, target: bytes,
                                                 expected: tuple[bytes, bytes | None]) -> None:
    assert origin_form(method, target) == expected


@pytest.mark.parametrize("target", [b"hgr/a", b"xhgr/a", b"*", b"host.test:443", b"ftp://host.test/a",
                                    b"http:///a", b"http://user@host.test/a", b"http://host.test/a#frag",
                                    b"http://ho st/a"])
def test_other_targets_are_a_bad_request(target: bytes) -> None:
    with pytest.raises(ProtocolError) as refused:
        origin_form(b"GET", target)
    assert refused.value.http_status == 400


def test_one_host_is_needed_on_http11_and_never_two() -> None:
    check_host(b"HTTP/1.1", [b"example.test"])
    check_host(b"HTTP/1.0", [])
    check_host(b"HTTP/1.1", [b""])  # an empty Host: a URI without an authority (RFC 9112 §3.2)
    for version, hosts in ((b"HTTP/1.1", []), (b"HTTP/1.1", [b"a.test", b"b.test"]), (b"HTTP/1.0", [b"a", b"a"])):
        with pytest.raises(ProtocolError) as refused:
            check_host(version, hosts)
        assert refused.value.http_status == 400


def test_a_body_is_chunked_only_by_one_chunked_on_http11() -> None:
    check_framing(b"HTTP/1.1", [])
    check_framing(b"HTTP/1.0", [])
    check_framing(b"HTTP/1.1", [b"chunked"])
    check_framing(b"HTTP/1.1", [b"Chunked"])
    for version, codings, status in ((b"HTTP/1.1", [b"chunked", b"identity"], 400),
                                     (b"HTTP/1.1", [b"identity", b"chunked"], 400),
                                     (b"HTTP/1.1", [b"chunked", b"chunked"], 400),
                                     (b"HTTP/1.0", [b"chunked"], 400),
                                     (b"HTTP/1.1", [b"identity"], 501),
                                     (b"HTTP/1.1", [b"gzip, chunked"], 501)):
        with pytest.raises(ProtocolError) as refused:
            check_framing(version, codings)
        assert refused.value.http_status == status, (version, codings)


def test_connection_is_a_list_of_options() -> None:
    assert connection_options([b"close, foo"]) == {b"close", b"foo"}
    assert connection_options([b"TE,Close"]) == {b"te", b"close"}
    assert connection_options([b"keep-alive", b"close"]) == {b"keep-alive", b"close"}
    assert connection_options([b" , ,"]) == frozenset()


def test_a_later_http1_minor_version_is_read_as_11_and_another_major_refused() -> None:
    assert request_line_version(b"GET / HTTP/1.1") == b"GET / HTTP/1.1"
    assert request_line_version(b"GET / HTTP/1.0") == b"GET / HTTP/1.0"
    assert request_line_version(b"GET /a HTTP/1.2") == b"GET /a HTTP/1.1"
    assert request_line_version(b"GET / http/1.1") == b"GET / http/1.1"  # not a version: twisted.web's 400
    assert request_line_version(b"GET /") == b"GET /"
    for line in (b"GET / HTTP/2.0", b"PRI * HTTP/2.0", b"GET / HTTP/0.9", b"GET / HTTP/3.0"):
        with pytest.raises(ProtocolError) as refused:
            request_line_version(line)
        assert refused.value.http_status == 505


@pytest.mark.parametrize(("pending", "bare"), [
    (b"GET / HTTP/1.1\nHost: h\n\n", True),
    (b"\n", True),
    (b"Host: h\nX: y\r\n", True),
    (b"GET / HTTP/1.1\r\n", False),
    (b"GET / HTTP/1.1\r", False),  # its LF may come in the next read
    (b"GET / HTTP/1.1", False),
    (b"", False),
    (bytearray(b"0\n\n"), True),
    (bytearray(b"\r\n0\r\n"), False),
])
def test_a_line_that_ends_in_lf_alone_is_told(pending: bytes | bytearray, bare: bool) -> None:
    assert line_ends_in_bare_lf(pending) is bare


def test_a_target_s_bytes_past_ascii_are_read_as_their_percent_encoding() -> None:
    # libgit2 sends a UTF-8 repository name as it is; twisted.web refuses such a line (400)
    assert (request_line_target(b"GET /\xc3\xbcn\xc3\xaf.git/info/refs?service=git-upload-pack HTTP/1.1")
            == b"GET /%C3%BCn%C3%AF.git/info/refs?service=git-upload-pack HTTP/1.1")
    assert request_line_target(b"POST /t/\xe4\xbb\x93.git/git-upload-pack HTTP/1.1") == \
        b"POST /t/%E4%BB%93.git/git-upload-pack HTTP/1.1"
    # ASCII lines, and lines without a target between two spaces, are left to twisted.web as they are
    for line in (b"GET /a%20b.git HTTP/1.1", b"GET /my app.git HTTP/1.1", b"GET /\xc3\xbc", b"\xc3\xbc",
                 b"GET / HTTP/1.1"):
        assert request_line_target(line) == line


def test_a_reason_phrase_percent_encodes_what_is_past_ascii_in_whole_characters() -> None:
    # hg prints the reason alone ("abort: HTTP Error 404: <reason>"): "?quipe/th?" told nothing
    assert reason_phrase("did you mean équipe/thé?\nnext") == b"did you mean %C3%A9quipe/th%C3%A9? next"
    assert reason_phrase("a\x00\x7f\u200b\udce9\u4ed3") == b"a????%E4%BB%93"  # (controls, invisible, not UTF-8)
    cut = reason_phrase("x" + "é" * 300)
    assert len(cut) == 199 and cut.endswith(b"%C3%A9")  # (MAX_REASON, no escape cut in two)
